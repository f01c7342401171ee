"""The dashboard room of the web UI: the page at `/` (`page`) and its live feed of events
(`feed`, with `/events/stream`)."""

from __future__ import annotations

from api.web.dashboard import feed, page

route_handlers = [*page.route_handlers, *feed.route_handlers]
