"""The history room of the web UI: the audit log at `/history` (filters by actor, type,
repository, namespace and time, newest first, keyset pages) and a tag's timeline at
`/history/tags/{name}/{tag}` (every move of the tag: from which digest to which, by whom,
when). Both read the history view through the /api history's own filter, so a user sees
exactly the events GET /api/history shows them.

- `kinds`: the event types the domain records, and their names for people;
- `sentences`: what each event says, as a sentence of text and code parts;
- `asking`: the filter form and the page cursors read from a query string;
- `pages`: the two pages.
"""

from api.web.history.pages import route_handlers

__all__ = ["route_handlers"]
