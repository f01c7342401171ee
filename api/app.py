"""Builds the Litestar application around the services the composition root made."""

from __future__ import annotations

import time

from litestar import Litestar, Router

from api import (
    access_tokens,
    distribution,
    health,
    history,
    images,
    namespaces,
    repositories,
    session,
    system,
    token,
    users,
)
from api.errors import HANDLERS
from api.schema import complete, openapi_config
from api.services import Services


def create_app(services: Services) -> Litestar:
    app = Litestar(
        route_handlers=complete(
            [
                # The OCI distribution API has its own specification; the document is for /api.
                Router("/", route_handlers=[distribution.router], include_in_schema=False),
                health.health,
                token.token_get,
                token.token_post,
                *session.route_handlers,
                *users.route_handlers,
                *namespaces.route_handlers,
                *access_tokens.route_handlers,
                *images.route_handlers,
                *repositories.route_handlers,
                *history.route_handlers,
                *system.route_handlers,
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
