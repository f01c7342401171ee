-- Read model of the registry: plain tables built by projectors from the event log.
-- Every row is derived from events only (timestamps included), so a replay rebuilds it exactly.

CREATE TABLE IF NOT EXISTS view_positions (
    view text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS relay_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS repositories (
    name text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS manifests (
    repository text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    media_type text NOT NULL,
    size bigint NOT NULL,
    config jsonb,
    layers jsonb NOT NULL,
    children jsonb NOT NULL,
    subject text,
    artifact_type text,
    annotations jsonb NOT NULL,
    pushed_at timestamptz NOT NULL,
    pushed_by text NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE TABLE IF NOT EXISTS tags (
    repository text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX IF NOT EXISTS tags_by_digest ON tags (repository, digest);

CREATE TABLE IF NOT EXISTS blob_links (
    repository text COLLATE "C" NOT NULL,
    digest text NOT NULL,
    size bigint NOT NULL,
    linked_at timestamptz NOT NULL,
    linked_by text NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX IF NOT EXISTS blob_links_by_digest ON blob_links (digest);

CREATE TABLE IF NOT EXISTS referrers (
    repository text COLLATE "C" NOT NULL,
    subject text NOT NULL,
    digest text NOT NULL,
    media_type text NOT NULL,
    artifact_type text,
    size bigint NOT NULL,
    annotations jsonb NOT NULL,
    PRIMARY KEY (repository, subject, digest)
);

CREATE TABLE IF NOT EXISTS history (
    position bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    type text NOT NULL,
    actor text NOT NULL,
    client text NOT NULL,
    repository text,
    tag text,
    digest text,
    details jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_repository ON history (repository, position DESC);
CREATE INDEX IF NOT EXISTS history_by_actor ON history (actor, position DESC);
CREATE INDEX IF NOT EXISTS history_by_type ON history (type, position DESC);
