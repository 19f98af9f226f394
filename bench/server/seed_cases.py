"""Fills a BayLens SQLite database with N realistic cases (for bench/server/queue.sh): 20 bays,
risks and lanes spread like a real border post's, each with a report of three findings.
Standard library only."""
import json
import random
import sqlite3
import sys
import time

db, n = sys.argv[1], int(sys.argv[2])
con = sqlite3.connect(db)
agent = con.execute("SELECT id FROM agents LIMIT 1").fetchone()[0]
rng = random.Random(7)
now = int(time.time() * 1000)
report = json.dumps({
    "contract": "baylens.report/1", "report_id": "r", "scan_id": "s", "bay": "BAY01",
    "captured_at": "2026-11-26T08:00:00Z", "analysed_at": "2026-11-26T08:00:01Z",
    "container_code": "CSQU3054383", "width": 2040, "height": 450,
    "model": {"name": "xray-concealment", "sha256": "0" * 64, "max_probability": 0.97,
              "flagged_fraction": 0.001, "inference_ms": 80.0},
    "findings": [
        {"kind": "concealed_object", "score": 0.97, "region": {"x": 1040, "y": 184, "width": 36, "height": 32},
         "message": "Possible concealment: goods of about 0.4 m x 0.3 m hidden in the cargo, 10.4 m from the left edge of the scan and 1.8 m from its top: examine there."},
        {"kind": "mass_mismatch", "score": 0.6, "region": {"x": 700, "y": 40, "width": 1300, "height": 270},
         "message": "The load weighs about 18.7 t, 47 % more than the 12.8 t declared: look for undeclared or under-declared goods."},
        {"kind": "fill_mismatch", "score": 0.46, "region": {"x": 700, "y": 60, "width": 900, "height": 250},
         "message": "The load shows 9.9 m2 in side view; the 12.8 t of goods declared would fill 2.5 to 6.4 m2."},
    ],
    "risk": 0.99, "lane": "red",
})
rows = []
con.execute("BEGIN")
for i in range(n):
    risk = min(1.0, rng.betavariate(0.7, 3.0))
    lane = "red" if risk >= 0.7 else "yellow" if risk >= 0.35 else "green"
    captured = now - rng.randrange(0, 365 * 86_400_000)
    status = "open" if rng.random() < 0.05 else "decided"
    rows.append((f"r-{i}", f"BAY{i % 20:02d}-bench-{i}", f"BAY{i % 20:02d}", agent, captured, captured + 3000,
                 f"MSCU{i % 1000000:06d}0", None, None, risk, risk, lane, status, "xray-concealment",
                 "0" * 64, 3, report))
    if len(rows) == 50_000:
        con.executemany("INSERT INTO cases (report_id, scan_id, bay, agent_id, captured_at, received_at, "
                        "container_code, declaration_ref, declaration_id, scan_risk, risk, lane, status, "
                        "model_name, model_sha256, findings_count, report_json) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        rows = []
if rows:
    con.executemany("INSERT INTO cases (report_id, scan_id, bay, agent_id, captured_at, received_at, "
                    "container_code, declaration_ref, declaration_id, scan_risk, risk, lane, status, "
                    "model_name, model_sha256, findings_count, report_json) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
con.commit()
con.execute("ANALYZE")
print(f"seeded {n} cases")
