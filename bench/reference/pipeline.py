"""The bay pipeline in Python: the reference BayLens's Rust agent is measured against.

Written the way a competent Python team would: numpy vectorised, OpenCV where OpenCV is the
natural tool (decoding, box filters, connected components, PNG encoding), ONNX Runtime's Python
API for the model with the same thread count. It follows the Rust pipeline step by step
(edge-agent/src/{calibration,material_map,manifest,expected,overlay}.rs,
models/src/concealment), so both must produce the same findings on the same scans.

    python bench/reference/pipeline.py --models models/onnx --threads 2 \
        --declarations DIR/declarations --rounds 1 DIR/*.json > python.json

Prints one JSON object per scan and round: per-stage times in ms, the ORT run() time alone,
and the findings (kind, score, region).
"""
import argparse
import csv
import io
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

# models/src/concealment
ATTENUATION_SCALE, T_MIN = 0.25, 1e-6
TILE_WIDTH, TILE_CONTEXT = 512, 64
THRESHOLD, MIN_REGION_PIXELS = 0.95, 300
# assets/calibration/scanner-sim.toml
MU_RHO = {"organic": 0.0272, "inorganic": 0.0255, "metal": 0.0305, "heavy": 0.0427}
RATIO_HEAVY = 1.044
RATIO_ORGANIC, RATIO_MIXED, RATIO_INORGANIC = 1.2257, 1.2200, 1.1540
MIN_NET, OPAQUE, SMOOTH = 0.3, 8.0, 3
# edge-agent/src/calibration/mod.rs
DARK, WALL_MARGIN_MM, BASELINE_QUANTILE, STRUCTURE = 2.0, 180.0, 0.02, 0.45
# edge-agent/src/manifest/mod.rs Tolerances::default()
TOL = dict(mass_relative=0.25, mass_absolute_kg=500.0, empty_max_kg=500.0, class_min_kg=1000.0,
           class_share=0.3, fill_relative=0.2, fill_absolute_m2=0.5, region_min_kg=500.0,
           stowage_relative=0.25)
STOWAGE_WINDOW_M = 1.2  # edge-agent/src/manifest/volume.rs
# edge-agent/src/expected.rs
OCCUPIED_SHARE, MIN_BLOCK_M, MAX_GAP_M = 0.08, 0.4, 0.25
FILLED_WIDTH = {"pallets": 2.0, "bulk": 2.35, "drums": 1.73}
NONE, ORGANIC, MIXED, INORGANIC, METAL, OPAQUE_C = range(6)
CLASS_COLOURS = np.array([[0, 0, 0], [253, 231, 37], [94, 201, 98], [33, 145, 140],
                          [59, 82, 139], [68, 1, 84]], dtype=np.uint8)
FINDING = (213, 94, 0)


def load_hs(path):
    rows = []
    with open(path) as f:
        lines = [l for l in f if not l.startswith("#") and l.strip()]
    for r in list(csv.reader(lines))[1:]:
        rows.append(dict(first=int(r[0]), last=int(r[1]), material=r[2], cls=r[3], packing=r[4],
                         bulk=(float(r[5]), float(r[6]))))
    return rows


HS = load_hs(os.path.join(os.path.dirname(__file__), "../../assets/hs_chapters.csv"))


def profile(chapter):
    return next((p for p in HS if p["first"] <= chapter <= p["last"]), None)


def quantile_rows(a, share):
    """Per row, the value `share` of the row lies below (Rust `quantile`: select_nth)."""
    k = min(int(a.shape[1] * share), a.shape[1] - 1)
    return np.partition(a, k, axis=1)[:, k]


# ---- decode ---------------------------------------------------------------------------------
def decode(sidecar_path):
    side = json.load(open(sidecar_path))
    if side.get("contract") != "baylens.scan/1":
        raise ValueError("unsupported contract")
    folder = os.path.dirname(sidecar_path)
    images = {}
    for im in side["images"]:
        a = cv2.imread(os.path.join(folder, im["file"]), cv2.IMREAD_UNCHANGED)
        if a is None or a.dtype != np.uint16 or a.ndim != 2:
            raise ValueError(f"{im['file']}: must be 16-bit grayscale")
        images[im["energy"]] = (a, im["air"], im["dark"])
    if "low" in images and images["low"][0].shape != images["high"][0].shape:
        raise ValueError("dual-energy images differ in size")
    return side, images


