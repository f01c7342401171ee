-- Sign-in hardening (domain.throttle) and namespaces taken again after a deletion.

-- Where each user signed in lately (projections.login_failures): such an address is not
-- held back by the user's failures from elsewhere. Built from login.succeeded events.
CREATE TABLE IF NOT EXISTS login_known_clients (
    username text COLLATE "C" NOT NULL,
    client text COLLATE "C" NOT NULL,
    succeeded_at timestamptz NOT NULL,
    PRIMARY KEY (username, client)
);
CREATE INDEX IF NOT EXISTS login_known_clients_succeeded_at
    ON login_known_clients (succeeded_at);
CREATE INDEX IF NOT EXISTS login_failures_username_client
    ON login_failures (username, client);

-- Sign-in attempts being checked right now (projections.login_attempts): the throttle
-- reserves one, under an advisory lock per address and per username, before it checks a
-- password, and drops it once the outcome counts in login_failures. A rate limit, not
-- history: no events, not a view, never replayed; a row a crashed process left expires.
CREATE TABLE IF NOT EXISTS login_attempts (
    id bigserial PRIMARY KEY,
    username text COLLATE "C" NOT NULL,
    client text COLLATE "C" NOT NULL,
    per_user boolean NOT NULL,  -- counts against the username's limit too
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS login_attempts_client ON login_attempts (client);
CREATE INDEX IF NOT EXISTS login_attempts_username ON login_attempts (username);

-- The log position a namespace (its current incarnation: a deleted name may be taken
-- again) was created at, and each access token's: the history and the robots of a
-- namespace are those since then. Rows of views built before this migration get theirs
-- from the history view; a replay computes the same from the log.
ALTER TABLE namespaces ADD COLUMN IF NOT EXISTS created_position bigint;
ALTER TABLE access_tokens ADD COLUMN IF NOT EXISTS issued_position bigint;
UPDATE namespaces n SET created_position = h.position
    FROM (SELECT namespace, max(position) AS position FROM history
          WHERE type = 'namespace.created' GROUP BY namespace) h
    WHERE h.namespace = n.name AND n.created_position IS NULL;
UPDATE access_tokens a SET issued_position = h.position
    FROM history h
    WHERE h.type = 'access_token.issued' AND h.details->>'token_id' = a.token_id
        AND a.issued_position IS NULL;
