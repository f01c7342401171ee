"""GET /health: the guide's §2.1 contract; 503 naming each failed component."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.to_thread
from litestar import Request, Response, get

from api.services import Services


async def _postgres(services: Services) -> bool:
    services.database.check()  # known to be down: no wait for a connection
    async with services.pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")
    return True


async def _check(name: str, probe: Any) -> tuple[str, bool]:
    try:
        return name, bool(await asyncio.wait_for(probe, 3))
    except Exception:
        return name, False


async def components(services: Services) -> dict[str, bool]:
    """Whether each backing service answers (also reported by /api/system/info)."""
    return dict(
        await asyncio.gather(
            _check("postgres", _postgres(services)),
            _check("nats", services.nats_ok()),
            _check("storage", anyio.to_thread.run_sync(services.store.writable)),
        )
    )


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[Any]:
    services: Services = request.app.state.services
    results = await components(services)
    failed = [name for name, ok in results.items() if not ok]
    data: dict[str, Any] = {
        "status": "unhealthy" if failed else "healthy",
        "version": services.version,
    }
    if failed:
        data["failed"] = failed
        return Response(
            {
                "success": False,
                "data": data,
                "error": {"code": "UNHEALTHY", "message": ", ".join(failed) + " down"},
            },
            status_code=503,
        )
    return Response({"success": True, "data": data}, status_code=200)
