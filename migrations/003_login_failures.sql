-- Brute-force throttle read model: recent failed sign-ins (not those the throttle refused),
-- one row per login.failed event, keyed by its log position so a replay inserts each once.
-- Counted per username and per client address within the window (domain.throttle).

CREATE TABLE IF NOT EXISTS login_failures (
    position bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    username text COLLATE "C" NOT NULL,
    client text COLLATE "C" NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_username ON login_failures (username, occurred_at);
CREATE INDEX IF NOT EXISTS login_failures_client ON login_failures (client, occurred_at);
CREATE INDEX IF NOT EXISTS login_failures_occurred_at ON login_failures (occurred_at);
