"""Every route of the web UI, for `api.app` to mount: the pages of each room and the
static files (CSS, script, icon) they use, served from this origin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Response
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from api.web import account, admin, dashboard, history, images, language, signing_in
from api.web.security import CSP

_STATIC = Path(__file__).parent / "static"


async def _guarded(response: Response[Any]) -> Response[Any]:
    # no sniffing, and the policy also covers an SVG opened on its own
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = CSP
    return response


static_files = create_static_files_router(
    path="/static",
    directories=[_STATIC],
    include_in_schema=False,
    cache_control=CacheControlHeader(max_age=3600, public=True),
    after_request=_guarded,
)

route_handlers = [
    *signing_in.route_handlers,
    *language.route_handlers,
    *account.route_handlers,
    *images.route_handlers,
    *admin.route_handlers,
    *history.route_handlers,
    *dashboard.route_handlers,
    static_files,
]
