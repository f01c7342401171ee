-- What the web UI's dashboard reads at a glance, kept as the events arrive (a few rows read
-- per page view, whatever the registry's size).

-- The storage view (projections.storage): the bytes each repository references (shared
-- layers counted in each, as /api/repositories' `size`), for the top repositories by size.
CREATE TABLE IF NOT EXISTS storage_repositories (
    repository text COLLATE "C" PRIMARY KEY,
    bytes bigint NOT NULL,
    -- domain.names.namespace_of, as in images.namespace
    namespace text COLLATE "C" GENERATED ALWAYS AS (
        CASE WHEN strpos(repository, '/') > 0 THEN split_part(repository, '/', 1)
        ELSE 'library' END
    ) STORED
);
CREATE INDEX IF NOT EXISTS storage_repositories_by_bytes
    ON storage_repositories (bytes DESC, repository);
CREATE INDEX IF NOT EXISTS storage_repositories_by_namespace
    ON storage_repositories (namespace, bytes DESC, repository);
INSERT INTO storage_repositories (repository, bytes)
    SELECT repository, sum(size) FROM storage_refs GROUP BY repository
    ON CONFLICT (repository) DO NOTHING;

-- 007's functions, now also keeping storage_repositories (references added are counted by
-- projections.storage's statement).
CREATE OR REPLACE FUNCTION storage_unref(p_repository text, p_kind text, p_digest text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    gone bigint;
BEGIN
    DELETE FROM storage_refs
        WHERE repository = p_repository AND kind = p_kind AND digest = p_digest
        RETURNING size INTO gone;
    IF FOUND THEN
        UPDATE storage_repositories SET bytes = bytes - gone WHERE repository = p_repository;
        PERFORM storage_count(storage_namespace_of(p_repository), p_digest, gone, -1);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION storage_drop(p_repository text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
BEGIN
    DELETE FROM storage_repositories WHERE repository = p_repository;
    FOR gone IN DELETE FROM storage_refs WHERE repository = p_repository
        RETURNING digest, size
    LOOP
        PERFORM storage_count(storage_namespace_of(p_repository), gone.digest, gone.size, -1);
    END LOOP;
END
$$;

-- The pushes view (projections.pushes): per day (UTC) and namespace, the tags pushed (set to
-- an image: created or moved) and the manifests pushed. A namespace's days go with the
-- namespace (as its pulls do); a repository's deletion leaves them: they happened.
CREATE TABLE IF NOT EXISTS push_days (
    day date NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    tags bigint NOT NULL,
    manifests bigint NOT NULL,
    PRIMARY KEY (day, namespace)
);
CREATE INDEX IF NOT EXISTS push_days_by_namespace ON push_days (namespace, day);
