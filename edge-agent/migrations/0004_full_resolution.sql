-- Frugal uplink: a cleared (green-lane) scan goes out first as its report and a thumbnail; the
-- full-resolution preview and layers follow when the uplink has nothing more urgent to send.
-- full_due = 1 while they are owed; full_bytes counts what they cost.
ALTER TABLE scans ADD COLUMN full_due INTEGER NOT NULL DEFAULT 0;
ALTER TABLE scans ADD COLUMN full_bytes INTEGER;
ALTER TABLE scans ADD COLUMN full_next_ms INTEGER NOT NULL DEFAULT 0;