# ---- model ----------------------------------------------------------------------------------
def tiles(width):
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


def model(sess, readings, air, dark):
    t = (readings.astype(np.float32) - np.float32(dark)) / np.float32(air - dark)
    x = (-np.log(np.clip(t, np.float32(T_MIN), np.float32(1.0))) * np.float32(ATTENUATION_SCALE))
    h, w = x.shape
    xp = np.pad(x.astype(np.float32), ((0, -h % 8), (0, -w % 8)), mode="edge")
    out = np.zeros_like(xp)
    ort_ms = 0.0
    for start, keep_from, keep_to in tiles(xp.shape[1]):
        tile = np.ascontiguousarray(xp[None, None, :, start:start + TILE_WIDTH])
        t0 = time.perf_counter()
        p = sess.run(None, {"attenuation": tile})[0][0, 0]
        ort_ms += (time.perf_counter() - t0) * 1000
        out[:, keep_from:keep_to] = p[:, keep_from - start:keep_to - start]
    heat = out[:h, :w]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((heat > THRESHOLD).astype(np.uint8), connectivity=4)
    detections = []
    for k in range(1, n):
        x0, y0, bw, bh, area = stats[k]
        if area >= MIN_REGION_PIXELS:
            score = float(heat[y0:y0 + bh, x0:x0 + bw][labels[y0:y0 + bh, x0:x0 + bw] == k].max())
            detections.append(dict(x=int(x0), y=int(y0), width=int(bw), height=int(bh), score=score))
    return heat, detections, ort_ms


# ---- calibration and material map ------------------------------------------------------------
def attenuation(readings, air, dark):
    span = np.float32(max(air - dark, 1))
    i = np.arange(65536, dtype=np.float32)
    lut = -np.log(np.clip((i - np.float32(dark)) / span, np.float32(1e-6), np.float32(1.0)))
    return lut[readings]


def patch_dead_rows(att):
    dead = quantile_rows(att, 0.5) > 10.0
    if not dead.any():
        return att
    out = att.copy()
    h = att.shape[0]
    for r in np.nonzero(dead)[0]:
        for d in range(1, h):
            src = next((x for x in (r - d, r + d) if 0 <= x < h and not dead[x]), None)
            if src is not None:
                out[r] = att[src]
                break
    return out


def locate(att, pitch):
    h, w = att.shape
    wm = math.ceil(WALL_MARGIN_MM / max(pitch, 1.0))
    if w < 3 * wm or h < 20:
        return None
    dark_rows = (att > DARK).sum(axis=0)
    mx = int(dark_rows.max())
    if mx < h // 4:
        return None
    wall = np.nonzero(dark_rows * 100 >= mx * 85)[0]
    left, right = int(wall[0]), int(wall[-1])
    if right < left + 3 * wm:
        return None
    rows = np.nonzero((att[:, left] > DARK) | (att[:, right] > DARK))[0]
    wall_top, wall_bottom = int(rows[0]), int(rows[-1])
    x0, x1 = left + wm, max(right - wm, 0)
    light = quantile_rows(att[:, x0:x1], BASELINE_QUANTILE) < STRUCTURE
    middle = (wall_top + wall_bottom) // 2
    top = next((r for r in range(wall_top, middle) if light[r]), None)
    if top is None:
        return None
    floor = next((r for r in range(middle, wall_bottom + 1) if not light[r]), wall_bottom + 1)
    return (x0, x1, top, floor) if floor > top + 10 else None


