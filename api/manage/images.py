"""/api/images: the guide's §5.2 image management, answered from the images view.

- `GET /api/images?namespace=&sort=name|updated|size&order=asc|desc&limit=&cursor=` → a page
  of tagged images (repository, tag, digest, size, updated), `total`, and `next_cursor`;
- `GET /api/images/search?q=` → the same, for images whose `repository:tag` contains `q`
  (case-insensitive);
- `GET /api/images/{name}/{tag}` → one image in detail, bounded whatever its manifests list
  (distinct layers and platforms, a few of each, with their counts and cursors to the rest);
- `GET /api/images/{name}/{tag}/-/layers?platform=&limit=&cursor=` → a page of its layers
  (or of one platform's), and `…/-/platforms?limit=&cursor=` → a page of an index's platforms;
- `DELETE /api/images/{name}/{tag}` → deletes the tag, and its manifest when no other tag
  (nor a multi-arch index of the repository) still uses it.

Names contain slashes (`team/web/frontend`): Litestar's path parameter works only as the
last segment, so one route takes the rest of the path and the tag is what follows its last
`/`. Callers see only the namespaces they may read: lists filter in SQL, and a repository
they may not pull answers 404 as if it did not exist.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
import msgspec
from litestar import Request, delete, get
from litestar.params import Parameter

from api.auth.guards import api_actions, api_caller, base_url, readable_namespaces
from api.manage.openapi import TEXT, Envelope, errors, ok
from api.services import Services
from domain.errors import RegistryError
from domain.names import is_valid_name, is_valid_tag, namespace_of
from projections import images, keyset, manifests, referrers, repositories, tags

MAX_CONFIG = 1024 * 1024  # image configs are a few KiB; a larger blob is not read for details
Limit = Annotated[int, Parameter(ge=1, le=500, description="rows per page (default 50)")]
Cursor = Annotated[
    str | None,
    Parameter(
        max_length=4096, pattern=TEXT, description="`next_cursor` of the previous page, as is"
    ),
]
Order = Annotated[
    Literal["asc", "desc"] | None,
    Parameter(description="default: asc for name, desc for updated and size"),
]
Namespace = Annotated[
    str | None,
    Parameter(max_length=255, pattern=TEXT, description="only what belongs to this namespace"),
]


# -- answers -------------------------------------------------------------------------------
class Image(msgspec.Struct):
    repository: str
    namespace: str
    tag: str
    digest: str
    media_type: str
    artifact_type: str | None
    size: int  # bytes: manifest, config and layers (an index: with its platforms')
    updated_at: datetime
    updated_by: str


class ImagePage(msgspec.Struct):
    items: list[Image]
    total: int  # matching images the caller may see, counted up to 100,000 (search: 1,000)
    total_exact: bool  # False: more than `total` match
    next_cursor: str | None  # None: this is the last page


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


class ImageDeleted(msgspec.Struct):
    repository: str
    tag: str
    digest: str
    manifest_deleted: bool  # False: another tag or an index still uses the manifest


def _image(row: images.ImageRow) -> Image:
    return Image(**row._asdict())


# -- listing and search ----------------------------------------------------------------------
def _listing(
    readable: list[str] | None,
    namespace: str | None,
    search: str | None,
    sort: str,
    order: str | None,
    cursor: str | None,
) -> images.Listing:
    order = order or images.DEFAULT_ORDER[sort]
    after = None
    if cursor is not None:
        after = images.parse_cursor(cursor, sort, order)
        if after is None:
            raise RegistryError(
                "INVALID_INPUT",
                "the cursor is not one this listing gave (same sort and order)",
                {"field": "cursor"},
            )
    return images.Listing(readable, namespace, search, sort, order, after)


async def _page(services: Services, q: images.Listing, limit: int) -> ImagePage:
    if q.readable is not None and q.namespace is not None and q.namespace not in q.readable:
        return ImagePage([], 0, True, None)  # a namespace the caller may not read looks empty
    cap = images.count_cap(q)
    found = None
    if q.search is not None:
        found = await services.query(images.few, q, limit + 1)
    if found is not None:
        rows, total = found
    else:  # a list, or a search matching many: more than the cap when a search
        rows = await services.query(images.page, q, limit + 1)
        total = await services.query(images.count, q) if q.search is None else cap + 1
    more = len(rows) > limit
    rows = rows[:limit]
    return ImagePage(
        [_image(row) for row in rows],
        min(total, cap),
        total <= cap,
        images.cursor_of(q, rows[-1]) if more else None,
    )


@get("/api/images", tags=["images"], responses=errors())
async def list_images(
    request: Request[Any, Any, Any],
    namespace: Namespace = None,
    sort: Literal["name", "updated", "size"] = "name",
    order: Order = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Envelope[ImagePage]:
    """Tagged images the caller may see, a page at a time."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    q = _listing(readable, namespace, None, sort, order, cursor)
    return ok(await _page(services, q, limit))


