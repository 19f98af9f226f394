"""The physical floor of the concealment model on this machine: its FLOPs per scan, counted from
the ONNX graph, against the FP32 GEMM throughput of ONNX Runtime's own kernels (MLAS) with one
and two threads.

    target/bench-reference-venv/bin/python bench/model/floor.py models/onnx/xray-concealment.onnx

(bench/compare/run.sh creates that virtual environment from bench/reference/requirements.txt.)
"""
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, shape_inference, TensorProto

TILE = (1, 1, 512, 512)  # one full tile; scans run as tiles of 512 columns (models/src/concealment)


def flops(path, shape):
    m = onnx.load(path)
    inp = m.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = v
    m = shape_inference.infer_shapes(m)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    total = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]  # [Cout, Cin/g, kh, kw]
            out = shapes[n.output[0]]
            total += 2 * int(np.prod(out)) * w[1] * w[2] * w[3]
        elif n.op_type == "ConvTranspose":
            w = inits[n.input[1]]  # [Cin, Cout/g, kh, kw]
            x = shapes[n.input[0]]
            total += 2 * int(np.prod(x)) * w[1] * w[2] * w[3]
        elif n.op_type in ("MatMul", "Gemm"):
            a, b = shapes[n.input[0]], inits.get(n.input[1]) or shapes[n.input[1]]
            total += 2 * int(np.prod(a)) * b[-1]
    return total


def gemm_gflops(threads, n=1024, reps=20):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])
    c = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm", [a, b], [c])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    for _ in range(3):
        s.run(None, {"a": x, "b": x})
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        s.run(None, {"a": x, "b": x})
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / np.median(times) / 1e9


def model_ms(path, threads, reps=20):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random(TILE, dtype=np.float32)
    for _ in range(3):
        s.run(None, {"attenuation": x})
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        s.run(None, {"attenuation": x})
        times.append(time.perf_counter() - t)
    return np.median(times) * 1000


def main():
    path = sys.argv[1]
    f = flops(path, TILE)
    print(f"model: {f / 1e9:.2f} GFLOP per 512 x 512 tile ({f / (512 * 512):.0f} FLOP per pixel)")
    for threads in (1, 2):
        g = gemm_gflops(threads)
        ms = model_ms(path, threads)
        floor = f / (g * 1e9) * 1000
        print(f"{threads} thread(s): GEMM {g:.1f} GFLOP/s; model {ms:.1f} ms per tile "
              f"= {f / (ms / 1000) / 1e9:.1f} GFLOP/s, {ms / floor:.1f}x the GEMM floor of {floor:.1f} ms")


if __name__ == "__main__":
    main()
