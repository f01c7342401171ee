-- A tag's timeline (GET /history/tags/{name}/{tag}, GET /api/history?repository=&tag=): the
-- events of one tag, newest first, by key. By repository alone a tag moved long ago sits
-- below every later event of its repository (100,000 tags: a scan of most of them). Only
-- tag events name a tag: the index holds those rows alone.
CREATE INDEX IF NOT EXISTS history_by_tag ON history (repository, tag, position DESC)
    WHERE tag IS NOT NULL;
