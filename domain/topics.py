"""Old topics of moved classes, so events stored under them stay readable.

eventsourcing stores the topic (`module:Class`) of every event's class, of the aggregate's
class in its creation event, and of the aggregate in every snapshot, and resolves them when
it reads. A class that moves gets a new topic; its old one is registered here, once per
aggregate class (an event's topic, `module:Aggregate.Event`, resolves through its aggregate's).
Never remove an entry: stored events keep their topics for good. `domain.registry` imports
this module, so every reader of the event store (the API, the views, the relay) has them.
"""

from __future__ import annotations

from eventsourcing.utils import register_topic

from domain import content

# old module -> the module its aggregate classes moved to, with the classes that moved
MOVED = {
    # issue 10: the content aggregates' module was named for what it held, not for all of it
    "domain.aggregates": (content, ("Repository", "BlobLink", "Manifest", "Tag")),
}

for old, (module, names) in MOVED.items():
    for name in names:
        register_topic(f"{old}:{name}", getattr(module, name))
