"""The one place where identity plugs in.

Every /v2 handler asks `authorize` for the caller before it acts. A request needs
`Authorization: Bearer <token>` with a token this registry signed (ES256, a known key, for
this service, not expired) whose access claims cover the repository and actions; otherwise
it gets 401 UNAUTHORIZED with the distribution token specification's challenge:

    WWW-Authenticate: Bearer realm="<base>/token",service="<service>",
        scope="repository:NAME:ACTIONS"

with `,error="insufficient_scope"` added when a valid token lacks the scope (a
cross-repository mount's challenge names its source too: `scope="repository:NAME:pull,push
repository:SOURCE:pull"`). Verified tokens
are cached until they expire, so the hot path (manifest GETs) costs a dictionary lookup.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from litestar import Request

from api.auth.jwts import ApiClaims, Grant, TokenCache
from domain.caller import ANONYMOUS_ACTOR, Caller
from domain.errors import RegistryError
from domain.names import namespace_of
from domain.policy import CATALOG, Principal, repository_actions
from projections import namespaces, revoked_tokens

PULL = "pull"
PUSH = "push"
DELETE = "delete"
ANONYMOUS = ANONYMOUS_ACTOR

_HOST = re.compile(r"[A-Za-z0-9.\-_:\[\]]{1,255}")
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-_.~+/]+=*) *")


class Unauthorized(RegistryError):
    """401 with the Bearer challenge that tells the client where to get a token."""

    def __init__(self, challenge: str, message: str | None = None) -> None:
        super().__init__("UNAUTHORIZED", message)
        self.headers = {"WWW-Authenticate": challenge}


def _peer(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def scope_client(scope: Any, proxies: Any) -> str:
    """Who the client of an ASGI request is (see `client_address`), from its scope alone."""
    cached = scope.get("cyp_client")
    if cached is not None:
        return cached
    peer = scope.get("client")
    found = peer[0] if peer else ""
    if proxies:
        forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
        found = proxies.client(found, forwarded)
    scope["cyp_client"] = found
    return found


def client_address(request: Request[Any, Any, Any]) -> str:
    """Who the client is: the connection's peer, or what a trusted proxy says in
    `X-Forwarded-For` (`api.proxies`; uvicorn's own proxy handling is off). The one place:
    the throttle's key and every event's `client` come from here."""
    return scope_client(request.scope, request.app.state.services.trusted_proxies)


def user_agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")


def base_url(request: Request[Any, Any, Any]) -> str:
    """Where the client reaches this registry: CYP_PUBLIC_URL, or the request's own origin
    (the token realm must be on the registry's own origin: crane refuses any other)."""
    services = request.app.state.services
    if services.public_url:
        return services.public_url.rstrip("/")
    proxies = services.trusted_proxies
    forwarded = proxies.scheme(_peer(request), request.headers.get("x-forwarded-proto"))
    scheme = forwarded or request.scope.get("scheme", "http")
    scheme = scheme if scheme in ("http", "https") else "http"
    host = request.headers.get("host", "")
    if _HOST.fullmatch(host) is None:
        server = request.scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


def challenge(
    request: Request[Any, Any, Any], scope: str | None = None, error: str | None = None
) -> str:
    service = request.app.state.services.tokens.service
    value = f'Bearer realm="{base_url(request)}/token",service="{service}"'
    if scope:
        value += f',scope="{scope}"'
    if error:
        value += f',error="{error}"'
    return value


def bearer_of(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (None: not one)."""
    match = _BEARER.fullmatch(header) if header else None
    return match[1] if match else None


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    return bearer_of(request.headers.get("authorization"))


def current_grant(request: Request[Any, Any, Any]) -> Grant | None:
    """The verified token of this request (None: no valid one)."""
    return scope_grant(request.scope, request.app.state.services.token_cache)


def scope_grant(scope: Any, cache: TokenCache | None) -> Grant | None:
    """The verified token of an ASGI request, from its scope alone (the fast paths')."""
    cached = scope.get("cyp_grant")
    if cached is not None:
        return cached
    token = None
    for key, value in scope["headers"]:
        if key == b"authorization":
            token = bearer_of(value.decode("latin-1"))
            break
    if token is None:
        return None
    grant = cache.grant(token) if cache is not None else None
    if grant is not None:
        scope["cyp_grant"] = grant
    return grant


def _resource(repository: str | None, actions: tuple[str, ...]) -> tuple[str, str, tuple]:
    if repository is None:
        return CATALOG[0], CATALOG[1], ("*",)
    return "repository", repository, actions


def _caller(request: Request[Any, Any, Any], grant: Grant) -> Caller:
    return scope_caller(request.scope, request.app.state.services.trusted_proxies, grant)


def scope_caller(scope: Any, proxies: Any, grant: Grant) -> Caller:
    return Caller(actor=grant.subject or ANONYMOUS, client=scope_client(scope, proxies))


async def authenticate(request: Request[Any, Any, Any]) -> Caller:
    """A valid token of a signed-in user (the `GET /v2/` ping, or before answering about an
    invalid route). Zero trust: an anonymous token (from /token without credentials) is not
    enough, so `docker login` with no or wrong credentials fails at the ping — unless the
    operator turned anonymous pull on (CYP_ANONYMOUS_PULL)."""
    grant = current_grant(request)
    anonymous_ok = request.app.state.services.anonymous_pull
    if grant is None or not (grant.subject or anonymous_ok):
        raise Unauthorized(challenge(request))
    return _caller(request, grant)


async def permitted(request: Request[Any, Any, Any], repository: str, *actions: str) -> bool:
    """Whether the request's token covers `actions` on `repository` (no challenge)."""
    grant = current_grant(request)
    return grant is not None and grant.allows("repository", repository, actions)


def scope_of(repository: str, *actions: str) -> str:
    """A repository scope as a challenge names it: `repository:NAME:ACTIONS`."""
    return f"repository:{repository}:{','.join(actions)}"


async def authorize(
    request: Request[Any, Any, Any],
    repository: str | None,
    *actions: str,
    challenged: tuple[str, ...] = (),
) -> Caller:
    """Who is calling, after checking they may do `actions` on `repository` (None: the
    catalog, which needs `registry:catalog:*`). A refusal's challenge names the required
    scope, or `challenged` instead: the scopes this request may use beyond what it needs
    (a mount's source), space-separated as Distribution does, so that the client asks for
    one token that covers them all."""
    kind, name, wanted = _resource(repository, actions)
    grant = current_grant(request)
    if grant is not None and grant.allows(kind, name, wanted):
        return _caller(request, grant)
    scope = f"{kind}:{name}:{','.join(wanted)}"
    named = " ".join(challenged) if challenged else scope
    if grant is None:
        raise Unauthorized(challenge(request, named))
    raise Unauthorized(
        challenge(request, named, "insufficient_scope"),
        "authentication required: the token does not grant " + scope,
    )


# -- /api --------------------------------------------------------------------------------------
# Every /api call but `POST /api/auth/login` carries `Authorization: Bearer <api token>`: a
# session token from that login (audience `cyp-api`; a /v2 token is refused, and an /api
# token is refused on /v2). Per request the guard checks the signature (cached per token until
# it expires), then asks the views in one round trip whether the token was revoked (logout
# on any replica) and whether its user still exists, is enabled, and with which role.

API_CHALLENGE = 'Bearer realm="cyp-api"'


class ApiUnauthorized(RegistryError):
    """401 in the envelope, with `WWW-Authenticate: Bearer`."""

    def __init__(self, message: str, error: str | None = "invalid_token") -> None:
        super().__init__("UNAUTHORIZED", message)
        challenge = API_CHALLENGE + (f',error="{error}"' if error else "")
        self.headers = {"WWW-Authenticate": challenge}


class ApiCaller(NamedTuple):
    """A signed-in /api caller: who, from where, with which role, on which token."""

    actor: str
    client: str
    role: str
    claims: ApiClaims

    @property
    def caller(self) -> Caller:
        return Caller(self.actor, self.client)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


async def api_caller(request: Request[Any, Any, Any]) -> ApiCaller:
    """The signed-in caller of an /api request; ApiUnauthorized (401) otherwise."""
    cached = request.scope.get("cyp_api_caller")
    if cached is not None:
        return cached
    if not request.headers.get("authorization"):
        raise ApiUnauthorized("authentication required", None)
    found = await session_caller(request, bearer_token(request))
    request.scope["cyp_api_caller"] = found  # type: ignore[typeddict-unknown-key]
    return found


async def session_caller(request: Request[Any, Any, Any], token: str | None) -> ApiCaller:
    """The caller an /api session token stands for, as of now (the web UI's session cookie
    holds the same token): ApiUnauthorized if it is invalid, expired, signed out, of a
    disabled user, or older than the user's last password change."""
    services = request.app.state.services
    claims = services.api_tokens.verify(token) if token is not None else None
    if claims is None:
        raise ApiUnauthorized("invalid or expired token")
    session = await services.query(revoked_tokens.session, claims.jti, claims.subject)
    if session.revoked:
        services.api_tokens.revoked(claims)
        raise ApiUnauthorized("the token was revoked (signed out)")
    if session.role is None or session.disabled:
        raise ApiUnauthorized("the user is unknown or disabled")
    changed = session.password_changed_at
    if changed is not None and changed.timestamp() > claims.auth_time:
        # a new password ends the sessions opened before it
        raise ApiUnauthorized("the password changed since signing in: sign in again")
    return ApiCaller(claims.subject, client_address(request), session.role, claims)


def api_principal(caller: ApiCaller) -> Principal:
    return Principal(caller.actor, caller.role)


async def readable_namespaces(
    request: Request[Any, Any, Any], caller: ApiCaller
) -> list[str] | None:
    """The namespaces whose repositories an /api caller may see (pull): None means all (a
    system admin). Lists, search, details, history and system info filter by this."""
    if caller.is_admin:
        return None
    return await request.app.state.services.query(namespaces.readable, caller.actor)


async def api_actions(
    request: Request[Any, Any, Any], caller: ApiCaller, repository: str
) -> tuple[str, ...]:
    """What an /api caller may do with `repository` (pull, push, delete), by the policy."""
    services = request.app.state.services
    namespace = namespace_of(repository)
    found = await services.query(namespaces.facts, caller.actor, [namespace])
    return repository_actions(
        api_principal(caller), namespace, found.get(namespace), services.anonymous_pull
    )


async def api_admin(request: Request[Any, Any, Any]) -> ApiCaller:
    """The signed-in caller if a system admin; 403 DENIED for other users."""
    found = await api_caller(request)
    if not found.is_admin:
        raise RegistryError("DENIED", "system administrators only")
    return found
