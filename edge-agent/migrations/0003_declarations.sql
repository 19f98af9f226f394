-- The local copy of the advance declarations for this bay (TFA Art. 7 pre-arrival processing),
-- synced from the server so that scans are checked against them even while it is unreachable.
CREATE TABLE declarations (
    reference            TEXT PRIMARY KEY,
    container_code       TEXT,
    expected_arrival_ms  INTEGER NOT NULL,
    lodged_at_ms         INTEGER NOT NULL,
    pre_risk             REAL NOT NULL,
    -- JSON array of the reasons behind pre_risk.
    risk_reasons         TEXT NOT NULL,
    declaration_json     TEXT NOT NULL,
    synced_at            TEXT NOT NULL
);
CREATE INDEX declarations_container ON declarations (container_code, expected_arrival_ms);

-- What the agent last heard from the server (one row): for `edge-agent status`.
CREATE TABLE server_contact (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    last_contact         TEXT,
    last_sync            TEXT,
    last_error           TEXT
);
INSERT INTO server_contact (id) VALUES (1);

-- Bytes sent to the server for each delivered scan (report, preview and layers, last attempt).
ALTER TABLE scans ADD COLUMN sent_bytes INTEGER;
