"""Summarises bench/compare/run.sh: per-stage medians (and spread) of both pipelines, the
ratio, the Rust overhead beyond the model, and findings agreement. Standard library only."""
import json
import statistics
import sys
from collections import defaultdict

STAGES = ["decode", "model", "ort_run", "calibrate", "manifest", "overlay", "total"]


def load(path):
    runs = defaultdict(list)
    for line in open(path):
        d = json.loads(line)
        runs[d["scan_id"]].append(d)
    return runs


def iou(a, b):
    if a is None or b is None:
        return 1.0 if a == b else 0.0
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1 = min(a["x"] + a["width"], b["x"] + b["width"])
    y1 = min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union else 1.0


def same(fa, fb):
    """Same kinds; matched findings agree in score (0.02) and region (IoU 0.8)."""
    if sorted(f["kind"] for f in fa) != sorted(f["kind"] for f in fb):
        return False
    rest = list(fb)
    for f in fa:
        m = next((g for g in rest if g["kind"] == f["kind"] and abs(g["score"] - f["score"]) <= 0.02
                  and iou(g["region"], f["region"]) >= 0.8), None)
        if m is None:
            return False
        rest.remove(m)
    return True


def main():
    rust, py = load(sys.argv[1]), load(sys.argv[2])
    print(f"{'stage':<10} {'Rust ms':>9} {'(IQR)':>13} {'Python ms':>10} {'(IQR)':>13} {'ratio':>7}")
    med = {}
    for stage in STAGES:
        r = [d["ms"][stage] for v in rust.values() for d in v]
        p = [d["ms"][stage] for v in py.values() for d in v]
        qr, qp = statistics.quantiles(r, n=4), statistics.quantiles(p, n=4)
        med[stage] = (statistics.median(r), statistics.median(p))
        print(f"{stage:<10} {med[stage][0]:>9.1f} {f'{qr[0]:.1f}-{qr[2]:.1f}':>13} {med[stage][1]:>10.1f} "
              f"{f'{qp[0]:.1f}-{qp[2]:.1f}':>13} {med[stage][1] / max(med[stage][0], 1e-9):>6.2f}x")
    # Overhead beyond the model, per scan, then the median.
    over = [(d["ms"]["total"] - d["ms"]["ort_run"]) / d["ms"]["total"] for v in rust.values() for d in v]
    print(f"end to end: Python / Rust = {med['total'][1] / med['total'][0]:.2f}x (median per scan)")
    print(f"Rust time beyond ORT run(): {statistics.median(over) * 100:.1f} % of the Rust total (median per scan)")
    agree = sum(same(rust[s][0]["findings"], py[s][0]["findings"]) for s in rust if s in py)
    print(f"same findings: {agree} of {len(rust)} scans")
    for s in sorted(rust):
        if s in py and not same(rust[s][0]["findings"], py[s][0]["findings"]):
            fmt = lambda fs: [(f["kind"], round(f["score"], 3)) for f in fs]
            print(f"  {s}: Rust {fmt(rust[s][0]['findings'])} / Python {fmt(py[s][0]['findings'])}")


if __name__ == "__main__":
    main()
