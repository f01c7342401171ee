"""The OCI grammars (repository names, tags, digests), checked against strategies built from
the distribution spec's grammar itself, not from the product's regular expressions."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import RegistryError
from domain.names import (
    DIGEST_HEX_LENGTHS,
    MAX_NAME_LENGTH,
    Digest,
    check_name,
    check_reference,
    is_digest,
    is_valid_name,
    is_valid_tag,
    parse_digest,
)

ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
TAG_FIRST = string.ascii_letters + string.digits + "_"
TAG_REST = TAG_FIRST + ".-"

# -- strategies from the grammar -------------------------------------------------------------
#   path-component ::= [a-z0-9]+ (separator [a-z0-9]+)*
#   separator      ::= "." | "_" | "__" | "-"+
#   name           ::= path-component ("/" path-component)*
alnum_run = st.text(ALNUM, min_size=1, max_size=8)
separator = st.one_of(
    st.just("."), st.just("_"), st.just("__"), st.integers(1, 3).map(lambda n: "-" * n)
)


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(alnum_run)]
    for _ in range(draw(st.integers(0, 3))):
        parts += [draw(separator), draw(alnum_run)]
    return "".join(parts)


names = st.lists(path_components(), min_size=1, max_size=4).map("/".join)


@st.composite
def long_names(draw: st.DrawFn, length: int) -> str:
    """A grammatical name of exactly `length` characters (components of ≥ 1 char)."""
    out = draw(names)
    while len(out) < length:
        out += "/" + draw(path_components())
    out = out[:length]
    # Cutting may leave a trailing separator or slash: replace the tail with letters.
    if out[-1] not in ALNUM:
        out = out.rstrip("/._-") + "a" * (length - len(out.rstrip("/._-")))
    return out


tags = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(TAG_FIRST),
    st.text(TAG_REST, max_size=127),
)


@st.composite
def digests(draw: st.DrawFn, algorithm: str | None = None) -> str:
    algorithm = algorithm or draw(st.sampled_from(sorted(DIGEST_HEX_LENGTHS)))
    n = DIGEST_HEX_LENGTHS[algorithm]
    return f"{algorithm}:{draw(st.text(HEX, min_size=n, max_size=n))}"


def _code(fn, *args) -> str:
    with pytest.raises(RegistryError) as info:
        fn(*args)
    return info.value.code


# -- names -----------------------------------------------------------------------------------
@given(names)
@example("a")
@example("library/ubuntu")
@example("a-b__c.d/e---f_g")
@example("0/1/2")
def test_valid_names_are_accepted(name: str) -> None:
    assert is_valid_name(name)
    assert check_name(name) == name  # round trip: the name is returned unchanged


@st.composite
def broken_names(draw: st.DrawFn) -> str:
    """Valid names, broken in one way the grammar forbids."""
    name = draw(names)
    how = draw(st.integers(0, 6))
    if how == 0:  # a character outside the alphabet, anywhere
        bad = draw(st.sampled_from("ABCZ :@!#$%^&*()+=~`'\"\\,;<>?é\x00\n\t"))
        i = draw(st.integers(0, len(name)))
        return name[:i] + bad + name[i:]
    if how == 1:  # leading separator or slash
        return draw(st.sampled_from([".", "_", "-", "/", "__"])) + name
    if how == 2:  # trailing separator or slash
        return name + draw(st.sampled_from([".", "_", "-", "/", "__"]))
    if how == 3:  # an empty path component
        i = draw(st.integers(1, len(name)))
        return name[:i] + "//" + name[i:] if name[i - 1] in ALNUM else name + "//a"
    if how == 4:  # separators that are not one separator: "._", "___", ".-", "-."
        sep = draw(st.sampled_from(["._", "___", ".-", "-.", "_-", "..", "-_"]))
        return f"{name}{sep}a"
    if how == 5:  # upper-case the whole name (it has at least one letter or it's digits)
        return name.upper() if any(c.isalpha() for c in name) else name + "A"
    return ""  # empty


@given(broken_names())
@example("")
@example("UPPER")
@example("a//b")
@example("/a")
@example("a/")
@example("a___b")
@example("a..b")
@example("a:b")
@example("a@sha256")
@example("ａ")  # full-width letter: not ASCII
def test_invalid_names_are_rejected(name: str) -> None:
    assert not is_valid_name(name)
    assert _code(check_name, name) == "NAME_INVALID"


def test_name_length_limit() -> None:
    at_limit = "a" * MAX_NAME_LENGTH
    assert MAX_NAME_LENGTH == 255
    assert check_name(at_limit) == at_limit
    assert _code(check_name, at_limit + "a") == "NAME_INVALID"
    error = pytest.raises(RegistryError, check_name, at_limit + "a").value
    assert error.status == 400


@given(st.data())
def test_name_length_limit_with_components(data: st.DataObject) -> None:
    at_limit = data.draw(long_names(MAX_NAME_LENGTH))
    assert len(at_limit) == MAX_NAME_LENGTH
    assert is_valid_name(at_limit)
    over = data.draw(long_names(MAX_NAME_LENGTH + data.draw(st.integers(1, 50))))
    assert not is_valid_name(over)
    assert _code(check_name, over) == "NAME_INVALID"


# -- tags ------------------------------------------------------------------------------------
@given(tags)
@example("latest")
@example("_")
@example("v1.2.3-rc.1_build")
@example("A" * 128)
def test_valid_tags_are_accepted(tag: str) -> None:
    assert is_valid_tag(tag)
    assert check_reference(tag) == tag
    assert not is_digest(tag)


@given(
    st.one_of(
        st.builds(lambda c, rest: c + rest, st.sampled_from(".-"), st.text(TAG_REST, max_size=20)),
        st.builds(
            lambda head, bad, tail: head + bad + tail,
            tags,
            st.sampled_from(list("/ +!#$%&*()=~`'\"\\,;<>?é\n\t\x00")),
            st.text(TAG_REST, max_size=5),
        ),
        st.text(TAG_REST, min_size=129, max_size=200).map(lambda t: "a" + t[1:]),
    )
)
@example("")
@example("a" * 129)
@example(".hidden")
@example("-dash")
def test_invalid_tags_are_rejected(tag: str) -> None:
    assert not is_valid_tag(tag)
    with pytest.raises(RegistryError) as info:
        check_reference(tag)
    # A reference with ':' is a (bad) digest; anything else is a bad tag.
    assert info.value.code == ("DIGEST_INVALID" if ":" in tag else "MANIFEST_INVALID")
    assert info.value.status == 400


# -- digests ---------------------------------------------------------------------------------
@given(digests())
@example("sha256:" + hashlib.sha256(b"").hexdigest())
@example("sha512:" + hashlib.sha512(b"").hexdigest())
def test_valid_digests_round_trip(digest: str) -> None:
    parsed = parse_digest(digest)
    assert str(parsed) == digest
    assert parse_digest(str(Digest(*parsed))) == parsed
    assert parsed.algorithm in ("sha256", "sha512")
    assert len(parsed.encoded) == DIGEST_HEX_LENGTHS[parsed.algorithm]
    assert is_digest(digest)
    assert check_reference(digest) == digest


@given(st.binary(max_size=256), st.sampled_from(["sha256", "sha512"]))
def test_hashlib_digests_parse(data: bytes, algorithm: str) -> None:
    digest = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    assert str(parse_digest(digest)) == digest


def test_digest_lengths() -> None:
    assert DIGEST_HEX_LENGTHS == {"sha256": 64, "sha512": 128}
    for algorithm, n in DIGEST_HEX_LENGTHS.items():
        parse_digest(f"{algorithm}:{'0' * n}")
        for wrong in (n - 1, n + 1, 0, n * 2 if n == 64 else n // 2):
            assert _code(parse_digest, f"{algorithm}:{'0' * wrong}") == "DIGEST_INVALID"
    # A sha512-length encoding under sha256 and vice versa.
    assert _code(parse_digest, "sha256:" + "a" * 128) == "DIGEST_INVALID"
    assert _code(parse_digest, "sha512:" + "a" * 64) == "DIGEST_INVALID"


@st.composite
def broken_digests(draw: st.DrawFn) -> str:
    digest = draw(digests())
    algorithm, encoded = digest.split(":")
    how = draw(st.integers(0, 7))
    if how == 0:  # upper-case hex (the spec's sha256/sha512 encodings are lower-case)
        i = draw(st.integers(0, len(encoded) - 1))
        c = draw(st.sampled_from("ABCDEF"))
        return f"{algorithm}:{encoded[:i]}{c}{encoded[i + 1 :]}"
    if how == 1:  # a non-hex character that the general grammar allows
        i = draw(st.integers(0, len(encoded) - 1))
        c = draw(st.sampled_from("gxz=_-G"))
        return f"{algorithm}:{encoded[:i]}{c}{encoded[i + 1 :]}"
    if how == 2:  # truncated or extended
        delta = draw(st.integers(1, 10))
        return f"{algorithm}:{encoded[:-delta] if draw(st.booleans()) else encoded + 'a' * delta}"
    if how == 3:  # an algorithm we do not support (grammatical or not)
        other = draw(st.sampled_from(["md5", "sha1", "sha384", "sha256+b64u", "blake3", "SHA256"]))
        return f"{other}:{encoded}"
    if how == 4:  # no separator
        return algorithm + encoded
    if how == 5:  # empty parts
        return draw(st.sampled_from([f"{algorithm}:", f":{encoded}", ":"]))
    if how == 6:  # whitespace around
        return draw(st.sampled_from([" ", "\n", "\t"])) + digest + draw(st.sampled_from(["", "\n"]))
    return f"{digest}:{encoded}"  # two separators


@given(broken_digests())
@example("")
@example("sha256")
@example("sha256:")
@example("sha256:" + "A" * 64)
@example("sha256:" + "0" * 63 + "\n")
@example("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564")
def test_invalid_digests_are_rejected(digest: str) -> None:
    assert _code(parse_digest, digest) == "DIGEST_INVALID"
    error = pytest.raises(RegistryError, parse_digest, digest).value
    assert error.status == 400
    if ":" in digest:
        assert _code(check_reference, digest) == "DIGEST_INVALID"


@given(st.text(max_size=80))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    """Whatever a client sends, the answer is a verdict or a RegistryError, never a crash."""
    is_valid_name(text)
    is_valid_tag(text)
    for check in (check_name, parse_digest, check_reference):
        try:
            check(text)
        except RegistryError as exc:
            assert exc.code in {"NAME_INVALID", "DIGEST_INVALID", "MANIFEST_INVALID"}
