"""Train BayLens's container-code recogniser (baylens-code-rec) on crops the reader itself cut.

Offline only; CI never trains. The crops come from
`cargo run --release -p baylens-models --example ocr_crops -- --out DATA --fonts train`: the
PP-OCRv6 tiny detector's boxes over simulated door and side views painted in the *train* faces of
models/train/ocr-fonts.txt, straightened (or, for a code stacked on a door post, cut into cells
laid side by side) exactly as models/src/ocr does before recognition, and labelled from the
simulator's glyph positions. The held-out faces are never read here.

The net is a plain CTC recogniser with no recurrence, so the padding the reader adds (to 320
pixels wide) cannot change what it reads: a convolutional stem takes the 48-pixel-high line down
to one row at a quarter of its width (16, 32, 64, 96, 128 channels), two 1-D convolutions over
that row give each step the context of about four characters, and a 1x1 convolution gives the
classes. Input and output follow PaddleOCR's recogniser contract, which models/src/ocr/mod.rs
reads: [N, 3, 48, W] BGR scaled to [-1, 1]; [N, W/4, 38] probabilities; class 0 is the CTC
blank, 1-36 are `character` (0-9, A-Z; ONNX metadata), 37 the space (never a target).
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

SEED = 20261206
NAME = "baylens-code-rec"
CHARACTERS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CLASSES = len(CHARACTERS) + 2
MIN_WIDTH = 320
HEIGHT = 48


def load(folder):
    """Crops (uint8 [48, W, 3] RGB arrays) and labels from an ocr_crops folder."""
    raw = np.fromfile(os.path.join(folder, "crops.bin"), dtype=np.uint8)
    crops, labels, meta = [], [], []
    with open(os.path.join(folder, "crops.tsv")) as f:
        next(f)
        for line in f:
            offset, width, label, face, view, stacked = line.rstrip("\n").split("\t")
            offset, width = int(offset), int(width)
            crops.append(raw[offset: offset + HEIGHT * width * 3].reshape(HEIGHT, width, 3))
            labels.append(label)
            meta.append((face, view, stacked == "true"))
    return crops, labels, meta


def to_input(rgb):
    """uint8 RGB [48, W, 3] -> float32 [3, 48, max(W, 320)]: BGR in [-1, 1], padded with 0,
    as models/src/ocr/mod.rs `recognise` does."""
    h, w, _ = rgb.shape
    x = np.zeros((3, h, max(w, MIN_WIDTH)), dtype=np.float32)
    x[:, :, :w] = (rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0 - 0.5) / 0.5
    return x


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Recogniser(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            block(3, 16), nn.MaxPool2d(2),             # 24 x W/2
            block(16, 32), nn.MaxPool2d(2),            # 12 x W/4
            block(32, 64), block(64, 64), nn.MaxPool2d((2, 1)),   # 6 x W/4
            block(64, 96), nn.MaxPool2d((2, 1)),       # 3 x W/4
            nn.Conv2d(96, 128, (3, 1), bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
        )
        self.context = nn.Sequential(
            nn.Conv1d(128, 128, 5, padding=2, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
            nn.Conv1d(128, 128, 5, padding=2, bias=False), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
        )
        self.classes = nn.Conv1d(128, CLASSES, 1)

    def forward(self, x):
        """Logits [N, CLASSES, W/4]."""
        f = self.features(x).squeeze(2)
        return self.classes(f + self.context(f))


class Exported(nn.Module):
    """The net as the reader runs it: probabilities [N, T, CLASSES]."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1).transpose(1, 2)


def augment(rgb, rng):
    """A little more variety than the simulator gives: width scale, contrast, brightness, and
    sometimes a shifted cut."""
    h, w, _ = rgb.shape
    img = rgb.astype(np.float32)
    scale = rng.uniform(0.85, 1.15)
    nw = max(8, int(round(w * scale)))
    xs = np.clip((np.arange(nw) + 0.5) / scale - 0.5, 0, w - 1)
    x0 = np.floor(xs).astype(int)
    x1 = np.minimum(x0 + 1, w - 1)
    a = (xs - x0)[None, :, None]
    img = img[:, x0] * (1 - a) + img[:, x1] * a
    mean = img.mean()
    img = (img - mean) * rng.uniform(0.7, 1.2) + mean + rng.uniform(-25, 25)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(label):
    return [CHARACTERS.index(c) + 1 for c in label]


def batch(crops, labels, idx, rng):
    """An augmented batch. The reader pads every line to 320 wide with the normalised grey 0;
    a net without recurrence reads the same however much padding follows, so a batch is padded
    only to its widest crop plus up to 64 pixels (so every crop is seen with some padding), which
    halves the cost of training on the many short crops."""
    imgs = [augment(crops[i], rng) for i in idx]
    width = max(im.shape[1] for im in imgs) + int(rng.integers(16, 64))
    width += -width % 4
    x = np.zeros((len(idx), 3, HEIGHT, width), dtype=np.float32)
    for k, im in enumerate(imgs):
        inp = to_input(im)[:, :, : im.shape[1]]
        x[k, :, :, : inp.shape[2]] = inp
    targets = [encode(labels[i]) for i in idx]
    return torch.from_numpy(x), targets


