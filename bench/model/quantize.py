"""Tried for issue 7: int8 static quantisation (QDQ, per-channel weights, calibrated on simulator
tiles) of the concealment model, its speed per 512 x 512 tile against FP32 on the same ORT, and
how far the flagged pixels agree. Not adopted yet: adopting it means re-measuring detection
and false alarms on the held-out set (models/examples/evaluate.rs) and a new model card.

    target/release/scanner-sim generate --count 6 --seed 11 --out /tmp/cmp --quiet
    target/bench-reference-venv/bin/python bench/model/quantize.py /tmp/cmp
"""
import sys, os, json, glob, time
import numpy as np, cv2, onnxruntime as ort
from onnxruntime.quantization import quantize_static, QuantType, QuantFormat, CalibrationDataReader
from onnxruntime.quantization.shape_inference import quant_pre_process
sys.path.insert(0, 'bench/reference'); import pipeline as P
src='models/onnx/xray-concealment.onnx'
import tempfile
OUT = tempfile.mkdtemp()
tiles=[]
for f in sorted(glob.glob(os.path.join(sys.argv[1], 'BAY01-*.json')))[:6]:
    side, images = P.decode(f)
    r, air, dark = images['high']
    t = (r.astype(np.float32) - dark) / np.float32(air - dark)
    x = (-np.log(np.clip(t, 1e-6, 1.0)) * 0.25).astype(np.float32)
    h, w = x.shape
    xp = np.pad(x, ((0, -h % 8), (0, -w % 8)), mode='edge')
    for s, a, b in P.tiles(xp.shape[1]):
        tiles.append(np.ascontiguousarray(xp[None, None, :, s:s+512]))
class R(CalibrationDataReader):
    def __init__(s): s.it = iter([{'attenuation': t} for t in tiles])
    def get_next(s): return next(s.it, None)
quant_pre_process(src, os.path.join(OUT, 'pre.onnx'), skip_symbolic_shape=True)
quantize_static(os.path.join(OUT, 'pre.onnx'), os.path.join(OUT, 'int8.onnx'), R(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
def bench(path):
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    sess = ort.InferenceSession(path, so, providers=['CPUExecutionProvider'])
    x = tiles[3]
    for _ in range(3): sess.run(None, {'attenuation': x})
    ts=[]
    for _ in range(15):
        t0=time.perf_counter(); y=sess.run(None, {'attenuation': x})[0]; ts.append(time.perf_counter()-t0)
    return np.median(ts)*1000, sess
f32, s32 = bench(src); i8, s8 = bench(os.path.join(OUT, 'int8.onnx'))
print(f"fp32 {f32:.1f} ms per tile, int8 {i8:.1f} ms per tile ({f32/i8:.2f}x)")
# agreement on all tiles: flagged pixels
agree=[]; 
for x in tiles:
    a = s32.run(None, {'attenuation': x})[0] > 0.95; b = s8.run(None, {'attenuation': x})[0] > 0.95
    agree.append((a.sum(), b.sum(), (a & b).sum()))
flagged = [a for a in agree if a[0] or a[1]]
print("tiles with flagged pixels (fp32, int8, both):", [tuple(int(v) for v in a) for a in flagged])
print(f"file: {os.path.getsize(src)} bytes fp32, {os.path.getsize(os.path.join(OUT, 'int8.onnx'))} bytes int8")
