"""Grammars of the OCI distribution spec: repository names, tags, references, digests."""

from __future__ import annotations

import re
from typing import NamedTuple

from domain.errors import RegistryError

# Path components of a repository name, joined by "/" (distribution spec, "Pulling manifests").
NAME_RE = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")
# Names without a slash (`myapp`, the guide's own example) live in the root namespace, as on
# Docker Hub; `org/app` and `org/team/app` live in `org`.
ROOT_NAMESPACE = "library"
# Distribution caps the whole name (host included) at 255 characters.
MAX_NAME_LENGTH = 255

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


class Digest(NamedTuple):
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"


def is_valid_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and NAME_RE.fullmatch(name) is not None


def namespace_of(repository: str) -> str:
    """The namespace a repository belongs to: its first path component, or `library`."""
    head, slash, _ = repository.partition("/")
    return head if slash else ROOT_NAMESPACE


def check_name(name: str) -> str:
    if not is_valid_name(name):
        raise RegistryError("NAME_INVALID", detail={"name": name})
    return name


def is_valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def parse_digest(value: str) -> Digest:
    """Parse and validate a digest; only sha256 and sha512 are accepted for content."""
    match = DIGEST_RE.fullmatch(value)
    if match is None:
        raise RegistryError("DIGEST_INVALID", "invalid digest format", {"digest": value})
    algorithm, encoded = match.groups()
    length = DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise RegistryError(
            "DIGEST_INVALID", f"unsupported digest algorithm {algorithm}", {"digest": value}
        )
    if len(encoded) != length or _HEX.fullmatch(encoded) is None:
        raise RegistryError("DIGEST_INVALID", "invalid digest encoding", {"digest": value})
    return Digest(algorithm, encoded)


def is_digest(reference: str) -> bool:
    return ":" in reference


def check_reference(reference: str) -> str:
    """A manifest reference is a tag or a digest."""
    if is_digest(reference):
        parse_digest(reference)
    elif not is_valid_tag(reference):
        raise RegistryError("MANIFEST_INVALID", "invalid tag", {"reference": reference}, status=400)
    return reference
