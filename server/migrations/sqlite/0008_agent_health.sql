-- What each agent reported in its last heartbeat beyond version, models and outbox depth
-- (camera, disk, oldest unsent scan, scans today, declarations cached, clock skew), as JSON,
-- for the fleet page and its alerts.
ALTER TABLE agents ADD COLUMN status_json TEXT;
