"""The event types the domain records (what the type filter offers), and their names."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from eventsourcing.domain import DomainEvent

import domain.registry  # noqa: F401  (imports every aggregate, so every event class exists)

TAG_KINDS = ("tag.moved", "tag.deleted")  # a tag's timeline: created, moved, deleted


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@functools.cache
def recorded() -> tuple[str, ...]:
    """Every `kind` an event class of the domain names (a new event class joins itself)."""
    return tuple(
        sorted(
            {
                sub.__dict__["kind"]
                for sub in _subclasses(DomainEvent)
                if "kind" in sub.__dict__ and sub.__module__.startswith("domain.")
            }
        )
    )


def label(_: Callable[[str], str], kind: str) -> str:
    """A type's name for people (a type without one: the type itself)."""
    names = {
        "repository.created": _("Repository created"),
        "repository.deleted": _("Repository deleted"),
        "blob.linked": _("Blob added"),
        "blob.unlinked": _("Blob removed"),
        "manifest.pushed": _("Manifest pushed"),
        "manifest.deleted": _("Manifest deleted"),
        "tag.moved": _("Tag created or moved"),
        "tag.deleted": _("Tag deleted"),
        "user.registered": _("User registered"),
        "user.password_changed": _("Password changed"),
        "user.role_changed": _("Role changed"),
        "user.disabled": _("User disabled"),
        "user.enabled": _("User enabled"),
        "user.unlocked": _("Sign-in lock lifted"),
        "login.succeeded": _("Signed in"),
        "login.failed": _("Sign-in failed"),
        "token.revoked": _("Signed out"),
        "namespace.created": _("Namespace created"),
        "namespace.visibility_changed": _("Namespace visibility changed"),
        "namespace.member_added": _("Member added"),
        "namespace.member_changed": _("Member's role changed"),
        "namespace.member_removed": _("Member removed"),
        "namespace.deleted": _("Namespace deleted"),
        "access_token.issued": _("Access token issued"),
        "access_token.revoked": _("Access token revoked"),
        "pulls.counted": _("Pulls counted"),
    }
    return names.get(kind, kind)


def choices(_: Callable[[str], str]) -> list[tuple[str, str]]:
    """(type, name) of every recorded type, by name."""
    return sorted(((kind, label(_, kind)) for kind in recorded()), key=lambda c: c[1].lower())
