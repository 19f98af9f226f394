"""Train the BayLens X-ray concealment model (xray-concealment) on scanner-sim scans.

Offline only; CI never trains. The commands, seeds and package versions that reproduce the
committed model are in models/train/README.md (two stages: `--recipe stage1`, then
`--recipe stage2 --init <stage 1 ONNX>`).

Input: the high-energy attenuation A = -ln T, scaled by 1/4 (`preprocess`, mirrored in Rust in
models/src/concealment/preprocess.rs), shape [N, 1, H, W], H and W multiples of 8, at 10 mm
pitch (scans at other pitches are resampled first, `model_input`, as the agent does). Output:
per-pixel probability that the pixel shows concealed goods or a false structure (wall, floor,
ceiling), same shape.

Two architectures (`--arch`), both three-level U-Nets that work at half resolution: a stride-2
stem, encoders of 16, 32 and 64 channels, nearest-neighbour upsampling with skip connections,
and a bilinear upsampling of the logits back to full resolution. Half resolution (20 mm) still
puts 10+ pixels across the smallest package and cuts the cost per scan by four. `unet` (the
first shipped model) has two 3x3 convolutions in every block; `lite` (the shipped model since
2026-12-07) has half its multiply-adds. `--randomise` reads each training scan as a randomly
drawn scanner (domain randomisation, `SCANNERS`).
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

SEED = 20261126
ATTENUATION_SCALE = 0.25
T_MIN = 1e-6
PITCH_MM = 10.0  # models/src/concealment/mod.rs
NAME = "xray-concealment"
# Two stages. Stage 1 learns what hidden goods look like: small crops, half of them on hidden
# goods, positives weighted up. It finds everything but also flags dense stack tops, walls and
# wheels in clean loads. Stage 2 starts from stage 1 and teaches it what is *not* hidden: larger
# crops with more context, fewer positive crops, air-only crops redrawn, and online hard-negative
# mining (the worst 1 % of clean pixels get a loss term of their own).
RECIPES = {
    "stage1": dict(crop=(128, 256), positive_share=0.5, skip_air=False, pos_weight=3.0,
                   dice=0.5, hard=0.0, lr=3e-3, steps=4000, batch=16),
    "stage2": dict(crop=(192, 320), positive_share=0.4, skip_air=True, pos_weight=3.0,
                   dice=0.5, hard=0.5, lr=1e-3, steps=2000, batch=12),
}


def preprocess(readings: np.ndarray, air: int, dark: int) -> np.ndarray:
    """16-bit readings -> scaled attenuation, float32. Mirrors the Rust preprocessing."""
    t = (readings.astype(np.float32) - np.float32(dark)) / np.float32(air - dark)
    t = np.clip(t, T_MIN, 1.0)
    return (-np.log(t) * np.float32(ATTENUATION_SCALE)).astype(np.float32)


def resized(a, w, h):
    """PIL's antialiased bilinear: the filter models/src/concealment/resample.rs mirrors."""
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR),
                      dtype=np.float32)


# Domain randomisation (`--randomise`): each training scan is seen as if another scanner had
# taken it. The ranges are physical ones set before any measurement, wide enough to cover
# linacs from 4 to 9 MeV and detectors from mobile units to fine portals; no profile's scans
# or parameters were fitted to. The simulator's own detector (40,000 photons in air, a [1 2 1]/4
# blur, 0.5 % gain spread) is the least noisy and sharpest case, so only noise and blur are added.
SCANNERS = dict(photons=(10_000.0, 40_000.0), hardening=(0.0, 0.02), psf_centre=(0.3, 0.7),
                psf_passes=(0, 2), gain_spread=(0.0, 0.01), sim_photons=40_000.0)


def random_scanner(rng):
    """One draw of a scanner from SCANNERS (a dict for `transmission_as`)."""
    r = SCANNERS
    return dict(photons=float(rng.uniform(*r["photons"])), hardening=float(rng.uniform(*r["hardening"])),
                psf_centre=float(rng.uniform(*r["psf_centre"])),
                psf_passes=int(rng.integers(r["psf_passes"][0], r["psf_passes"][1] + 1)),
                gain_spread=float(rng.uniform(*r["gain_spread"])), seed=int(rng.integers(1 << 31)))


