-- The custom property keys each site stores (a JSON list; events' other properties are dropped before storage),
-- and daily counters of what ingest left out, by site and reason (never by visitor).

ALTER TABLE sites ADD COLUMN allowed_props TEXT NOT NULL DEFAULT '[]';

-- A site made before this version keeps the keys its figures already hold (aggregates, and raw events not rolled
-- up yet), so that upgrading stops no report; a new site starts with none. Keys holding an e-mail address or a
-- long number are left out here, and any other key that scrubbing would change is ignored when the sites are
-- loaded (SiteRules.of), whatever this list says.
UPDATE sites SET allowed_props = (
    SELECT json_group_array(key) FROM (
        SELECT key FROM (
            SELECT v.value AS key FROM dim_values v
            WHERE v.dim = 99 AND v.id + 1000 IN (
                SELECT a.dim FROM agg a WHERE a.site_id = sites.id AND a.period = 2 AND a.fdim = 0 AND a.fval = 0
                AND a.dim >= 1000
            )
            UNION
            SELECT j.key AS key FROM events e, json_each(e.props) j WHERE e.site_id = sites.id AND e.props IS NOT NULL
        )
        WHERE key NOT LIKE '%@%' AND key NOT GLOB '*[0-9][0-9][0-9][0-9][0-9][0-9][0-9]*' AND length(key) <= 300
        ORDER BY key
        LIMIT 100
    )
);

-- day: the site's local day number (date.toordinal()), as the aggregates count days; reason: a drop reason
-- (gpc, bot, ...) or property-not-allowed; count: requests dropped, or properties left out.
CREATE TABLE drops (
    site_id BIGINT NOT NULL,
    day INTEGER NOT NULL,
    reason TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (site_id, day, reason)
) {{WITHOUT_ROWID}};
