-- What officers record at the bay's tablet (seal, examination result, note, photo), kept until
-- the server has it. Rows are never deleted by the agent.
CREATE TABLE annotations (
    annotation_id    TEXT PRIMARY KEY,
    scan_id          TEXT NOT NULL,
    -- The annotation as sent to the server, without the photo.
    body_json        TEXT NOT NULL,
    photo            BLOB,
    created_ms       INTEGER NOT NULL,
    -- pending, delivered, or refused (a permanent 4xx; kept for the operator, not retried).
    state            TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'refused')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    last_error       TEXT
);

CREATE INDEX annotations_due ON annotations (state, next_attempt_ms);