def transmission_as(t, scanner):
    """Transmission at the scan's own pixels as `scanner` would have read it: beam hardening on
    the attenuation, a wider point-spread, fewer photons and a channel (row) gain of its own."""
    rng = np.random.default_rng(scanner["seed"])
    a = -np.log(np.clip(t, T_MIN, 1.0))
    t = np.exp(-a / (1.0 + scanner["hardening"] * a)).astype(np.float32)
    c = np.float32(scanner["psf_centre"])
    for _ in range(scanner["psf_passes"]):
        for axis in (0, 1):
            t = c * t + (1 - c) / 2 * (np.roll(t, 1, axis) + np.roll(t, -1, axis))
    extra = max(0.0, 1.0 / scanner["photons"] - 1.0 / SCANNERS["sim_photons"])
    t = t + np.sqrt(np.clip(t, 0, None) * extra).astype(np.float32) * rng.standard_normal(t.shape, np.float32)
    t = t * (1 + scanner["gain_spread"] * rng.standard_normal((t.shape[0], 1), np.float32))
    return np.clip(t, T_MIN, 1.0).astype(np.float32)


def model_input(sidecar_path, mask=False, scanner=None):
    """The model's input at 10 mm (and the mask there), as the Rust pipeline makes it:
    transmission resampled, then scaled attenuation. `scanner` (from `random_scanner`) reads
    the scan as another scanner first."""
    sc = json.load(open(sidecar_path))
    hi = next(i for i in sc["images"] if i["energy"] == "high")
    r = np.array(Image.open(os.path.join(os.path.dirname(sidecar_path), hi["file"]))).astype(np.float32)
    t = np.clip((r - np.float32(hi["dark"])) / np.float32(hi["air"] - hi["dark"]), T_MIN, 1.0)
    if scanner is not None:
        t = transmission_as(t, scanner)
    h, w = t.shape
    px = sc["pixel_pitch_mm"]
    py = sc.get("pixel_pitch_vertical_mm") or px
    mw, mh = max(1, round(w * px / PITCH_MM)), max(1, round(h * py / PITCH_MM))
    if (px, py) != (PITCH_MM, PITCH_MM):
        t = resized(t, mw, mh)
    x = (-np.log(np.clip(t, T_MIN, 1.0)) * np.float32(ATTENUATION_SCALE)).astype(np.float32)
    y = np.zeros(x.shape, bool)
    if mask:
        m = np.array(Image.open(sidecar_path[:-len(".json")] + ".mask.png")).astype(np.float32) / 255
        y = (resized(m, mw, mh) if m.shape != x.shape else m) > 0.5
    return x, y


def load_split(folder, rng=None):
    """Scans of a folder (and its subfolders, each with its truth.json) as (attenuation, mask,
    scenario) lists at the model's pitch; sizes differ per scan. With `rng`, each scan is read
    as a randomly drawn scanner (domain randomisation)."""
    xs, ys, kinds = [], [], []
    for root, _, files in sorted(os.walk(folder)):
        if "truth.json" not in files:
            continue
        for entry in json.load(open(os.path.join(root, "truth.json"))):
            scanner = random_scanner(rng) if rng is not None else None
            x, y = model_input(os.path.join(root, f"{entry['scan_id']}.json"), mask=True, scanner=scanner)
            xs.append(x)
            ys.append(y)
            kinds.append(entry["scenario"])
    return xs, ys, kinds


def block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


class ConcealmentNet(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.enc1 = block(c, c)
        self.enc2 = block(c, 2 * c)
        self.mid = block(2 * c, 4 * c)
        self.dec2 = block(6 * c, 2 * c)
        self.dec1 = block(3 * c, c)
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        e1 = self.enc1(self.stem(x))
        e2 = self.enc2(F.max_pool2d(e1, 2))
        m = self.mid(F.max_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(m, scale_factor=2.0, mode="nearest"), e2], 1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0, mode="nearest"), e1], 1))
        return F.interpolate(self.head(d1), scale_factor=2.0, mode="bilinear", align_corners=False)


