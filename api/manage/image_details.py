"""One image in detail for /api/images/{name}/{tag}: its config's facts (created, os,
architecture, labels), its distinct layers, platforms and referrers, each bounded, and the
pages of layers and platforms behind `…/-/layers` and `…/-/platforms`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import Parameter

from api.auth.guards import base_url
from api.manage.image_configs import config_facts
from api.manage.params import TEXT
from api.services import Services
from domain.errors import RegistryError
from domain.names import namespace_of
from projections import images, keyset, manifests, pulls, referrers, repositories


class Layer(msgspec.Struct):
    digest: str
    size: int
    media_type: str


class Platform(msgspec.Struct):
    """One image of a multi-arch index."""

    digest: str
    media_type: str
    os: str | None
    architecture: str | None
    variant: str | None
    size: int
    created: str | None
    layers: list[Layer]  # its first PLATFORM_LAYERS distinct layers
    layer_count: int  # its distinct layers
    layers_next_cursor: str | None  # the rest: GET …/-/layers?cursor= (None: all are here)


class Referrer(msgspec.Struct):
    """An artifact about this image: a signature, an SBOM, an attestation… found through
    the OCI referrers API or cosign's tag scheme (`sha256-<hex>.sig|.att|.sbom`)."""

    digest: str
    media_type: str
    artifact_type: str | None
    kind: str  # signature, sbom, attestation or artifact
    size: int
    tag: str | None
    annotations: dict[str, str]


class ImageDetail(msgspec.Struct):
    repository: str
    namespace: str
    tag: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int
    manifest_size: int
    created: str | None  # from the image config (an index: its newest platform's)
    os: str | None
    architecture: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    pushed_at: datetime  # when this tag was last pushed, and by whom
    pushed_by: str
    pull_count: int  # manifest GETs by this tag (recorded every CYP_PULL_FLUSH_SECONDS)
    last_pulled_at: datetime | None  # None: never pulled
    config: Layer | None
    layers: list[Layer]  # the first DETAIL_LAYERS distinct layers, in manifest order
    layer_count: int  # distinct layers (a layer listed twice is one)
    layers_next_cursor: str | None  # the rest: GET …/-/layers?cursor= (None: all are here)
    platforms: list[Platform]  # an index: its first DETAIL_PLATFORMS distinct platforms
    platform_count: int
    platforms_next_cursor: str | None  # the rest: GET …/-/platforms?cursor=
    referrers: list[Referrer]  # the first DETAIL_REFERRERS
    referrer_count: int
    pull_command: str


class LayerPage(msgspec.Struct):
    """GET /api/images/{name}/{tag}/-/layers: distinct layers of the image (or of one of its
    platforms), in manifest order, a page at a time."""

    digest: str  # the manifest these layers belong to
    layers: list[Layer]
    layer_count: int
    next_cursor: str | None  # None: this is the last page


class PlatformPage(msgspec.Struct):
    """GET /api/images/{name}/{tag}/-/platforms: distinct platforms of an index, in order."""

    digest: str  # the index
    platforms: list[Platform]
    platform_count: int
    next_cursor: str | None


async def image_row(services: Services, name: str, tag: str) -> images.ImageRow:
    row = await services.query(images.one, name, tag)
    if row is None:
        if not await services.query(repositories.exists, name):
            raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found", {"name": name})
        raise RegistryError("MANIFEST_UNKNOWN", f"image {name}:{tag} not found", {"tag": tag})
    return row


def _kind(artifact_type: str | None, media_type: str, tag: str | None = None) -> str:
    text = f"{artifact_type or ''} {media_type} {tag or ''}".lower()
    if "sbom" in text or "spdx" in text or "cyclonedx" in text:
        return "sbom"
    if ".att" in text or "in-toto" in text or "attestation" in text:
        return "attestation"
    if ".sig" in text or "signature" in text or "cosign" in text or "notary" in text:
        return "signature"
    return "artifact"


async def _referrers(services: Services, name: str, digest: str) -> tuple[list[Referrer], int]:
    """The first DETAIL_REFERRERS of the referrers API, then cosign's tags; how many in all."""
    rows, count = await services.query(referrers.first, name, digest, DETAIL_REFERRERS)
    found = [
        Referrer(
            r.digest,
            r.media_type,
            r.artifact_type,
            _kind(r.artifact_type, r.media_type),
            r.size,
            None,
            r.annotations,
        )
        for r in rows
    ]
    # cosign without the referrers API: tags named after the digest (three at most)
    algorithm, _, encoded = digest.partition(":")
    scheme = [f"{algorithm}-{encoded}.{suffix}" for suffix in ("sig", "att", "sbom")]
    for row in await services.query(images.tags_in, name, scheme):
        kind = {"sig": "signature", "att": "attestation", "sbom": "sbom"}[row.tag.rsplit(".")[-1]]
        found.append(
            Referrer(row.digest, row.media_type, row.artifact_type, kind, row.size, row.tag, {})
        )
        count += 1
    return found, count


