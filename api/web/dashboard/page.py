"""`GET /`: the dashboard — storage used (total and per namespace), pushes and pulls per
day, the repositories pulled most and the largest, the event store's head and each view's
lag, the components' health and the newest events, live.

Every number is what /api answers this caller: system info is /api/system/info's own
function (`api.manage.system.system_facts`), the rest read the same views with the same
namespaces the caller may read. Each read is a few keyed rows (counters the views keep as
events arrive), whatever the size of the registry."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from api.auth.guards import readable_namespaces
from api.manage.system import SystemInfo, system_facts
from api.web import charts, i18n
from api.web.dashboard import feed
from api.web.session import signed_in
from api.web.templates import gettext, language_of, render
from projections import pulls, pushes, storage, system

DAYS = 30  # pushes per day over this many days, today included
TOP = 10  # repositories and namespaces in a ranking


def _storage_chart(info: SystemInfo, language: str, label: str) -> charts.BarChart:
    largest = sorted(info.storage.namespaces, key=lambda n: (-n.bytes, n.namespace))[:TOP]
    return charts.bars(
        [(n.namespace, n.bytes) for n in largest], label, lambda v: i18n.size(int(v), language)
    )


@get("/", include_in_schema=False)
async def dashboard(request: Request[Any, Any, Any]) -> Response[Any]:
    caller = await signed_in(request)
    services = request.app.state.services
    _ = gettext(request)
    language = language_of(request)
    # The feed's lines end at the position the views have reached now; the page's live
    # stream continues right after it (nothing missed, nothing twice).
    head = services.waiter.position
    readable = await readable_namespaces(request, caller)
    info, days, pulled, largest, most_pulled, lines = await asyncio.gather(
        system_facts(request),
        services.query(pushes.per_day, DAYS, readable),
        services.query(pulls.per_day, DAYS, readable),
        services.query(storage.largest_repositories, readable, TOP),
        services.query(pulls.top_repositories, TOP, readable),
        feed.latest(request, head),
    )
    count = lambda v: i18n.number(int(v), language)  # noqa: E731 - a value's text
    push_chart = charts.columns(
        [(i18n.day(d.day, language), d.tags) for d in days],
        _("Tags pushed per day, last {days} days").format(days=DAYS),
        count,
    )
    pull_chart = charts.columns(
        [(i18n.day(day, language), n) for day, n in pulled],
        _("Pulls per day, last {days} days").format(days=DAYS),
        count,
    )
    pulls_chart = charts.bars(
        [(r.repository, r.pull_count) for r in most_pulled], _("Pulled most"), count
    )
    size_chart = charts.bars(
        [(r.repository, r.bytes) for r in largest],
        _("Largest repositories"),
        lambda v: i18n.size(int(v), language),
    )
    return render(
        request,
        "dashboard/index.html",
        info=info,
        namespaces=info.storage.namespaces,
        storage_chart=_storage_chart(info, language, _("Storage used per namespace")),
        days=[(i18n.day(d.day, language, year=True), d) for d in days],
        pushed=sum(d.tags for d in days),
        push_chart=push_chart,
        pull_days=[(i18n.day(day, language, year=True), day, n) for day, n in pulled],
        pulls=sum(n for _, n in pulled),
        pull_chart=pull_chart,
        most_pulled=most_pulled,
        pulls_chart=pulls_chart,
        largest=largest,
        size_chart=size_chart,
        lines=lines,
        head=head,
        top=TOP,
        total_days=DAYS,
        exact_below=system.EXACT_BELOW,  # events counted below this many, estimated beyond
    )


route_handlers = [dashboard]
