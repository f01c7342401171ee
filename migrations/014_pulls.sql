-- The pulls view (projections.pulls): manifest GETs counted per tag, per repository and per
-- day, from the pulls.counted events (one per repository and flush of a replica). A
-- repository's counts go when the repository is deleted (as Harbor's do); a tag's stay when
-- the tag is deleted or moved (counts are of the name, like "latest" across its digests).
-- The pulls per day of a namespace are what happened: they stay when a repository goes,
-- and go with the namespace.

-- GETs by tag.
CREATE TABLE IF NOT EXISTS pull_tags (
    repository text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    pull_count bigint NOT NULL,
    last_pulled_at timestamptz NOT NULL,
    PRIMARY KEY (repository, tag)
);

-- Every GET of the repository (by tag and by digest).
CREATE TABLE IF NOT EXISTS pull_repositories (
    repository text COLLATE "C" PRIMARY KEY,
    pull_count bigint NOT NULL,
    last_pulled_at timestamptz NOT NULL,
    -- domain.names.namespace_of, as in images.namespace
    namespace text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN strpos(repository, '/') > 0 THEN split_part(repository, '/', 1)
        ELSE 'library' END
    ) STORED
);
-- The top repositories by pulls (all time), overall and of some namespaces.
CREATE INDEX IF NOT EXISTS pull_repositories_by_count
    ON pull_repositories (pull_count DESC, repository);

-- Per repository and day (UTC, of the end of the interval the pulls were counted in): the
-- top repositories of the last days.
CREATE TABLE IF NOT EXISTS pull_days (
    day date NOT NULL,
    repository text COLLATE "C" NOT NULL,
    pull_count bigint NOT NULL,
    namespace text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN strpos(repository, '/') > 0 THEN split_part(repository, '/', 1)
        ELSE 'library' END
    ) STORED,
    PRIMARY KEY (day, repository)
);
-- Deleting a repository drops its days.
CREATE INDEX IF NOT EXISTS pull_days_by_repository ON pull_days (repository);

-- Per namespace and day: the pulls per day (of the namespaces a caller may read).
CREATE TABLE IF NOT EXISTS pull_namespace_days (
    day date NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    pull_count bigint NOT NULL,
    PRIMARY KEY (day, namespace)
);
