"""What a history page is asked for, read from its query string: the filter form's fields
(a wrong one is a problem shown on the form, with status 400), and the page cursor and size
(a wrong one is a 400 page: only a hand-made link has one)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlencode

from api.web.history import kinds
from domain.errors import RegistryError

TEXT_FIELDS = ("actor", "repository", "namespace")
TIME_FIELDS = ("since", "until")
FIELDS = ("actor", "type", "repository", "namespace", *TIME_FIELDS)
MAX_TEXT = 255  # as /api/history's parameters
LIMIT, MAX_LIMIT = 50, 500


class Filters(NamedTuple):
    """The form as asked (to show it again) and what it means."""

    form: dict[str, str]  # field -> the text asked ("" for none)
    problems: dict[str, str]  # field -> what is wrong with it
    values: dict[str, str | None]  # actor, type, repository, namespace (None: any)
    since: datetime | None
    until: datetime | None


class Cursor(NamedTuple):
    before: int | None  # older than this position
    after: int | None  # newer than this position
    limit: int


def moment(text: str) -> datetime:
    """A time the form gives (`2026-12-07T09:30`, seconds optional, a date alone): UTC
    unless it names its zone. ValueError if it is none."""
    if len(text) > 40:
        raise ValueError(text)
    found = datetime.fromisoformat(text)
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)


def local_input(moment: datetime | None) -> str:
    """A time as a datetime-local input holds it (UTC, no zone)."""
    if moment is None:
        return ""
    spec = "minutes" if moment.second == 0 and moment.microsecond == 0 else "seconds"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=spec)


def filters(query: Mapping[str, str], _: Callable[[str], str]) -> Filters:
    form = {field: query.get(field, "").strip() for field in FIELDS}
    problems: dict[str, str] = {}
    for field in TEXT_FIELDS:
        if len(form[field]) > MAX_TEXT or "\x00" in form[field]:
            problems[field] = _("At most 255 characters.")
    if form["type"] and form["type"] not in kinds.recorded():
        problems["type"] = _("There is no event type of that name.")
    times: dict[str, datetime | None] = {}
    for field in TIME_FIELDS:
        times[field] = None
        if form[field]:
            try:
                times[field] = moment(form[field])
            except ValueError:
                problems[field] = _("Enter a date and time such as 2026-12-07 09:30 (UTC).")
            else:
                form[field] = local_input(times[field])
    values = {f: (form[f] or None) for f in ("actor", "type", "repository", "namespace")}
    return Filters(form, problems, values, times["since"], times["until"])


def _number(text: str | None) -> int | None:
    """A whole number as a link gives it (None: not given); ValueError if it is none."""
    if text is None or text == "":
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ValueError(text)
    return int(text)


def cursor(query: Mapping[str, str], _: Callable[[str], str]) -> Cursor:
    try:
        before, after = _number(query.get("before")), _number(query.get("after"))
    except ValueError:
        raise RegistryError(
            "INVALID_INPUT", _("This link to a page of events is broken.")
        ) from None
    if before is not None and after is not None:
        raise RegistryError("INVALID_INPUT", _("This link to a page of events is broken."))
    try:
        limit = _number(query.get("limit"))
    except ValueError:
        limit = 0
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise RegistryError(
            "INVALID_INPUT", _("Rows per page must be 1 to {limit}.").format(limit=MAX_LIMIT)
        )
    return Cursor(before, after, limit or LIMIT)


def link(path: str, keep: Mapping[str, str], **cursor: int | None) -> str:
    """`path` with the filters kept (those asked) and a cursor."""
    query = {k: v for k, v in keep.items() if v}
    query.update({k: str(v) for k, v in cursor.items() if v is not None})
    return path + ("?" + urlencode(query) if query else "")