# -- bounded lists: distinct layers and platforms, capped, the rest a page at a time ---------
# A pusher may list one layer (an index one platform) thousands of times, or thousands of
# distinct ones: an answer holds each digest once, where it first appears, at most these
# many, with the count and a cursor to the rest (GET …/-/layers or …/-/platforms?cursor=).
# An answer is therefore at most (DETAIL_LAYERS + (1 + PLATFORM_LAYERS) x DETAIL_PLATFORMS)
# descriptors of a few hundred bytes, whatever the manifests hold.
DETAIL_LAYERS = 100  # the image's layers in its details
DETAIL_PLATFORMS = 20  # an index's platforms in its details
PLATFORM_LAYERS = 50  # each platform's layers, in details and in a page of platforms
DETAIL_REFERRERS = 50
PAGE_LAYERS = (100, 500)  # -/layers: (default, most) layers a page
PAGE_PLATFORMS = (20, 50)  # -/platforms: (default, most) platforms a page
# A cursor is a keyset cursor (projections.keyset) of the manifest whose list it walks and
# the position after which the list goes on: one of another image, or of the manifest a tag
# named before it moved, is refused.
_KEY = ("digest", "position")


def _cursor(kind: str, digest: str, position: int) -> str:
    return keyset.encode(kind, "asc", [digest, position])


def _parse_cursor(kind: str, cursor: str) -> tuple[str, int]:
    key = keyset.decode(cursor, kind, "asc", _KEY)
    if key is None:
        raise RegistryError(
            "INVALID_INPUT", f"the cursor is not one of this image's {kind}", {"field": "cursor"}
        )
    return key[0], key[1]


def _layer_slice(
    digest: str, entries: list[manifests.LayerEntry], limit: int
) -> tuple[list[Layer], str | None]:
    """A page of layers fetched with one too many, and the cursor of the next if any."""
    more = len(entries) > limit
    entries = entries[:limit]
    cursor = _cursor("layers", digest, entries[-1].position) if more else None
    return [Layer(e.digest, e.size, e.media_type) for e in entries], cursor


async def _platforms(
    services: Services, name: str, index: str, after: int, limit: int
) -> tuple[list[Platform], str | None]:
    """A page of the distinct platforms of an index, and the cursor of the next if any."""
    entries = await services.query(manifests.platform_page, name, index, after, limit + 1)
    more = len(entries) > limit
    entries = entries[:limit]
    digests = [entry.digest for entry in entries]
    found = await services.query(manifests.summaries, name, digests)
    layers = await services.query(manifests.layer_pages, name, digests, 0, PLATFORM_LAYERS + 1)
    totals = await services.query(images.sizes, name, digests)
    platforms = []
    for entry in entries:
        summary = found.get(entry.digest)
        facts = await config_facts(services, summary.config if summary else None)
        shown, cursor = _layer_slice(entry.digest, layers.get(entry.digest, []), PLATFORM_LAYERS)
        platforms.append(
            Platform(
                entry.digest,
                entry.media_type,
                entry.os,
                entry.architecture,
                entry.variant,
                totals.get(entry.digest, entry.size),
                facts.created,
                shown,
                summary.layer_count if summary else 0,
                cursor,
            )
        )
    return platforms, _cursor("platforms", index, entries[-1].position) if more else None


async def _summary(services: Services, name: str, tag: str, digest: str) -> manifests.Summary:
    found = (await services.query(manifests.summaries, name, [digest])).get(digest)
    if found is None:  # the manifest went between the two reads
        raise RegistryError("MANIFEST_UNKNOWN", f"image {name}:{tag} not found", {"tag": tag})
    return found


def _pull_command(request: Request[Any, Any, Any], name: str, tag: str) -> str:
    host = base_url(request).split("://", 1)[-1]
    return f"docker pull {host}/{name}:{tag}"