def box_mean(a, r):
    k = (2 * r + 1, 2 * r + 1)
    s = cv2.boxFilter(a.astype(np.float64), -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    n = cv2.boxFilter(np.ones(a.shape, np.float64), -1, k, normalize=False, borderType=cv2.BORDER_CONSTANT)
    return (s / n).astype(np.float32)


def estimate_cargo(images, pitch):
    if "low" not in images:
        return None
    (rh, airh, darkh), (rl, airl, darkl) = images["high"], images["low"]
    ah, al = patch_dead_rows(attenuation(rh, airh, darkh)), patch_dead_rows(attenuation(rl, airl, darkl))
    space = locate(ah, pitch)
    if space is None:
        return None
    x0, x1, top, floor = space
    sh, sl = box_mean(ah, SMOOTH), box_mean(al, SMOOTH)
    csh, csl = sh[top:floor, x0:x1], sl[top:floor, x0:x1]
    base_h, base_l = quantile_rows(csh, BASELINE_QUANTILE), quantile_rows(csl, BASELINE_QUANTILE)
    nh = (csh - base_h[:, None]).astype(np.float64)
    nl = (csl - base_l[:, None]).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = nl / nh
    cls = np.select(
        [csh >= OPAQUE, nh < MIN_NET, ratio >= RATIO_ORGANIC, ratio >= RATIO_MIXED, ratio >= RATIO_INORGANIC],
        [OPAQUE_C, NONE, ORGANIC, MIXED, INORGANIC], METAL).astype(np.uint8)
    mu = np.choose(cls, [MU_RHO["organic"], MU_RHO["organic"], MU_RHO["organic"], MU_RHO["inorganic"],
                         MU_RHO["metal"], MU_RHO["metal"]])
    # Metal below the heavy boundary is weighed as lead, and opaque pixels too (a lower bound):
    # edge-agent/src/calibration/file.rs, Calibration::mu_rho.
    mu = np.where(((cls == METAL) & (ratio < RATIO_HEAVY)) | (cls == OPAQUE_C), MU_RHO["heavy"], mu)
    net = (ah[top:floor, x0:x1] - base_h[:, None]).astype(np.float64)
    kg = net / mu * (pitch / 10.0) ** 2 / 1000.0
    by_class = [float(kg[cls == k].sum()) for k in range(1, 6)]
    unclassified = float(kg[cls == NONE].sum())
    classes = np.zeros(rh.shape, np.uint8)
    classes[top:floor, x0:x1] = cls
    n = max(cls.size, 1)
    return dict(space=space, mass_kg=max(sum(by_class) + unclassified, 0.0),
                opaque_fraction=float((cls == OPAQUE_C).sum()) / n, by_class=by_class,
                classes=classes, column_kg=kg.sum(axis=0), column_filled=(cls != NONE).sum(axis=0))


# ---- expected cargo and blocks ----------------------------------------------------------------
def blocks(cargo, pitch):
    x0, x1, top, floor = cargo["space"]
    cls = cargo["classes"][top:floor, x0:x1]
    height = max(floor - top, 1)
    counts = np.stack([(cls == k).sum(axis=0) for k in range(6)])
    counts[1] += counts[2]
    counts[2] = 0
    dom = 1 + np.argmax(counts[1:][::-1], axis=0)  # max_by_key keeps the last maximum
    dom = 5 - (dom - 1)
    occupied = cargo["column_filled"] >= OCCUPIED_SHARE * height
    cols = [int(dom[i]) if occupied[i] else None for i in range(len(occupied))]
    px = lambda m: max(int(round(m * 1000 / pitch)), 1)
    max_gap, last = px(MAX_GAP_M), None
    for i, c in enumerate(cols):
        if c is not None:
            if last is not None and 1 < i - last[0] and i - last[0] - 1 <= max_gap and last[1] == c:
                for j in range(last[0] + 1, i):
                    cols[j] = c
            last = (i, c)
    runs = []
    for i, c in enumerate(cols):
        if runs and runs[-1][2] == c:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, c])
    min_block = px(MIN_BLOCK_M)
    for k, (a, b, c) in enumerate(runs):
        if c is not None and b - a < min_block:
            left = (runs[k - 1][1] - runs[k - 1][0], runs[k - 1][2]) if k > 0 and runs[k - 1][2] is not None else None
            right = (runs[k + 1][1] - runs[k + 1][0], runs[k + 1][2]) if k + 1 < len(runs) and runs[k + 1][2] is not None else None
            pick = (left if left[0] >= right[0] else right) if left and right else (left or right)
            if pick:
                runs[k][2] = pick[1]
    merged = []
    for a, b, c in runs:
        if c is None:
            continue
        if merged and merged[-1][2] == c and merged[-1][1] == a:
            merged[-1][1] = b
        else:
            merged.append([a, b, c])
    out = []
    filled = cargo["classes"] != NONE
    for a, b, c in merged:
        if b - a < min(min_block, 3):
            continue
        rows = np.nonzero(filled[top:floor, x0 + a:x0 + b].any(axis=1))[0]
        btop, bbottom = (top + int(rows[0]), top + int(rows[-1]) + 1) if len(rows) else (floor, top)
        out.append(dict(x0=x0 + a, x1=x0 + b, top=min(btop, bbottom), bottom=max(bbottom, btop), cls=c,
                        mass_kg=float(cargo["column_kg"][a:b].sum()),
                        area_m2=float(cargo["column_filled"][a:b].sum()) * (pitch / 1000) ** 2))
    return out


