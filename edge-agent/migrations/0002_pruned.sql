-- When the files of a delivered scan were deleted to stay within the store quota (the report
-- row stays; the server holds the report and images).
ALTER TABLE scans ADD COLUMN pruned_at TEXT;
