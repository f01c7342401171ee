-- Identity read model: one row per registered user, built from the user.* events only
-- (timestamps included), so a replay rebuilds it exactly. The password hash is here for
-- signing in; it is never part of a listing, the history view or a published event.

CREATE TABLE IF NOT EXISTS users (
    name text COLLATE "C" PRIMARY KEY,
    role text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL
);
