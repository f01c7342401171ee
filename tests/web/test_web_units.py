"""The web UI's pure parts: every message has its zh-CN translation, templates hold no
inline script or other origin, the language choice, sizes, and where sign-in may lead."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from hypothesis import given
from hypothesis import strategies as st

from api.web import i18n
from api.web.templates import safe_next

WEB = Path(__file__).resolve().parents[2] / "api" / "web"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _messages() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(WEB), METHODS, OPTIONS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_visible_message_has_a_chinese_translation() -> None:
    catalog = i18n.translations(i18n.CHINESE)
    messages = _messages()
    assert len(messages) > 30
    missing = sorted(m for m in messages if catalog.gettext(m) == m)
    assert missing == [], "add these to a .po in api/web/locales/zh_CN/LC_MESSAGES/"


def test_translations_keep_their_placeholders() -> None:
    catalog = i18n.translations(i18n.CHINESE)
    for message in _messages():
        names = set(re.findall(r"\{(\w*)\}|%\((\w+)\)s", message))
        assert set(re.findall(r"\{(\w*)\}|%\((\w+)\)s", catalog.gettext(message))) == names


def test_templates_hold_no_inline_script_style_or_other_origin() -> None:
    for template in (WEB / "templates").rglob("*.html"):
        text = template.read_text()
        for script in re.findall(r"<script\b[^>]*>", text):
            assert 'src="/static/' in script, (template.name, script)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name  # onclick=…
        assert not re.search(r"\sstyle\s*=", text), template.name
        assert not re.search(r"<style\b", text), template.name
        assert not re.search(r"(src|href|action)=\"(https?:)?//", text), template.name
        assert "|safe" not in text.replace(" ", ""), template.name


def test_static_files_name_no_other_origin() -> None:
    for asset in (WEB / "static").rglob("*"):
        if asset.suffix in (".css", ".js"):
            assert not re.search(r"https?://|url\(\s*['\"]?//", asset.read_text()), asset.name


def test_the_language_is_the_cookie_then_accept_language_then_english() -> None:
    assert i18n.choose("zh-CN", "en") == "zh-CN"
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose(None, "zh-CN,zh;q=0.9") == "zh-CN"
    assert i18n.choose(None, "zh-TW") == "zh-CN"
    assert i18n.choose(None, "de;q=1, zh;q=0.5") == "zh-CN"
    assert i18n.choose(None, "zh;q=0, en;q=0.1") == "en"
    assert i18n.choose("klingon", "fr") == "en"
    assert i18n.choose(None, "") == "en"


@given(st.text(max_size=60))
def test_any_accept_language_picks_one_of_ours(header: str) -> None:
    assert i18n.negotiate(header) in i18n.LANGUAGES


def test_sizes_and_dates_are_written_per_language() -> None:
    assert i18n.size(0, "en") == "0 B"
    assert i18n.size(1536, "en") == "1.5 KiB"
    assert i18n.size(5 * 1024**3, "zh-CN") == "5 GiB"
    assert i18n.size(1234567, "en") == "1.2 MiB"
    from datetime import UTC, datetime

    moment = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    assert i18n.when(moment, "zh-CN").startswith("2026年12月7日")
    assert i18n.when(moment, "en").startswith("Dec 7, 2026")


@given(st.text(max_size=80))
def test_sign_in_leads_only_to_a_path_of_this_site(target: str) -> None:
    found = safe_next(target)
    assert found.startswith("/") and not found.startswith("//") and "\\" not in found
    assert found == target or found == "/"


def test_sign_in_keeps_a_path_and_query_of_this_site() -> None:
    assert safe_next("/images?q=web&sort=size") == "/images?q=web&sort=size"
    for bad in ["//evil", "https://evil", "/\\evil", "", None, "images", "/\x00x"]:
        assert safe_next(bad) == "/"
