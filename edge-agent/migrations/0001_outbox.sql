-- The agent's durable outbox: one row per accepted scan, holding its report until the server
-- has acknowledged it. Rows are never deleted by the agent.
CREATE TABLE scans (
    scan_id          TEXT PRIMARY KEY,
    report_id        TEXT NOT NULL UNIQUE,
    -- sha256 of the high-energy image, to tell a re-dropped scan from a different one.
    high_sha256      TEXT NOT NULL,
    captured_at      TEXT NOT NULL,
    accepted_at      TEXT NOT NULL,
    report_json      TEXT NOT NULL,
    -- pending: not yet acknowledged; delivered: report and preview stored by the server;
    -- refused: the server answered with a permanent 4xx (kept for the operator, not retried).
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'refused')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    -- Unix milliseconds before which no new attempt is made.
    next_attempt_ms  INTEGER NOT NULL,
    last_error       TEXT,
    delivered_at     TEXT
);

CREATE INDEX scans_due ON scans (state, next_attempt_ms);
