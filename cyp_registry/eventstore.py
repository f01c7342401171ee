"""The event store's Postgres recorder: inserts serialized through their commit.

Readers of the log (the projection runner, the relay, every worker) ask for "the events
after my position". That is only safe if ids become visible in id order: a transaction that
took id 7 and commits after another one's id 8 was read would be passed over for good.
eventsourcing's own write path takes `LOCK TABLE … IN EXCLUSIVE MODE` for this, but its
one-round-trip insert function (POSTGRES_ENABLE_DB_FUNCTIONS) does not. This recorder's
function takes the same lock before it takes ids, so both paths serialize with each other,
and the lock is held until the insert's transaction commits. EXCLUSIVE does not block
readers (SELECT takes ACCESS SHARE).
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg.sql import SQL, Identifier

TOPIC = "cyp_registry.eventstore:SerializedRecorder"


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
