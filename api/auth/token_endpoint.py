"""The token endpoint (`/token`, on the registry's own origin), as the distribution token
specification describes it:

- `GET /token?service=…&scope=…` with HTTP Basic credentials (or none: an anonymous token
  without access) answers `{"token", "access_token", "expires_in", "issued_at"}`;
- `POST /token` with the OAuth2 form newer clients send: `grant_type=password` (username,
  password, service, scope, client_id; `access_type=offline` also returns a
  `refresh_token`, which `docker login` keeps as its identity token) or
  `grant_type=refresh_token`.

The access claims are exactly the granted subset of the requested scopes (`domain.policy`).
Every sign-in with credentials, good or bad, is recorded as a login event (method "docker");
the password is never stored, logged nor answered. Wrong credentials, unknown and disabled
users all get the same 401.

Brute force: after CYP_LOGIN_MAX_FAILURES failed sign-ins within CYP_LOGIN_WINDOW seconds
from one client address (or ten times as many for one username, from addresses that did not
sign in as it lately: `domain.throttle`), further attempts get 429 with `Retry-After` before
any password is checked, and are recorded as login.failed with reason "throttled". The
attempt is reserved before its password is checked (`api.auth.throttle`), so parallel attempts
cannot all slip through; the failures are counted in Postgres (`projections.login_failures`),
so every replica agrees; `cyp-registry user unlock NAME [--address IP]` lifts the throttle.
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from litestar import Request, Response, get, post

from api.auth import principals
from api.auth.principals import SignedIn, token_id_of
from api.auth.throttle import Throttled, attempt, record_attempt
from api.services import Services
from domain.identity import is_valid_username
from domain.passwords import verify_password
from domain.policy import ANONYMOUS, Principal, Scope, parse_scopes
from domain.throttle import retry_after_header
from projections import users

METHOD = "docker"
_MAX_FORM = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class Refused(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        oauth: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.oauth = status, code, message, oauth
        self.retry_after = retry_after


def _refusal(request: Request[Any, Any, Any], exc: Refused) -> Response[Any]:
    body: dict[str, Any] = {"errors": [{"code": exc.code, "message": exc.message, "detail": {}}]}
    if exc.oauth:  # the OAuth2 form's clients read these
        body["error"] = exc.oauth
        body["error_description"] = exc.message
    headers = dict(_NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{request.app.state.services.tokens.service}"'
    if exc.retry_after is not None:
        headers["Retry-After"] = retry_after_header(exc.retry_after)
    return Response(body, status_code=exc.status, headers=headers)


def _basic(header: str) -> tuple[str, str]:
    """(username, password) of a `Basic` Authorization header; Refused if malformed."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise Refused(401, "UNAUTHORIZED", "basic credentials required")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Refused(401, "UNAUTHORIZED", "malformed basic credentials") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise Refused(401, "UNAUTHORIZED", "malformed basic credentials")
    return username, password


def _check_service(services: Services, service: str | None) -> None:
    if service and service != services.tokens.service:
        raise Refused(
            400,
            "DENIED",
            f"unknown service; this registry is {services.tokens.service!r}",
            "invalid_request",
        )


def _throttled(exc: Throttled) -> Refused:
    return Refused(
        429,
        "TOOMANYREQUESTS",
        "too many failed sign-ins; try again later",
        "invalid_grant",
        retry_after=exc.wait,
    )


async def sign_in(
    request: Request[Any, Any, Any],
    username: str,
    password: str,
    method: str = METHOD,
    tokens: bool = True,
) -> SignedIn:
    """Who these credentials are good for; recorded either way (with `method`: docker for
    /token, api for /api/auth/login); Refused (401, or 429 while throttled) if nobody.
    With `tokens`, a personal access token or a robot's secret is good too (not for /api
    sessions: a limited token must not open the user's whole account). The throttle
    (`api.auth.throttle.attempt`) decides before any credential is checked."""
    services: Services = request.app.state.services
    token_id = token_id_of(username, password) if tokens else None
    known = token_id is None and is_valid_username(username)  # else nobody's (may hold a NUL)
    user = await services.query(users.credentials, username) if known else None
    cached = user is not None and services.verified.known(user.name, user.password_hash, password)
    try:
        async with attempt(request, username, method, checked=not cached):
            return await _checked(request, username, password, method, token_id, user, cached)
    except Throttled as exc:
        raise _throttled(exc) from None


