-- The container code the bay camera read over a truck pass waits for the server in the same
-- table as officers' annotations (same ordering, retries and backoff): `kind` tells them apart
-- and names the case's route they go to. A camera reading's row has the reading as body_json
-- (frames included, base64) and no photo.
ALTER TABLE annotations ADD COLUMN kind TEXT NOT NULL DEFAULT 'annotation'
    CHECK (kind IN ('annotation', 'camera_code'));
