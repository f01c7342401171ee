"""parse_manifest: media types, inference, references, limits, and that bad input only ever
raises RegistryError (never a 500)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import RegistryError
from domain.manifests import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_SIZE,
    NONDISTRIBUTABLE,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestInfo,
    distinct,
    image_size,
    parse_manifest,
)


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


CONFIG = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha("c"), "size": 7}
DOCKER_CONFIG = {**CONFIG, "mediaType": "application/vnd.docker.container.image.v1+json"}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha("l1"), "size": 3}
LAYER2 = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha("l2"), "size": 4}
FOREIGN = {
    "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "digest": sha("win"),
    "size": 5,
    "urls": ["https://example.invalid/layer"],
}
CHILD = {
    "mediaType": OCI_MANIFEST,
    "digest": sha("amd64"),
    "size": 400,
    "platform": {"architecture": "amd64", "os": "linux"},
}
CHILD2 = {
    "mediaType": OCI_MANIFEST,
    "digest": sha("arm64"),
    "size": 401,
    "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
}


def image(media_type: str | None = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2}
    if media_type:
        doc["mediaType"] = media_type
    config = DOCKER_CONFIG if media_type == DOCKER_MANIFEST else CONFIG
    doc.update(config=config, layers=[LAYER, LAYER2])
    doc.update(extra)
    return doc


def index(media_type: str | None = OCI_INDEX, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2}
    if media_type:
        doc["mediaType"] = media_type
    doc["manifests"] = [CHILD, CHILD2]
    doc.update(extra)
    return doc


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def invalid(doc_or_bytes: Any, content_type: str | None = None) -> RegistryError:
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else body(doc_or_bytes)
    with pytest.raises(RegistryError) as info:
        parse_manifest(data, content_type)
    assert info.value.code == "MANIFEST_INVALID", info.value
    return info.value


# -- each media type -------------------------------------------------------------------------
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_image_manifests(media_type: str) -> None:
    doc = image(media_type)
    info = parse_manifest(body(doc), media_type)
    assert info.media_type == media_type
    assert info.config == doc["config"]
    assert info.layers == [LAYER, LAYER2]
    assert info.manifests == []
    assert info.subject is None
    assert info.referenced_blobs() == [doc["config"]["digest"], LAYER["digest"], LAYER2["digest"]]
    assert info.referenced_manifests() == []
    assert info.annotations == {}


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_MANIFEST_LIST])
def test_indexes(media_type: str) -> None:
    info = parse_manifest(body(index(media_type)), media_type)
    assert info.media_type == media_type
    assert info.config is None and info.layers == []
    assert info.manifests == [CHILD, CHILD2]  # platforms are kept
    assert info.referenced_manifests() == [CHILD["digest"], CHILD2["digest"]]
    assert info.referenced_blobs() == []
    assert info.artifact_type is None


def test_content_type_parameters_and_case_are_ignored() -> None:
    info = parse_manifest(body(image()), OCI_MANIFEST.upper() + "; charset=utf-8")
    assert info.media_type == OCI_MANIFEST


def test_body_media_type_is_enough_without_a_content_type() -> None:
    for ct in (None, "", "application/json", "application/octet-stream"):
        assert parse_manifest(body(image(DOCKER_MANIFEST)), ct).media_type == DOCKER_MANIFEST
        assert parse_manifest(body(index(DOCKER_MANIFEST_LIST)), ct).media_type in INDEX_TYPES


def test_manifest_without_layers() -> None:
    # OCI allows an image manifest with an empty/absent layer list (artifacts); Docker does not.
    doc = image()
    del doc["layers"]
    assert parse_manifest(body(doc), OCI_MANIFEST).layers == []
    doc = image(DOCKER_MANIFEST)
    del doc["layers"]
    assert "layers" in invalid(doc, DOCKER_MANIFEST).message


# -- inference when mediaType is absent ------------------------------------------------------
@pytest.mark.parametrize("ct", [None, "", "application/json", "application/octet-stream"])
def test_inference_without_media_type(ct: str | None) -> None:
    assert parse_manifest(body(image(None)), ct).media_type == OCI_MANIFEST
    assert parse_manifest(body(index(None)), ct).media_type == OCI_INDEX
    error = invalid({"schemaVersion": 2}, ct)
    assert "media type" in error.message


@pytest.mark.parametrize("media_type", sorted(MANIFEST_TYPES))
def test_content_type_alone_decides_when_body_has_none(media_type: str) -> None:
    doc = index(None) if media_type in INDEX_TYPES else image(None)
    assert parse_manifest(body(doc), media_type).media_type == media_type


def test_content_type_of_the_other_kind_is_rejected() -> None:
    # An index sent as an image manifest has no config; an image sent as an index no manifests.
    assert "config" in invalid(index(None), OCI_MANIFEST).message
    assert "manifests" in invalid(image(None), OCI_INDEX).message


# -- mismatch ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body_type", "header"),
    [
        (OCI_MANIFEST, DOCKER_MANIFEST),
        (DOCKER_MANIFEST, OCI_MANIFEST),
        (OCI_INDEX, OCI_MANIFEST),
        (OCI_INDEX, DOCKER_MANIFEST_LIST),
    ],
)
def test_content_type_and_media_type_must_agree(body_type: str, header: str) -> None:
    doc = index(body_type) if body_type in INDEX_TYPES else image(body_type)
    error = invalid(doc, header)
    assert error.detail == {"mediaType": body_type, "contentType": header}
    assert error.status == 400


@pytest.mark.parametrize(
    ("body_type", "header"),
    [
        ("application/vnd.example+json", None),
        ("application/vnd.docker.distribution.manifest.v1+prettyjws", None),
        (None, "text/plain"),
        (None, "application/vnd.docker.distribution.manifest.v1+json"),
        ("application/vnd.example+json", "application/json"),
    ],
)
def test_unknown_media_types_are_rejected(body_type: str | None, header: str | None) -> None:
    doc = image(None)
    if body_type:
        doc["mediaType"] = body_type
    assert "unsupported" in invalid(doc, header).message


def test_schema_version_must_be_2() -> None:
    for version in (1, 3, 0, -2):
        invalid(image(schemaVersion=version), OCI_MANIFEST)
    for version in ("2", 2.0, True, None):
        invalid(image(schemaVersion=version), OCI_MANIFEST)
    doc = image()
    del doc["schemaVersion"]
    invalid(doc, OCI_MANIFEST)


# -- subject and artifactType ------------------------------------------------------------------
def test_subject_and_artifact_type() -> None:
    subject = {"mediaType": OCI_MANIFEST, "digest": sha("subject"), "size": 99}
    doc = image(
        subject=subject,
        artifactType="application/vnd.example.sbom",
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    )
    info = parse_manifest(body(doc), OCI_MANIFEST)
    assert info.subject == subject["digest"]
    assert info.artifact_type == "application/vnd.example.sbom"
    assert info.annotations == {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}


def test_artifact_type_defaults_to_config_media_type_for_oci_images_only() -> None:
    info = parse_manifest(body(image()), OCI_MANIFEST)
    assert info.artifact_type == CONFIG["mediaType"]
    assert parse_manifest(body(image(DOCKER_MANIFEST)), None).artifact_type is None
    info = parse_manifest(body(index(artifactType="application/vnd.x")), None)
    assert info.artifact_type == "application/vnd.x"


def test_index_with_subject() -> None:
    subject = {"mediaType": OCI_INDEX, "digest": sha("s"), "size": 1}
    info = parse_manifest(body(index(subject=subject)), OCI_INDEX)
    assert info.subject == subject["digest"]


def test_bad_subject_is_manifest_invalid() -> None:
    error = invalid(image(subject={"mediaType": OCI_MANIFEST, "digest": "sha256:zz", "size": 1}))
    assert error.code == "MANIFEST_INVALID"
    invalid(image(subject={"digest": sha("x"), "size": 1}))  # no mediaType
    invalid(image(subject="sha256:" + "a" * 64))  # not a descriptor


# -- referenced blobs ----------------------------------------------------------------------
@pytest.mark.parametrize("foreign_type", sorted(NONDISTRIBUTABLE))
def test_referenced_blobs_skip_nondistributable_layers(foreign_type: str) -> None:
    foreign = {**FOREIGN, "mediaType": foreign_type}
    doc = image(layers=[LAYER, foreign, LAYER2])
    info = parse_manifest(body(doc), OCI_MANIFEST)
    assert info.layers == [LAYER, foreign, LAYER2]  # recorded ...
    assert foreign["digest"] not in info.referenced_blobs()  # ... but not required
    assert info.referenced_blobs() == [CONFIG["digest"], LAYER["digest"], LAYER2["digest"]]


def test_layer_with_urls_but_distributable_type_is_required() -> None:
    layer = {**LAYER, "urls": ["https://example.invalid/x"]}
    info = parse_manifest(body(image(layers=[layer])), OCI_MANIFEST)
    assert info.referenced_blobs() == [CONFIG["digest"], layer["digest"]]


def test_sha512_descriptors() -> None:
    layer = {**LAYER, "digest": "sha512:" + hashlib.sha512(b"x").hexdigest()}
    info = parse_manifest(body(image(layers=[layer])), OCI_MANIFEST)
    assert info.referenced_blobs()[-1] == layer["digest"]


# -- size limit ------------------------------------------------------------------------------
def test_four_mebibyte_limit() -> None:
    doc = image(annotations={"pad": ""})
    raw = body(doc)
    pad = MAX_MANIFEST_SIZE - len(raw)
    doc["annotations"]["pad"] = "x" * pad
    at_limit = body(doc)
    assert len(at_limit) == MAX_MANIFEST_SIZE
    assert parse_manifest(at_limit, OCI_MANIFEST).annotations["pad"] == "x" * pad
    doc["annotations"]["pad"] += "x"
    error = invalid(body(doc), OCI_MANIFEST)
    assert error.status == 413
    error = invalid(b" " * (MAX_MANIFEST_SIZE + 1), OCI_MANIFEST)
    assert error.status == 413


# -- bad descriptors ---------------------------------------------------------------------------
BAD_DESCRIPTORS = [
    {"mediaType": "x", "digest": "sha256:short", "size": 1},
    {"mediaType": "x", "digest": "md5:" + "a" * 32, "size": 1},
    {"mediaType": "x", "digest": "sha256:" + "A" * 64, "size": 1},
    {"mediaType": "x", "digest": "", "size": 1},
    {"mediaType": "x", "digest": sha("a"), "size": -1},
    {"mediaType": "x", "digest": sha("a"), "size": "1"},
    {"mediaType": "x", "digest": sha("a"), "size": 1.5},
    {"mediaType": "x", "digest": sha("a"), "size": 2**63},
    {"mediaType": "x", "digest": sha("a"), "size": 10**30},
    {"mediaType": "x", "digest": sha("a")},
    {"mediaType": "x", "size": 1},
    {"digest": sha("a"), "size": 1},
    {"mediaType": 1, "digest": sha("a"), "size": 1},
    {"mediaType": "x", "digest": sha("a"), "size": 1, "annotations": {"a": 1}},
    {"mediaType": "x", "digest": sha("a"), "size": 1, "urls": "https://x"},
    {"mediaType": "x", "digest": sha("a"), "size": 1, "platform": {"os": {"x": [2**70]}}},
    {"mediaType": "x", "digest": sha("a"), "size": 1, "platform": [1]},
    [],
    "sha256:" + "a" * 64,
    None,
]


@pytest.mark.parametrize("bad", BAD_DESCRIPTORS, ids=range(len(BAD_DESCRIPTORS)))
def test_bad_descriptors(bad: Any) -> None:
    invalid(image(config=bad), OCI_MANIFEST)
    invalid(image(layers=[LAYER, bad]), OCI_MANIFEST)
    invalid(index(manifests=[CHILD, bad]), OCI_INDEX)


def test_bad_containers() -> None:
    invalid(image(layers={"0": LAYER}), OCI_MANIFEST)
    invalid(index(manifests=CHILD), OCI_INDEX)
    invalid(index(manifests=None), OCI_INDEX)
    invalid(image(annotations=["a"]), OCI_MANIFEST)
    invalid(image(artifactType=3), OCI_MANIFEST)
    for raw in (b"", b"null", b"[]", b"2", b'"x"', b"{", b"\xff\xfe", b'{"schemaVersion":2}x'):
        invalid(raw, OCI_MANIFEST)


def test_deep_nesting_is_rejected_not_crashing() -> None:
    # Free-form fields (platform) could nest beyond the decoder's recursion limit.
    deep = "[" * 5000 + "]" * 5000
    raw = body(image(config={**CONFIG, "platform": {"a": None}})).replace(b"null", deep.encode())
    invalid(raw, OCI_MANIFEST)
    raw = body(image(config={**CONFIG, "platform": {"a": None}})).replace(
        b"null", b"[" * 40 + b"]" * 40
    )
    invalid(raw, OCI_MANIFEST)


def test_every_accepted_manifest_can_be_stored() -> None:
    """What parse_manifest accepts must encode with the event transcoder (msgpack)."""
    platform = {"architecture": "amd64", "os": "linux", "os.features": ["a"], "n": 2**63 - 1}
    doc = index(manifests=[{**CHILD, "platform": platform}])
    info = parse_manifest(body(doc), OCI_INDEX)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(info), type=ManifestInfo) == info


# -- fuzzing ---------------------------------------------------------------------------------
def _check(data: bytes, content_type: str | None) -> None:
    try:
        info = parse_manifest(data, content_type)
    except RegistryError as exc:
        assert exc.code == "MANIFEST_INVALID"
        assert exc.status in (400, 413)
        return
    assert info.media_type in MANIFEST_TYPES
    msgspec.msgpack.encode(info)  # storable
    for digest in info.referenced_blobs() + info.referenced_manifests():
        assert digest.startswith(("sha256:", "sha512:"))


content_types = st.one_of(
    st.none(), st.sampled_from(sorted(MANIFEST_TYPES) + ["application/json", ""]), st.text()
)


@given(st.binary(max_size=2048), content_types)
def test_arbitrary_bytes_only_raise_registry_errors(data: bytes, content_type: str | None) -> None:
    _check(data, content_type)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "subject",
    "artifactType",
    "annotations",
]


@st.composite
def mutated_manifests(draw: st.DrawFn) -> bytes:
    """Valid manifests with fields (or descriptor fields) replaced by arbitrary JSON."""
    doc = copy.deepcopy(draw(st.sampled_from([image(), image(None), index(), index(None)])))
    for _ in range(draw(st.integers(1, 3))):
        target = doc
        if draw(st.booleans()):
            key = draw(st.sampled_from(["config", "layers", "manifests"]))
            value = doc.get(key)
            if isinstance(value, list) and value:
                value = value[draw(st.integers(0, len(value) - 1))]
            if isinstance(value, dict):
                target = value
        keys = sorted(target) + FIELDS + ["digest", "size", "platform", "urls"]
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return json.dumps(doc).encode()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(mutated_manifests(), content_types)
def test_mutated_manifests_only_raise_registry_errors(
    data: bytes, content_type: str | None
) -> None:
    _check(data, content_type)


# -- repeated descriptors: each digest once, where it first appears ---------------------------
_descriptors = st.lists(
    st.builds(
        lambda n, size: {"digest": f"sha256:{n:064x}", "size": size, "mediaType": "x"},
        st.integers(0, 6),  # few digests: lists repeat them
        st.integers(0, 2**40),
    ),
    max_size=40,
)


@given(_descriptors)
def test_distinct_keeps_each_digest_once_at_its_first_place(descriptors) -> None:
    found = distinct(descriptors)
    digests = [d["digest"] for d in found]
    assert len(digests) == len(set(digests))
    assert set(digests) == {d["digest"] for d in descriptors}
    for d in found:  # the first occurrence itself, in the order of first occurrences
        assert d is next(x for x in descriptors if x["digest"] == d["digest"])
    places = [next(i for i, x in enumerate(descriptors) if x is d) for d in found]
    assert places == sorted(places)


@given(st.integers(0, 2**20), _descriptors, st.booleans())
def test_image_size_counts_each_distinct_blob_once(size, layers, with_config) -> None:
    config = {"digest": "sha256:" + "c" * 64, "size": 7, "mediaType": "c"} if with_config else None
    blobs = {}
    for blob in ([config] if config else []) + layers:
        blobs.setdefault(blob["digest"], blob["size"])
    assert image_size(size, config, layers) == size + sum(blobs.values())
    assert image_size(size, config, layers + layers) == image_size(size, config, layers)
