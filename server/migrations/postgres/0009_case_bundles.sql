-- Signed case bundles (protocol/CASE_BUNDLE.md). Public keys of other administrations whose
-- bundles this server accepts, and the cases imported from them: read-only, each with its
-- origin and the sha256 of the bundle it came in (the bundle and its files are kept in the
-- object store under imports/{bundle_sha256}/).
CREATE TABLE trusted_keys (
    key_id     TEXT PRIMARY KEY,
    public_key TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    issuer     TEXT NOT NULL,
    added_at   BIGINT NOT NULL,
    added_by   TEXT NOT NULL
);

CREATE TABLE imported_cases (
    id             BIGSERIAL PRIMARY KEY,
    bundle_sha256  TEXT NOT NULL UNIQUE,
    key_id         TEXT NOT NULL REFERENCES trusted_keys (key_id),
    origin         TEXT NOT NULL,
    origin_case_id BIGINT NOT NULL,
    scan_id        TEXT NOT NULL,
    container_code TEXT,
    manifest       TEXT NOT NULL,
    imported_at    BIGINT NOT NULL,
    imported_by    BIGINT NOT NULL REFERENCES users (id)
);
CREATE INDEX imported_cases_imported ON imported_cases (imported_at);
