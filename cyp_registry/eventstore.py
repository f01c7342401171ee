"""The event store's Postgres recorder: inserts serialized through their commit.

Readers of the log (the projection runner, the relay, every worker) ask for "the events
after my position". That is only safe if ids become visible in id order: a transaction that
took id 7 and commits after another one's id 8 was read would be passed over for good.
eventsourcing's own write path takes `LOCK TABLE … IN EXCLUSIVE MODE` for this, but its
one-round-trip insert function (POSTGRES_ENABLE_DB_FUNCTIONS) does not. This recorder's
function takes the same lock before it takes ids, so both paths serialize with each other,
and the lock is held until the insert's transaction commits. EXCLUSIVE does not block
readers (SELECT takes ACCESS SHARE).

Nothing here leaves an ERROR in the server's log in normal operation: a version already
taken (two writers of one aggregate: the command handler retries) is found under the lock
and answered with no ids, which `insert_events` turns into the same IntegrityError a
unique violation gives; the composite type is created only where it is missing
(eventsourcing's plain CREATE TYPE fails, suppressed, on every start but the first).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg.sql import SQL, Identifier

TOPIC = "cyp_registry.eventstore:SerializedRecorder"
# PERSISTENCE_MODULE: eventsourcing's Postgres with the snapshots' recorder below
FACTORY = "cyp_registry.eventstore:Factory"


def _create_types_once(statements: list[Any]) -> None:
    """Postgres has no CREATE TYPE IF NOT EXISTS: eventsourcing runs a plain one and
    suppresses the error, which the server logs each time. An error caught in plpgsql is not
    logged (this also covers two processes creating the type at once)."""
    for index, statement in enumerate(statements):
        if "CREATE TYPE" in statement.as_string():
            statements[index] = SQL(
                "DO $do$ BEGIN {create}; "
                "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
                "END $do$"
            ).format(create=statement)


class SnapshotRecorder(PostgresAggregateRecorder):
    """The snapshots' table: it shares the events' composite type, and creates it alike."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        _create_types_once(self.sql_create_statements)


class Factory(PostgresFactory):
    aggregate_recorder_class = SnapshotRecorder


class SerializedRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        table = SQL("{schema}.{table}").format(
            schema=Identifier(datastore.schema), table=Identifier(self.events_table_name)
        )
        self.sql_create_pg_function_insert_events = SQL(
            "CREATE OR REPLACE FUNCTION "
            "{schema}.{insert_events}(events {schema}.{event}[]) "
            "RETURNS SETOF bigint "
            "LANGUAGE plpgsql "
            "AS "
            "$BODY$"
            "BEGIN"
            "    SET LOCAL lock_timeout = '{lock_timeout}s';"
            "    LOCK TABLE {table} IN EXCLUSIVE MODE;"
            # under the lock nobody else inserts: what is not there now cannot clash
            "    IF EXISTS (SELECT FROM {table} AS t JOIN unnest(events) AS e"
            "        ON t.originator_id = e.originator_id"
            "        AND t.originator_version = e.originator_version) THEN"
            "        RETURN;"
            "    END IF;"
            "    NOTIFY {channel};"
            "    RETURN QUERY"
            "    INSERT INTO {table} AS t ("
            "    originator_id, originator_version, topic, state)"
            "    SELECT originator_id, originator_version, topic, state"
            "    FROM unnest(events)"
            "    RETURNING notification_id;"
            "END;"
            "$BODY$"
        ).format(
            insert_events=Identifier(self.pg_function_name_insert_events),
            lock_timeout=datastore.lock_timeout,
            channel=Identifier(self.channel_name),
            event=Identifier(self.stored_event_type_name),
            schema=Identifier(datastore.schema),
            table=table,
        )
        self.sql_create_statements[self.create_insert_function_statement_index] = (
            self.sql_create_pg_function_insert_events
        )
        _create_types_once(self.sql_create_statements)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = super().insert_events(stored_events, **kwargs)
        if self.datastore.enable_db_functions and stored_events and len(ids or ()) == 0:
            raise IntegrityError("an aggregate version was recorded by another writer first")
        return ids
