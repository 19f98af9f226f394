-- The container code a bay's camera read over a truck pass, one per case, as it was compared
-- with the scanner's code and the declaration's on arrival. When it disagreed, the case carries
-- a container_code_mismatch finding (in its report) saying so; the frames that read it are
-- kept as the case's evidence images (case_layers), named in frames_json.
CREATE TABLE camera_codes (
    reading_id   TEXT PRIMARY KEY,
    case_id      BIGINT NOT NULL UNIQUE REFERENCES cases (id),
    code         TEXT NOT NULL,
    confidence   DOUBLE PRECISION NOT NULL,
    frames       BIGINT NOT NULL,
    agreeing     BIGINT NOT NULL,
    size_type    TEXT,
    read_at      BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    -- The finding's message when the reading disagreed; NULL when it agreed.
    mismatch     TEXT,
    frames_json  TEXT NOT NULL
);
