-- Stats API keys: only a SHA-256 of the key is stored; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id {{ID}},
    name TEXT NOT NULL,
    key_hash {{BLOB}} NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    site_ids TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
