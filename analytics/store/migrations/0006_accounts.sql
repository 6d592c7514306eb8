-- Dashboard accounts, their sessions, shared links and goals.

-- Owners who log into the dashboard. The password is kept as a scrypt hash (analytics/accounts.py);
-- site_ids is a JSON list of the sites the user may see, or NULL for every site (an administrator).
CREATE TABLE users (
    id {{ID}},
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    site_ids TEXT,
    created_at BIGINT NOT NULL
);

-- Logged-in sessions: only a SHA-256 of the cookie's 256-bit token is stored, with the session's CSRF token.
CREATE TABLE sessions (
    token_hash {{BLOB}} PRIMARY KEY,
    user_id BIGINT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);

-- Read-only links to one site's dashboard: a SHA-256 of the link's 128+-bit token, an optional scrypt-hashed
-- password, an optional expiry, and whether other sites may embed it in a frame.
CREATE TABLE shared_links (
    id {{ID}},
    site_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    token_hash {{BLOB}} NOT NULL UNIQUE,
    password_hash TEXT,
    expires_at BIGINT,
    embeddable BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Goals: a custom event name, or a page path pattern (`*` wildcard) whose pageviews count as conversions.
CREATE TABLE goals (
    id {{ID}},
    site_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (site_id, kind, value)
);
