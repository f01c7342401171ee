"""GET (and HEAD) /health: the guide's §2.1 contract; 503 naming each failed component.

`degraded` (200): everything answers, but the relay is more than CYP_RELAY_MAX_LAG seconds
behind the event log (events wait to reach NATS: NATS refuses them, or no relay runs). It is
a 200 on purpose: the API serves every request correctly, and a load balancer or orchestrator
taking replicas out for it would turn a late stream into an outage (every replica shares the
one relay). Monitoring reads `status`."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio.to_thread
import msgspec
from litestar import Request, Response, get, head

from api.services import Services
from projections import system


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


async def _relay_lag(services: Services, started_at: float) -> dict[str, Any] | None:
    lag = await services.query(
        system.relay_lag, services.registry.recorder.events_table_name, services.relay_stream
    )
    if lag.position >= lag.head:
        return None
    # Never caught up as far as Postgres knows (no relay ran yet): behind since this process
    # started, at least.
    seconds = lag.caught_up_for if lag.caught_up_for is not None else time.time() - started_at
    if seconds <= services.relay_max_lag:
        return None
    return {"position": lag.position, "head": lag.head, "lag_seconds": round(seconds, 1)}


async def relay_behind(services: Services, started_at: float) -> dict[str, Any] | None:
    """The relay's lag when it is more than CYP_RELAY_MAX_LAG seconds behind the log, else
    None (also when that is off, or Postgres does not answer: the postgres check says so)."""
    if services.relay_max_lag <= 0:
        return None
    try:
        return await asyncio.wait_for(_relay_lag(services, started_at), 3)
    except Exception:
        return None


async def _answer(request: Request[Any, Any, Any]) -> tuple[int, dict[str, Any]]:
    services: Services = request.app.state.services
    results, relay = await asyncio.gather(
        components(services), relay_behind(services, request.app.state.started_at)
    )
    failed = [name for name, ok in results.items() if not ok]
    status = "unhealthy" if failed else "degraded" if relay else "healthy"
    data: dict[str, Any] = {"status": status, "version": services.version}
    if relay:
        data["degraded"] = ["relay"]
        data["relay"] = relay
    if failed:
        data["failed"] = failed
        error = {"code": "UNHEALTHY", "message": ", ".join(failed) + " down"}
        return 503, {"success": False, "data": data, "error": error}
    return 200, {"success": True, "data": data}


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[Any]:
    status, body = await _answer(request)
    return Response(body, status_code=status)


@head("/health")
async def health_head(request: Request[Any, Any, Any]) -> Response[None]:
    """The same checks and status as GET, for probes that send HEAD; no body, but the
    Content-Length and Content-Type the GET answer has (Litestar derives no HEAD)."""
    status, body = await _answer(request)
    length = len(msgspec.json.encode(body))
    return Response(None, status_code=status, headers={"Content-Length": str(length)})
