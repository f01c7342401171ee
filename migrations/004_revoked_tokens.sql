-- Revoked /api tokens (POST /api/auth/logout), built from token.revoked events only: the
-- token's id, subject and expiry, never the token. Every replica consults it per request.

CREATE TABLE IF NOT EXISTS revoked_tokens (
    jti text COLLATE "C" PRIMARY KEY,
    subject text NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz NOT NULL,
    revoked_by text NOT NULL
);
