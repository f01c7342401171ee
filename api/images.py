"""/api/images: the guide's §5.2 image management, answered from the images view.

- `GET /api/images?namespace=&sort=name|updated|size&order=asc|desc&limit=&cursor=` → a page
  of tagged images (repository, tag, digest, size, updated), `total`, and `next_cursor`;
- `GET /api/images/search?q=` → the same, for images whose `repository:tag` contains `q`
  (case-insensitive);
- `GET /api/images/{name}/{tag}` → one image in detail;
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

from api.auth import api_actions, api_caller, base_url, readable_namespaces
from api.schema import TEXT, Envelope, errors, ok
from api.services import Services
from domain.errors import RegistryError
from domain.names import is_valid_name, is_valid_tag, namespace_of
from projections import images, manifests, referrers, repositories, tags

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
    layers: list[Layer]


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
    layers: list[Layer]
    platforms: list[Platform]
    referrers: list[Referrer]
    pull_command: str


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


_CONFIGS: OrderedDict[str, ConfigFacts] = OrderedDict()  # by digest: never stale
_CONFIGS_MAX = 10_000


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
    labels = {k: v for k, v in (labels or {}).items() if isinstance(k, str) and isinstance(v, str)}
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
        _CONFIGS[digest] = found
        if len(_CONFIGS) > _CONFIGS_MAX:
            _CONFIGS.popitem(last=False)
    return found


def _layers(descriptors: list[dict[str, Any]]) -> list[Layer]:
    return [Layer(d["digest"], d["size"], d["mediaType"]) for d in descriptors]


def _kind(artifact_type: str | None, media_type: str, tag: str | None = None) -> str:
    text = f"{artifact_type or ''} {media_type} {tag or ''}".lower()
    if "sbom" in text or "spdx" in text or "cyclonedx" in text:
        return "sbom"
    if ".att" in text or "in-toto" in text or "attestation" in text:
        return "attestation"
    if ".sig" in text or "signature" in text or "cosign" in text or "notary" in text:
        return "signature"
    return "artifact"


async def _referrers(services: Services, name: str, digest: str) -> list[Referrer]:
    found = [
        Referrer(
            d["digest"],
            d["mediaType"],
            d.get("artifactType"),
            _kind(d.get("artifactType"), d["mediaType"]),
            d["size"],
            None,
            d.get("annotations") or {},
        )
        for d in await services.query(referrers.of, name, digest, None)
    ]
    # cosign without the referrers API: tags named after the digest
    algorithm, _, encoded = digest.partition(":")
    scheme = [f"{algorithm}-{encoded}.{suffix}" for suffix in ("sig", "att", "sbom")]
    for row in await services.query(images.tags_in, name, scheme):
        kind = {"sig": "signature", "att": "attestation", "sbom": "sbom"}[row.tag.rsplit(".")[-1]]
        found.append(
            Referrer(row.digest, row.media_type, row.artifact_type, kind, row.size, row.tag, {})
        )
    return found


async def _platforms(
    services: Services, name: str, index: manifests.Detail
) -> tuple[list[Platform], str | None]:
    """The images of a multi-arch index, and the newest of their creation times."""
    digests = [child["digest"] for child in index.children]
    found = await services.query(manifests.details, name, digests)
    totals = await services.query(images.sizes, name, digests)
    platforms = []
    for child in index.children:
        platform = child.get("platform") or {}
        detail = found.get(child["digest"])
        facts = await _config(services, detail.config if detail else None)
        platforms.append(
            Platform(
                child["digest"],
                child["mediaType"],
                _text(platform.get("os")),
                _text(platform.get("architecture")),
                _text(platform.get("variant")),
                totals.get(child["digest"], child["size"]),
                facts.created,
                _layers(detail.layers) if detail else [],
            )
        )
    created = [p.created for p in platforms if p.created]
    return platforms, max(created) if created else None


def _pull_command(request: Request[Any, Any, Any], name: str, tag: str) -> str:
    host = base_url(request).split("://", 1)[-1]
    return f"docker pull {host}/{name}:{tag}"


@get("/api/images/{rest:path}", tags=["images"], responses=errors(404))
async def show_image(request: Request[Any, Any, Any], rest: str) -> Envelope[ImageDetail]:
    """One image: `/api/images/{name}/{tag}` (the name may contain slashes)."""
    services: Services = request.app.state.services
    name, tag = _split(rest)
    await _visible(request, name)
    row = await _row(services, name, tag)
    detail = (await services.query(manifests.details, name, [row.digest])).get(row.digest)
    if detail is None:  # the manifest went between the two reads
        raise RegistryError("MANIFEST_UNKNOWN", f"image {name}:{tag} not found", {"tag": tag})
    facts = await _config(services, detail.config)
    platforms, created = [], facts.created
    if detail.children:
        platforms, created = await _platforms(services, name, detail)
    config = detail.config
    return ok(
        ImageDetail(
            repository=name,
            namespace=namespace_of(name),
            tag=tag,
            digest=row.digest,
            media_type=detail.media_type,
            artifact_type=detail.artifact_type,
            size=row.size,
            manifest_size=detail.size,
            created=created,
            os=facts.os,
            architecture=facts.architecture,
            labels=facts.labels,
            annotations=detail.annotations,
            pushed_at=row.updated_at,
            pushed_by=row.updated_by,
            config=Layer(config["digest"], config["size"], config["mediaType"]) if config else None,
            layers=_layers(detail.layers),
            platforms=platforms,
            referrers=await _referrers(services, name, row.digest),
            pull_command=_pull_command(request, name, tag),
        )
    )


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
