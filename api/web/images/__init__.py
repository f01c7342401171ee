"""Image management (「镜像管理」, the guide's §5.1) in the web UI.

- `/images`: every tagged image the user may read, across repositories, with search (as
  /api/images/search), sort, a namespace filter and keyset pages (`inputs`, `listing`);
- `/repositories` and `/repositories/{name}`: the repositories, and one's tags a page at a
  time (`listing`);
- `/images/{name}/{tag}`: one image in detail, its layers, platforms and referrers, the pull
  commands, and the pages of more layers and platforms (`details`);
- deleting a tag or a repository after a confirmation page, only where the user may delete
  (`deleting`).

Every page answers from the /api surface's own functions with the same caller, so a user
sees exactly what /api shows them; refusals become readable pages in their language
(`refusals`). Names contain slashes: `routes` takes the rest of the path and dispatches,
`paths` builds the addresses; `common` holds what the pages share.
"""

from __future__ import annotations

from api.web.images import listing, routes

route_handlers = [*listing.route_handlers, *routes.route_handlers]
