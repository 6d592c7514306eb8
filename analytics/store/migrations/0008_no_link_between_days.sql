-- No stored value links a visitor's two days any more. Events of the first 30 minutes after UTC midnight also
-- carried the visitor's hash under yesterday's salt (prev_visitor_id), which linked a returning visitor's two
-- days whether or not one visit spanned midnight; a visit across midnight now keeps its first hash until it ends
-- (analytics/midnight.py). Just before this runs, the events the old join put in such a visit are given that
-- hash (analytics/store/sqlite_steps.py), so that no visit is split and no event is lost.
-- DROP COLUMN needs SQLite 3.35 or newer.
ALTER TABLE events DROP COLUMN prev_visitor_id;
