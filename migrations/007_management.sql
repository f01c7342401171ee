-- Read model of the management API (/api/images, /api/repositories, /api/history,
-- /api/system/info), made for its queries at 100,000 tags. Every row derives from events only.

-- The images view (projections.images): one row per tag with what lists sort and filter by,
-- and the total size of every manifest (an index: its own plus its platforms').
CREATE TABLE IF NOT EXISTS image_manifests (
    repository text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    artifact_type text,
    size bigint NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE TABLE IF NOT EXISTS images (
    -- what search matches: case-insensitive substring of "repository:tag". First, so that a
    -- search without a trigram index, which reads every row, stops reading each row early.
    search text COLLATE "C" GENERATED ALWAYS AS (lower(repository || ':' || tag)) STORED,
    repository text COLLATE "C" NOT NULL,
    tag text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    media_type text NOT NULL,
    artifact_type text,
    size bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL,
    -- domain.names.namespace_of, as in repositories.namespace
    namespace text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN strpos(repository, '/') > 0 THEN split_part(repository, '/', 1)
        ELSE 'library' END
    ) STORED,
    PRIMARY KEY (repository, tag)
);
-- Keyset pagination: one index per sort order (the key ends with the primary key).
CREATE INDEX IF NOT EXISTS images_by_updated ON images (updated_at, repository, tag);
CREATE INDEX IF NOT EXISTS images_by_size ON images (size, repository, tag);
CREATE INDEX IF NOT EXISTS images_by_namespace ON images (namespace, repository, tag);
CREATE INDEX IF NOT EXISTS images_by_digest ON images (repository, digest);

-- Substring search: a trigram index where pg_trgm exists (Debian's Postgres has it, the
-- embedded pgserver wheel does not); without it a search reads the `search` column of every row
-- (20-35 ms per 100,000 tags on a busy 2-core machine when few match; more are found fast).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm not created (no privilege): search scans';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS images_search_trgm ON images'
            ' USING gin (search gin_trgm_ops)';
    END IF;
END
$$;

-- The storage view (projections.storage): what each repository references (blobs and
-- manifests, all content-addressed in one blob store) and counters kept as events arrive,
-- so system info never aggregates the whole registry.
CREATE TABLE IF NOT EXISTS storage_refs (
    repository text COLLATE "C" NOT NULL,
    kind text NOT NULL,  -- 'blob' or 'manifest'
    digest text COLLATE "C" NOT NULL,
    size bigint NOT NULL,
    PRIMARY KEY (repository, kind, digest)
);
-- Each stored digest once, with how many references it has anywhere.
CREATE TABLE IF NOT EXISTS storage_blobs (
    digest text COLLATE "C" PRIMARY KEY,
    size bigint NOT NULL,
    refs integer NOT NULL
);
-- The same per namespace: a layer shared inside one namespace counts once for it.
CREATE TABLE IF NOT EXISTS storage_namespace_blobs (
    namespace text COLLATE "C" NOT NULL,
    digest text COLLATE "C" NOT NULL,
    refs integer NOT NULL,
    PRIMARY KEY (namespace, digest)
);
CREATE TABLE IF NOT EXISTS storage_namespaces (
    namespace text COLLATE "C" PRIMARY KEY,
    blobs bigint NOT NULL,
    bytes bigint NOT NULL
);
-- One row: distinct blobs and their bytes, and the bytes all references add up to (the
-- difference is what sharing layers saves).
CREATE TABLE IF NOT EXISTS storage_totals (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    blobs bigint NOT NULL,
    bytes bigint NOT NULL,
    referenced bigint NOT NULL
);

CREATE OR REPLACE FUNCTION storage_namespace_of(repository text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN strpos(repository, '/') > 0 THEN split_part(repository, '/', 1)
    ELSE 'library' END
$$;

-- One reference more (p_delta 1) or less (-1) to a digest: keeps the counters above. The
-- projector calls these once per event, one statement each (the runner pipelines them).
CREATE OR REPLACE FUNCTION storage_count(
    p_namespace text, p_digest text, p_size bigint, p_delta integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer;
    stored bigint;
    blobs_delta bigint := 0;
    bytes_delta bigint := 0;
BEGIN
    INSERT INTO storage_blobs AS b (digest, size, refs) VALUES (p_digest, p_size, p_delta)
        ON CONFLICT (digest) DO UPDATE SET refs = b.refs + p_delta
        RETURNING refs, size INTO n, stored;
    IF p_delta > 0 AND n = 1 THEN
        blobs_delta := 1;
        bytes_delta := stored;
    ELSIF n <= 0 THEN
        DELETE FROM storage_blobs WHERE digest = p_digest;
        blobs_delta := -1;
        bytes_delta := -stored;
    END IF;
    INSERT INTO storage_totals AS t (id, blobs, bytes, referenced)
        VALUES (true, blobs_delta, bytes_delta, p_delta * p_size)
        ON CONFLICT (id) DO UPDATE SET blobs = t.blobs + blobs_delta,
            bytes = t.bytes + bytes_delta, referenced = t.referenced + p_delta * p_size;

    blobs_delta := 0;
    bytes_delta := 0;
    INSERT INTO storage_namespace_blobs AS b (namespace, digest, refs)
        VALUES (p_namespace, p_digest, p_delta)
        ON CONFLICT (namespace, digest) DO UPDATE SET refs = b.refs + p_delta
        RETURNING refs INTO n;
    IF p_delta > 0 AND n = 1 THEN
        blobs_delta := 1;
        bytes_delta := stored;
    ELSIF n <= 0 THEN
        DELETE FROM storage_namespace_blobs WHERE namespace = p_namespace AND digest = p_digest;
        blobs_delta := -1;
        bytes_delta := -stored;
    END IF;
    IF blobs_delta <> 0 THEN
        INSERT INTO storage_namespaces AS s (namespace, blobs, bytes)
            VALUES (p_namespace, blobs_delta, bytes_delta)
            ON CONFLICT (namespace) DO UPDATE SET blobs = s.blobs + blobs_delta,
                bytes = s.bytes + bytes_delta;
        DELETE FROM storage_namespaces WHERE namespace = p_namespace AND blobs = 0;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION storage_ref(
    p_repository text, p_kind text, p_digest text, p_size bigint
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage_refs (repository, kind, digest, size)
        VALUES (p_repository, p_kind, p_digest, p_size) ON CONFLICT DO NOTHING;
    IF FOUND THEN
        PERFORM storage_count(storage_namespace_of(p_repository), p_digest, p_size, 1);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION storage_unref(p_repository text, p_kind text, p_digest text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM storage_refs
        WHERE repository = p_repository AND kind = p_kind AND digest = p_digest
        RETURNING size INTO gone;
    IF FOUND THEN
        PERFORM storage_count(storage_namespace_of(p_repository), p_digest, gone, -1);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION storage_drop(p_repository text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
BEGIN
    FOR gone IN DELETE FROM storage_refs WHERE repository = p_repository
        RETURNING digest, size
    LOOP
        PERFORM storage_count(storage_namespace_of(p_repository), gone.digest, gone.size, -1);
    END LOOP;
END
$$;

-- History: the namespace an event concerns (its repository's, or the namespace it changes),
-- so a user's audit log is filtered in SQL by the namespaces they may read. Only
-- repository.* events name their repository `name` (namespace and token events have a
-- `name` of their own).
ALTER TABLE history ADD COLUMN IF NOT EXISTS namespace text COLLATE "C";
UPDATE history SET repository = NULL, namespace = repository
    WHERE type LIKE 'namespace.%' AND namespace IS NULL;
UPDATE history SET repository = NULL
    WHERE type LIKE 'access\_token.%' AND repository IS NOT NULL;
UPDATE history SET namespace = storage_namespace_of(repository)
    WHERE repository IS NOT NULL AND namespace IS NULL;
UPDATE history SET namespace = NULLIF(details->>'namespace', '')
    WHERE namespace IS NULL AND details ? 'namespace';
CREATE INDEX IF NOT EXISTS history_by_namespace ON history (namespace, position DESC);
CREATE INDEX IF NOT EXISTS history_by_time ON history (occurred_at);

-- Repositories listed by their last push.
CREATE INDEX IF NOT EXISTS repositories_by_updated ON repositories (updated_at, name);
