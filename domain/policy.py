"""Who may do what: the one pure function that turns requested scopes into granted ones.

A scope is the distribution token specification's `type:name:actions` (`repository:alice/app:
pull,push`, `registry:catalog:*`). Namespaces and roles per namespace come later; for now:

- system admins get everything they ask for;
- a user gets pull, push and delete on their personal namespace: the repository named after
  them and every repository under `<username>/`;
- everybody signed in gets `registry:catalog:*` (the catalog lists only what they may pull);
- nobody else gets anything (anonymous callers get a token without access, which the
  registry does not accept for anything, not even the `GET /v2/` ping).

The granted scopes are exactly the granted subset of the requested ones: never an action or
a repository that was not asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

PULL, PUSH, DELETE = "pull", "push", "delete"
REPOSITORY_ACTIONS = (PULL, PUSH, DELETE)
ADMIN_ROLE = "admin"
CATALOG = ("registry", "catalog")
MAX_SCOPES = 64  # a token request asking for more is cut here
_MAX_SCOPE_LENGTH = 1024


class Scope(NamedTuple):
    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(text: str) -> Scope | None:
    """`type:name:actions` (the name may hold a `:`, e.g. `registry:catalog:*`); None if
    malformed. Actions are de-duplicated, their order kept."""
    if not isinstance(text, str) or len(text) > _MAX_SCOPE_LENGTH:
        return None
    first, last = text.find(":"), text.rfind(":")
    if first <= 0 or last <= first + 1:
        return None
    kind, name, actions = text[:first], text[first + 1 : last], text[last + 1 :]
    wanted = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    if not wanted:
        return None
    return Scope(kind, name, wanted)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Scopes from `scope` parameters (repeated, or several in one separated by spaces)."""
    found: list[Scope] = []
    for value in values:
        for part in value.split():
            scope = parse_scope(part)
            if scope is not None and len(found) < MAX_SCOPES:
                found.append(scope)
    return found


def owns_namespace(username: str, repository: str) -> bool:
    """`repository` is in the personal namespace of `username`."""
    return bool(username) and (repository == username or repository.startswith(username + "/"))


def _allowed_actions(username: str | None, role: str | None, scope: Scope) -> tuple[str, ...]:
    if not username:
        return ()
    if role == ADMIN_ROLE:
        return scope.actions
    if (scope.type, scope.name) == CATALOG:
        return tuple(a for a in scope.actions if a == "*")
    if scope.type == "repository" and owns_namespace(username, scope.name):
        return tuple(a for a in scope.actions if a in REPOSITORY_ACTIONS)
    return ()


def granted(username: str | None, role: str | None, requested: Iterable[Scope]) -> list[Scope]:
    """The subset of `requested` that `username` (with system role `role`; None: anonymous)
    may have: each scope with only its permitted actions, scopes with none left out."""
    result: list[Scope] = []
    for scope in requested:
        actions = _allowed_actions(username, role, scope)
        if actions:
            result.append(Scope(scope.type, scope.name, actions))
    return result


def may_pull(username: str | None, role: str | None, repository: str) -> bool:
    """Whether the catalog shows `repository` to this caller."""
    return bool(granted(username, role, [Scope("repository", repository, (PULL,))]))


def pull_namespaces(username: str | None, role: str | None) -> list[str] | None:
    """The namespaces whose repositories this caller may pull: None means all of them."""
    if not username:
        return []
    if role == ADMIN_ROLE:
        return None
    return [username]
