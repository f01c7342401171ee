-- An image's size counts each distinct blob once (projections.images, domain.manifests
-- .image_size): a manifest may list one layer many times (an empty layer, or on purpose),
-- and the images view counted each listing. Correct the sizes already projected, as a replay
-- would: an image manifest's excess leaves it, each index listing it (once, however often
-- it lists it), and the tags of both. Indexes of indexes of such images: `cyp-registry replay
-- images`.
CREATE TEMP TABLE size_fixes ON COMMIT DROP AS
SELECT repository, digest, excess FROM (
    SELECT im.repository, im.digest, im.size - m.size - (
        SELECT coalesce(sum(size), 0) FROM (
            SELECT DISTINCT ON (b->>'digest') (b->>'size')::bigint AS size
            FROM jsonb_array_elements(
                CASE WHEN m.config IS NULL THEN '[]'::jsonb ELSE jsonb_build_array(m.config) END
                || m.layers
            ) WITH ORDINALITY AS e(b, ord)
            ORDER BY b->>'digest', ord
        ) AS blobs
    ) AS excess
    FROM image_manifests im
    JOIN manifests m ON m.repository = im.repository AND m.digest = im.digest
    WHERE jsonb_array_length(m.children) = 0
) AS sized
WHERE excess > 0;

UPDATE image_manifests im SET size = im.size - f.excess
FROM size_fixes f WHERE im.repository = f.repository AND im.digest = f.digest;

INSERT INTO size_fixes (repository, digest, excess)
SELECT m.repository, m.digest, sum(f.excess)
FROM size_fixes f
JOIN manifests m ON m.repository = f.repository
    AND m.children @> jsonb_build_array(jsonb_build_object('digest', f.digest))
GROUP BY m.repository, m.digest;

UPDATE image_manifests im SET size = im.size - f.excess
FROM size_fixes f, manifests m
WHERE im.repository = f.repository AND im.digest = f.digest
    AND m.repository = f.repository AND m.digest = f.digest
    AND jsonb_array_length(m.children) > 0;

UPDATE images i SET size = im.size
FROM image_manifests im
WHERE im.repository = i.repository AND im.digest = i.digest
    AND i.size <> im.size
    AND EXISTS (SELECT 1 FROM size_fixes f WHERE f.repository = i.repository AND f.digest = i.digest);
