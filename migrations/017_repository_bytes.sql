-- The storage view keeps each repository's bytes (what its references add up to, a layer
-- shared with another repository counted in each), so a repository's size is one row to
-- read, not a sum over its references: a repository of 100,000 tags has 200,000 of them.
CREATE TABLE IF NOT EXISTS storage_repositories (
    repository text COLLATE "C" PRIMARY KEY,
    bytes bigint NOT NULL
);
INSERT INTO storage_repositories (repository, bytes)
    SELECT repository, sum(size) FROM storage_refs GROUP BY repository
    ON CONFLICT (repository) DO NOTHING;

-- A repository's row goes with its last reference.
CREATE OR REPLACE FUNCTION storage_repository_bytes(p_repository text, p_delta bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO storage_repositories AS r (repository, bytes) VALUES (p_repository, p_delta)
        ON CONFLICT (repository) DO UPDATE SET bytes = r.bytes + p_delta;
    IF p_delta < 0 AND NOT EXISTS (SELECT 1 FROM storage_refs WHERE repository = p_repository)
    THEN
        DELETE FROM storage_repositories WHERE repository = p_repository;
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
        PERFORM storage_repository_bytes(p_repository, p_size);
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
        PERFORM storage_repository_bytes(p_repository, -gone);
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
    DELETE FROM storage_repositories WHERE repository = p_repository;
END
$$;
