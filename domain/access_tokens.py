"""Personal access tokens and robot accounts: secrets for `docker login` that are limited to
some namespaces and actions, expire, and can be revoked.

- A personal access token belongs to a user: `docker login -u alice -p cyp_pat_…`. It gives
  at most what its user may do (their roles, as they are when it is used), further limited to
  the namespaces and actions it was issued for (`{"*": …}`: any namespace).
- A robot belongs to one namespace and is its own principal, named `robot$<namespace>+<name>`
  (as in Harbor): `docker login -u 'robot$org+ci' -p cyp_rbt_…`. It may do exactly the actions
  it was created with, in its namespace only. A revoked robot's name may be taken again (a
  new robot with a new secret: `Reissued`), e.g. in a namespace re-created after a deletion.

The secret is shown once, when issued; the event keeps only its SHA-256 (a random 256-bit
secret needs no slow hash — a slow one would cost every `/token` call) and names that field in
`secret_fields`, so neither the history view nor NATS carries it. An `AccessToken` aggregate
is addressed by its id (a robot's id is its name, so a robot name is taken once).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import RegistryError
from domain.ids import aggregate_id
from domain.namespaces import is_valid_namespace
from domain.policy import REPOSITORY_ACTIONS

PERSONAL, ROBOT = "personal", "robot"
PAT_PREFIX, ROBOT_SECRET_PREFIX, ROBOT_PREFIX = "cyp_pat_", "cyp_rbt_", "robot$"
ANY_NAMESPACE = "*"
MAX_DAYS = 3650
_LABEL_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_ID_RE = re.compile(r"[a-f0-9]{16}")
_MAX_LABEL, _MAX_DESCRIPTION, _MAX_SCOPES = 64, 512, 64


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(secret: str, expected_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), expected_hash)


def robot_name(namespace: str, name: str) -> str:
    return f"{ROBOT_PREFIX}{namespace}+{name}"


def is_robot_name(username: str) -> bool:
    return isinstance(username, str) and username.startswith(ROBOT_PREFIX)


def parse_robot_name(username: str) -> tuple[str, str] | None:
    """(namespace, name) of `robot$<namespace>+<name>`, None if it is not one."""
    if not is_robot_name(username):
        return None
    namespace, plus, name = username[len(ROBOT_PREFIX) :].partition("+")
    if not plus or not is_valid_namespace(namespace) or not _is_label(name):
        return None
    return namespace, name


def pat_id(secret: str) -> str | None:
    """The token id inside a personal access token (`cyp_pat_<id>_<random>`), if it is one."""
    if not isinstance(secret, str) or not secret.startswith(PAT_PREFIX):
        return None
    token_id = secret[len(PAT_PREFIX) : len(PAT_PREFIX) + 16]
    rest = secret[len(PAT_PREFIX) + 16 : len(PAT_PREFIX) + 17]
    return token_id if _ID_RE.fullmatch(token_id) and rest == "_" else None


def _is_label(name: str) -> bool:
    return isinstance(name, str) and len(name) <= _MAX_LABEL and bool(_LABEL_RE.fullmatch(name))


def _invalid(field: str, message: str) -> RegistryError:
    return RegistryError("INVALID_INPUT", message, {"field": field})


def check_label(name: str, field: str = "name") -> str:
    if not _is_label(name):
        raise _invalid(
            field,
            f"a name is 1 to {_MAX_LABEL} lowercase letters and digits, separated by single"
            " '.', '_' or '-'",
        )
    return name


def check_actions(actions: Any, field: str = "actions") -> tuple[str, ...]:
    if (
        not isinstance(actions, list | tuple)
        or not actions
        or any(a not in REPOSITORY_ACTIONS for a in actions)
    ):
        raise _invalid(field, f"actions is a non-empty list of {', '.join(REPOSITORY_ACTIONS)}")
    return tuple(a for a in REPOSITORY_ACTIONS if a in actions)


def check_scopes(scopes: Any) -> dict[str, tuple[str, ...]]:
    """`[{"namespace": "org" | "*", "actions": [...]}, ...]` as namespace -> actions; "*"
    (every namespace the user may use) stands alone."""
    if not isinstance(scopes, list) or not scopes or len(scopes) > _MAX_SCOPES:
        raise _invalid("scopes", f"scopes is a list of 1 to {_MAX_SCOPES} objects")
    found: dict[str, tuple[str, ...]] = {}
    for scope in scopes:
        if not isinstance(scope, dict) or set(scope) - {"namespace", "actions"}:
            raise _invalid("scopes", 'each scope is {"namespace": …, "actions": […]}')
        namespace = scope.get("namespace")
        if namespace != ANY_NAMESPACE and not is_valid_namespace(namespace):
            raise _invalid("scopes", f"invalid namespace {namespace!r}")
        if namespace in found:
            raise _invalid("scopes", f"namespace {namespace!r} given twice")
        found[namespace] = check_actions(scope.get("actions"), "scopes")
    if ANY_NAMESPACE in found and len(found) > 1:
        raise _invalid("scopes", 'the namespace "*" (any) stands alone')
    return found


def check_days(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise _invalid("expires_in_days", f"expires_in_days is a whole number, 1 to {MAX_DAYS}")
    return days


def check_description(text: Any) -> str:
    if not isinstance(text, str) or len(text) > _MAX_DESCRIPTION or "\x00" in text:
        raise _invalid("description", f"description is text of at most {_MAX_DESCRIPTION}")
    return text


class AccessToken(Aggregate):
    class Issued(Aggregate.Created):
        kind: ClassVar[str] = "access_token.issued"
        secret_fields: ClassVar[tuple[str, ...]] = ("secret_hash",)
        token_id: str
        token_type: str  # personal | robot
        principal: str  # the user a personal token belongs to, or the robot's name
        namespace: str  # a robot's namespace ("" for personal tokens)
        name: str
        description: str
        scopes: dict[str, list[str]]  # namespace (or "*") -> actions
        expires_at: int  # seconds since the epoch
        secret_hash: str
        actor: str
        client: str

    class Revoked(Aggregate.Event):
        kind: ClassVar[str] = "access_token.revoked"
        token_id: str
        token_type: str
        principal: str
        actor: str
        client: str

        def apply(self, aggregate: AccessToken) -> None:
            aggregate.revoked = True

    class Reissued(Aggregate.Event):
        """A revoked robot's name taken again (in its namespace, or in a namespace of the
        same name created after the old one was deleted): a new robot, a new secret."""

        kind: ClassVar[str] = "access_token.issued"
        secret_fields: ClassVar[tuple[str, ...]] = ("secret_hash",)
        token_id: str
        token_type: str
        principal: str
        namespace: str
        name: str
        description: str
        scopes: dict[str, list[str]]
        expires_at: int
        secret_hash: str
        actor: str
        client: str

        def apply(self, aggregate: AccessToken) -> None:
            aggregate.revoked = False

    def __init__(self, token_id: str, token_type: str, principal: str, **_: Any) -> None:
        self.token_id = token_id
        self.token_type = token_type
        self.principal = principal
        self.revoked = False

    @staticmethod
    def create_id(token_id: str) -> UUID:
        return aggregate_id("access_token", token_id)

    def revoke(self, actor: str, client: str) -> None:
        self.trigger_event(
            self.Revoked,
            token_id=self.token_id,
            token_type=self.token_type,
            principal=self.principal,
            actor=actor,
            client=client,
        )


def new_personal_secret() -> tuple[str, str]:
    """(token id, secret) of a new personal access token."""
    token_id = secrets.token_hex(8)
    return token_id, f"{PAT_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"


def new_robot_secret() -> str:
    return ROBOT_SECRET_PREFIX + secrets.token_urlsafe(32)
