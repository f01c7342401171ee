"""Write OCI image layouts by hand (no network, no daemon): deterministic gzip tar layers,
image configs docker accepts (diff_ids match), manifests, indexes and `index.json`."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def canonical(document: dict) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def layer_tar(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of `files` (path → content) with fixed owners and times."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass
class Layout:
    """An OCI image layout directory being filled with blobs."""

    root: Path
    blobs: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data: bytes, media_type: str, **extra) -> dict:
        """Store `data`; its descriptor."""
        digest = sha256(data)
        (self.root / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def image(
        self, layers: list[dict[str, bytes]], arch: str = "amd64", labels: dict | None = None
    ) -> dict:
        """An image of `layers` (each a dict of files) for linux/`arch`; its manifest descriptor."""
        descriptors, diff_ids = [], []
        for files in layers:
            tar = layer_tar(files)
            diff_ids.append(sha256(tar))
            descriptors.append(self.blob(gzip.compress(tar, mtime=0), OCI_LAYER_GZIP))
        config = {
            "architecture": arch,
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Labels": labels or {}, "Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "e2e"} for _ in layers],
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.blob(canonical(config), OCI_CONFIG),
            "layers": descriptors,
        }
        return self.blob(
            canonical(manifest), OCI_MANIFEST, platform={"architecture": arch, "os": "linux"}
        )

    def index(self, manifests: list[dict]) -> dict:
        """An image index of `manifests` (descriptors with platforms); its descriptor."""
        document = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.blob(canonical(document), OCI_INDEX)

    def publish(self, **refs: dict) -> None:
        """Write index.json naming each descriptor by its ref (`oci:<dir>:<ref>`)."""
        manifests = []
        for ref, descriptor in refs.items():
            entry = {k: v for k, v in descriptor.items() if k != "platform"}
            manifests.append({**entry, "annotations": {REF_NAME: ref}})
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        (self.root / "index.json").write_text(json.dumps(index))


def read_blobs(root: Path) -> dict[str, bytes]:
    """Every blob of the layout at `root`, by digest."""
    folder = root / "blobs" / "sha256"
    return {f"sha256:{p.name}": p.read_bytes() for p in folder.iterdir()}


def ref_descriptor(root: Path, ref: str) -> dict:
    """The descriptor index.json gives for `ref`."""
    index = json.loads((root / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get(REF_NAME) == ref:
            return entry
    raise KeyError(ref)
