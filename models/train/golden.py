"""Writes models/onnx/concealment-v1.golden.json: the Python reference's preprocessing and
ONNX Runtime output on scanner-sim validation scans (seed 2000), for the Rust parity test."""
import json, sys, os
import numpy as np
import onnxruntime as ort
from PIL import Image
sys.path.insert(0, os.path.dirname(__file__))
from train_concealment import preprocess

data, out = sys.argv[1], sys.argv[2]
sess = ort.InferenceSession(os.path.join(out, "concealment-v1.onnx"), providers=["CPUExecutionProvider"])
golden = []
for idx in range(4):
    sid = f"BAY01-s2000-{idx:06d}"
    side = json.load(open(os.path.join(data, f"{sid}.json")))
    high = next(i for i in side["images"] if i["energy"] == "high")
    x = preprocess(np.array(Image.open(os.path.join(data, high["file"]))), high["air"], high["dark"])
    p = sess.run(None, {"attenuation": x[None, None]})[0][0, 0]
    golden.append({"seed": 2000, "index": idx, "input_sum": float(x.astype(np.float64).sum()),
                   "input_at_100_200": float(x[100, 200]), "output_sum": float(p.astype(np.float64).sum()),
                   "output_max": float(p.max()), "flagged_pixels": int((p > 0.5).sum())})
json.dump(golden, open(os.path.join(out, "concealment-v1.golden.json"), "w"), indent=2)
print(golden)
