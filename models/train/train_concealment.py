"""Train the BayLens concealment model (concealment-v1) on scanner-sim scans.

Offline only; CI never trains. Reproduce with:

    cargo run -p scanner-sim -- generate --scenario mixed --count 1000 --seed 1000 --out DATA/train --masks
    cargo run -p scanner-sim -- generate --scenario mixed --count 200 --seed 2000 --out DATA/val --masks
    python models/train/train_concealment.py --data DATA --out models/onnx

The model is a small two-level U-Net. Input: the high-energy attenuation map A = -ln T scaled by
1/4 (see `preprocess`, mirrored in Rust in models/src/concealment/preprocess.rs), shape
[1, 1, H, W] with H and W multiples of 4. Output: the per-pixel probability that the pixel
belongs to a concealed package, same shape.
"""
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

SEED = 20261125
ATTENUATION_SCALE = 0.25
T_MIN = 1e-6


def preprocess(readings: np.ndarray, air: int, dark: int) -> np.ndarray:
    """16-bit readings -> scaled attenuation, float32. Mirrors the Rust preprocessing."""
    t = (readings.astype(np.float32) - np.float32(dark)) / np.float32(air - dark)
    t = np.clip(t, T_MIN, 1.0)
    return (-np.log(t) * np.float32(ATTENUATION_SCALE)).astype(np.float32)


def load_split(folder):
    xs, ys = [], []
    truth = json.load(open(os.path.join(folder, "truth.json")))
    for entry in truth:
        sid = entry["scan_id"]
        sidecar = json.load(open(os.path.join(folder, f"{sid}.json")))
        high = next(i for i in sidecar["images"] if i["energy"] == "high")
        readings = np.array(Image.open(os.path.join(folder, high["file"])))
        assert readings.dtype == np.uint16, readings.dtype
        xs.append(preprocess(readings, high["air"], high["dark"]))
        ys.append((np.array(Image.open(os.path.join(folder, f"{sid}.mask.png"))) > 127).astype(np.float32))
    return np.stack(xs), np.stack(ys)


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class ConcealmentNet(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.enc1 = block(1, c)
        self.enc2 = block(c, 2 * c)
        self.mid = block(2 * c, 2 * c)
        self.dec2 = block(4 * c, c)
        self.dec1 = block(2 * c, c)
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], 1))
        return self.head(d1)


class Exported(nn.Module):
    """What goes into the ONNX file: the net with its sigmoid."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, attenuation):
        return torch.sigmoid(self.net(attenuation))


def crops(x, y, size, batch, rng):
    n, h, w = x.shape
    bx = np.empty((batch, 1, size, size), np.float32)
    by = np.empty((batch, 1, size, size), np.float32)
    for b in range(batch):
        i = rng.integers(n)
        ys, xs = np.nonzero(y[i])
        if len(ys) and rng.random() < 0.6:
            k = rng.integers(len(ys))
            r0 = int(np.clip(ys[k] - rng.integers(size), 0, h - size))
            c0 = int(np.clip(xs[k] - rng.integers(size), 0, w - size))
        else:
            r0, c0 = rng.integers(h - size + 1), rng.integers(w - size + 1)
        bx[b, 0] = x[i, r0:r0 + size, c0:c0 + size]
        by[b, 0] = y[i, r0:r0 + size, c0:c0 + size]
    return torch.from_numpy(bx), torch.from_numpy(by)


def evaluate(net, x, y, threshold=0.5):
    net.eval()
    inter = union = 0.0
    scan_hits = scan_total = clean_flags = clean_total = 0
    with torch.no_grad():
        for i in range(0, len(x), 16):
            p = torch.sigmoid(net(torch.from_numpy(x[i:i + 16, None]))).numpy()[:, 0]
            for pi, yi in zip(p, y[i:i + 16]):
                pred = pi > threshold
                truth = yi > 0.5
                inter += (pred & truth).sum()
                union += (pred | truth).sum()
                if truth.any():
                    scan_total += 1
                    scan_hits += int(pi[truth].max() > threshold)
                else:
                    clean_total += 1
                    clean_flags += int(pred.sum() >= 12)
    net.train()
    return {
        "pixel_iou": float(inter / max(union, 1)),
        "scan_recall": scan_hits / max(scan_total, 1),
        "clean_false_alarm_rate": clean_flags / max(clean_total, 1),
        "concealment_scans": scan_total,
        "clean_scans": clean_total,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    random.seed(SEED)
    rng = np.random.default_rng(SEED)
    torch.set_num_threads(args.threads)

    xt, yt = load_split(os.path.join(args.data, "train"))
    xv, yv = load_split(os.path.join(args.data, "val"))
    print(f"train {xt.shape} val {xv.shape}", flush=True)

    net = ConcealmentNet()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps)
    pos_weight = torch.tensor(4.0)
    start = time.time()
    for step in range(1, args.steps + 1):
        bx, by = crops(xt, yt, 96, 24, rng)
        logits = net(bx)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * by).sum() + 1) / (p.sum() + by.sum() + 1)
        loss = F.binary_cross_entropy_with_logits(logits, by, pos_weight=pos_weight) + 0.5 * dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0:
            print(f"step {step} loss {loss.item():.4f} {time.time() - start:.0f}s {evaluate(net, xv[:64], yv[:64])}", flush=True)

    metrics = evaluate(net, xv, yv)
    metrics["train_seconds"] = round(time.time() - start)
    print("validation", metrics, flush=True)

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "concealment-v1.onnx")
    exported = Exported(net).eval()
    dummy = torch.from_numpy(xv[:1, None])
    torch.onnx.export(
        exported, (dummy,), onnx_path, input_names=["attenuation"], output_names=["concealment_prob"],
        dynamic_axes={"attenuation": {2: "height", 3: "width"}, "concealment_prob": {2: "height", 3: "width"}},
        opset_version=17, dynamo=False,
    )
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = exported(dummy).numpy()
    got = sess.run(None, {"attenuation": dummy.numpy()})[0]
    metrics["onnx_max_abs_diff_vs_torch"] = float(np.abs(ref - got).max())
    metrics["parameters"] = sum(p.numel() for p in net.parameters())
    json.dump(metrics, open(os.path.join(args.out, "concealment-v1.metrics.json"), "w"), indent=2)
    print("exported", onnx_path, metrics, flush=True)


if __name__ == "__main__":
    main()
