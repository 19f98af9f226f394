"""Site adaptation: fine-tune the concealment model on a site's own cleared scans, with threats
projected into them (`scanner-sim tip`), and pick its operating threshold for the site.

    python models/train/adapt_site.py --cleared CLEARED/ --phantom PHANTOM/BAY01-....json \
        --calibration scanner.toml --out SITE/

CLEARED holds scans officers cleared (sidecars, both 16-bit images, declarations/ as
`scanner-sim generate` writes them); at least MIN_CLEARED. The command
1. checks every scan (refusing the folder, naming the file, if one cannot be read) and splits
   the scans by a hash of their id: 70 % to adapt on, 30 % held out;
2. projects threats into both parts (`scanner-sim tip`, never across them), the held-out
   projections for measuring only;
3. fine-tunes the shipped model (or --base) on the adaptation part: its clean scans and its
   projected ones, at the model's 10 mm pitch, on the CPU;
4. fits the site's settings on the held-out clean scans for the site's false-alarm target, for
   the base and for the adapted model (`edge-agent calibrate --cleared`, the agent's own
   pipeline: it starts from the model card's threshold and only ever raises it, since 26-30
   clean scans cannot show that a lower one keeps false alarms at 1 %), and measures detection
   per threat kind on the held-out projections and false alarms on the held-out clean scans,
   for both (`edge-agent analyze`);
5. adopts the adapted model only if it beats the base model on the same held-out projections by
   more than chance (one-sided McNemar test at 5 %, `better`) at no more false alarms on the
   held-out clean scans. Adopted, it checks that Rust and Python agree on it (`parity`
   example), and writes SITE/xray-concealment.onnx and .sha256 and the site's calibration with
   its threshold (scanner.toml). Not adopted, the base model stays: no ONNX file is written,
   and scanner.toml is the base model's cleared-scan fit on all the cleared scans (what
   `edge-agent calibrate --cleared` gives). Either way it writes the card (.md and .card.json,
   with both models' figures and the decision) and a few projection pictures (examples/).
An adopted ONNX file goes to the bays as a signed release: `server model publish --name
xray-concealment --file SITE/xray-concealment.onnx ...`.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# numpy, PyTorch, Pillow and the training module are imported only once the input has passed
# its checks (`load_training_stack`), so that a bad folder is refused on any machine.
np = torch = Image = None
NAME = batch_loss = crops = export_onnx = model_input = net_from_onnx = resized = None


def load_training_stack():
    global np, torch, Image, NAME, batch_loss, crops, export_onnx, model_input, net_from_onnx, resized
    import numpy as np
    import torch
    from PIL import Image
    from train_xray_concealment import (
        NAME, batch_loss, crops, export_onnx, model_input, net_from_onnx, resized)

MIN_CLEARED = 60
HELDOUT_SHARE = 0.3
KINDS = ["drug_bricks", "cigarette_cases", "weapons", "ammunition",
         "false_wall", "false_floor", "false_ceiling"]
RECIPE = dict(crop=(192, 320), positive_share=0.25, skip_air=True, pos_weight=3.0,
              dice=0.5, hard=0.5, lr=2e-4, batch=12)
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Refused(Exception):
    """The input cannot be adapted on; the message says why."""


def sidecars(folder):
    names = sorted(n for n in os.listdir(folder)
                   if n.endswith(".json") and n != "truth.json" and not n.startswith(".")
                   and not n.endswith(".phantom.json"))
    return [os.path.join(folder, n) for n in names]


def png_header(path):
    """(width, height, bit depth, colour type) of a PNG file, or Refused naming it."""
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as e:
        raise Refused(f"{path}: cannot read ({e})")
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise Refused(f"{path}: not a PNG image")
    return struct.unpack(">IIBB", head[16:26])


def check_scan(path):
    """The sidecar, if it names two 16-bit greyscale PNG images of one size; else Refused
    naming the file. (Every pixel is decoded later by `scanner-sim tip`, which names a file
    that fails.)"""
    try:
        sidecar = json.load(open(path))
        images = {i["energy"]: i for i in sidecar["images"]}
        files = [images["high"]["file"], images["low"]["file"]]
        sidecar["scan_id"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Refused(f"{path}: not a scan sidecar with a high- and a low-energy image ({e})")
    sizes = []
    for f in files:
        p = os.path.join(os.path.dirname(path), f)
        w, h, depth, colour = png_header(p)
        if (depth, colour) != (16, 0):
            raise Refused(f"{p}: {depth}-bit PNG of colour type {colour}; a scan image is 16-bit greyscale")
        sizes.append((w, h))
    if sizes[0] != sizes[1]:
        raise Refused(f"{path}: the two energies' images differ in size ({sizes[0]} and {sizes[1]})")
    return sidecar


def split(paths, sidecars_by_path):
    held, adapt = [], []
    for p in paths:
        h = hashlib.sha256(sidecars_by_path[p]["scan_id"].encode()).digest()[0] / 256
        (held if h < HELDOUT_SHARE else adapt).append(p)
    return adapt, held


def link_folder(paths, dest, cleared):
    """A folder of links to some of the cleared scans (and all declarations)."""
    os.makedirs(dest, exist_ok=True)
    for p in paths:
        sc = json.load(open(p))
        for f in [os.path.basename(p)] + [i["file"] for i in sc["images"]]:
            os.symlink(os.path.abspath(os.path.join(os.path.dirname(p), f)), os.path.join(dest, f))
    decl = os.path.join(cleared, "declarations")
    if os.path.isdir(decl):
        os.symlink(os.path.abspath(decl), os.path.join(dest, "declarations"))


def run(cmd, **kw):
    shown = cmd if len(cmd) <= 12 else cmd[:4] + [f"... ({len(cmd) - 6} more) ..."] + cmd[-2:]
    print("+", " ".join(shown), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def finetune(base, xs, ys, steps, threads, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.set_num_threads(threads)
    net = net_from_onnx(base)
    positives = [i for i, y in enumerate(ys) if y.any()]
    opt = torch.optim.AdamW(net.parameters(), lr=RECIPE["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=RECIPE["lr"], total_steps=steps, pct_start=0.1)
    pos_weight = torch.tensor(RECIPE["pos_weight"])
    start = time.time()
    for step in range(1, steps + 1):
        bx, by = crops(xs, ys, positives, RECIPE["batch"], rng, RECIPE)
        loss = batch_loss(net, bx, by, RECIPE, pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            print(f"step {step}/{steps} loss {loss.item():.4f} {time.time() - start:.0f}s", flush=True)
    return net.eval(), round(time.time() - start)


def export(net, path, example):
    export_onnx(net, path, example)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    open(path[:-len(".onnx")] + ".sha256", "w").write(digest + "\n")
    return digest


def analyse(agent, sidecar_paths, model_args, calibration):
    cmd = [agent, "analyze", *sidecar_paths, "--json", *model_args]
    if calibration:
        cmd += ["--calibration", calibration]
    out = run(cmd, stdout=subprocess.PIPE).stdout
    return {r["report"]["scan_id"]: [f.get("region") for f in r["report"]["findings"]
                                     if f["kind"] == "concealed_object"]
            for r in json.loads(out)}


def overlaps(region, box):
    if region is None:
        return False
    x, y, w, h = box
    return region["x"] < x + w and x < region["x"] + region["width"] and \
        region["y"] < y + h and y < region["y"] + region["height"]


def measure(agent, clean, tip_dir, truth, model_args, calibration):
    """False alarms on the held-out clean scans; detection per kind on held-out projections."""
    found = analyse(agent, clean, model_args, calibration)
    fa = sum(1 for v in found.values() if v)
    tips = analyse(agent, sidecars(tip_dir), model_args, calibration)
    per_kind, hits = {}, {}
    for e in truth:
        hit = any(overlaps(r, b) for r in tips[e["scan_id"]] for b in e["concealed_boxes"])
        hits[e["scan_id"]] = hit
        n, k = per_kind.get(e["variant"], (0, 0))
        per_kind[e["variant"]] = (n + hit, k + 1)
    total = [sum(v[0] for v in per_kind.values()), sum(v[1] for v in per_kind.values())]
    return {"false_alarms": [fa, len(found)], "detection": total,
            "per_kind": {k: list(v) for k, v in sorted(per_kind.items())}, "hits": hits}


def better(adapted, base):
    """Whether the adapted model beats the base on the same held-out projections: no more false
    alarms on the held-out clean scans, and more projections found only by it than only by the
    base, by more than chance allows (one-sided McNemar test at 5 %: with b found only by the
    adapted model and c only by the base, b - c > 1.645 sqrt(b + c)). A gain of one or two in
    140 is noise, and a model that trades one threat kind for another is not better."""
    b = sum(1 for k, v in adapted["hits"].items() if v and not base["hits"][k])
    c = sum(1 for k, v in adapted["hits"].items() if not v and base["hits"][k])
    return (adapted["false_alarms"][0] <= base["false_alarms"][0]
            and b - c > 1.645 * (b + c) ** 0.5), b, c


def fit_cleared(agent, cleared, model_args, args, out):
    """`edge-agent calibrate --cleared` on a folder with a model: the site's tolerances and the
    model's threshold, from the phantom calibration when there is one."""
    cmd = [agent, "calibrate", "--cleared", cleared, *model_args,
           "--target-false-alarms", str(args.target_false_alarms), "--out", out]
    if args.calibration:
        cmd += ["--calibration", args.calibration]
    run(cmd)


