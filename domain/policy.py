"""Who may do what: the one pure function that turns requested scopes into granted ones.

A scope is the distribution token specification's `type:name:actions` (`repository:alice/app:
pull,push`, `registry:catalog:*`). A repository belongs to a namespace (`domain.names.
namespace_of`); what a caller may do there follows from (`domain.namespaces`):

- system admins may do everything, everywhere (a push creates a missing namespace);
- members by their role: owner and maintainer pull, push, delete; developer pull, push;
  reader pull;
- every signed-in caller may pull from a public namespace; anonymous callers only where the
  operator turned anonymous pull on (otherwise they get a token without access, which the
  registry does not accept for anything, not even the `GET /v2/` ping);
- everybody signed in gets `registry:catalog:*` (the catalog lists only what they may pull);
- a personal access token or a robot is further limited to the namespaces and actions it
  was issued for (`Principal.limits`; a robot has no rights of its own beyond them).

The granted scopes are exactly the granted subset of the requested ones: never an action or
a repository that was not asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from domain.names import namespace_of

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


class NamespaceFacts(NamedTuple):
    """What the policy needs of one namespace for one caller."""

    public: bool
    role: str | None  # the caller's member role there; None: not a member


class Principal(NamedTuple):
    """Who asks: a user ("" for anonymous) with a system role, or a robot; `limits` maps
    namespaces (or "*": every namespace) to the actions a token or robot is limited to
    (None: no limit, a password sign-in)."""

    username: str
    role: str | None
    limits: Mapping[str, tuple[str, ...]] | None = None


ANONYMOUS = Principal("", None)
ROBOT_ROLE = "robot"
ROLE_ACTIONS: dict[str, tuple[str, ...]] = {
    "owner": REPOSITORY_ACTIONS,
    "maintainer": REPOSITORY_ACTIONS,
    "developer": (PULL, PUSH),
    "reader": (PULL,),
}


def limit_of(principal: Principal, namespace: str) -> tuple[str, ...] | None:
    """The actions a token or robot is limited to in `namespace` (None: no limit)."""
    if principal.limits is None:
        return None
    return principal.limits.get(namespace, principal.limits.get("*", ()))


def repository_actions(
    principal: Principal, namespace: str, facts: NamespaceFacts | None, anonymous_pull: bool
) -> tuple[str, ...]:
    """Every action `principal` may take on the repositories of `namespace`."""
    if not principal.username:
        public = facts is not None and facts.public
        return (PULL,) if public and anonymous_pull else ()
    if principal.role in (ADMIN_ROLE, ROBOT_ROLE):
        allowed: set[str] = set(REPOSITORY_ACTIONS)
    else:
        allowed = set(ROLE_ACTIONS.get(facts.role or "", ())) if facts else set()
        if facts is not None and facts.public:
            allowed.add(PULL)
    limit = limit_of(principal, namespace)
    if limit is not None:
        allowed &= set(limit)
    return tuple(a for a in REPOSITORY_ACTIONS if a in allowed)


def namespaces_of(requested: Iterable[Scope]) -> set[str]:
    """The namespaces whose facts `granted` needs for these scopes."""
    return {namespace_of(s.name) for s in requested if s.type == "repository"}


def granted(
    principal: Principal,
    facts: Mapping[str, NamespaceFacts],
    requested: Iterable[Scope],
    anonymous_pull: bool = False,
) -> list[Scope]:
    """The subset of `requested` that `principal` may have (`facts`: of the namespaces
    involved that exist): each scope with only its permitted actions, scopes with none left
    out."""
    result: list[Scope] = []
    for scope in requested:
        if (scope.type, scope.name) == CATALOG:
            actions = tuple(a for a in scope.actions if a == "*") if principal.username else ()
        elif scope.type == "repository":
            namespace = namespace_of(scope.name)
            allowed = repository_actions(principal, namespace, facts.get(namespace), anonymous_pull)
            actions = tuple(a for a in scope.actions if a in allowed)
        else:
            actions = ()
        if actions:
            result.append(Scope(scope.type, scope.name, actions))
    return result


def visible_namespaces(principal: Principal, readable: Iterable[str] | None) -> list[str] | None:
    """The namespaces whose repositories `principal` may pull, given those its user may
    read (`readable`; None: all, a system admin's): None means all of them."""
    limits = principal.limits
    if limits is not None and "*" not in limits:
        keep = {ns for ns, actions in limits.items() if PULL in actions}
        return sorted(keep if readable is None else keep.intersection(readable))
    if limits is not None and PULL not in limits["*"]:
        return []
    return None if readable is None else sorted(readable)