class LiteNet(nn.Module):
    """The same three levels at half the multiply-adds (about 15.5k against 30k per
    half-resolution pixel): one convolution in the first encoder, and decoders that first
    reduce the concatenated channels with a 1x1 convolution, then apply one 3x3."""

    def __init__(self, c=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.enc1 = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True))
        self.enc2 = block(c, 2 * c)
        self.mid = block(2 * c, 4 * c)
        self.dec2 = reduce_block(6 * c, 2 * c)
        self.dec1 = reduce_block(3 * c, c)
        self.head = nn.Conv2d(c, 1, 1)

    forward = ConcealmentNet.forward


def reduce_block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 1), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True),
    )


ARCHS = {"unet": ConcealmentNet, "lite": LiteNet}


def net_from_onnx(path):
    """The net a committed ONNX file holds, with its weights: the architecture is told apart by
    its parameter names and shapes."""
    import onnx
    from onnx import numpy_helper

    weights = {i.name.removeprefix("net."): torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in onnx.load(path).graph.initializer}
    for arch in ARCHS.values():
        net = arch()
        shapes = {k: v.shape for k, v in net.state_dict().items()}
        if shapes == {k: v.shape for k, v in weights.items()}:
            net.load_state_dict(weights)
            return net
    raise SystemExit(f"{path}: not a concealment net this script knows ({', '.join(ARCHS)})")