async def _checked(
    request: Request[Any, Any, Any],
    username: str,
    password: str,
    method: str,
    token_id: str | None,
    user: users.Credentials | None,
    cached: bool,
) -> SignedIn:
    services: Services = request.app.state.services
    refused = Refused(401, "UNAUTHORIZED", "invalid username or password", "invalid_grant")
    if token_id is not None:
        try:
            found = await principals.with_token(services, username, password)
        except principals.TokenRefused as exc:
            await record_attempt(request, username, str(exc), method, token_id)
            raise refused from None
        await record_attempt(request, username, None, method, token_id)
        return found
    ok = cached or await anyio.to_thread.run_sync(
        verify_password, user.password_hash if user else None, password, limiter=services.hashing
    )
    if ok and user is not None and not cached:
        services.verified.remember(user.name, user.password_hash, password)
    if user is None or not ok:
        await record_attempt(request, username, "invalid credentials", method)
        raise refused
    if user.disabled:
        await record_attempt(request, username, "user disabled", method)
        raise refused
    await record_attempt(request, username, None, method)
    return SignedIn(Principal(user.name, user.role), "")


async def _issue(
    services: Services, signed_in: SignedIn, requested: list[Scope]
) -> tuple[dict[str, Any], list[Scope]]:
    scopes = await principals.grant(services, signed_in.principal, requested)
    now = time.time()
    token, claims = services.tokens.issue(
        signed_in.principal.username, [s.claim() for s in scopes], now, signed_in.credential
    )
    body = {
        "token": token,
        "access_token": token,
        "expires_in": claims["exp"] - claims["iat"],
        "issued_at": datetime.fromtimestamp(claims["iat"], UTC).isoformat().replace("+00:00", "Z"),
    }
    return body, scopes


@get("/token")
async def token_get(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    try:
        _check_service(services, request.query_params.get("service"))
        requested = parse_scopes(request.query_params.getall("scope", []))
        header = request.headers.get("authorization")
        if header:
            username, password = _basic(header)
            signed_in = await sign_in(request, username, password)
        else:
            signed_in = SignedIn(ANONYMOUS, "")
        body, _ = await _issue(services, signed_in, requested)
    except Refused as exc:
        return _refusal(request, exc)
    return Response(body, status_code=200, headers=_NO_STORE)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > _MAX_FORM:
            raise Refused(400, "DENIED", "form too large", "invalid_request")
    try:
        fields = parse_qs(data.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "DENIED", "malformed form", "invalid_request") from None
    return {k: v[0] for k, v in fields.items()}


async def _refreshed(services: Services, refresh_token: str) -> SignedIn:
    claims = services.tokens.verify_refresh(refresh_token)
    invalid = Refused(401, "UNAUTHORIZED", "invalid refresh token", "invalid_grant")
    if claims is None:
        raise invalid
    subject, credential = claims.get("sub"), claims.get("cred", "")
    if not isinstance(subject, str) or not isinstance(credential, str):
        raise invalid
    principal = await principals.resolve(services, subject, credential)
    if principal is None:
        raise invalid
    if not credential:  # a user who changed (password, role…) since signs in again
        changed = await services.query(users.changed_at, subject)
        auth_time = claims.get("auth_time", claims.get("iat", 0))
        if changed is None or not isinstance(auth_time, int | float):
            raise invalid
        if changed.timestamp() > auth_time:
            raise invalid
    return SignedIn(principal, credential)


@post("/token", status_code=200, request_max_body_size=_MAX_FORM)
async def token_post(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    try:
        form = await _form(request)
        _check_service(services, form.get("service"))
        requested = parse_scopes([form.get("scope", "")])
        grant_type = form.get("grant_type", "")
        refresh_token = None
        if grant_type == "password":
            signed_in = await sign_in(request, form.get("username", ""), form.get("password", ""))
            if form.get("access_type") == "offline":
                refresh_token = services.tokens.issue_refresh(
                    signed_in.principal.username,
                    services.refresh_ttl,
                    credential=signed_in.credential,
                )
        elif grant_type == "refresh_token":
            refresh_token = form.get("refresh_token", "")
            signed_in = await _refreshed(services, refresh_token)
        else:
            raise Refused(400, "UNSUPPORTED", "unsupported grant_type", "unsupported_grant_type")
        body, scopes = await _issue(services, signed_in, requested)
    except Refused as exc:
        return _refusal(request, exc)
    body["scope"] = " ".join(str(s) for s in scopes)
    if refresh_token:
        body["refresh_token"] = refresh_token
    return Response(body, status_code=200, headers=_NO_STORE)
