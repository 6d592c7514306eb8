-- Filtered rows of recent days: breakdowns under a filter by day (with a copy of the day's filtered totals, so
-- that re-rolling a day can take its old figures off its month). Kept for the last days only (rollup.RECENT_DAYS): they are what makes a filtered
-- 7d or 30d report exact, and they cost more rows than everything else together; older filtered breakdowns
-- are answered from the monthly rows in agg. Days first in the key: a day is written, re-written and purged
-- as one contiguous range.
CREATE TABLE agg_days (
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
    PRIMARY KEY (site_id, period, bucket, fdim, fval, dim, val)
) {{WITHOUT_ROWID}};

-- 1 while a rolled-up day still has its rows in agg_days (the purge sets it to 0 when it removes them).
ALTER TABLE rollups ADD COLUMN recent SMALLINT NOT NULL DEFAULT 0;

-- Filtered breakdowns by month (filtered totals by month stay in agg). The value comes before the month in the
-- key: a coarse breakdown under a fine filter is read from these rows transposed (see rollup.transposed), with
-- one index range per value of the coarse dimension.
CREATE TABLE agg_months (
    site_id BIGINT NOT NULL,
    fdim INTEGER NOT NULL,
    fval BIGINT NOT NULL,
    dim INTEGER NOT NULL,
    val BIGINT NOT NULL,
    bucket INTEGER NOT NULL,
    visitors INTEGER NOT NULL,
    visits INTEGER NOT NULL,
    pageviews INTEGER NOT NULL,
    events INTEGER NOT NULL,
    bounces INTEGER NOT NULL,
    duration BIGINT NOT NULL,
    PRIMARY KEY (site_id, fdim, fval, dim, val, bucket)
) {{WITHOUT_ROWID}};
