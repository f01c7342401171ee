-- When each user's password last changed: /api sessions opened before it end (api.auth).
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_changed_at timestamptz;
