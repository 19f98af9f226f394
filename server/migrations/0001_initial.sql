-- Users of the review UI and API. Passwords are argon2id hashes.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'admin', 'agency')),
    bay           TEXT,
    created_at    TEXT NOT NULL
);

-- Login sessions; only the sha256 of the session token is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    expires_at TEXT NOT NULL
);

-- Edge agents; only the sha256 of each agent token is stored (tokens are 256-bit random).
CREATE TABLE agents (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    bay        TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- One case per scan report.
CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,
    report_id       TEXT NOT NULL UNIQUE,
    scan_id         TEXT NOT NULL UNIQUE,
    bay             TEXT NOT NULL,
    agent_id        INTEGER NOT NULL REFERENCES agents (id),
    captured_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    container_code  TEXT,
    declaration_ref TEXT,
    risk            REAL NOT NULL,
    lane            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    model_name      TEXT NOT NULL,
    model_sha256    TEXT NOT NULL,
    findings_count  INTEGER NOT NULL,
    report_json     TEXT NOT NULL,
    preview_path    TEXT
);

CREATE INDEX cases_risk ON cases (risk DESC, captured_at DESC);
CREATE INDEX cases_bay ON cases (bay, captured_at DESC);
