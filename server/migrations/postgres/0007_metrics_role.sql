-- The read-only `metrics` role (Prometheus scrapers). Kept in lockstep with ../sqlite/.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('officer', 'supervisor', 'admin', 'agency', 'metrics'));