def ctc_loss(net, x, targets):
    logits = net(x)                                   # N, C, T
    logp = F.log_softmax(logits, dim=1).permute(2, 0, 1)  # T, N, C
    t = logp.shape[0]
    flat = torch.tensor([c for tg in targets for c in tg], dtype=torch.long)
    lengths = torch.tensor([len(tg) for tg in targets], dtype=torch.long)
    return F.ctc_loss(logp, flat, torch.full((len(targets),), t, dtype=torch.long), lengths,
                      blank=0, zero_infinity=True)


def greedy(probs):
    """[T, C] -> text, collapsing repeats and dropping blanks and spaces."""
    best = probs.argmax(-1)
    out, prev = [], -1
    for c in best:
        if c != prev and 0 < c <= len(CHARACTERS):
            out.append(CHARACTERS[c - 1])
        prev = c
    return "".join(out)


def evaluate(net, crops, labels, idx):
    net.eval()
    right = 0
    with torch.no_grad():
        for i in idx:
            x = torch.from_numpy(to_input(crops[i])[None])
            probs = torch.softmax(net(x), dim=1)[0].T.numpy()
            right += greedy(probs) == labels[i]
    net.train()
    return right / max(1, len(idx))


def buckets(crops, idx, size, rng):
    """Batches of similar width (less padding), in random order."""
    order = sorted(idx, key=lambda i: crops[i].shape[1] + rng.uniform(0, 40))
    groups = [order[k: k + size] for k in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def export(net, path, example):
    exported = Exported(net).eval()
    dummy = torch.from_numpy(to_input(example)[None])
    torch.onnx.export(
        exported, (dummy,), path, input_names=["x"], output_names=["probs"],
        dynamic_axes={"x": {0: "batch", 3: "width"}, "probs": {0: "batch", 1: "steps"}},
        opset_version=17, dynamo=False,
    )
    import onnx
    model = onnx.load(path)
    entry = model.metadata_props.add()
    entry.key, entry.value = "character", "\n".join(CHARACTERS)
    onnx.save(model, path)
    return exported


def golden(exported, crops, labels, idx, path):
    """A few crops (one PNG, one crop per 48 rows) with the text and the best class probability
    per step that torch gives, for the Rust parity test (models/tests/ocr_rec_parity.rs)."""
    from PIL import Image
    width = max(crops[i].shape[1] for i in idx)
    sheet = np.zeros((HEIGHT * len(idx), width, 3), dtype=np.uint8)
    cases = []
    with torch.no_grad():
        for k, i in enumerate(idx):
            sheet[k * HEIGHT:(k + 1) * HEIGHT, : crops[i].shape[1]] = crops[i]
            probs = exported(torch.from_numpy(to_input(crops[i])[None]))[0].numpy()
            cases.append({"label": labels[i], "width": int(crops[i].shape[1]),
                          "text": greedy(probs),
                          "best": [round(float(p), 6) for p in probs.max(-1)]})
    Image.fromarray(sheet).save(path + ".png")
    json.dump({"model": NAME, "cases": cases}, open(path + ".json", "w"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="ocr_crops output folder (train fonts)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    rng = random.Random(SEED)
    np_rng = np.random.default_rng(SEED)
    crops, labels, meta = load(args.data)
    keep = [i for i, l in enumerate(labels) if all(c in CHARACTERS for c in l)]
    rng.shuffle(keep)
    val = keep[: len(keep) // 20]
    train = keep[len(keep) // 20:]
    print(f"{len(crops)} crops: {len(train)} train, {len(val)} validation (train fonts)")
    os.makedirs(args.out, exist_ok=True)
    net = Recogniser()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps,
                                                pct_start=0.1)
    step, t0 = 0, time.time()
    while step < args.steps:
        for idx in buckets(crops, train, args.batch, rng):
            if step >= args.steps:
                break
            x, targets = batch(crops, labels, idx, np_rng)
            loss = ctc_loss(net, x, targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            if step % 200 == 0 or step == args.steps:
                acc = evaluate(net, crops, labels, val[:400])
                print(f"step {step}: loss {loss.item():.3f}, val exact {acc:.3f}, "
                      f"{time.time() - t0:.0f} s", flush=True)
    net.eval()
    acc = evaluate(net, crops, labels, val)
    path = os.path.join(args.out, f"{NAME}.onnx")
    exported = export(net, path, crops[val[0]])
    # Golden crops: four lines and two stacks from the validation crops.
    lines = [i for i in val if labels[i] and not meta[i][2]][:4]
    stacks = [i for i in val if labels[i] and meta[i][2]][:2]
    golden(exported, crops, labels, lines + stacks, os.path.join(args.out, f"{NAME}.golden"))
    params = sum(p.numel() for p in net.parameters())
    json.dump({"steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": SEED,
               "train_crops": len(train), "val_crops": len(val), "val_exact": acc,
               "parameters": params, "seconds": round(time.time() - t0)},
              open(os.path.join(args.out, f"{NAME}.training.json"), "w"), indent=1)
    print(f"validation (train fonts) exact {acc:.3f}; {params} parameters; wrote {path}")


if __name__ == "__main__":
    main()
