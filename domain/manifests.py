"""Media types and manifest parsing: what a pushed manifest references."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from domain.errors import RegistryError
from domain.names import parse_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
IMAGE_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
# Descriptor sizes are int64 in the OCI image spec; free-form values (platform) stay shallow,
# so every accepted manifest can be stored (msgpack, jsonb) and projected.
MAX_SIZE = 2**63 - 1
MAX_DEPTH = 16

# Layers that by definition are not stored in the registry ("foreign" layers).
NONDISTRIBUTABLE = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


class Descriptor(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    mediaType: str  # noqa: N815 - OCI field name
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    artifactType: str | None = None  # noqa: N815
    platform: dict[str, Any] | None = None
    urls: list[str] | None = None


class _Manifest(msgspec.Struct, forbid_unknown_fields=False):
    schemaVersion: int  # noqa: N815
    mediaType: str | None = None  # noqa: N815
    config: Descriptor | None = None
    layers: list[Descriptor] | None = None
    manifests: list[Descriptor] | None = None
    subject: Descriptor | None = None
    artifactType: str | None = None  # noqa: N815
    annotations: dict[str, str] | None = None


class ManifestInfo(msgspec.Struct, frozen=True):
    """What the registry records of a manifest: the fields of a 'manifest pushed' event."""

    media_type: str
    config: dict[str, Any] | None
    layers: list[dict[str, Any]]
    manifests: list[dict[str, Any]]
    subject: str | None
    artifact_type: str | None
    annotations: dict[str, str]

    def referenced_blobs(self) -> list[str]:
        """Blobs that must exist in the repository before this manifest is accepted."""
        blobs = [self.config["digest"]] if self.config else []
        blobs += [
            layer["digest"] for layer in self.layers if layer["mediaType"] not in NONDISTRIBUTABLE
        ]
        return blobs

    def referenced_manifests(self) -> list[str]:
        return [child["digest"] for child in self.manifests]


def _storable(value: Any) -> bool:
    """A free-form JSON value that is shallow and whose integers fit in 64 bits."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_SIZE:
            return False
    return True


def _descriptor(d: Descriptor) -> dict[str, Any]:
    parse_digest(d.digest)
    if not 0 <= d.size <= MAX_SIZE:
        raise RegistryError(
            "MANIFEST_INVALID", "descriptor size out of range", {"digest": d.digest}
        )
    if d.platform is not None and not _storable(d.platform):
        raise RegistryError(
            "MANIFEST_INVALID", "platform too deep or too large", {"digest": d.digest}
        )
    return msgspec.to_builtins(d)


def _resolve_media_type(content_type: str | None, body_type: str | None, m: _Manifest) -> str:
    header = (content_type or "").split(";")[0].strip().lower() or None
    if header in MANIFEST_TYPES:
        if body_type and body_type != header:
            raise RegistryError(
                "MANIFEST_INVALID",
                "mediaType does not match Content-Type",
                {"mediaType": body_type, "contentType": header},
            )
        return header
    if body_type in MANIFEST_TYPES:
        return body_type
    if body_type is not None or header not in (
        None,
        "application/json",
        "application/octet-stream",
    ):
        raise RegistryError(
            "MANIFEST_INVALID",
            "unsupported manifest media type",
            {"mediaType": body_type or header},
        )
    # OCI allows mediaType to be omitted: infer it from the shape.
    if m.manifests is not None:
        return OCI_INDEX
    if m.config is not None:
        return OCI_MANIFEST
    raise RegistryError("MANIFEST_INVALID", "cannot determine manifest media type")


def parse_manifest(body: bytes, content_type: str | None) -> ManifestInfo:
    """Validate a manifest's JSON and extract its references; raise MANIFEST_INVALID."""
    if len(body) > MAX_MANIFEST_SIZE:
        raise RegistryError("MANIFEST_INVALID", "manifest exceeds 4 MiB", status=413)
    try:
        m = msgspec.json.decode(body, type=_Manifest)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise RegistryError("MANIFEST_INVALID", f"invalid manifest: {exc}") from None
    except RecursionError:  # nesting deeper than the decoder allows (free-form fields)
        raise RegistryError("MANIFEST_INVALID", "invalid manifest: nested too deeply") from None
    if m.schemaVersion != 2:
        raise RegistryError("MANIFEST_INVALID", "only schemaVersion 2 is supported")
    media_type = _resolve_media_type(content_type, m.mediaType, m)
    try:
        if media_type in INDEX_TYPES:
            if m.manifests is None:
                raise RegistryError("MANIFEST_INVALID", "index without manifests")
            config, layers = None, []
            manifests = [_descriptor(d) for d in m.manifests]
        else:
            if m.config is None:
                raise RegistryError("MANIFEST_INVALID", "manifest without config")
            if m.layers is None and media_type == DOCKER_MANIFEST:
                raise RegistryError("MANIFEST_INVALID", "manifest without layers")
            config = _descriptor(m.config)
            layers = [_descriptor(d) for d in (m.layers or [])]
            manifests = []
        subject = _descriptor(m.subject)["digest"] if m.subject else None
    except RegistryError as exc:
        if exc.code == "DIGEST_INVALID":
            raise RegistryError("MANIFEST_INVALID", exc.message, exc.detail) from None
        raise
    artifact_type = m.artifactType
    if artifact_type is None and config and media_type == OCI_MANIFEST:
        # The referrers API reports the config media type when artifactType is absent.
        artifact_type = config["mediaType"]
    info = ManifestInfo(
        media_type=media_type,
        config=config,
        layers=layers,
        manifests=manifests,
        subject=subject,
        artifact_type=artifact_type,
        annotations=m.annotations or {},
    )
    if _contains_nul(msgspec.to_builtins(info)):
        # Valid JSON ("\u0000"), but no Postgres text or jsonb column can hold it: the event
        # would be stored and then stop the projector for good.
        raise RegistryError("MANIFEST_INVALID", "manifest strings must not contain NUL")
    return info


def _contains_nul(value: Any) -> bool:
    """Whether any string (key or value) in a JSON-like value contains U+0000."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def distinct(descriptors: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each digest once, where it first appears: a manifest may list one layer (an index one
    platform) any number of times, but it stands for one blob (one image)."""
    first: dict[str, dict[str, Any]] = {}
    for descriptor in descriptors:
        first.setdefault(descriptor["digest"], descriptor)
    return list(first.values())


def image_size(size: int, config: dict[str, Any] | None, layers: list[dict[str, Any]]) -> int:
    """Bytes of an image manifest with what it references: the manifest, and each distinct
    blob (config and layers) once."""
    blobs = distinct([config, *layers] if config else layers)
    return size + sum(blob["size"] for blob in blobs)
