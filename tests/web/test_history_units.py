"""The history room's pure parts: a sentence for every kind of event the domain records (and
one for kinds it does not know yet), in English and zh-CN; what the filter form accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.web import i18n
from api.web.history import asking, kinds
from api.web.history.sentences import Part, Writer, compose
from domain.errors import RegistryError
from projections.history import HistoryRow

A = "sha256:" + "ab12" * 16
B = "sha256:" + "cd34" * 16
# the details each kind's events carry (as the history view holds them)
DETAILS: dict[str, dict[str, Any]] = {
    "repository.created": {"name": "team/app"},
    "repository.deleted": {"name": "team/app"},
    "blob.linked": {"size": 1536},
    "blob.unlinked": {},
    "manifest.pushed": {"size": 500, "media_type": "application/vnd.oci.image.manifest.v1+json"},
    "manifest.deleted": {},
    "tag.moved": {"from_digest": A, "to_digest": B},
    "tag.deleted": {"from_digest": A},
    "user.registered": {"username": "carol", "role": "user"},
    "user.password_changed": {"username": "carol"},
    "user.role_changed": {"username": "carol", "from_role": "user", "role": "admin"},
    "user.disabled": {"username": "carol"},
    "user.enabled": {"username": "carol"},
    "user.unlocked": {"username": "carol", "address": "10.0.0.1"},
    "login.succeeded": {"username": "carol", "method": "web", "user_agent": "x"},
    "login.failed": {"username": "carol", "method": "docker", "reason": "invalid credentials"},
    "token.revoked": {"jti": "j", "subject": "carol", "expires": 1},
    "namespace.created": {"name": "team", "owner": "carol", "personal": False, "public": True},
    "namespace.visibility_changed": {"name": "team", "public": False},
    "namespace.member_added": {"name": "team", "username": "dave", "role": "reader"},
    "namespace.member_changed": {
        "name": "team",
        "username": "dave",
        "from_role": "reader",
        "role": "developer",
    },
    "namespace.member_removed": {"name": "team", "username": "dave", "role": "reader"},
    "namespace.deleted": {"name": "team"},
    "access_token.issued": {"token_type": "personal", "principal": "carol", "name": "ci"},
    "access_token.revoked": {"token_type": "robot", "principal": "team+bot", "token_id": "t"},
    "pulls.counted": {"tags": {"prod": 3}, "digests": {A: 2}},
}


def row(kind: str, **extra: Any) -> HistoryRow:
    details = {**DETAILS.get(kind, {}), **extra.pop("details", {})}
    fields: dict[str, Any] = dict(
        position=7,
        occurred_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
        type=kind,
        actor="carol",
        client="127.0.0.1",
        repository="team/app"
        if kind.split(".")[0] in ("repository", "blob", "manifest", "tag", "pulls")
        else None,
        namespace="team",
        tag="prod" if kind.startswith("tag.") else None,
        digest=A if kind.startswith(("blob.", "manifest.")) else None,
        details=details,
    )
    return HistoryRow(**{**fields, **extra})


def text(parts: list[Part]) -> str:
    return "".join(p.text for p in parts)


def writer(language: str) -> Writer:
    return Writer(i18n.translations(language).gettext, language)


def test_every_kind_the_domain_records_has_a_name_and_a_sentence_of_its_own() -> None:
    recorded = kinds.recorded()
    assert {"tag.moved", "manifest.pushed", "login.failed", "namespace.created"} <= set(recorded)
    english, chinese = writer(i18n.ENGLISH), writer(i18n.CHINESE)
    for kind in recorded:
        assert kinds.label(english._, kind) != kind, f"give {kind} a name in api.web.history.kinds"
        said = text(english.sentence(row(kind)))
        assert not said.startswith("recorded a"), f"give {kind} a sentence in sentences.py"
        assert text(chinese.sentence(row(kind))) != said, kind


def test_what_the_sentences_say() -> None:
    en = writer(i18n.ENGLISH)
    assert text(en.sentence(row("tag.moved"))) == (
        "moved tag team/app:prod from sha256:ab12ab12ab12… to sha256:cd34cd34cd34…"
    )
    created = en.sentence(row("tag.moved", details={"from_digest": None}))
    assert text(created) == "created tag team/app:prod at sha256:cd34cd34cd34…"
    assert created[-1] == Part("sha256:cd34cd34cd34…", code=True, title=B)
    assert text(en.sentence(row("blob.linked"))) == (
        "added blob sha256:ab12ab12ab12… (1.5 KiB) to team/app"
    )
    assert text(en.sentence(row("login.succeeded"))) == "signed in (web)"
    assert text(en.sentence(row("login.failed"))) == (
        "sign-in as carol failed (docker): wrong username or password"
    )
    assert text(en.sentence(row("token.revoked"))) == "signed out"
    assert text(en.sentence(row("token.revoked", actor="admin"))) == "ended a session of carol"
    assert text(en.sentence(row("pulls.counted"))) == "counted pulls of team/app: 5"
    index = row(
        "manifest.pushed", details={"media_type": "application/vnd.oci.image.index.v1+json"}
    )
    assert text(en.sentence(index)).startswith("pushed image index sha256:ab12")
    artifact = row("manifest.pushed", details={"artifact_type": "application/vnd.example+json"})
    assert "pushed artifact" in text(en.sentence(artifact))
    image = row(
        "manifest.pushed", details={"artifact_type": "application/vnd.oci.image.config.v1+json"}
    )
    assert text(en.sentence(image)).startswith("pushed manifest")
    zh = writer(i18n.CHINESE)
    assert text(zh.sentence(row("tag.moved"))) == (
        "将标签 team/app:prod 从 sha256:ab12ab12ab12… 移到 sha256:cd34cd34cd34…"
    )
    assert text(zh.sentence(row("login.succeeded"))) == "登录（网页）"


def test_a_kind_added_later_still_says_something() -> None:
    en, zh = writer(i18n.ENGLISH), writer(i18n.CHINESE)
    future = row("scan.completed", repository="team/app", details={"critical": 2})
    assert text(en.sentence(future)) == "recorded a scan.completed event of team/app"
    assert text(zh.sentence(future)) == "记录了 team/app 的 scan.completed 事件"
    alone = row("backup.done", repository=None)
    assert text(en.sentence(alone)) == "recorded a backup.done event"
    assert kinds.label(en._, "backup.done") == "backup.done"
    # an event missing fields its kind usually has still gets its sentence
    assert text(en.sentence(row("tag.deleted", details={"from_digest": None}))).startswith(
        "deleted tag team/app:prod"
    )
    assert text(en.sentence(row("user.registered", details={"username": None}))) != ""


def test_compose_puts_each_part_where_the_translation_wants_it() -> None:
    parts = compose("{b} then {a}!", a=Part("A", code=True), b="b")
    assert parts == [Part("b then "), Part("A", code=True), Part("!")]
    assert compose("{missing} stays", a="x") == [Part("{missing} stays")]


@pytest.mark.parametrize(
    "given, expected",
    [
        ("2026-12-07T09:30", datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
        ("2026-12-07T09:30:15", datetime(2026, 12, 7, 9, 30, 15, tzinfo=UTC)),
        ("2026-12-07 09:30", datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
        ("2026-12-07", datetime(2026, 12, 7, tzinfo=UTC)),
        ("2026-12-07T17:30+08:00", datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
        ("2026-12-07T09:30Z", datetime(2026, 12, 7, 9, 30, tzinfo=UTC)),
    ],
)
def test_the_form_reads_times_as_utc(given: str, expected: datetime) -> None:
    assert asking.moment(given) == expected


def test_the_form_names_what_is_wrong() -> None:
    _ = i18n.translations(i18n.ENGLISH).gettext
    asked = asking.filters(
        {"type": "no.such", "since": "yesterday", "until": "2026-12-07T09:30", "actor": "x" * 256},
        _,
    )
    assert set(asked.problems) == {"type", "since", "actor"}
    assert asked.until == datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
    fine = asking.filters(
        {"actor": " bob ", "type": "tag.moved", "since": "2026-12-07T09:30:15"}, _
    )
    assert fine.problems == {}
    assert fine.values == {
        "actor": "bob",
        "type": "tag.moved",
        "repository": None,
        "namespace": None,
    }
    assert fine.form["since"] == "2026-12-07T09:30:15"
    zoned = asking.filters({"since": "2026-12-07T17:30+08:00"}, _)
    assert zoned.form["since"] == "2026-12-07T09:30"  # shown as the UTC the form speaks


@pytest.mark.parametrize(
    "query",
    [
        {"before": "x"},
        {"after": "-1"},
        {"before": "1", "after": "2"},
        {"limit": "0"},
        {"limit": "501"},
    ],
)
def test_a_broken_page_link_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(RegistryError) as refused:
        asking.cursor(query, i18n.translations(i18n.ENGLISH).gettext)
    assert refused.value.status == 400


@given(st.text(max_size=60))
def test_any_time_text_is_a_time_or_a_problem(given_text: str) -> None:
    asked = asking.filters({"since": given_text}, i18n.translations(i18n.ENGLISH).gettext)
    assert ("since" in asked.problems) or asked.since is None or asked.since.tzinfo is not None


def test_a_time_in_another_zone_is_the_same_moment() -> None:
    moment = datetime(2026, 12, 7, 17, 30, tzinfo=timezone(timedelta(hours=8)))
    assert asking.local_input(moment) == "2026-12-07T09:30"
