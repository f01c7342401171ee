"""Identity: users, their role, password hash and whether they may sign in.

A `User` aggregate is addressed by its name (`uuid5` of `user:<name>`), so registering the
same name twice — two replicas creating the first admin at once — is an optimistic-concurrency
conflict on one aggregate: the retry finds the user and the second attempt changes nothing.

Events that carry a password hash name it in `secret_fields`: the hash is stored in the event
(the event log is the truth, and the users view is rebuilt from it) but never leaves it —
`domain.documents.event_fields` drops secret fields, so neither the history view nor the
events published on NATS carry it.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from domain.caller import ACTOR_NAMES, ANONYMOUS_ACTOR
from domain.errors import RegistryError, check_one_of
from domain.ids import aggregate_id

# Usernames become namespace names (`alice/app`): one path component of a repository name,
# lowercase, separators only between alphanumerics.
USERNAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
USERNAME_MIN, USERNAME_MAX = 2, 64
# Nobody may take the actors' names (domain.caller: a user of such a name would be taken for
# them), nor `library`, the root namespace (`myapp` is `library/myapp`): nobody's personal one.
RESERVED_USERNAMES = frozenset({"library", *ACTOR_NAMES})
ROLES = ("admin", "user")


def is_valid_username(name: str) -> bool:
    return (
        isinstance(name, str)
        and USERNAME_MIN <= len(name) <= USERNAME_MAX
        and USERNAME_RE.fullmatch(name) is not None
        and name not in RESERVED_USERNAMES
    )


def check_username(name: str) -> str:
    if not is_valid_username(name):
        if name in RESERVED_USERNAMES:
            message = f"the name {name!r} is reserved"
        else:
            message = (
                f"a username is {USERNAME_MIN} to {USERNAME_MAX} lowercase letters and digits,"
                " separated by single '.', '_' or '-'"
            )
        raise RegistryError("INVALID_INPUT", message, {"field": "username"})
    return name


def check_role(role: str) -> str:
    return check_one_of(role, ROLES, "role")


class User(Aggregate):
    class Registered(Aggregate.Created):
        kind: ClassVar[str] = "user.registered"
        secret_fields: ClassVar[tuple[str, ...]] = ("password_hash",)
        username: str
        role: str
        password_hash: str
        actor: str
        client: str

    class PasswordChanged(Aggregate.Event):
        kind: ClassVar[str] = "user.password_changed"
        secret_fields: ClassVar[tuple[str, ...]] = ("password_hash",)
        username: str
        password_hash: str
        actor: str
        client: str

        def apply(self, aggregate: User) -> None:
            aggregate.password_hash = self.password_hash

    class RoleChanged(Aggregate.Event):
        kind: ClassVar[str] = "user.role_changed"
        username: str
        from_role: str
        role: str
        actor: str
        client: str

        def apply(self, aggregate: User) -> None:
            aggregate.role = self.role

    class Disabled(Aggregate.Event):
        kind: ClassVar[str] = "user.disabled"
        username: str
        actor: str
        client: str

        def apply(self, aggregate: User) -> None:
            aggregate.disabled = True

    class Enabled(Aggregate.Event):
        kind: ClassVar[str] = "user.enabled"
        username: str
        actor: str
        client: str

        def apply(self, aggregate: User) -> None:
            aggregate.disabled = False

    class Unlocked(Aggregate.Event):
        """An admin lifted the sign-in throttle of this user (and of `address`, if given)."""

        kind: ClassVar[str] = "user.unlocked"
        username: str
        address: str
        actor: str
        client: str

        def apply(self, aggregate: User) -> None:
            pass  # the throttle lives in the login_failures view, not in the user

    def __init__(self, username: str, role: str, password_hash: str, **_: Any) -> None:
        self.username = username
        self.role = role
        self.password_hash = password_hash
        self.disabled = False

    @staticmethod
    def create_id(username: str) -> UUID:
        return aggregate_id("user", username)

    @classmethod
    def register(
        cls, username: str, role: str, password_hash: str, actor: str, client: str
    ) -> User:
        return cls._create(
            cls.Registered,
            id=cls.create_id(username),
            username=username,
            role=role,
            password_hash=password_hash,
            actor=actor,
            client=client,
        )

    def change_password(self, password_hash: str, actor: str, client: str) -> None:
        self.trigger_event(
            self.PasswordChanged,
            username=self.username,
            password_hash=password_hash,
            actor=actor,
            client=client,
        )

    def change_role(self, role: str, actor: str, client: str) -> None:
        self.trigger_event(
            self.RoleChanged,
            username=self.username,
            from_role=self.role,
            role=role,
            actor=actor,
            client=client,
        )

    def disable(self, actor: str, client: str) -> None:
        self.trigger_event(self.Disabled, username=self.username, actor=actor, client=client)

    def enable(self, actor: str, client: str) -> None:
        self.trigger_event(self.Enabled, username=self.username, actor=actor, client=client)

    def unlock(self, address: str, actor: str, client: str) -> None:
        self.trigger_event(
            self.Unlocked, username=self.username, address=address, actor=actor, client=client
        )


# What a login event may carry of what the client sent (a username, a user agent).
_MAX_GIVEN = 256


def _printable(given: str | None) -> str:
    """What a client sent, cut short and without NULs (which no JSON view can hold)."""
    return (given or "")[:_MAX_GIVEN].replace("\x00", "\ufffd")


def login_username(given: str | None) -> str:
    """The username a login event records for what the client sent (the throttle's key)."""
    return _printable(given)


class Login(Aggregate):
    """One sign-in attempt, good or bad: its own aggregate (a random id), so attempts never
    conflict with each other or with the user. Never carries the password."""

    class Succeeded(Aggregate.Created):
        kind: ClassVar[str] = "login.succeeded"
        username: str
        method: str
        user_agent: str
        actor: str
        client: str
        # the personal access token or robot signed in with ("": the password; older
        # events have none)
        credential: str = ""

    class Failed(Aggregate.Created):
        kind: ClassVar[str] = "login.failed"
        username: str
        method: str
        reason: str
        user_agent: str
        actor: str
        client: str
        credential: str = ""

    def __init__(self, username: str, method: str, **_: Any) -> None:
        self.username = username
        self.method = method

    @classmethod
    def attempt(
        cls,
        username: str,
        method: str,
        client: str,
        user_agent: str,
        failure: str | None = None,
        credential: str = "",
    ) -> Login:
        username = _printable(username)
        fields: dict[str, Any] = {
            "id": uuid4(),
            "username": username,
            "method": method,
            "user_agent": _printable(user_agent),
            "client": client,
            "credential": _printable(credential),
        }
        if failure is None:
            return cls._create(cls.Succeeded, actor=username, **fields)
        return cls._create(cls.Failed, actor=ANONYMOUS_ACTOR, reason=failure, **fields)


class RevokedToken(Aggregate):
    """A signed-out /api token, addressed by its `jti`: revoking it twice is one conflict-free
    no-op. Carries the token's id, subject and expiry, never the token itself."""

    class Revoked(Aggregate.Created):
        kind: ClassVar[str] = "token.revoked"
        jti: str
        subject: str
        expires: int
        actor: str
        client: str

    def __init__(self, jti: str, subject: str, expires: int, **_: Any) -> None:
        self.jti = jti
        self.subject = subject
        self.expires = expires

    @staticmethod
    def create_id(jti: str) -> UUID:
        return aggregate_id("token", jti)

    @classmethod
    def revoke(cls, jti: str, subject: str, expires: int, actor: str, client: str) -> RevokedToken:
        return cls._create(
            cls.Revoked,
            id=cls.create_id(jti),
            jti=jti,
            subject=subject,
            expires=expires,
            actor=actor,
            client=client,
        )
