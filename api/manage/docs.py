"""The browsable /api documentation, served whole from our own origin: Swagger UI's files
from the `swagger-ui-bundle-v2` wheel at /api/docs/assets/…, the page at /api/docs (and
/api), the document at /api/openapi.json and /api/openapi.yaml. The page loads no script,
style, font or icon from another origin, so it works on an air-gapped machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Router, get
from litestar.openapi.plugins import OpenAPIRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.response import File
from litestar.routes import HTTPRoute
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/api/docs/assets"
# What the page references, and nothing else of the bundle (its index.html would load the
# petstore demo from the internet); a plain route each, so any other path is a 404.
_MEDIA_TYPES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
_FOLDER = Path(swagger_ui_path)


@get(
    [f"/docs/assets/{name}" for name in _MEDIA_TYPES],
    include_in_schema=False,
    sync_to_thread=False,
)
def asset(request: Request[Any, Any, Any]) -> File:
    name = request.url.path.rsplit("/", 1)[-1]
    return File(
        _FOLDER / name,
        filename=name,
        media_type=_MEDIA_TYPES[name],
        content_disposition_type="inline",
        headers={"Cache-Control": "public, max-age=86400"},
    )


class OfflineSwagger(SwaggerRenderPlugin):
    """Swagger UI pointing at our copies of its files."""

    def __init__(self) -> None:
        super().__init__(
            path="/docs",
            js_url=f"{ASSETS}/swagger-ui-bundle.js",
            css_url=f"{ASSETS}/swagger-ui.css",
            standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
            favicon=f"<link rel='icon' type='image/png' href='{ASSETS}/favicon-32x32.png'>",
        )

    def receive_router(self, router: Router) -> None:
        super().receive_router(router)  # Swagger's oauth2-redirect.html (inline script only)
        router.register(asset)
        _drop_html_catch_all(router)


def _drop_html_catch_all(router: Router) -> None:
    """Litestar's docs router answers every other one-segment path under it (`/api/nope`)
    with an HTML 404 page of its own, through a GET-only `/{path:str}` route (so a POST
    got 405). Without that route the router's own 404 reaches `api.errors`, which answers
    in the envelope for every method, like any deeper unknown /api path."""
    catch_all = f"{router.path}/{{path:str}}"
    router.routes = [
        route
        for route in router.routes
        if not (isinstance(route, HTTPRoute) and route.path == catch_all)
    ]


def render_plugins() -> list[OpenAPIRenderPlugin]:
    """The page first (it also answers /api), then the YAML form of the document; the JSON
    form is Litestar's own at /api/openapi.json."""
    return [OfflineSwagger(), YamlRenderPlugin(path="/openapi.yaml")]