def toml_threshold(path):
    """The [concealment] threshold of a calibration file the fit wrote."""
    section = None
    for line in open(path):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[concealment]" and stripped.startswith("threshold"):
            return float(stripped.split("=", 1)[1])
    raise ValueError(f"{path}: no [concealment] threshold")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cleared", required=True, help="folder of cleared scans with declarations/")
    physics = ap.add_mutually_exclusive_group(required=True)
    physics.add_argument("--phantom", help="the scanner's phantom scan (sidecar, .phantom.json beside it): "
                         "projection uses the physics fitted from it")
    physics.add_argument("--profile", help="a scanner-sim profile for projection instead (simulated sites)")
    ap.add_argument("--calibration", help="the scanner's phantom calibration (edge-agent calibrate --phantom)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=os.path.join(ROOT, "models/onnx/xray-concealment.onnx"))
    ap.add_argument("--target-false-alarms", type=float, default=0.01)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lr", type=float, default=RECIPE["lr"])
    ap.add_argument("--per-scan", type=int, default=4, help="projections per adaptation scan")
    ap.add_argument("--heldout-per-kind", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20261206)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release"))
    args = ap.parse_args()
    RECIPE["lr"] = args.lr
    started = time.time()
    if not os.path.isdir(args.cleared):
        raise Refused(f"{args.cleared}: not a folder")
    paths = sidecars(args.cleared)
    scans = {p: check_scan(p) for p in paths}
    if len(paths) < MIN_CLEARED:
        raise Refused(f"{args.cleared} holds {len(paths)} cleared scans; adaptation needs at least "
                      f"{MIN_CLEARED} (100 or more recommended)")
    sim, agent = os.path.join(args.bin, "scanner-sim"), os.path.join(args.bin, "edge-agent")
    for b in (sim, agent):
        if not os.path.exists(b):
            raise Refused(f"{b} is missing: cargo build --release -p scanner-sim -p edge-agent")
    load_training_stack()
    adapt, held = split(paths, scans)
    print(f"{len(paths)} cleared scans: {len(adapt)} to adapt on, {len(held)} held out", flush=True)

    work = os.path.join(args.out, "work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    link_folder(adapt, os.path.join(work, "adapt"), args.cleared)
    link_folder(held, os.path.join(work, "held"), args.cleared)
    physics = ["--phantom", args.phantom] if args.phantom else ["--profile", args.profile]
    run([sim, "tip", "--cleared", os.path.join(work, "adapt"), *physics,
         "--count", str(args.per_scan * len(adapt)), "--seed", str(args.seed),
         "--out", os.path.join(work, "adapt-tip"), "--examples", "0"])
    run([sim, "tip", "--cleared", os.path.join(work, "held"), *physics,
         "--count", str(args.heldout_per_kind * len(KINDS)), "--seed", str(args.seed + 1),
         "--out", os.path.join(work, "held-tip"), "--examples", "4"])

    xs, ys = [], []
    for p in adapt:
        x, y = model_input(p)
        xs.append(x)
        ys.append(y)
    for p in sidecars(os.path.join(work, "adapt-tip")):
        x, y = model_input(p, mask=True)
        xs.append(x)
        ys.append(y)
    print(f"fine-tuning on {len(adapt)} clean and {len(xs) - len(adapt)} projected scans", flush=True)
    net, train_seconds = finetune(args.base, xs, ys, args.steps, args.threads, args.seed)
    onnx_path = os.path.join(args.out, f"{NAME}.onnx")
    sha256 = export(net, onnx_path, xs[0])
    del xs, ys

    # The operating points: the agent's own fit on the held-out clean scans, for each model. It
    # starts from the card's threshold and only raises it (see the module docs).
    held_dir = os.path.join(work, "held")
    held_clean = sidecars(held_dir)
    site_toml = os.path.join(args.out, "scanner.toml")
    adapted_toml = os.path.join(work, "adapted.toml")
    base_toml = os.path.join(work, "base.toml")
    fit_cleared(agent, held_dir, ["--model", onnx_path], args, adapted_toml)
    fit_cleared(agent, held_dir, ["--model", args.base], args, base_toml)
    threshold = toml_threshold(adapted_toml)

    truth = json.load(open(os.path.join(work, "held-tip", "truth.json")))
    base = measure(agent, held_clean, os.path.join(work, "held-tip"), truth,
                   ["--model", args.base], base_toml)
    adapted = measure(agent, held_clean, os.path.join(work, "held-tip"), truth,
                      ["--model", onnx_path], adapted_toml)
    adopted, only_adapted, only_base = better(adapted, base)
    if adopted:
        shutil.copy(adapted_toml, site_toml)
        # Rust and Python on the adapted model, two held-out projections.
        parity_dir = os.path.join(args.out, "parity")
        shutil.rmtree(parity_dir, ignore_errors=True)
        os.makedirs(parity_dir)
        golden = golden_values(onnx_path, sidecars(os.path.join(work, "held-tip"))[:2], parity_dir)
        run(["cargo", "run", "--quiet", "--release", "-p", "baylens-models", "--example", "parity", "--",
             onnx_path, golden], cwd=ROOT)
    else:
        # The base model stays: no model to publish, and the site's settings from all its
        # cleared scans, which the base model never trained on.
        for f in (onnx_path, onnx_path[:-len(".onnx")] + ".sha256"):
            os.remove(f)
        shutil.rmtree(os.path.join(args.out, "parity"), ignore_errors=True)
        fit_cleared(agent, args.cleared, ["--model", args.base], args, site_toml)

    examples = os.path.join(args.out, "examples")
    shutil.rmtree(examples, ignore_errors=True)
    shutil.copytree(os.path.join(work, "held-tip", "examples"), examples)
    card = {
        "name": NAME, "sha256": sha256, "base_model": os.path.basename(args.base),
        "base_sha256": hashlib.sha256(open(args.base, "rb").read()).hexdigest(),
        "profile": args.profile or f"fitted from {os.path.basename(args.phantom)}", "cleared_scans": len(paths), "adapted_on": len(adapt),
        "held_out": len(held), "projections_adapted_on": args.per_scan * len(adapt),
        "held_out_projections": len(truth), "steps": args.steps, "recipe": RECIPE,
        "seed": args.seed, "threshold": threshold, "base_threshold": toml_threshold(base_toml),
        "target_false_alarms": args.target_false_alarms, "adopted": adopted,
        "site_threshold": toml_threshold(site_toml),
        "found_only_by_adapted": only_adapted, "found_only_by_base": only_base,
        "base": {k: v for k, v in base.items() if k != "hits"},
        "adapted": {k: v for k, v in adapted.items() if k != "hits"}, "train_seconds": train_seconds,
        "total_seconds": round(time.time() - started),
    }
    json.dump(card, open(os.path.join(args.out, f"{NAME}.card.json"), "w"), indent=2)
    write_card(card, os.path.join(args.out, f"{NAME}.md"))
    shutil.rmtree(work)
    print(open(os.path.join(args.out, f"{NAME}.md")).read())


def golden_values(onnx_path, paths, parity_dir):
    """Python's probabilities for a few scans, at the scans' own pixels, for the Rust check."""
    import onnxruntime as ort
    from golden import infer
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    out = []
    rng = np.random.default_rng(7)
    for p in paths:
        for f in [os.path.basename(p)] + [i["file"] for i in json.load(open(p))["images"]]:
            shutil.copy(os.path.join(os.path.dirname(p), f), parity_dir)
        local = os.path.join(parity_dir, os.path.basename(p))
        x, _ = model_input(local)
        _, prob = infer(sess, x)
        sc = json.load(open(local))
        hi = next(i for i in sc["images"] if i["energy"] == "high")
        w, h = Image.open(os.path.join(parity_dir, hi["file"])).size
        back = prob if prob.shape == (h, w) else resized(prob, w, h)
        hot = np.argwhere(back > 0.5)
        picks = [tuple(hot[i]) for i in rng.choice(len(hot), min(20, len(hot)), replace=False)] if len(hot) else []
        picks += [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(40)]
        out.append({"sidecar": os.path.basename(local),
                    "samples": [[int(r), int(c), float(back[r, c])] for r, c in picks]})
    path = os.path.join(parity_dir, "golden.json")
    json.dump(out, open(path, "w"), indent=1)
    return path


def write_card(c, path):
    def pct(v):
        return f"{v[0]}/{v[1]} ({100 * v[0] / max(v[1], 1):.1f} %)"
    if c["adopted"]:
        title = f"# {c['name']}, adapted to a site (scanner physics: {c['profile']})"
        decision = ("- **Adopted**: of the held-out projections it finds "
                    f"{c['found_only_by_adapted']} that the base model misses and misses "
                    f"{c['found_only_by_base']} that the base model finds, more than chance "
                    "(one-sided McNemar test at 5 %), at no more false alarms on the held-out clean scans. "
                    "Publish `xray-concealment.onnx` as a signed release and give the bays `scanner.toml`.")
    else:
        title = f"# {c['name']} for a site: the base model stays (scanner physics: {c['profile']})"
        decision = ("- **Not adopted**: of the held-out projections the adapted model finds "
                    f"{c['found_only_by_adapted']} that the base model misses and misses "
                    f"{c['found_only_by_base']} that the base model finds: not better by more than "
                    "chance (one-sided McNemar test at 5 %) at no more false alarms. No model was "
                    "written; there is nothing to publish. `scanner.toml` is the base model's cleared-scan fit on all "
                    f"{c['cleared_scans']} cleared scans (threshold {c['site_threshold']}).")
    lines = [
        title, "", decision,
        f"- Adapted model: sha256 `{c['sha256']}`; started from `{c['base_model']}` (sha256 `{c['base_sha256']}`)",
        f"- Data: {c['cleared_scans']} cleared scans, {c['adapted_on']} adapted on (with "
        f"{c['projections_adapted_on']} threat projections), {c['held_out']} held out (with "
        f"{c['held_out_projections']} projections), split by a hash of the scan id",
        f"- Fine-tuning: {c['steps']} steps, seed {c['seed']}, {c['train_seconds']} s; whole run "
        f"{c['total_seconds']} s",
        f"- Operating thresholds: adapted {c['threshold']}, base {c['base_threshold']} (target: at most "
        f"{100 * c['target_false_alarms']:.1f} % of cleared loads flagged): `edge-agent calibrate --cleared` "
        "on the held-out clean scans, which starts from the model card's threshold and only raises it",
        "", "| | base model | adapted |", "|---|---|---|",
        f"| false alarms, held-out clean scans | {pct(c['base']['false_alarms'])} | {pct(c['adapted']['false_alarms'])} |",
        f"| detection, held-out projections | {pct(c['base']['detection'])} | {pct(c['adapted']['detection'])} |",
    ]
    for k in sorted(c["adapted"]["per_kind"]):
        lines.append(f"| {k} | {pct(c['base']['per_kind'].get(k, [0, 0]))} | {pct(c['adapted']['per_kind'][k])} |")
    lines += ["", "The held-out figures use the same clean scans for the false alarms that chose the thresholds; "
              "measure on a fresh batch before relying on them (README, \"Adapting the model to a site\")."]
    open(path, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    try:
        main()
    except Refused as e:
        print(f"adapt_site: {e}", file=sys.stderr)
        sys.exit(2)
    except subprocess.CalledProcessError as e:
        print(f"adapt_site: {os.path.basename(e.cmd[0])} failed (exit {e.returncode}); its "
              "message is above", file=sys.stderr)
        sys.exit(1)