def starts_left(bl, space):
    return (bl[0]["x0"] - space[0] <= space[1] - bl[-1]["x1"]) if bl else True


def expected_area(decl):
    lo = hi = 0.0
    for item in decl["items"]:
        p = profile(int(item["hs_code"][:2]))
        if p is None:
            return lo, math.inf
        w = FILLED_WIDTH[p["packing"]]
        lo += item["gross_mass_kg"] / 1000 / (p["bulk"][1] * w)
        hi += item["gross_mass_kg"] / 1000 / (p["bulk"][0] * w)
    return lo, hi


def layout(decl, space, pitch, from_left, stack_m):
    x0, x1, top, floor = space
    mpp = pitch / 1000
    space_h = (floor - top) * mpp
    stack_m = min(stack_m, space_h) if stack_m > 0.2 else space_h
    itop = floor - min(int(round(stack_m / mpp)), floor - top)
    cursor, items = 0.0, []
    span = (x1 - x0) * mpp
    for item in decl["items"]:
        p = profile(int(item["hs_code"][:2]))
        if p is None:
            lo, hi = 0.0, math.inf
        else:
            w = FILLED_WIDTH[p["packing"]]
            lo, hi = item["gross_mass_kg"] / 1000 / (p["bulk"][1] * w), item["gross_mass_kg"] / 1000 / (p["bulk"][0] * w)
        mid = (lo + hi) / 2 if math.isfinite(hi) else lo
        a, b = cursor, cursor + max(mid / stack_m, 0.0)
        cursor = b
        a, b = min(a, span), min(b, span)
        ia, ib = int(round(a / mpp)), int(round(b / mpp))
        xa, xb = (x0 + ia, x0 + ib) if from_left else (x1 - ib, x1 - ia)
        items.append(dict(x0=xa, x1=xb, top=itop, floor=floor, cls=p["cls"] if p else None))
    return items


# ---- manifest ---------------------------------------------------------------------------------
def allowances(decl):
    """What the declared goods explain, class by class, with the pallets' wood in the load's
    share (edge-agent/src/manifest/mod.rs allowances)."""
    allow = goods_allowances(decl)
    allow["organic"] += 0.1 * decl["gross_mass_kg"]
    return allow


def goods_allowances(decl):
    """What the declared goods themselves explain: the dunnage explains no block of its own."""
    allow = {"organic": 0.0, "inorganic": 0.0, "metal": 0.0}
    for item in decl["items"]:
        p = profile(int(item["hs_code"][:2]))
        if p is None:
            return {k: math.inf for k in allow}
        allow[p["cls"]] += item["gross_mass_kg"]
        if p["material"] == "glass":
            allow["organic"] += item["gross_mass_kg"]
        if p["packing"] == "drums":
            allow["inorganic"] += item["gross_mass_kg"]
            allow["metal"] += 0.2 * item["gross_mass_kg"]
    return allow


def stowage_range(decl, goods):
    """Least and most t/m² of side view the declared goods of one class may show
    (edge-agent/src/manifest/volume.rs stowage_range)."""
    rng = None
    for item in decl["items"]:
        p = profile(int(item["hs_code"][:2]))
        if p is None:
            return None
        if not (p["cls"] == goods or (p["material"] == "glass" and goods == "organic")):
            if p["packing"] == "drums" and goods != "organic":
                return None
            continue
        w = FILLED_WIDTH[p["packing"]]
        lo, hi = p["bulk"][0] * w, p["bulk"][1] * w
        rng = (lo, hi) if rng is None else (min(rng[0], lo), max(rng[1], hi))
    return rng


