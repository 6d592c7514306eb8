-- Leases: a job that must run once (rollup, purge) is run by whichever worker holds its lease.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
