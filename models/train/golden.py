"""Writes models/onnx/xray-concealment.golden.json: the Python reference's preprocessing and tiled
ONNX Runtime output on scanner-sim scans, for the Rust parity test
(models/tests/concealment_parity.rs), which regenerates the same scans in-process.

    ./target/release/scanner-sim generate --scenario concealment --container 20 --truck no \
        --seed 4000 --count 2 --out DATA/golden/a --quiet
    ./target/release/scanner-sim generate --scenario compartment --container 40 --truck yes \
        --seed 4001 --count 2 --out DATA/golden/b --quiet
    python models/train/golden.py models/onnx DATA/golden/a DATA/golden/b
"""
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from train_xray_concealment import NAME, preprocess  # noqa: E402

TILE_WIDTH, TILE_CONTEXT = 512, 64  # models/src/concealment/mod.rs


def tiles(width):
    """Mirrors `tiles` in models/src/concealment/mod.rs."""
    if width <= TILE_WIDTH:
        return [(0, 0, width)]
    out, keep_from = [], 0
    while True:
        start = min(max(keep_from - TILE_CONTEXT, 0), width - TILE_WIDTH)
        end = start + TILE_WIDTH
        keep_to = width if end == width else end - TILE_CONTEXT
        out.append((start, keep_from, keep_to))
        if keep_to == width:
            return out
        keep_from = keep_to


def infer(sess, x):
    """Pads to multiples of 8 by repeating the edge, runs tile by tile, crops back."""
    h, w = x.shape
    xp = np.pad(x, ((0, -h % 8), (0, -w % 8)), mode="edge")
    out = np.zeros_like(xp)
    for start, keep_from, keep_to in tiles(xp.shape[1]):
        tile = np.ascontiguousarray(xp[None, None, :, start:start + TILE_WIDTH])
        p = sess.run(None, {"attenuation": tile})[0][0, 0]
        out[:, keep_from:keep_to] = p[:, keep_from - start:keep_to - start]
    return xp, out[:h, :w]


def main():
    out, folders = sys.argv[1], sys.argv[2:]
    sess = ort.InferenceSession(os.path.join(out, f"{NAME}.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(7)
    golden = []
    entries = [(d, e) for d in folders for e in json.load(open(os.path.join(d, "truth.json")))]
    for data, entry in entries:
        sid = entry["scan_id"]
        side = json.load(open(os.path.join(data, f"{sid}.json")))
        high = next(i for i in side["images"] if i["energy"] == "high")
        x = preprocess(np.array(Image.open(os.path.join(data, high["file"]))), high["air"], high["dark"])
        xp, p = infer(sess, x)
        h, w = p.shape
        r, c = np.unravel_index(np.argmax(p), p.shape)
        points = [(int(r), int(c))] + [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(63)]
        seed, index = sid.split("-s")[1].split("-")
        golden.append({
            "scan_id": sid, "seed": int(seed), "index": int(index),
            "scenario": entry["scenario"], "container": entry["container"], "truck": entry["truck"],
            "width": w, "height": h,
            "input_sum": float(xp.astype(np.float64).sum()),
            "output_sum": float(p.astype(np.float64).sum()),
            "output_max": float(p.max()),
            "flagged_pixels": int((p > 0.5).sum()),
            "samples": [[r, c, float(x[r, c]), float(p[r, c])] for r, c in points],
        })
    json.dump(golden, open(os.path.join(out, f"{NAME}.golden.json"), "w"), indent=1)
    print(f"{len(golden)} golden scans written")


if __name__ == "__main__":
    main()