def stowage(decl, cargo, b, pitch, goods):
    """The stowage check on one block: the region of its heaviest stretch that stows lighter or
    denser than the declared goods of its class allow (edge-agent/src/manifest/volume.rs)."""
    rng = goods and stowage_range(decl, goods)
    if not rng:
        return None
    lo, hi = rng[0] / (1 + TOL["stowage_relative"]), rng[1] * (1 + TOL["stowage_relative"])
    x0s, x1s, top, floor = cargo["space"]
    a, z = b["x0"] - x0s, b["x1"] - x0s
    px = lambda m: max(int(round(m * 1000 / pitch)), 1)
    half = px(STOWAGE_WINDOW_M) // 2
    pixel_m2 = (pitch / 1000) ** 2
    kg, filled = cargo["column_kg"], cargo["column_filled"].astype(np.float64)
    opaque = (cargo["classes"][top:floor, b["x0"]:b["x1"]] == OPAQUE_C).any(axis=0)
    side = np.zeros(z - a, np.int8)
    for c in range(a, z):
        w0, w1 = max(c - half, a), min(c + half + 1, z)
        n = filled[w0:w1].sum()
        if n <= 0:
            continue
        d = kg[w0:w1].sum() / 1000 / (n * pixel_m2)
        if d > hi:
            side[c - a] = 1
        elif d < lo and not opaque[w0 - a:w1 - a].any():
            side[c - a] = -1
    best, i = None, 0
    while i < len(side):
        j = i + 1
        while j < len(side) and side[j] == side[i]:
            j += 1
        m = float(kg[a + i:a + j].sum())
        if side[i] != 0 and j - i >= px(MIN_BLOCK_M) and m >= TOL["region_min_kg"] and (best is None or m > best[2]):
            best = (i, j, m)
        i = j
    if best is None:
        return None
    i, j, _ = best
    return dict(x=b["x0"] + i, y=b["top"], width=j - i, height=b["bottom"] - b["top"])


def space_region(space):
    x0, x1, top, floor = space
    return dict(x=x0, y=top, width=x1 - x0, height=floor - top)


