-- Organisation namespaces and their members (projections.namespaces), and the namespace of
-- every repository: its first path component, or `library` for names without a slash
-- (domain.names.namespace_of; the two must agree).

ALTER TABLE repositories ADD COLUMN IF NOT EXISTS namespace text COLLATE "C"
    GENERATED ALWAYS AS (
        CASE WHEN strpos(name, '/') > 0 THEN split_part(name, '/', 1) ELSE 'library' END
    ) STORED;
CREATE INDEX IF NOT EXISTS repositories_by_namespace ON repositories (namespace, name);

CREATE TABLE IF NOT EXISTS namespaces (
    name text COLLATE "C" PRIMARY KEY,
    public boolean NOT NULL,
    personal boolean NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS namespace_members (
    namespace text COLLATE "C" NOT NULL,
    username text COLLATE "C" NOT NULL,
    role text NOT NULL,
    added_at timestamptz NOT NULL,
    added_by text NOT NULL,
    PRIMARY KEY (namespace, username)
);
CREATE INDEX IF NOT EXISTS namespace_members_by_user ON namespace_members (username, namespace);
