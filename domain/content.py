"""The registry's content: repositories, their manifests, tags and blob links. Small
aggregates addressed by natural names (`domain.ids`), so unrelated pushes never conflict.

Every event carries its identity fields (repository, tag, digest), the actor and the client
address: the event log is the audit log. `kind` is the event's stable name outside Python.
The first event of an aggregate is its creation event; re-creating after a delete uses the
sibling event of the same kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import aggregate_id


class Repository(Aggregate):
    class Created(Aggregate.Created):
        kind: ClassVar[str] = "repository.created"
        name: str
        actor: str
        client: str

    class Recreated(Aggregate.Event):
        kind: ClassVar[str] = "repository.created"
        name: str
        actor: str
        client: str

        def apply(self, aggregate: Repository) -> None:
            aggregate.alive = True

    class Deleted(Aggregate.Event):
        kind: ClassVar[str] = "repository.deleted"
        name: str
        actor: str
        client: str

        def apply(self, aggregate: Repository) -> None:
            aggregate.alive = False

    def __init__(self, name: str, actor: str, client: str) -> None:
        self.name = name
        self.alive = True

    @staticmethod
    def create_id(name: str) -> UUID:
        return aggregate_id("repo", name)

    @classmethod
    def create(cls, name: str, actor: str, client: str) -> Repository:
        return cls._create(
            cls.Created, id=cls.create_id(name), name=name, actor=actor, client=client
        )

    def recreate(self, actor: str, client: str) -> None:
        self.trigger_event(self.Recreated, name=self.name, actor=actor, client=client)

    def delete(self, actor: str, client: str) -> None:
        self.trigger_event(self.Deleted, name=self.name, actor=actor, client=client)


class BlobLink(Aggregate):
    """A blob made visible in one repository (the content lives in the blob store)."""

    class Linked(Aggregate.Created):
        kind: ClassVar[str] = "blob.linked"
        repository: str
        digest: str
        size: int
        actor: str
        client: str

    class Relinked(Aggregate.Event):
        kind: ClassVar[str] = "blob.linked"
        repository: str
        digest: str
        size: int
        actor: str
        client: str

        def apply(self, aggregate: BlobLink) -> None:
            aggregate.linked = True

    class Unlinked(Aggregate.Event):
        kind: ClassVar[str] = "blob.unlinked"
        repository: str
        digest: str
        actor: str
        client: str

        def apply(self, aggregate: BlobLink) -> None:
            aggregate.linked = False

    def __init__(self, repository: str, digest: str, size: int, actor: str, client: str) -> None:
        self.repository = repository
        self.digest = digest
        self.size = size
        self.linked = True

    @staticmethod
    def create_id(repository: str, digest: str) -> UUID:
        return aggregate_id("blob", repository, digest)

    @classmethod
    def create(cls, repository: str, digest: str, size: int, actor: str, client: str) -> BlobLink:
        return cls._create(
            cls.Linked,
            id=cls.create_id(repository, digest),
            repository=repository,
            digest=digest,
            size=size,
            actor=actor,
            client=client,
        )

    def relink(self, actor: str, client: str) -> None:
        self.trigger_event(
            self.Relinked,
            repository=self.repository,
            digest=self.digest,
            size=self.size,
            actor=actor,
            client=client,
        )

    def unlink(self, actor: str, client: str) -> None:
        self.trigger_event(
            self.Unlinked,
            repository=self.repository,
            digest=self.digest,
            actor=actor,
            client=client,
        )


class Manifest(Aggregate):
    class Pushed(Aggregate.Created):
        kind: ClassVar[str] = "manifest.pushed"
        repository: str
        digest: str
        size: int
        media_type: str
        config: dict[str, Any] | None
        layers: list[dict[str, Any]]
        manifests: list[dict[str, Any]]
        subject: str | None
        artifact_type: str | None
        annotations: dict[str, str]
        actor: str
        client: str

    class Repushed(Aggregate.Event):
        kind: ClassVar[str] = "manifest.pushed"
        repository: str
        digest: str
        size: int
        media_type: str
        config: dict[str, Any] | None
        layers: list[dict[str, Any]]
        manifests: list[dict[str, Any]]
        subject: str | None
        artifact_type: str | None
        annotations: dict[str, str]
        actor: str
        client: str

        def apply(self, aggregate: Manifest) -> None:
            aggregate.alive = True

    class Deleted(Aggregate.Event):
        kind: ClassVar[str] = "manifest.deleted"
        repository: str
        digest: str
        actor: str
        client: str

        def apply(self, aggregate: Manifest) -> None:
            aggregate.alive = False
            aggregate.deleted_on = self.timestamp

    def __init__(self, repository: str, digest: str, **_: Any) -> None:
        self.repository = repository
        self.digest = digest
        self.alive = True
        self.deleted_on: datetime | None = None  # when it was last deleted

    @staticmethod
    def create_id(repository: str, digest: str) -> UUID:
        return aggregate_id("manifest", repository, digest)

    @classmethod
    def create(cls, repository: str, digest: str, **fields: Any) -> Manifest:
        return cls._create(
            cls.Pushed,
            id=cls.create_id(repository, digest),
            repository=repository,
            digest=digest,
            **fields,
        )

    def repush(self, **fields: Any) -> None:
        self.trigger_event(self.Repushed, repository=self.repository, digest=self.digest, **fields)

    def delete(self, actor: str, client: str) -> None:
        self.trigger_event(
            self.Deleted, repository=self.repository, digest=self.digest, actor=actor, client=client
        )


class Tag(Aggregate):
    class Created(Aggregate.Created):
        kind: ClassVar[str] = "tag.moved"
        repository: str
        tag: str
        from_digest: str | None
        to_digest: str
        actor: str
        client: str

    class Moved(Aggregate.Event):
        kind: ClassVar[str] = "tag.moved"
        repository: str
        tag: str
        from_digest: str | None
        to_digest: str
        actor: str
        client: str

        def apply(self, aggregate: Tag) -> None:
            aggregate.digest = self.to_digest

    class Deleted(Aggregate.Event):
        kind: ClassVar[str] = "tag.deleted"
        repository: str
        tag: str
        from_digest: str
        actor: str
        client: str

        def apply(self, aggregate: Tag) -> None:
            aggregate.digest = None

    def __init__(
        self, repository: str, tag: str, from_digest: str | None, to_digest: str, **_: Any
    ) -> None:
        self.repository = repository
        self.tag = tag
        self.digest: str | None = to_digest

    @staticmethod
    def create_id(repository: str, tag: str) -> UUID:
        return aggregate_id("tag", repository, tag)

    @classmethod
    def create(cls, repository: str, tag: str, digest: str, actor: str, client: str) -> Tag:
        return cls._create(
            cls.Created,
            id=cls.create_id(repository, tag),
            repository=repository,
            tag=tag,
            from_digest=None,
            to_digest=digest,
            actor=actor,
            client=client,
        )

    def move(self, digest: str, actor: str, client: str) -> None:
        self.trigger_event(
            self.Moved,
            repository=self.repository,
            tag=self.tag,
            from_digest=self.digest,
            to_digest=digest,
            actor=actor,
            client=client,
        )

    def delete(self, actor: str, client: str) -> None:
        self.trigger_event(
            self.Deleted,
            repository=self.repository,
            tag=self.tag,
            from_digest=self.digest,
            actor=actor,
            client=client,
        )
