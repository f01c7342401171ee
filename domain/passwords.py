"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters): only hashes are stored.

A hash is a self-describing PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), so hashes
made with older parameters still verify after the parameters change.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from domain.errors import RegistryError

MIN_LENGTH = 8
# Longer passwords only cost hashing time (a cheap way to burn CPU): refuse them.
MAX_LENGTH = 1024

_hasher = PasswordHasher(type=Type.ID)


def check_password(password: str) -> str:
    """A password that may be set: MIN_LENGTH..MAX_LENGTH characters."""
    if not isinstance(password, str) or not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise RegistryError(
            "INVALID_INPUT",
            f"password must be {MIN_LENGTH} to {MAX_LENGTH} characters long",
            {"field": "password"},
        )
    return password


def hash_password(password: str) -> str:
    """The argon2id hash of a valid password (a fresh random salt each time)."""
    return _hasher.hash(check_password(password))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("not a password of anyone")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches the hash. No hash (an unknown user) costs the same time
    as a wrong password, so the answer's timing does not tell which names exist."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """The hash was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)
