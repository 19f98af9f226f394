-- Officers' annotations relayed by bay agents (seal, examination, note, photo), one row per
-- annotation id so that a retried delivery is recorded once. The annotation's content lives in
-- case_events, attributed to the officer.
CREATE TABLE bay_annotations (
    annotation_id TEXT PRIMARY KEY,
    case_id       BIGINT NOT NULL REFERENCES cases (id),
    officer_id    BIGINT NOT NULL REFERENCES users (id),
    received_at   BIGINT NOT NULL
);