def verify(decl, code, cargo, pitch):
    """Findings, blocks and the end the load starts at (as edge-agent/src/manifest.rs)."""
    out = []
    bl, from_left = [], True
    f = lambda kind, score, region: out.append(dict(kind=kind, score=float(score), region=region))
    if decl is None:
        f("no_declaration", 0.6, space_region(cargo["space"]) if cargo else None)
        return out, bl, from_left
    if code and decl.get("container_code") and code != decl["container_code"]:
        f("container_code_mismatch", 0.8, None)
    if cargo is None:
        return out, bl, from_left
    est, opaque = cargo["mass_kg"], cargo["opaque_fraction"] > 0
    region = space_region(cargo["space"])
    if decl.get("declared_empty"):
        if est > TOL["empty_max_kg"]:
            f("declared_empty_not_empty", min(0.5 + est / 4000, 1.0), region)
        return out, bl, from_left
    declared = decl["gross_mass_kg"]
    allowed = declared * TOL["mass_relative"] + TOL["mass_absolute_kg"]
    excess = est - declared
    if excess > allowed or (not opaque and -excess > allowed):
        f("mass_mismatch", min(0.4 + abs(excess) / max(declared, 1.0), 1.0), region)
    organic, mixed, inorganic, metal, opaque_kg = cargo["by_class"]
    observed = {"organic": organic + mixed, "inorganic": inorganic, "metal": metal}
    total = sum(max(v, 0.0) for v in observed.values()) + max(opaque_kg, 0.0)
    allow = allowances(decl)
    for goods, pixel in (("organic", ORGANIC), ("inorganic", INORGANIC), ("metal", METAL)):
        expected_share = min(allow[goods] / max(declared, 1.0), 1.0)
        share = max(observed[goods], 0.0) / max(total, 1.0)
        if (share - expected_share) * total > TOL["class_min_kg"] and share - expected_share > TOL["class_share"]:
            ys, xs = np.nonzero(cargo["classes"] == pixel)
            r = dict(x=int(xs.min()), y=int(ys.min()), width=int(xs.max() - xs.min() + 1),
                     height=int(ys.max() - ys.min() + 1)) if len(xs) else region
            f("material_mismatch", min(0.4 + share - expected_share, 1.0), r)
    bl = blocks(cargo, pitch)
    from_left = starts_left(bl, cargo["space"])
    least, most = expected_area(decl)
    obs = sum(b["area_m2"] for b in bl)
    upper = most * (1 + TOL["fill_relative"]) + TOL["fill_absolute_m2"]
    lower = least * (1 - TOL["fill_relative"]) - TOL["fill_absolute_m2"]
    load = (dict(x=min(b["x0"] for b in bl), y=min(b["top"] for b in bl),
                 width=max(b["x1"] for b in bl) - min(b["x0"] for b in bl),
                 height=max(max(b["bottom"] for b in bl) - min(b["top"] for b in bl), 0)) if bl else region)
    if math.isfinite(most) and obs > upper:
        f("fill_mismatch", min(0.35 + 0.5 * (obs / upper - 1), 0.9), load)
    elif not opaque and lower > 0 and obs < lower:
        f("fill_mismatch", min(0.35 + 0.5 * (1 - obs / lower), 0.9), load)
    goods_of = {ORGANIC: "organic", MIXED: "organic", INORGANIC: "inorganic", METAL: "metal"}
    before, flagged, block_allow = 0.0, [], goods_allowances(decl)
    for b in (bl if from_left else bl[::-1]):
        beyond = math.isfinite(most) and before >= upper
        before += b["area_m2"]
        goods = goods_of.get(b["cls"])
        if b["cls"] == MIXED:
            unexplained = block_allow["organic"] <= 0 and block_allow["inorganic"] <= 0
        else:
            unexplained = goods is not None and block_allow[goods] <= 0
        if b["mass_kg"] < TOL["region_min_kg"] or not (beyond or unexplained):
            continue
        flagged.append(b["x0"])
        f("undeclared_region", 0.75 if beyond and unexplained else 0.6,
          dict(x=b["x0"], y=b["top"], width=b["x1"] - b["x0"], height=b["bottom"] - b["top"]))
    for b in bl:
        if b["x0"] not in flagged:
            r = stowage(decl, cargo, b, pitch, goods_of.get(b["cls"]))
            if r is not None:
                f("undeclared_region", 0.6, r)
    out.sort(key=lambda x: -x["score"])
    return out, bl, from_left


# ---- overlay ----------------------------------------------------------------------------------
def png(img):
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def rgba_png(rgba):
    return png(cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))


def outline(img, r, colour, thick):
    x0, y0, x1, y1 = r["x"], r["y"], r["x"] + r["width"] - 1, r["y"] + r["height"] - 1
    cv2.rectangle(img, (x0, y0), (x1, y1), (20, 20, 20, 220), thick + 1 + thick)
    cv2.rectangle(img, (x0, y0), (x1, y1), (*colour, 255), 2 * thick - 1)


