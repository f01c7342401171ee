"""The registry's content commands: linking blobs, pushing and deleting manifests, moving
and deleting tags, deleting repositories; and what the write side answers about them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.caller import Caller
from domain.commands.base import Commands
from domain.content import BlobLink, Manifest, Repository, Tag
from domain.errors import RegistryError
from domain.manifests import ManifestInfo


def _dangling(tag: Tag, manifest: Manifest | None) -> bool:
    """The tag points at a manifest that was deleted after the tag moved there.

    `delete_manifest` deletes the tags its caller listed (those the views knew of); a tag
    moved there while the views lagged is not listed, but the views drop it with the
    manifest. Such a tag no longer exists for clients: it can be neither deleted nor left
    unmoved by a push of the same manifest and tag.
    """
    deleted_on = getattr(manifest, "deleted_on", None)  # None: never deleted
    return (
        manifest is not None
        and deleted_on is not None
        and tag.digest == manifest.digest
        and deleted_on >= tag.modified_on
    )


class ContentCommands(Commands):
    """The content commands of the `Registry` application (mixed into it). Each returns the
    notification position of its last event, or None when nothing had to change. Commands
    on one repository take turns in this process (`Commands._command`)."""

    def _live_repository(self, name: str, repo: Repository | None, caller: Caller) -> list[Any]:
        """The aggregates that have to change for the repository `name` (as loaded: `repo`)
        to exist: itself, and its namespace if that does not exist yet."""
        if repo is None:
            return [self._missing_namespace(name, caller), Repository.create(name, *caller)]
        if not repo.alive:
            # Its namespace may have been deleted meanwhile (it was empty): it comes back too.
            repo.recreate(*caller)
            return [self._missing_namespace(name, caller), repo]
        return []

    # -- queries on the write side ------------------------------------------------------------
    def _visible_digest(self, tag: Tag) -> str | None:
        if tag.digest is None:
            return None
        return (
            None if _dangling(tag, self._get(Manifest, tag.repository, tag.digest)) else tag.digest
        )

    def tag_digest(self, repository: str, tag: str) -> str | None:
        agg = self._get(Tag, repository, tag)
        return self._visible_digest(agg) if agg else None

    def manifest_exists(self, repository: str, digest: str) -> bool:
        agg = self._get(Manifest, repository, digest)
        return bool(agg and agg.alive)

    def blob_linked(self, repository: str, digest: str) -> bool:
        agg = self._get(BlobLink, repository, digest)
        return bool(agg and agg.linked)

    # -- commands ----------------------------------------------------------------------------
    def link_blob(self, repository: str, digest: str, size: int, caller: Caller) -> int | None:
        def body() -> list[Any]:
            link, repo = self._get_all(
                (BlobLink, (repository, digest)), (Repository, (repository,))
            )
            if link is None:
                link = BlobLink.create(repository, digest, size, *caller)
            elif not link.linked:
                link.relink(*caller)
            else:
                return []
            return [*self._live_repository(repository, repo, caller), link]

        return self._command(repository, body)

    def unlink_blob(self, repository: str, digest: str, caller: Caller) -> int | None:
        def body() -> list[Any]:
            link = self._get(BlobLink, repository, digest)
            if link is None or not link.linked:
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
            link.unlink(*caller)
            return [link]

        return self._command(repository, body)

    def push_manifest(
        self,
        repository: str,
        digest: str,
        size: int,
        info: ManifestInfo,
        tag: str | None,
        caller: Caller,
    ) -> int | None:
        fields = dict(
            size=size,
            media_type=info.media_type,
            config=info.config,
            layers=info.layers,
            manifests=info.manifests,
            subject=info.subject,
            artifact_type=info.artifact_type,
            annotations=info.annotations,
            actor=caller.actor,
            client=caller.client,
        )

        def body() -> list[Any]:
            wanted: list[Any] = [(Repository, (repository,)), (Manifest, (repository, digest))]
            if tag is not None:
                wanted.append((Tag, (repository, tag)))
            repo, manifest, *tag_found = self._get_all(*wanted)
            tag_agg = tag_found[0] if tag_found else None
            changed: list[Any] = self._live_repository(repository, repo, caller)
            if manifest is None:
                changed.append(Manifest.create(repository, digest, **fields))
            elif not manifest.alive:
                manifest.repush(**fields)
                changed.append(manifest)
            if tag is not None:
                if tag_agg is None:
                    changed.append(Tag.create(repository, tag, digest, *caller))
                elif tag_agg.digest != digest or _dangling(tag_agg, manifest):
                    tag_agg.move(digest, *caller)
                    changed.append(tag_agg)
            return changed

        return self._command(repository, body)

    def delete_manifest(
        self, repository: str, digest: str, tags: Iterable[str], caller: Caller
    ) -> int | None:
        """Delete a manifest and every tag (of those given) that still points at it."""
        tags = list(tags)

        def body() -> list[Any]:
            manifest = self._get(Manifest, repository, digest)
            if manifest is None or not manifest.alive:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"digest": digest})
            manifest.delete(*caller)
            changed: list[Any] = [manifest]
            for name in tags:
                tag_agg = self._get(Tag, repository, name)
                if tag_agg is not None and tag_agg.digest == digest:
                    tag_agg.delete(*caller)
                    changed.append(tag_agg)
            return changed

        return self._command(repository, body)

    def delete_tag(self, repository: str, tag: str, caller: Caller) -> int | None:
        def body() -> list[Any]:
            tag_agg = self._get(Tag, repository, tag)
            if tag_agg is None or self._visible_digest(tag_agg) is None:
                raise RegistryError("MANIFEST_UNKNOWN", detail={"tag": tag})
            tag_agg.delete(*caller)
            return [tag_agg]

        return self._command(repository, body)

    def delete_repository(
        self,
        repository: str,
        tags: Iterable[str],
        manifests: Iterable[str],
        blobs: Iterable[str],
        caller: Caller,
    ) -> int | None:
        """Delete a repository with its tags, manifests and blob links (as listed by the views)."""
        tags, manifests, blobs = list(tags), list(manifests), list(blobs)

        def body() -> list[Any]:
            repo = self._get(Repository, repository)
            if repo is None or not repo.alive:
                raise RegistryError("NAME_UNKNOWN", detail={"name": repository})
            changed: list[Any] = []
            for name in tags:
                agg = self._get(Tag, repository, name)
                if agg is not None and agg.digest is not None:
                    agg.delete(*caller)
                    changed.append(agg)
            for digest in manifests:
                agg = self._get(Manifest, repository, digest)
                if agg is not None and agg.alive:
                    agg.delete(*caller)
                    changed.append(agg)
            for digest in blobs:
                agg = self._get(BlobLink, repository, digest)
                if agg is not None and agg.linked:
                    agg.unlink(*caller)
                    changed.append(agg)
            repo.delete(*caller)
            changed.append(repo)
            return changed

        return self._command(repository, body)
