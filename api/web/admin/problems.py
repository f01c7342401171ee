"""What a refused form of the administration pages says, in the reader's language.

The /api functions the pages call refuse bad input with a RegistryError whose message is
English for API clients; a page shows the form again with one of these sentences instead,
and the error's own status (400, 404, 409). Refusals that leave no form to show again (not
allowed, no such namespace) are not input problems: they become the error page."""

from __future__ import annotations

from typing import Any

from litestar import Request

from api.manage.users import LastAdminStays
from api.web.templates import gettext
from domain.errors import RegistryError
from domain.namespaces import LastOwnerStays

# Codes of refusals caused by what was typed into the form.
INPUT_ERRORS = frozenset(
    {
        "INVALID_INPUT",
        "USER_EXISTS",
        "USER_UNKNOWN",
        "NAMESPACE_EXISTS",
        "MEMBER_UNKNOWN",
        "TOKEN_EXISTS",
    }
)


def is_input_error(exc: RegistryError) -> bool:
    return exc.code in INPUT_ERRORS


def field_of(exc: RegistryError) -> str | None:
    return exc.detail.get("field") if isinstance(exc.detail, dict) else None


def problem_of(
    request: Request[Any, Any, Any], exc: RegistryError, fields: dict[str, str] | None = None
) -> str:
    """The sentence for `exc`; `fields`: the page's own sentence per refused field."""
    _ = gettext(request)
    if isinstance(exc, LastAdminStays):
        return _(
            "The last enabled system administrator stays one: make another user an"
            " administrator first."
        )
    if isinstance(exc, LastOwnerStays):
        return _("A namespace keeps at least one owner: make another member an owner first.")
    field = field_of(exc)
    if exc.code == "INVALID_INPUT" and fields and field in fields:
        return fields[field]
    common = {
        "USER_EXISTS": _("A user of that name exists already."),
        "USER_UNKNOWN": _("There is no user of that name."),
        "NAMESPACE_EXISTS": _("That name is taken by a namespace or a user."),
        "MEMBER_UNKNOWN": _("That user is not a member of the namespace."),
        "TOKEN_EXISTS": _("A robot of that name exists in this namespace."),
    }
    if exc.code == "INVALID_INPUT" and field == "role":
        return _("Choose one of the roles offered.")
    return common.get(exc.code, _("That did not work: {reason}").format(reason=exc.message))


def done_of(request: Request[Any, Any, Any], messages: dict[str, str]) -> str | None:
    """The line confirming what the last form did (`?done=<key>` after its redirect)."""
    return messages.get(request.query_params.get("done", ""))
