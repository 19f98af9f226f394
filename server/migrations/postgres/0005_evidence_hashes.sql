-- Evidence images are written once: each image's sha256 is kept with the case (and in the
-- audit chain, which records every write), so a replaced file is detectable.
ALTER TABLE cases ADD COLUMN preview_sha256 TEXT;
ALTER TABLE case_layers ADD COLUMN sha256 TEXT;
-- The thumbnail a bay sends first for a cleared scan, once superseded by the full resolution
-- (the only replacement allowed; both images stay stored).
ALTER TABLE cases ADD COLUMN preview_thumbnail_sha256 TEXT;
