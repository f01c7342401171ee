"""Builds the Litestar application around the services the composition root made."""

from __future__ import annotations

import time

from litestar import Litestar, Router

from api import health
from api.auth import token_endpoint
from api.errors import HANDLERS
from api.manage import (
    access_tokens,
    history,
    images,
    namespaces,
    repositories,
    sessions,
    system,
    users,
)
from api.manage.openapi import complete, openapi_config
from api.services import Services
from api.v2 import routes
from api.web import routes as web


def create_app(services: Services) -> Litestar:
    app = Litestar(
        route_handlers=complete(
            [
                # The OCI distribution API has its own specification; the document is for /api.
                Router("/", route_handlers=[routes.router], include_in_schema=False),
                health.health,
                health.health_head,
                token_endpoint.token_get,
                token_endpoint.token_post,
                *sessions.route_handlers,
                *users.route_handlers,
                *namespaces.route_handlers,
                *access_tokens.route_handlers,
                *images.route_handlers,
                *repositories.route_handlers,
                *history.route_handlers,
                *system.route_handlers,
                *web.route_handlers,
            ]
        ),
        exception_handlers=HANDLERS,  # type: ignore[arg-type]
        lifespan=list(services.lifespan),
        openapi_config=openapi_config(services.version),
        # Our logging stays as configured (cyp_registry.logs): Litestar's default would take
        # over the root logger; unexpected errors are logged by api.errors.
        logging_config=None,
    )
    app.state.services = services
    app.state.started_at = time.time()  # uptime in /api/system/info
    return app
