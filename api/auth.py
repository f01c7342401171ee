"""The one place where identity plugs in.

Every /v2 and /api handler asks `authorize` for the caller before it acts. Until the identity
issue lands, anonymous callers are allowed everything; the token service will replace the
body of `authorize` (and answer 401 with a Bearer challenge), not its callers.
"""

from __future__ import annotations

from litestar import Request

from domain.registry import Caller

PULL = "pull"
PUSH = "push"
DELETE = "delete"


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def authorize(request: Request, repository: str | None, *actions: str) -> Caller:
    """Who is calling, after checking they may do `actions` on `repository`."""
    return Caller(actor="anonymous", client=client_address(request))
