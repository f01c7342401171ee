-- Personal access tokens and robots (projections.access_tokens). The secret's SHA-256 is here
-- for signing in; the secret itself is nowhere.
CREATE TABLE IF NOT EXISTS access_tokens (
    token_id text COLLATE "C" PRIMARY KEY,
    token_type text NOT NULL,
    principal text COLLATE "C" NOT NULL,
    namespace text COLLATE "C" NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    scopes jsonb NOT NULL,
    expires_at timestamptz NOT NULL,
    secret_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    revoked_at timestamptz,
    revoked_by text
);
CREATE INDEX IF NOT EXISTS access_tokens_by_principal ON access_tokens (principal, created_at);
CREATE INDEX IF NOT EXISTS access_tokens_by_namespace ON access_tokens (namespace, token_type);
