"""Namespaces: who may pull, push and delete which repositories.

`org/app` belongs to the namespace `org`; names without a slash belong to `library`
(`domain.names.namespace_of`). Every user owns a personal namespace named after them, created
with the user. Members have one role per namespace:

- owner: pull, push, delete, and manage the namespace (members, visibility, robots);
- maintainer: pull, push, delete;
- developer: pull, push;
- reader: pull.

A public namespace lets every signed-in user pull (and anonymous callers too, only where the
operator turned anonymous pull on). A `Namespace` aggregate is addressed by its name, so two
creations of one name conflict and the retry finds it taken. A namespace that does not exist
yet is created by the first push into it — only system admins may push there.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import RegistryError, check_one_of
from domain.ids import aggregate_id

OWNER, MAINTAINER, DEVELOPER, READER = "owner", "maintainer", "developer", "reader"
MEMBER_ROLES = (OWNER, MAINTAINER, DEVELOPER, READER)
# One path component of a repository name (the distribution spec's grammar), kept short.
NAMESPACE_RE = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
NAMESPACE_MAX = 64


def is_valid_namespace(name: str) -> bool:
    return (
        isinstance(name, str)
        and len(name) <= NAMESPACE_MAX
        and NAMESPACE_RE.fullmatch(name) is not None
    )


def check_namespace(name: str) -> str:
    if not is_valid_namespace(name):
        raise RegistryError(
            "INVALID_INPUT",
            f"a namespace is 1 to {NAMESPACE_MAX} lowercase letters and digits, separated by"
            " '.', '_', '__' or dashes",
            {"field": "name"},
        )
    return name


def check_member_role(role: str) -> str:
    return check_one_of(role, MEMBER_ROLES, "role")


class Namespace(Aggregate):
    class Created(Aggregate.Created):
        kind: ClassVar[str] = "namespace.created"
        name: str
        owner: str  # the first owner ("" for one a push created: admins only, then)
        personal: bool
        public: bool
        actor: str
        client: str

    class VisibilityChanged(Aggregate.Event):
        kind: ClassVar[str] = "namespace.visibility_changed"
        name: str
        public: bool
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.public = self.public

    class MemberAdded(Aggregate.Event):
        kind: ClassVar[str] = "namespace.member_added"
        name: str
        username: str
        role: str
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.members[self.username] = self.role

    class MemberChanged(Aggregate.Event):
        kind: ClassVar[str] = "namespace.member_changed"
        name: str
        username: str
        from_role: str
        role: str
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.members[self.username] = self.role

    class MemberRemoved(Aggregate.Event):
        kind: ClassVar[str] = "namespace.member_removed"
        name: str
        username: str
        role: str
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.members.pop(self.username, None)

    class Deleted(Aggregate.Event):
        """An empty organisation namespace removed: its members go with it."""

        kind: ClassVar[str] = "namespace.deleted"
        name: str
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.alive = False
            aggregate.members = {}

    class Recreated(Aggregate.Event):
        """A deleted namespace's name taken again: a new namespace, nothing of the old one."""

        kind: ClassVar[str] = "namespace.created"
        name: str
        owner: str
        personal: bool
        public: bool
        actor: str
        client: str

        def apply(self, aggregate: Namespace) -> None:
            aggregate.alive = True
            aggregate.personal, aggregate.public = self.personal, self.public
            aggregate.members = {self.owner: OWNER} if self.owner else {}

    def __init__(self, name: str, owner: str, personal: bool, public: bool, **_: Any) -> None:
        self.name = name
        self.personal = personal
        self.public = public
        self.alive = True
        self.members: dict[str, str] = {owner: OWNER} if owner else {}

    @staticmethod
    def create_id(name: str) -> UUID:
        return aggregate_id("namespace", name)

    @classmethod
    def open(
        cls, name: str, owner: str, personal: bool, public: bool, actor: str, client: str
    ) -> Namespace:
        return cls._create(
            cls.Created,
            id=cls.create_id(name),
            name=name,
            owner=owner,
            personal=personal,
            public=public,
            actor=actor,
            client=client,
        )

    def reopen(self, owner: str, personal: bool, public: bool, actor: str, client: str) -> None:
        self.trigger_event(
            self.Recreated,
            name=self.name,
            owner=owner,
            personal=personal,
            public=public,
            actor=actor,
            client=client,
        )

    def delete(self, actor: str, client: str) -> None:
        self.trigger_event(self.Deleted, name=self.name, actor=actor, client=client)

    def set_public(self, public: bool, actor: str, client: str) -> bool:
        if public == self.public:
            return False
        self.trigger_event(
            self.VisibilityChanged, name=self.name, public=public, actor=actor, client=client
        )
        return True

    def set_member(self, username: str, role: str, actor: str, client: str) -> bool:
        """Add `username` with `role`, or change their role; False if they had it."""
        before = self.members.get(username)
        if before == role:
            return False
        if before == OWNER:
            self._keep_an_owner(username)
        if before is None:
            self.trigger_event(
                self.MemberAdded,
                name=self.name,
                username=username,
                role=role,
                actor=actor,
                client=client,
            )
        else:
            self.trigger_event(
                self.MemberChanged,
                name=self.name,
                username=username,
                from_role=before,
                role=role,
                actor=actor,
                client=client,
            )
        return True

    def remove_member(self, username: str, actor: str, client: str) -> None:
        role = self.members.get(username)
        if role is None:
            raise RegistryError(
                "MEMBER_UNKNOWN", detail={"namespace": self.name, "username": username}
            )
        if role == OWNER:
            self._keep_an_owner(username)
        self.trigger_event(
            self.MemberRemoved,
            name=self.name,
            username=username,
            role=role,
            actor=actor,
            client=client,
        )

    def _keep_an_owner(self, leaving: str) -> None:
        if not any(r == OWNER and u != leaving for u, r in self.members.items()):
            raise LastOwnerStays(self.name, leaving)


class LastOwnerStays(RegistryError):
    """A namespace's last owner may be neither removed nor given another role."""

    def __init__(self, namespace: str, username: str) -> None:
        super().__init__(
            "INVALID_INPUT",
            "a namespace keeps at least one owner",
            {"namespace": namespace, "username": username},
            status=409,
        )