@get("/api/images/search", tags=["images"], responses=errors())
async def search_images(
    request: Request[Any, Any, Any],
    q: Annotated[
        str,
        Parameter(
            min_length=1,
            max_length=255,
            pattern=TEXT,
            description="case-insensitive substring of `repository:tag`",
        ),
    ],
    namespace: Namespace = None,
    sort: Literal["name", "updated", "size"] = "name",
    order: Order = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Envelope[ImagePage]:
    """Images whose repository or tag contains `q`, ignoring case."""
    services: Services = request.app.state.services
    caller = await api_caller(request)
    readable = await readable_namespaces(request, caller)
    query = _listing(readable, namespace, q, sort, order, cursor)
    return ok(await _page(services, query, limit))


# -- one image -------------------------------------------------------------------------------
def _split(rest: str) -> tuple[str, str]:
    """`/team/web/frontend/1.0` → ("team/web/frontend", "1.0"); 404 if it names no image."""
    name, _, tag = rest.lstrip("/").rpartition("/")
    if not is_valid_name(name) or not is_valid_tag(tag):
        raise RegistryError("NOT_FOUND", f"no image {rest.lstrip('/')!r}")
    return name, tag


async def _visible(request: Request[Any, Any, Any], name: str) -> tuple[Any, tuple[str, ...]]:
    """(caller, their actions on `name`); 404 for a repository they may not even pull."""
    caller = await api_caller(request)
    actions = await api_actions(request, caller, name)
    if "pull" not in actions:
        raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found", {"name": name})
    return caller, actions


async def _row(services: Services, name: str, tag: str) -> images.ImageRow:
    row = await services.query(images.one, name, tag)
    if row is None:
        if not await services.query(repositories.exists, name):
            raise RegistryError("NAME_UNKNOWN", f"repository {name!r} not found", {"name": name})
        raise RegistryError("MANIFEST_UNKNOWN", f"image {name}:{tag} not found", {"tag": tag})
    return row


class ConfigFacts(msgspec.Struct, frozen=True):
    created: str | None = None
    os: str | None = None
    architecture: str | None = None
    labels: dict[str, str] = {}

    def weight(self) -> int:
        """About what it holds, in characters: its cost in the cache."""
        texts = (self.created, self.os, self.architecture, *self.labels, *self.labels.values())
        return 64 + sum(len(text or "") for text in texts)


class _ConfigCache:
    """Facts of image configs by digest (never stale), the most recently used first kept,
    within a budget: the labels of one config may take up to MAX_CONFIG."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.weight = 0
        self.items: OrderedDict[str, ConfigFacts] = OrderedDict()

    def get(self, digest: str) -> ConfigFacts | None:
        found = self.items.get(digest)
        if found is not None:
            self.items.move_to_end(digest)
        return found

    def put(self, digest: str, facts: ConfigFacts) -> None:
        if facts.weight() > self.budget or digest in self.items:
            return
        self.items[digest] = facts
        self.weight += facts.weight()
        while self.weight > self.budget:
            self.weight -= self.items.popitem(last=False)[1].weight()


_CONFIGS = _ConfigCache(16 * 1024 * 1024)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _parse_config(data: bytes | None) -> ConfigFacts:
    try:
        config = json.loads(data) if data else None
    except (ValueError, RecursionError):
        config = None
    if not isinstance(config, dict):
        return ConfigFacts()
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    labels = {k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}
    return ConfigFacts(
        _text(config.get("created")),
        _text(config.get("os")),
        _text(config.get("architecture")),
        labels,
    )


def _read_config(services: Services, digest: str) -> ConfigFacts:
    size = services.store.size(digest)
    if size is None or size > MAX_CONFIG:
        return ConfigFacts()
    return _parse_config(services.store.read_bytes(digest))


async def _config(services: Services, descriptor: dict[str, Any] | None) -> ConfigFacts:
    if not descriptor or not isinstance(descriptor.get("digest"), str):
        return ConfigFacts()
    digest = descriptor["digest"]
    found = _CONFIGS.get(digest)
    if found is None:
        found = await anyio.to_thread.run_sync(_read_config, services, digest)
        _CONFIGS.put(digest, found)
    return found


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
        facts = await _config(services, summary.config if summary else None)
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


async def _details(
    request: Request[Any, Any, Any], services: Services, name: str, tag: str
) -> ImageDetail:
    row = await _row(services, name, tag)
    summary = await _summary(services, name, tag, row.digest)
    facts = await _config(services, summary.config)
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
    row = await _row(services, name, tag)
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
    row = await _row(services, name, tag)
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


_PARTS = {"layers": _layer_page, "platforms": _platform_page}
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


@get("/api/images/{rest:path}", tags=["images"], responses=errors(404))
async def show_image(
    request: Request[Any, Any, Any],
    rest: str,
    limit: PartLimit = None,
    cursor: Cursor = None,
    platform: Platform_ = None,
) -> Envelope[ImageDetail | LayerPage | PlatformPage]:
    """One image: `/api/images/{name}/{tag}` (the name may contain slashes), with at most 100
    distinct layers, 20 distinct platforms (each with at most 50 layers) and 50 referrers,
    their counts, and cursors to the rest: `…/{tag}/-/layers?cursor=` (a page of layers:
    the image's, or with `platform=<digest>` a platform's) and `…/{tag}/-/platforms?cursor=`
    (a page of platforms). `limit`, `cursor` and `platform` apply to those pages only."""
    services: Services = request.app.state.services
    image, part_of, part = rest.partition("/-/")
    name, tag = _split(image)
    if part_of and part not in _PARTS:
        raise RegistryError("NOT_FOUND", f"no {part!r} of an image")
    await _visible(request, name)
    if part_of:
        return ok(await _PARTS[part](services, name, tag, limit, cursor, platform))
    return ok(await _details(request, services, name, tag))


@delete("/api/images/{rest:path}", status_code=200, tags=["images"], responses=errors(403, 404))
async def delete_image(request: Request[Any, Any, Any], rest: str) -> Envelope[ImageDeleted]:
    """Delete a tag, and its manifest too when nothing else uses it."""
    services: Services = request.app.state.services
    name, tag = _split(rest)
    caller, actions = await _visible(request, name)
    if "delete" not in actions:
        raise RegistryError("DENIED", f"you may not delete from {name!r}")
    row = await _row(services, name, tag)
    others = [t for t in await services.query(tags.pointing_at, name, row.digest) if t != tag]
    in_index = await services.query(manifests.parents, name, row.digest)
    registry = services.registry
    if others or in_index:
        await services.command(registry.delete_tag, name, tag, caller.caller)
    else:
        await services.command(registry.delete_manifest, name, row.digest, [tag], caller.caller)
    return ok(ImageDeleted(name, tag, row.digest, not (others or in_index)))


route_handlers = [list_images, search_images, show_image, delete_image]
