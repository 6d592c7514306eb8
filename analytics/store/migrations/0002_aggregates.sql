-- Aggregates: the minimised metrics kept after raw events are purged.

-- Dimension values are stored once and referred to by id (a page path costs its bytes once, not per row).
CREATE TABLE dim_values (
    id {{ID}},
    dim INTEGER NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (dim, value)
);

-- One row per site, period (0 hour, 1 day, 2 month), bucket (local hours / days / months since an epoch),
-- filter (fdim, fval; 0, 0 = unfiltered) and breakdown (dim, val; 0, 0 = totals).
CREATE TABLE agg (
    site_id BIGINT NOT NULL,
    period SMALLINT NOT NULL,
    bucket INTEGER NOT NULL,
    fdim INTEGER NOT NULL,
    fval BIGINT NOT NULL,
    dim INTEGER NOT NULL,
    val BIGINT NOT NULL,
    visitors INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    duration BIGINT NOT NULL,
    -- Ordered for the queries: one dimension's rows over a range of buckets are contiguous.
    PRIMARY KEY (site_id, period, fdim, fval, dim, bucket, val)
) {{WITHOUT_ROWID}};

-- Which site-local days have been rolled up (their raw events may then be purged).
CREATE TABLE rollups (
    site_id BIGINT NOT NULL,
    day INTEGER NOT NULL,
    rolled_at BIGINT NOT NULL,
    PRIMARY KEY (site_id, day)
);