class Exported(nn.Module):
    """What goes into the ONNX file: the net with its sigmoid."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, attenuation):
        return torch.sigmoid(self.net(attenuation))


def crops(xs, ys, positives, batch, rng, recipe):
    """Random crops: a share of them placed on concealed pixels so the rare class is seen, the
    rest anywhere (in stage 2, crops that are mostly air are redrawn: they teach nothing)."""
    ch, cw = recipe["crop"]
    bx = np.empty((batch, 1, ch, cw), np.float32)
    by = np.empty((batch, 1, ch, cw), np.float32)
    for b in range(batch):
        for _ in range(10):
            if rng.random() < recipe["positive_share"]:
                i = positives[rng.integers(len(positives))]
                rr, cc = np.nonzero(ys[i])
                k = rng.integers(len(rr))
                r0, c0 = rr[k] - rng.integers(ch), cc[k] - rng.integers(cw)
            else:
                i = rng.integers(len(xs))
                r0, c0 = rng.integers(xs[i].shape[0]), rng.integers(xs[i].shape[1])
            h, w = xs[i].shape
            r0 = int(np.clip(r0, 0, h - ch))
            c0 = int(np.clip(c0, 0, w - cw))
            if not recipe["skip_air"] or xs[i][r0:r0 + ch, c0:c0 + cw].mean() > 0.05:
                break
        bx[b, 0] = xs[i][r0:r0 + ch, c0:c0 + cw]
        by[b, 0] = ys[i][r0:r0 + ch, c0:c0 + cw]
    flip = rng.random(batch) < 0.5  # the doors may face either way
    bx[flip] = bx[flip, :, :, ::-1]
    by[flip] = by[flip, :, :, ::-1]
    return torch.from_numpy(bx), torch.from_numpy(by)


def batch_loss(net, bx, by, recipe, pos_weight):
    """Weighted BCE plus dice, plus the worst 1 % of clean pixels when the recipe mines hard
    negatives."""
    logits = net(bx)
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * by).sum() + 1) / (p.sum() + by.sum() + 1)
    bce = F.binary_cross_entropy_with_logits(logits, by, pos_weight=pos_weight, reduction="none")
    loss = bce.mean() + recipe["dice"] * dice
    if recipe["hard"] > 0:
        negatives = bce[by < 0.5]
        loss = loss + recipe["hard"] * negatives.topk(max(1, negatives.numel() // 100)).values.mean()
    return loss


def export_onnx(net, path, example):
    """The net with its sigmoid as ONNX (dynamic batch, height and width); returns the exported
    module and the input it was traced with."""
    exported = Exported(net).eval()
    dummy = torch.from_numpy(pad8(example)[None, None].copy())
    torch.onnx.export(
        exported, (dummy,), path, input_names=["attenuation"], output_names=["concealment_prob"],
        dynamic_axes={"attenuation": {0: "batch", 2: "height", 3: "width"},
                      "concealment_prob": {0: "batch", 2: "height", 3: "width"}},
        opset_version=17, dynamo=False,
    )
    return exported, dummy


def pad8(x):
    h, w = x.shape
    ph, pw = -h % 8, -w % 8
    return np.pad(x, ((0, ph), (0, pw)), mode="edge")


def predict(net, x):
    """Full-scan probability map (no tiling needed in training; the Rust side tiles)."""
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(pad8(x))[None, None])).numpy()[0, 0]
    return p[: x.shape[0], : x.shape[1]]


def quick_eval(net, xs, ys, kinds, threshold=0.5, min_pixels=150):
    net.eval()
    inter = union = 0
    hits = pos = flags = neg = 0
    for x, y, k in zip(xs, ys, kinds):
        p = predict(net, x) > threshold
        inter += (p & y).sum()
        union += (p | y).sum()
        if y.any():
            pos += 1
            hits += int((p & y).sum() >= min_pixels)
        else:
            neg += 1
            flags += int(p.sum() >= min_pixels)
    net.train()
    return {"pixel_iou": round(float(inter / max(union, 1)), 4), "recall": round(hits / max(pos, 1), 4),
            "false_alarm": round(flags / max(neg, 1), 4), "positives": pos, "negatives": neg}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="stage1")
    ap.add_argument("--init", help="ONNX file of the previous stage to start from")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="unet")
    ap.add_argument("--randomise", action="store_true",
                    help="read each training scan as a randomly drawn scanner (SCANNERS)")
    args = ap.parse_args()
    recipe = RECIPES[args.recipe]

    torch.manual_seed(SEED)
    random.seed(SEED)
    rng = np.random.default_rng(SEED)
    torch.set_num_threads(args.threads)

    xt, yt, _ = load_split(os.path.join(args.data, "train"), rng if args.randomise else None)
    xv, yv, kv = load_split(os.path.join(args.data, "val"))
    positives = [i for i, y in enumerate(yt) if y.any()]
    print(f"train {len(xt)} scans ({len(positives)} with concealment), val {len(xv)}", flush=True)

    net = ARCHS[args.arch]()
    if args.init:
        net = net_from_onnx(args.init)
        print(f"started from {args.init}", flush=True)
    steps = recipe["steps"]
    opt = torch.optim.AdamW(net.parameters(), lr=recipe["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=steps, pct_start=0.1)
    pos_weight = torch.tensor(recipe["pos_weight"])
    start = time.time()
    for step in range(1, steps + 1):
        bx, by = crops(xt, yt, positives, recipe["batch"], rng, recipe)
        loss = batch_loss(net, bx, by, recipe, pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == steps:
            print(f"step {step} loss {loss.item():.4f} {time.time() - start:.0f}s "
                  f"{quick_eval(net, xv[:60], yv[:60], kv[:60])}", flush=True)

    metrics = quick_eval(net, xv, yv, kv)
    metrics["train_seconds"] = round(time.time() - start)
    metrics["recipe"] = args.recipe
    metrics.update({k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()})
    metrics["seed"] = SEED
    metrics["arch"] = type(net).__name__
    metrics["randomised"] = SCANNERS if args.randomise else None
    print("validation", metrics, flush=True)

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, f"{NAME}.onnx")
    exported, dummy = export_onnx(net, onnx_path, xv[0])
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = exported(dummy).numpy()
    got = sess.run(None, {"attenuation": dummy.numpy()})[0]
    metrics["onnx_max_abs_diff_vs_torch"] = float(np.abs(ref - got).max())
    metrics["parameters"] = sum(p.numel() for p in net.parameters())
    json.dump(metrics, open(os.path.join(args.out, f"{NAME}.training.json"), "w"), indent=2)
    print("exported", onnx_path, metrics, flush=True)


if __name__ == "__main__":
    main()