async def details(
    request: Request[Any, Any, Any], services: Services, name: str, tag: str
) -> ImageDetail:
    row = await image_row(services, name, tag)
    summary = await _summary(services, name, tag, row.digest)
    facts = await config_facts(services, summary.config)
    layers, layers_next = [], None
    if summary.layer_count:
        found = await services.query(
            manifests.layer_pages, name, [row.digest], 0, DETAIL_LAYERS + 1
        )
        layers, layers_next = _layer_slice(row.digest, found[row.digest], DETAIL_LAYERS)
    platforms, platforms_next, created = [], None, facts.created
    if summary.platform_count:
        platforms, platforms_next = await _platforms(
            services, name, row.digest, 0, DETAIL_PLATFORMS
        )
        times = [p.created for p in platforms if p.created]
        created = max(times) if times else None
    config = summary.config
    found_referrers, referrer_count = await _referrers(services, name, row.digest)
    pulled = (await services.query(pulls.of_tags, [(name, tag)])).get((name, tag), pulls.NEVER)
    return ImageDetail(
        repository=name,
        namespace=namespace_of(name),
        tag=tag,
        digest=row.digest,
        media_type=summary.media_type,
        artifact_type=summary.artifact_type,
        size=row.size,
        manifest_size=summary.size,
        created=created,
        os=facts.os,
        architecture=facts.architecture,
        labels=facts.labels,
        annotations=summary.annotations,
        pushed_at=row.updated_at,
        pushed_by=row.updated_by,
        pull_count=pulled.pull_count,
        last_pulled_at=pulled.last_pulled_at,
        config=Layer(config["digest"], config["size"], config["mediaType"]) if config else None,
        layers=layers,
        layer_count=summary.layer_count,
        layers_next_cursor=layers_next,
        platforms=platforms,
        platform_count=summary.platform_count,
        platforms_next_cursor=platforms_next,
        referrers=found_referrers,
        referrer_count=referrer_count,
        pull_command=_pull_command(request, name, tag),
    )


async def _layer_page(
    services: Services,
    name: str,
    tag: str,
    limit: int | None,
    cursor: str | None,
    platform: str | None,
) -> LayerPage:
    """The image's layers, or with `platform` (or a cursor of one) a platform's."""
    row = await image_row(services, name, tag)
    digest, after = _parse_cursor("layers", cursor) if cursor else (platform or row.digest, 0)
    if cursor and platform is not None and platform != digest:
        raise RegistryError(
            "INVALID_INPUT", "the cursor belongs to another platform", {"field": "platform"}
        )
    if digest != row.digest and not await services.query(
        manifests.lists_platform, name, row.digest, digest
    ):
        if cursor:
            raise RegistryError(
                "INVALID_INPUT", "the cursor is not one of this image's", {"field": "cursor"}
            )
        raise RegistryError(
            "MANIFEST_UNKNOWN", f"{name}:{tag} has no platform {digest}", {"platform": digest}
        )
    summary = await _summary(services, name, tag, digest)
    limit = min(limit or PAGE_LAYERS[0], PAGE_LAYERS[1])
    found = await services.query(manifests.layer_pages, name, [digest], after, limit + 1)
    layers, next_cursor = _layer_slice(digest, found[digest], limit)
    return LayerPage(digest, layers, summary.layer_count, next_cursor)


async def _platform_page(
    services: Services,
    name: str,
    tag: str,
    limit: int | None,
    cursor: str | None,
    platform: str | None,
) -> PlatformPage:
    row = await image_row(services, name, tag)
    if platform is not None:
        raise RegistryError(
            "INVALID_INPUT", "platform applies to …/-/layers only", {"field": "platform"}
        )
    digest, after = _parse_cursor("platforms", cursor) if cursor else (row.digest, 0)
    if digest != row.digest:
        raise RegistryError(
            "INVALID_INPUT", "the cursor is not one of this image's", {"field": "cursor"}
        )
    summary = await _summary(services, name, tag, digest)
    limit = min(limit or PAGE_PLATFORMS[0], PAGE_PLATFORMS[1])
    platforms, next_cursor = [], None
    if summary.platform_count:
        platforms, next_cursor = await _platforms(services, name, digest, after, limit)
    return PlatformPage(digest, platforms, summary.platform_count, next_cursor)


PARTS = {"layers": _layer_page, "platforms": _platform_page}
PartLimit = Annotated[
    int | None,
    Parameter(
        ge=1,
        le=PAGE_LAYERS[1],
        description="…/-/layers: layers a page (default 100, most 500); …/-/platforms:"
        " platforms a page (default 20, most 50)",
    ),
]
Platform_ = Annotated[
    str | None,
    Parameter(
        max_length=255,
        pattern=TEXT,
        description="…/-/layers: the layers of this platform (a digest) of the index",
    ),
]