def overlay(images, heat, cargo, lay, findings):
    readings, air, dark = images["high"]
    h, w = readings.shape
    t = np.clip((readings.astype(np.float32) - dark) / max(air - dark, 1), 0, 1)
    idx = (t * 1023).astype(np.int32)
    hist = np.bincount(idx[t < 0.9], minlength=1024)
    cdf = np.cumsum(hist) / max(hist.sum(), 1)
    g = np.where(t >= 0.9, 235 + (t - 0.9) / 0.1 * 20, cdf[idx] * 230)
    files = {"scan.png": png(np.clip(np.round(g), 0, 255).astype(np.uint8))}
    if cargo is not None:
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = CLASS_COLOURS[cargo["classes"]]
        rgba[..., 3] = np.where(cargo["classes"] != NONE, 130, 0)
        files["material.png"] = rgba_png(rgba)
    if lay:
        rgba = np.zeros((h, w, 4), np.uint8)
        for it in lay:
            if it["x1"] > it["x0"] and it["floor"] > it["top"]:
                c = {"organic": CLASS_COLOURS[1], "inorganic": CLASS_COLOURS[3], "metal": CLASS_COLOURS[4]}.get(it["cls"], (200, 200, 200))
                rgba[it["top"]:it["floor"], it["x0"]:it["x1"]] = (*c, 90)
                outline(rgba, dict(x=it["x0"], y=it["top"], width=it["x1"] - it["x0"], height=it["floor"] - it["top"]), tuple(int(v) for v in c), 2)
        files["expected.png"] = rgba_png(rgba)
    q = np.clip((heat - 0.2) / 0.8, 0, 1)
    rgba = np.zeros((h, w, 4), np.uint8)
    for ch, (a, b) in enumerate([(230, 255), (97, 230), (0, 80), (110, 200)]):
        rgba[..., ch] = np.round(a + (b - a) * q)
    rgba[heat < 0.2] = 0
    files["heat.png"] = rgba_png(rgba)
    rgba = np.zeros((h, w, 4), np.uint8)
    thick = min(max(max(w, h) // 400, 2), 6)
    yy, xx = np.mgrid[0:h, 0:w]
    hatch = (xx + yy) % 12 < 3
    for fnd in findings:
        r = fnd["region"]
        if r is None:
            continue
        if fnd["kind"] in ("concealed_object", "undeclared_region"):
            sl = (slice(r["y"], r["y"] + r["height"]), slice(r["x"], r["x"] + r["width"]))
            m = hatch[sl] & (rgba[sl][..., 3] == 0)
            rgba[sl][m] = (*FINDING, 150)
        outline(rgba, r, FINDING, thick)
    files["findings.png"] = rgba_png(rgba)
    files["overlay.json"] = json.dumps({"contract": "baylens.overlay/1", "findings": findings}).encode()
    return files


# ---- the pipeline ------------------------------------------------------------------------------
def run(sess, sidecar_path, declarations):
    times = {}
    t0 = time.perf_counter()
    side, images = decode(sidecar_path)
    t1 = time.perf_counter()
    heat, detections, ort_ms = model(sess, *images["high"])
    t2 = time.perf_counter()
    pitch = side["pixel_pitch_mm"]
    cargo = estimate_cargo(images, pitch)
    t3 = time.perf_counter()
    decl = declarations.get(side.get("declaration_ref")) or declarations.get(side.get("container_code"))
    findings = [dict(kind="concealed_object", score=d["score"],
                     region=dict(x=d["x"], y=d["y"], width=d["width"], height=d["height"])) for d in detections]
    mf, bl, from_left = verify(decl, side.get("container_code"), cargo, pitch)
    lay = None
    if cargo is not None and decl is not None and not decl.get("declared_empty"):
        if not bl:
            bl = blocks(cargo, pitch)
            from_left = starts_left(bl, cargo["space"])
        length = sum(b["x1"] - b["x0"] for b in bl)
        stack = sum((b["bottom"] - b["top"]) * (b["x1"] - b["x0"]) for b in bl) // max(length, 1)
        lay = layout(decl, cargo["space"], pitch, from_left, stack * pitch / 1000)
    findings = sorted(findings + mf, key=lambda x: -x["score"])
    t4 = time.perf_counter()
    overlay(images, heat, cargo, lay, findings)
    t5 = time.perf_counter()
    times = dict(decode=(t1 - t0) * 1e3, model=(t2 - t1) * 1e3, ort_run=ort_ms, calibrate=(t3 - t2) * 1e3,
                 manifest=(t4 - t3) * 1e3, overlay=(t5 - t4) * 1e3, total=(t5 - t0) * 1e3)
    return dict(scan_id=side["scan_id"], ms=times, findings=findings)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="models/onnx")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--declarations")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("sidecars", nargs="+")
    a = ap.parse_args()
    cv2.setNumThreads(a.threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(os.path.join(a.models, "xray-concealment.onnx"), so,
                                providers=["CPUExecutionProvider"])
    declarations = {}
    if a.declarations:
        for name in os.listdir(a.declarations):
            d = json.load(open(os.path.join(a.declarations, name)))
            declarations[d["reference"]] = d
            if d.get("container_code"):
                declarations[d["container_code"]] = d
    for s in a.sidecars[:a.warmup]:
        run(sess, s, declarations)
    for _ in range(a.rounds):
        for s in a.sidecars:
            print(json.dumps(run(sess, s, declarations)))


if __name__ == "__main__":
    main()
