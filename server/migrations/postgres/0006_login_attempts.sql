-- Login attempts per user name (hashed: people type passwords there) and per source address,
-- counted atomically in the database so that every replica sees the same counts.
CREATE TABLE login_attempts (
    key          TEXT PRIMARY KEY,
    count        BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
