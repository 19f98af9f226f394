-- The queue filtered by status, lane or both, in risk order, without scanning every case
-- (bench/server/queue.sh: open red cases among 100 000 went from a full scan, 1.9 s, to an
-- index range).
CREATE INDEX cases_status_risk ON cases (status, risk DESC, captured_at DESC);
CREATE INDEX cases_lane_risk ON cases (lane, risk DESC, captured_at DESC);
CREATE INDEX cases_status_lane_risk ON cases (status, lane, risk DESC, captured_at DESC);
