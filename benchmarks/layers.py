"""Time the nodes of a benchmark model one at a time, each as a model of its own.

    python benchmarks/layers.py --models superres             # wasmexport, plain SIMD
    python benchmarks/layers.py --models resnet18w48 --simd relaxed --ort-web

Reads the ONNX models that benchmarks/run.py saved in benchmarks/build/<name>/model.onnx
(run it once first), cuts out every node with its constant inputs, feeds its other inputs
with random values of the inferred shapes, and times the graph alone with the benchmark
build of the runtime (as run.py's "inference" rows). With --ort-web, single-input nodes are
timed on onnxruntime-web too. Prints one line per node, slowest first, with GFLOP/s for the
Conv, Gemm and MatMul nodes. The sum of the nodes is not the model's time: fusions differ,
and each node here runs with cold caches for its inputs.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
NODE_DIR = HERE / "node"


def single_nodes(model: onnx.ModelProto):
    """Yield (node, one-node model, {input name: shape}) for every node of the graph."""
    model = onnx.shape_inference.infer_shapes(model)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    infos = {vi.name: vi for vi in (*g.input, *g.value_info, *g.output)}
    for node in g.node:
        inputs, shapes, used = [], {}, []
        for name in node.input:
            if not name or name in inits:
                if name:
                    used.append(inits[name])
                continue
            vi = infos[name]
            shapes[name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
            inputs.append(vi)
        outputs = [infos[o] for o in node.output if o in infos]
        if len(outputs) != len(node.output) or not inputs:
            continue
        graph = helper.make_graph([node], node.name, inputs, outputs, used)
        one = helper.make_model(graph, opset_imports=model.opset_import)
        one.ir_version = model.ir_version
        yield node, one, shapes


def macs(node: onnx.NodeProto, one: onnx.ModelProto) -> int:
    from benchmarks.models import count_macs

    return count_macs(one) if node.op_type in ("Conv", "Gemm", "MatMul") else 0


def time_ours(wasm: bytes, feeds: list[np.ndarray], rounds: int) -> float:
    """Min CPU ms of one graph run in the benchmark build (as run.py does)."""
    from benchmarks.run import BENCH_REPEAT, _Module

    with tempfile.NamedTemporaryFile(suffix=".wasm") as f:
        f.write(wasm)
        f.flush()
        mod = _Module(Path(f.name))
    request = {"input": [base64.b64encode(x.tobytes()).decode() for x in feeds],
               "type": "raw", "shapes": [list(x.shape) for x in feeds],
               "output_type": "raw"}  # fmt: skip
    mod.put(json.dumps(request).encode())

    def best() -> float:
        out = []
        for _ in range(rounds):
            t0 = time.thread_time()
            mod.pred()
            out.append(time.thread_time() - t0)
        return min(out) * 1000

    mod.pred()
    once = best()
    mod.repeat(mod.store, 1 + BENCH_REPEAT)
    return (best() - once) / BENCH_REPEAT


def time_ort_web(one: onnx.ModelProto, x: np.ndarray, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        onnx.save(one, d / "m.onnx")
        (d / "x.bin").write_bytes(x.tobytes())
        proc = subprocess.run(
            ["node", str(NODE_DIR / "ort_web.mjs"), str(d / "m.onnx"), str(d / "x.bin"),
             ",".join(map(str, x.shape)), str(rounds), "2", str(d / "y.bin")],
            capture_output=True, text=True, check=True)  # fmt: skip
        return min(json.loads(proc.stdout.strip().splitlines()[-1])["times"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="superres")
    parser.add_argument("--simd", default="plain", choices=("plain", "relaxed"))
    parser.add_argument("--ort-web", action="store_true", help="time onnxruntime-web too")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", default="", help="only these op types (comma-separated)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from wasmexport.abi_runtime import build
    from wasmexport.packager import package

    # the full runtime: each node is packaged on its own, and any op may come up
    file = "runtime.wasm" if args.simd == "plain" else "runtime_relaxed.wasm"
    with tempfile.TemporaryDirectory() as tmp:
        runtime = build.compile_runtime(Path(tmp) / file, build.VARIANTS[file], bench=True)
    rng = np.random.default_rng(0)
    ops = set(filter(None, args.ops.split(",")))
    for name in args.models.split(","):
        model = onnx.load(BUILD / name / "model.onnx")
        rows = []
        for node, one, shapes in single_nodes(model):
            if ops and node.op_type not in ops:
                continue
            feeds = [rng.standard_normal(s).astype(np.float32) for s in shapes.values()]
            wasm = package(one, simd=args.simd, runtime=runtime).wasm
            ms = time_ours(wasm, feeds, args.rounds)
            web = None
            if args.ort_web and len(feeds) == 1:
                web = time_ort_web(one, feeds[0], args.rounds)
            rows.append((ms, web, node, macs(node, one), list(shapes.values())[0]))
        total = sum(r[0] for r in rows)
        total_web = sum(r[1] or 0 for r in rows)
        print(f"{name}: {len(rows)} nodes, {total:.2f} ms ours"
              + (f", {total_web:.2f} ms ort-web" if args.ort_web else ""))  # fmt: skip
        for ms, web, node, m, shape in sorted(rows, key=lambda r: -r[0]):
            rate = f"{2 * m / ms / 1e6:6.1f} GFLOP/s" if m else " " * 14
            ratio = f"  web {web:7.3f} ms  x{ms / web:5.2f}" if web else ""
            print(f"  {ms:8.3f} ms {rate}{ratio}  {node.op_type:12s} {node.name[:28]:28s} "
                  f"in {shape}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
