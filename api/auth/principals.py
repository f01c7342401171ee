"""Who a credential stands for: a user signing in with their password, a user's personal
access token, or a robot — as a `domain.policy.Principal` (with the token's limits), and the
scopes the policy grants it. Shared by /token (sign-in and refresh) and the catalog."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from api.auth.jwts import Grant
from api.services import Services
from domain.access_tokens import (
    PERSONAL,
    is_robot_name,
    parse_robot_name,
    pat_id,
    secret_matches,
)
from domain.identity import is_valid_username
from domain.policy import (
    ADMIN_ROLE,
    ANONYMOUS,
    ROBOT_ROLE,
    Principal,
    Scope,
    granted,
    namespaces_of,
    visible_namespaces,
)
from projections import access_tokens, namespaces, users


class SignedIn(NamedTuple):
    principal: Principal
    credential: str  # the access token's id ("": the user's password)


class TokenRefused(Exception):
    """A token or robot credential that does not sign in; the reason is recorded."""


def token_id_of(username: str, secret: str) -> str | None:
    """The access token these credentials name, None if they are a username and password.
    A robot's token id is its name."""
    if is_robot_name(username):
        return username
    return pat_id(secret)


def _token_principal(found: access_tokens.Secret | None, subject: str) -> Principal:
    """The principal of a token (its row in the view) used by `subject`, as it is now."""
    if found is None or found.principal != subject:
        raise TokenRefused("invalid credentials")
    if found.revoked or not found.current:  # (a robot of a deleted namespace of its name)
        raise TokenRefused("token revoked")
    if found.expires_at.timestamp() <= time.time():
        raise TokenRefused("token expired")
    limits = {ns: tuple(actions) for ns, actions in found.scopes.items()}
    if found.token_type != PERSONAL:
        # a robot of a user's personal namespace goes quiet with its user
        if found.user_disabled:
            raise TokenRefused("user disabled")
        return Principal(subject, ROBOT_ROLE, limits)
    if found.user_role is None or found.user_disabled:
        raise TokenRefused("user disabled")
    return Principal(subject, found.user_role, limits)


async def with_token(services: Services, username: str, secret: str) -> SignedIn:
    """Sign in with a personal access token (of `username`) or a robot's secret."""
    token_id = token_id_of(username, secret)
    if token_id is None or (is_robot_name(username) and parse_robot_name(username) is None):
        raise TokenRefused("invalid credentials")
    found = await services.query(access_tokens.secret, token_id)
    if found is None or not secret_matches(secret, found.secret_hash):
        raise TokenRefused("invalid credentials")
    return SignedIn(_token_principal(found, username), token_id)


async def resolve(services: Services, subject: str, credential: str) -> Principal | None:
    """The principal of an earlier sign-in (a refresh token, an access token's `cred`) as
    it is now; None if it may no longer sign in (revoked, expired, disabled, unknown)."""
    if credential:
        found = await services.query(access_tokens.secret, credential)
        try:
            return _token_principal(found, subject)
        except TokenRefused:
            return None
    if not is_valid_username(subject):
        return None
    user = await services.query(users.get, subject)
    if user is None or user.disabled:
        return None
    return Principal(subject, user.role)


async def grant(
    services: Services, principal: Principal, requested: Iterable[Scope]
) -> list[Scope]:
    """The granted subset of the requested scopes, with the facts of their namespaces."""
    requested = list(requested)
    wanted = namespaces_of(requested)
    facts = (  # a robot's rights are its limits alone
        await services.query(namespaces.facts, principal.username, wanted)
        if wanted and principal.role != ROBOT_ROLE
        else {}
    )
    return granted(principal, facts, requested, services.anonymous_pull)


async def readable(services: Services, principal: Principal) -> list[str] | None:
    """The namespaces whose repositories `principal` may pull (None: all)."""
    if not principal.username:
        return await services.query(namespaces.public_names) if services.anonymous_pull else []
    if principal.role in (ADMIN_ROLE, ROBOT_ROLE):
        base = None
    else:
        base = await services.query(namespaces.readable, principal.username)
    return visible_namespaces(principal, base)


async def pull_namespaces(services: Services, token: Grant | None) -> list[str] | None:
    """The namespaces whose repositories the holder of a /v2 token may pull (None: all):
    what the catalog shows and where a mount without `from` may look."""
    if token is None:
        return []
    if not token.subject:
        principal: Principal | None = ANONYMOUS
    else:
        principal = await resolve(services, token.subject, token.credential)
    return [] if principal is None else await readable(services, principal)
