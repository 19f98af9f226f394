-- BayLens central store, PostgreSQL flavour. Kept in lockstep with ../sqlite/ (same files, same
-- tables and columns; a test compares them). Times are Unix milliseconds (BIGINT), JSON is TEXT.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin', 'agency')),
    bay           TEXT,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL
);

-- Login sessions and API tokens; only the sha256 of each token is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id),
    kind       TEXT NOT NULL CHECK (kind IN ('login', 'api')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Edge agents; only the sha256 of each agent token is stored.
CREATE TABLE agents (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    bay          TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_seen_at BIGINT,
    version      TEXT,
    models_json  TEXT,
    queue_depth  BIGINT
);

-- Advance declarations (baylens.declaration/1), with the pre-arrival risk computed at lodging.
CREATE TABLE declarations (
    id               BIGSERIAL PRIMARY KEY,
    reference        TEXT NOT NULL UNIQUE,
    declarant_id     TEXT NOT NULL,
    office           TEXT NOT NULL,
    bay              TEXT,
    container_code   TEXT,
    expected_arrival BIGINT NOT NULL,
    declared_empty   BIGINT NOT NULL,
    gross_mass_kg    DOUBLE PRECISION NOT NULL,
    pre_risk         DOUBLE PRECISION NOT NULL,
    risk_reasons     TEXT NOT NULL,
    body             TEXT NOT NULL,
    lodged_at        BIGINT NOT NULL,
    lodged_by        TEXT NOT NULL
);
CREATE INDEX declarations_bay ON declarations (bay, expected_arrival);
CREATE INDEX declarations_container ON declarations (container_code, expected_arrival);

-- One case per scan report.
CREATE TABLE cases (
    id              BIGSERIAL PRIMARY KEY,
    report_id       TEXT NOT NULL UNIQUE,
    scan_id         TEXT NOT NULL UNIQUE,
    bay             TEXT NOT NULL,
    agent_id        BIGINT NOT NULL REFERENCES agents (id),
    captured_at     BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    container_code  TEXT,
    declaration_ref TEXT,
    declaration_id  BIGINT REFERENCES declarations (id),
    scan_risk       DOUBLE PRECISION NOT NULL,
    risk            DOUBLE PRECISION NOT NULL,
    lane            TEXT NOT NULL,
    status          TEXT NOT NULL,
    model_name      TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    findings_count  BIGINT NOT NULL,
    report_json     TEXT NOT NULL,
    preview_key     TEXT,
    assigned_to     BIGINT REFERENCES users (id),
    decision        TEXT,
    decided_at      BIGINT,
    released_at     BIGINT
);
CREATE INDEX cases_risk ON cases (risk DESC, captured_at DESC);
CREATE INDEX cases_bay ON cases (bay, risk DESC);
CREATE INDEX cases_captured ON cases (captured_at);
CREATE INDEX cases_container ON cases (container_code);

-- Everything people did to a case: decisions, examination results, notes, assignment, sharing.
CREATE TABLE case_events (
    id      BIGSERIAL PRIMARY KEY,
    case_id BIGINT NOT NULL REFERENCES cases (id),
    at      BIGINT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id),
    kind    TEXT NOT NULL,
    value   TEXT,
    note    TEXT
);
CREATE INDEX case_events_case ON case_events (case_id, id);

-- Cases shared with a partner agency (TFA Art. 8).
CREATE TABLE case_shares (
    case_id   BIGINT NOT NULL REFERENCES cases (id),
    user_id   BIGINT NOT NULL REFERENCES users (id),
    shared_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, user_id)
);

-- Append-only, hash-chained audit log: hash = sha256(prev_hash, seq, at, actor, action, subject, detail).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
