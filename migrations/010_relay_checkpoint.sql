-- The relay's checkpoint also names the stream message of its position (stream_seq), so a
-- restart checks that the stream really holds that event instead of trusting whatever the
-- stream's last message claims (anyone with NATS access can publish any Cyp-Position).
-- caught_up_at: when the relay last had published every stored event it saw; GET /health
-- answers `degraded` when events wait longer than CYP_RELAY_MAX_LAG behind it.
ALTER TABLE relay_positions ADD COLUMN IF NOT EXISTS stream_seq bigint;
ALTER TABLE relay_positions ADD COLUMN IF NOT EXISTS caught_up_at timestamptz;
