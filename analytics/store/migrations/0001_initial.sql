-- Sites, daily salts and the short-lived raw events.
-- Portable SQL: {{ID}} and {{BLOB}} are filled in per database by analytics/store/dialect.py.

CREATE TABLE sites (
    id {{ID}},
    domain TEXT NOT NULL UNIQUE,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    allowed_hostnames TEXT NOT NULL DEFAULT '[]',
    excluded_ips TEXT NOT NULL DEFAULT '[]',
    excluded_paths TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);

-- One 32-byte random salt per UTC day, deleted shortly after its day ends.
CREATE TABLE salts (
    day TEXT PRIMARY KEY,
    salt {{BLOB}} NOT NULL,
    created_at BIGINT NOT NULL
);

-- Raw events: hashed and coarse, kept only until rolled up. No IP, no User-Agent, no full referrer.
CREATE TABLE events (
    site_id BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    visitor_id BIGINT NOT NULL,
    prev_visitor_id BIGINT,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL,
    pathname TEXT NOT NULL,
    referrer TEXT NOT NULL,
    source TEXT NOT NULL,
    utm_source TEXT NOT NULL,
    utm_medium TEXT NOT NULL,
    utm_campaign TEXT NOT NULL,
    utm_content TEXT NOT NULL,
    utm_term TEXT NOT NULL,
    browser TEXT NOT NULL,
    browser_version TEXT NOT NULL,
    os TEXT NOT NULL,
    os_version TEXT NOT NULL,
    device TEXT NOT NULL,
    screen TEXT NOT NULL,
    country TEXT NOT NULL,
    region TEXT NOT NULL,
    city TEXT NOT NULL,
    props TEXT,
    revenue_micros BIGINT,
    revenue_currency TEXT,
    interactive BOOLEAN NOT NULL,
    scroll_depth SMALLINT,
    engaged_ms INTEGER
);

CREATE INDEX events_site_ts ON events (site_id, ts);
