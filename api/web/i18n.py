"""Languages of the web UI: English (the messages themselves) and zh-CN (catalogs in
`locales/zh_CN/LC_MESSAGES/*.po`, one per room of the UI, compiled when first used).

The language is the `cyp_lang` cookie (the toggle), else the best of `Accept-Language`,
else English. Dates, numbers and sizes are formatted by Babel for that language."""

from __future__ import annotations

import functools
import io
from datetime import UTC, date, datetime
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_datetime, format_skeleton
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

ENGLISH = "en"
CHINESE = "zh-CN"
LANGUAGES = {ENGLISH: "English", CHINESE: "中文"}
COOKIE = "cyp_lang"
_LOCALES = {ENGLISH: "en", CHINESE: "zh_Hans_CN"}
_CATALOGS = Path(__file__).parent / "locales"


@functools.cache
def translations(language: str) -> NullTranslations:
    """The merged catalogs of every room for `language` (English: the messages as they are)."""
    if language == ENGLISH:
        return NullTranslations()
    merged = Translations()
    for po in sorted((_CATALOGS / language.replace("-", "_") / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=language.replace("-", "_"))
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        merged.merge(Translations(compiled))
    return merged


def negotiate(accept_language: str) -> str:
    """The best of our languages for an `Accept-Language` header; English if none fits."""
    wanted = []
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            wanted.append((quality, tag.strip()))
    for _, tag in sorted(wanted, key=lambda item: -item[0]):
        if tag == "*":
            return ENGLISH
        try:
            locale = Locale.parse(tag, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
        if locale.language == "zh":
            return CHINESE
        if locale.language == "en":
            return ENGLISH
    return ENGLISH


def choose(cookie: str | None, accept_language: str) -> str:
    if cookie in LANGUAGES:
        return cookie  # type: ignore[return-value]
    return negotiate(accept_language)


def when(moment: datetime | None, language: str) -> str:
    """A date and time (UTC, said so) as people of `language` write it ("" for none)."""
    if moment is None:
        return ""
    return format_datetime(moment, "medium", tzinfo=UTC, locale=_LOCALES[language]) + " UTC"


def day(moment: date, language: str, year: bool = False) -> str:
    """A day as people of `language` write it: "Dec 3" / "12月3日" (with `year`: "Dec 3, 2026")."""
    return format_skeleton("yMMMd" if year else "MMMd", moment, locale=_LOCALES[language])


def number(value: int | float, language: str) -> str:
    return format_decimal(value, locale=_LOCALES[language])


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def size(value: int | None, language: str) -> str:
    """Bytes in binary units: 1536 → "1.5 KiB"."""
    if value is None:
        return ""
    amount, unit = float(value), 0
    while amount >= 1024 and unit < len(_UNITS) - 1:
        amount, unit = amount / 1024, unit + 1
    shown = format_decimal(amount, "#,##0.#" if unit else "#,##0", locale=_LOCALES[language])
    return f"{shown} {_UNITS[unit]}"
