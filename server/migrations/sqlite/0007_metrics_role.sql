-- The read-only `metrics` role (Prometheus scrapers). Kept in lockstep with ../postgres/.
--
-- SQLite cannot alter a CHECK constraint, and rebuilding `users` is impossible here with
-- foreign keys on (sessions, case events and annotations reference it). Widening the set of
-- allowed values changes nothing stored, so this follows SQLite's documented procedure for
-- such changes ("Making Other Kinds Of Table Schema Changes", lang_altertable.html): rewrite
-- the table's SQL in the schema table, then change the schema (the throw-away table below) so
-- that every connection reloads it.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''officer'', ''supervisor'', ''admin'', ''agency'')',
                       '''officer'', ''supervisor'', ''admin'', ''agency'', ''metrics'')')
WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = RESET;
CREATE TABLE schema_reload (x INTEGER);
DROP TABLE schema_reload;
