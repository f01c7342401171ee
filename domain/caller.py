"""Who asked for a change: recorded on every event (the audit log is the event log)."""

from __future__ import annotations

from typing import NamedTuple

# The actors events name when no user acted: a sign-in that failed (nobody signed in), the
# registry itself, the command line. A user of such a name would be taken for them (the
# history shows everyone the events they did themselves), so nobody may take these names.
ANONYMOUS_ACTOR, SYSTEM_ACTOR, CLI_ACTOR = "anonymous", "system", "cli"
ACTOR_NAMES = frozenset({ANONYMOUS_ACTOR, SYSTEM_ACTOR, CLI_ACTOR})


class Caller(NamedTuple):
    """Who asked: the actor (a user, a token, a system component) and the client address."""

    actor: str
    client: str


SYSTEM = Caller(SYSTEM_ACTOR, "")
CLI = Caller(CLI_ACTOR, "")  # a `cyp-registry` command
