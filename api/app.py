"""Builds the Litestar application around the services the composition root made."""

from __future__ import annotations

from litestar import Litestar

from api import access_tokens, distribution, health, namespaces, session, token, users
from api.errors import HANDLERS
from api.services import Services


def create_app(services: Services) -> Litestar:
    app = Litestar(
        route_handlers=[
            distribution.router,
            health.health,
            token.token_get,
            token.token_post,
            *session.route_handlers,
            *users.route_handlers,
            *namespaces.route_handlers,
            *access_tokens.route_handlers,
        ],
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=list(services.lifespan),
        openapi_config=None,
    )
    app.state.services = services
    return app
