-- Image layers a bay sends beside the preview (heat map, material map, expected cargo, ...),
-- each a PNG in the object store under scans/{scan_id}/{name}.png.
CREATE TABLE case_layers (
    case_id     BIGINT NOT NULL REFERENCES cases (id),
    name        TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    uploaded_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, name)
);
