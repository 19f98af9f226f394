-- Dataset export (issue "feedback loop"). The raw scan of a case (its sidecar and 16-bit images
-- as the bay received them, in one tar) is uploaded by the bay when the server asks for it: a
-- dataset export asks for those it lacks. Write-once like other evidence, hash kept here and
-- in the audit chain. Export jobs started from the UI are kept with their progress.
ALTER TABLE cases ADD COLUMN raw_wanted_at BIGINT;
ALTER TABLE cases ADD COLUMN raw_key TEXT;
ALTER TABLE cases ADD COLUMN raw_sha256 TEXT;
CREATE INDEX cases_raw_wanted ON cases (bay, raw_wanted_at);

CREATE TABLE dataset_exports (
    id           INTEGER PRIMARY KEY,
    requested_by BIGINT NOT NULL REFERENCES users (id),
    requested_at BIGINT NOT NULL,
    params       TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
    done         BIGINT NOT NULL DEFAULT 0,
    total        BIGINT NOT NULL DEFAULT 0,
    summary      TEXT,
    object_key   TEXT,
    sha256       TEXT,
    finished_at  BIGINT
);
CREATE INDEX dataset_exports_requested ON dataset_exports (requested_at);
