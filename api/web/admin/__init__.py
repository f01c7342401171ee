"""The administration room of the web UI: users (`/admin/users`, system admins), namespaces
and their members (`/admin/namespaces`), personal access tokens and robots (`/tokens`).

Each page calls the functions the /api handlers of the same thing call (api.manage.users,
.namespaces, .access_tokens), with the same caller, so it allows and refuses exactly what
/api does; bad input shows the form again with a sentence of `problems` and the status /api
would answer."""

from __future__ import annotations

from api.web.admin import namespaces, tokens, users

route_handlers = [*users.route_handlers, *namespaces.route_handlers, *tokens.route_handlers]
