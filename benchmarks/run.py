"""Benchmark wasmexport against onnxruntime (native and web) and tract, side by side.

    python benchmarks/run.py                       # all models, all engines
    python benchmarks/run.py --models mlp --quick  # one model, fewer rounds
    python benchmarks/layers.py --models superres  # then: each node on its own

Builds the models of benchmarks/models.py in torch, exports them to ONNX, packages
them, then times each engine in its own process (one thread everywhere) and prints a table
of min / median times, ratios to onnxruntime-web, GFLOP/s and the max abs error of each
engine's output against onnxruntime native. Writes docs/performance.md.

What "ours" measures (all inside wasmtime, the request already in linear memory, so host
encoding is never counted):
    infer     the graph alone: a benchmark build of the same runtime sources (-DWX_BENCH)
              whose pred() runs the graph r times; one round is
              (T(pred, r = 1 + R) - min T(pred, r = 1)) / R
    raw       pred() of the shipped module with raw (base64) input and output
    json      pred() of the shipped module with JSON nested lists in and out
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUILD = HERE / "build"
NODE_DIR = HERE / "node"
DOC = ROOT / "docs" / "performance.md"

# engine id -> column title
ENGINES = {
    "ours": "wasmexport SIMD128",
    "ours_relaxed": "wasmexport relaxed SIMD",
    "ort_web": "onnxruntime-web WASM",
    "ort": "onnxruntime native",
    "tract": "tract native",
}
BENCH_REPEAT = 2  # extra graph runs per pred() when timing the inference alone
TIME_BUDGET_S = 4.0  # timed rounds per engine and model stop after about this long
MIN_ROUNDS, MAX_ROUNDS = 5, 60


def _rounds(first_ms: float, quick: bool) -> int:
    budget = TIME_BUDGET_S / (4 if quick else 1)
    return int(min(MAX_ROUNDS, max(MIN_ROUNDS if not quick else 3, budget * 1000 / first_ms)))


# ---- preparation (parent process) --------------------------------------------------------


def bench_runtimes() -> dict[tuple[str, str], bytes]:
    """Benchmark builds (-DWX_BENCH) of every shipped runtime, by (simd, "full" or "core")."""
    from wasmexport.abi_runtime import build

    BUILD.mkdir(parents=True, exist_ok=True)
    objects = BUILD / "objects"
    objects.mkdir(exist_ok=True)
    out = {}
    for file, variant in build.VARIANTS.items():
        simd = "relaxed" if variant.flags == build.RELAXED_SIMD else "plain"
        out[simd, variant.subset or "full"] = build.compile_runtime(
            BUILD / f"bench_{file}", variant, bench=True, object_dir=objects
        )
    return out


def prepare(name: str, runtimes: dict[tuple[str, str], bytes]) -> dict:
    """Export `name` to ONNX and package it: shipped and benchmark runtimes, both SIMD (the
    benchmark build of the runtime the packager picks for the model)."""
    import onnx

    from benchmarks.models import build, count_macs, live_bytes
    from wasmexport.packager import package

    d = BUILD / name
    d.mkdir(parents=True, exist_ok=True)
    onnx_model, x = build(name)
    onnx.save(onnx_model, d / "model.onnx")
    np.save(d / "input.npy", x)
    info = {"name": name, "macs": count_macs(onnx_model), "shape": list(x.shape)}
    info["weight_bytes"], info["live_bytes"] = live_bytes(onnx_model)
    for simd in ("plain", "relaxed"):
        kind = "full"  # the shipped module comes first and says which runtime it holds
        for variant in ("full", "bench"):
            path = d / f"{simd}_{variant}.wasm"
            runtime = runtimes[simd, kind] if variant == "bench" else None
            try:
                t0 = time.process_time()
                packaged = package(onnx_model, simd=simd, runtime=runtime)
                seconds = time.process_time() - t0
            except Exception as e:  # reported as n/a in the table
                info[f"error_{simd}"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
                path.unlink(missing_ok=True)
                continue
            path.write_bytes(packaged.wasm)
            if variant == "full":
                kind = packaged.runtime
            if simd == "plain" and variant == "full":
                info["package_s"] = seconds
                info["plan_bytes"] = packaged.metadata.plan_bytes
                info["runtime_bytes"] = packaged.runtime_bytes
                info["runtime"] = packaged.runtime
    return info


# ---- workers (one process per engine and model) ------------------------------------------


def _time(fn, quick: bool) -> list[float]:
    """Warm up, then time fn() for a number of rounds fitting the budget; CPU ms per round.

    CPU time of the calling thread, not wall-clock time: the machines these numbers come
    from are shared, and a descheduled process would otherwise be charged for others' work.
    Every engine runs single-threaded on the calling thread (ort-web: the process's CPU time).
    """
    t0 = time.thread_time()
    fn()
    first = (time.thread_time() - t0) * 1000
    fn()
    times = []
    for _ in range(_rounds(max(first, 1e-3), quick)):
        t0 = time.thread_time()
        fn()
        times.append((time.thread_time() - t0) * 1000)
    return times


class _Module:
    """A packaged module on wasmtime with one request kept in linear memory."""

    def __init__(self, path: Path):
        import wasmtime

        config = wasmtime.Config()
        config.wasm_simd = True
        config.wasm_relaxed_simd = True
        engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(self.store, wasmtime.Module(engine, path.read_bytes()))
        ex = inst.exports(self.store)
        self.memory = ex["memory"]
        self.fn = {k: ex[k] for k in ("_start", "malloc_buffer", "pred", "get_out_loc",
                                      "get_out_len")}  # fmt: skip
        self.repeat = ex["wx_bench_repeat"] if "wx_bench_repeat" in ex else None
        # the runtime's own memory (stack, static data), before _start loads the plan
        self.base_memory = self.memory_bytes()
        self.fn["_start"](self.store)

    def put(self, text: bytes) -> None:
        ptr = self.fn["malloc_buffer"](self.store, len(text) + 1)
        self.memory.write(self.store, text + b"\0", ptr)

    def pred(self) -> None:
        if self.fn["pred"](self.store) != 0:
            raise RuntimeError(self.response()[:300])

    def response(self) -> str:
        loc = self.fn["get_out_loc"](self.store)
        n = self.fn["get_out_len"](self.store)
        return self.memory.read(self.store, loc, loc + n).decode()

    def memory_bytes(self) -> int:
        return self.memory.data_len(self.store)


def _raw_request(x: np.ndarray) -> bytes:
    import base64

    return json.dumps({"input": base64.b64encode(x.tobytes()).decode(), "type": "raw",
                       "shape": list(x.shape), "output_type": "raw"}).encode()  # fmt: skip


def worker_ours(d: Path, simd: str, quick: bool) -> dict:
    import base64

    x = np.load(d / "input.npy")
    result: dict = {}
    # pure inference: the benchmark build repeats the graph inside one pred()
    bench = _Module(d / f"{simd}_bench.wasm")
    result["base_memory"] = bench.base_memory
    bench.put(_raw_request(x))
    once = min(_time(bench.pred, quick))
    bench.repeat(bench.store, 1 + BENCH_REPEAT)
    result["infer"] = [(t - once) / BENCH_REPEAT for t in _time(bench.pred, quick)]
    result["peak_memory"] = bench.memory_bytes()
    # end to end, raw in and out; this output is the one checked
    full = _Module(d / f"{simd}_full.wasm")
    full.put(_raw_request(x))
    result["raw"] = _time(full.pred, quick)
    out = json.loads(full.response())
    y = np.frombuffer(base64.b64decode(out["output"]), np.float32)
    np.save(d / f"out_ours_{simd}.npy", y)
    if simd == "plain":
        # end to end with JSON lists, in a fresh instance
        js = _Module(d / f"{simd}_full.wasm")
        js.put(json.dumps({"input": x.tolist()}).encode())
        result["json"] = _time(js.pred, quick)
        result["json_request_bytes"] = len(json.dumps({"input": x.tolist()}))
        result["json_response_bytes"] = len(js.response())
    return result


def worker_ort(d: Path, quick: bool) -> dict:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(
        str(d / "model.onnx"), opts, providers=["CPUExecutionProvider"]
    )
    x = np.load(d / "input.npy")
    feed = {sess.get_inputs()[0].name: x}
    times = _time(lambda: sess.run(None, feed), quick)
    np.save(d / "out_ort.npy", sess.run(None, feed)[0].ravel())
    return {"infer": times, "version": ort.__version__}


def worker_tract(d: Path, quick: bool) -> dict:
    import tract

    x = np.load(d / "input.npy")
    model = tract.onnx().load(str(d / "model.onnx"))
    model.set_input_fact(0, f"{','.join(map(str, x.shape))},f32")
    # into_model declutters; into_runnable optimises (tract picks its kernels there)
    runnable = model.into_model().into_runnable()
    times = _time(lambda: runnable.run([x]), quick)
    y = runnable.run([x])[0].to_numpy()
    np.save(d / "out_tract.npy", np.asarray(y, np.float32).ravel())
    return {"infer": times, "version": tract.version()}


def worker_ort_web(d: Path, quick: bool) -> dict:
    if not (NODE_DIR / "node_modules" / "onnxruntime-web").exists():
        raise RuntimeError("onnxruntime-web missing: run `npm install` in benchmarks/node")
    x = np.load(d / "input.npy")
    (d / "input.bin").write_bytes(x.tobytes())
    # a first short run learns the time per round, a second one measures
    args = ["node", str(NODE_DIR / "ort_web.mjs"), str(d / "model.onnx"), str(d / "input.bin"),
            ",".join(map(str, x.shape))]  # fmt: skip
    probe = subprocess.run([*args, "1", "1", str(d / "out_ort_web.bin")], capture_output=True,
                           text=True, check=True)  # fmt: skip
    first = json.loads(probe.stdout.strip().splitlines()[-1])["times"][0]
    rounds = _rounds(first, quick)
    proc = subprocess.run([*args, str(rounds), "2", str(d / "out_ort_web.bin")],
                          capture_output=True, text=True, check=True)  # fmt: skip
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    y = np.frombuffer((d / "out_ort_web.bin").read_bytes(), np.float32)
    np.save(d / "out_ort_web.npy", y)
    version = json.loads((NODE_DIR / "node_modules/onnxruntime-web/package.json").read_text())
    return {"infer": info["times"], "version": version["version"]}


def run_worker(engine: str, name: str, quick: bool) -> dict:
    d = BUILD / name
    if engine in ("ours", "ours_relaxed"):
        return worker_ours(d, "plain" if engine == "ours" else "relaxed", quick)
    return {"ort": worker_ort, "tract": worker_tract, "ort_web": worker_ort_web}[engine](
        d, quick
    )


def spawn(engine: str, name: str, quick: bool) -> dict:
    """Run one engine on one model in a fresh process; its JSON result or an error."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, "--models", name]
    if quick:
        cmd.append("--quick")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": last[:160]}
    return json.loads(lines[-1])


# ---- report --------------------------------------------------------------------------------


def _stats(times: list[float]) -> tuple[float, float]:
    return min(times), statistics.median(times)


def _fmt_ms(ms: float) -> str:
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def _max_err(d: Path, engine: str) -> str:
    ref = d / "out_ort.npy"
    name = {"ours": "out_ours_plain", "ours_relaxed": "out_ours_relaxed"}.get(
        engine, f"out_{engine}"
    )
    path = d / f"{name}.npy"
    if not ref.exists() or not path.exists():
        return "-"
    a, b = np.load(ref), np.load(path)
    if a.size != b.size:
        return f"size {b.size} != {a.size}"
    return f"{float(np.max(np.abs(a - b))):.1e}"


def _short(reason: str) -> str:
    """A one-phrase reason for an n/a cell."""
    m = re.search(r"has no (\w+) kernel", reason)
    return f"no {m.group(1)} kernel in this runtime" if m else reason[:80]


def report(infos: dict, results: dict) -> str:
    """The markdown table of all models and engines."""
    lines = [
        "| model | engine | min ms | median ms | x ort-web | GFLOP/s | max abs err |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, info in infos.items():
        d = BUILD / name
        web = results[name].get("ort_web", {})
        web_min = min(web["infer"]) if "infer" in web else None
        for engine, title in ENGINES.items():
            r = results[name].get(engine)
            if r is None:
                continue
            rows = [("", "infer")]
            if engine == "ours":
                rows += [(" pred() raw I/O", "raw"), (" pred() JSON I/O", "json")]
            elif engine == "ours_relaxed":
                rows += [(" pred() raw I/O", "raw")]
            for suffix, key in rows:
                label = title + (" inference" if engine.startswith("ours") and not suffix
                                 else suffix)  # fmt: skip
                if "error" in r or key not in r:
                    why = _short(r.get("error", "not measured"))
                    lines.append(f"| {name} | {label} | n/a ({why}) | | | | |")
                    continue
                lo, med = _stats(r[key])
                ratio = f"{lo / web_min:.2f}" if web_min else "-"
                gflops = 2 * info["macs"] / (lo / 1000) / 1e9
                err = _max_err(d, engine) if key != "json" else ""
                lines.append(f"| {name} | {label} | {_fmt_ms(lo)} | {_fmt_ms(med)} | {ratio} "
                             f"| {gflops:.1f} | {err} |")  # fmt: skip
    return "\n".join(lines)


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    import onnxruntime

    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"- CPU: {cpu}, {os.cpu_count()} logical cores (every engine on one thread)\n"
            f"- Python {platform.python_version()}, wasmtime-py {version('wasmtime')}, "
            f"onnxruntime {onnxruntime.__version__}, Node {node}\n")  # fmt: skip


def extras(infos: dict, results: dict) -> str:
    """Sizes, packaging times, memory and I/O notes below the table."""
    out = []
    for name, info in infos.items():
        r = results[name].get("ours", {})
        parts = [f"{info['macs'] / 1e9:.3f} GMAC"]
        if "package_s" in info:
            parts.append(f"packaging {info['package_s']:.2f} s CPU")
            parts.append(f"plan {info['plan_bytes'] / 1e6:.2f} MB")
        if "peak_memory" in r:
            bound = info["weight_bytes"] + 2 * info["live_bytes"]
            peak, base = r["peak_memory"], r.get("base_memory") or 0
            verdict = "within" if peak - base <= bound else "OVER"
            parts.append(
                f"linear memory after the runs {peak / 1e6:.1f} MB, "
                f"{(peak - base) / 1e6:.1f} MB above the runtime's own "
                f"{base / 1e6:.1f} MB, {verdict} the bound of weights + 2 x largest live "
                f"activations: {bound / 1e6:.1f} MB"
            )
        if "json" in r and "infer" in r:
            parts.append(f"JSON pred / inference {min(r['json']) / min(r['infer']):.2f}x")
            parts.append(f"raw pred / inference {min(r['raw']) / min(r['infer']):.2f}x")
        for key in ("error_plain", "error_relaxed"):
            if key in info:
                parts.append(f"{key.split('_')[1]} packaging failed: {_short(info[key])}")
        out.append(f"- **{name}**: " + ", ".join(parts))
    sizes = {info["runtime"]: info["runtime_bytes"] for info in infos.values()
             if "runtime_bytes" in info}  # fmt: skip
    for kind, size in sorted(sizes.items()):
        out.append(f"- runtime without the plan ({kind}, the one these models are packaged "
                   f"into): {size / 1024:.0f} KB")  # fmt: skip
    return "\n".join(out)


def runtime_sizes() -> dict[str, int]:
    """Bytes of the shipped plain runtimes without a plan, by op subset ("core", "full")."""
    from wasmexport.packager.runtime_info import runtime_bytes

    return {"core": len(runtime_bytes("plain", "core")), "full": len(runtime_bytes("plain"))}


def write_doc(table: str, goals: str, infos: dict, results: dict) -> None:
    versions = {e: r.get("version") for res in results.values() for e, r in res.items()
                if isinstance(r, dict) and r.get("version")}  # fmt: skip
    text = f"""# Performance

Measured with `python benchmarks/run.py` on {time.strftime("%Y-%m-%d")}; every engine runs
in its own process on one thread. Times are per inference (batch as listed in
`benchmarks/models.py`) in **CPU time** of the running thread (onnxruntime-web: of the Node
process), not wall-clock time: the machine was shared with other jobs (load average
{os.getloadavg()[0]:.0f} on {os.cpu_count()} cores at the end of the run), and contention
for caches and memory bandwidth still slows every engine somewhat. "x ort-web" divides the
engine's minimum time by onnxruntime-web's; GFLOP/s counts 2 FLOP per multiply-accumulate
of the Conv, Gemm and MatMul nodes; the error is the max abs difference to onnxruntime
native's output.

{table}

## Targets

{goals}

## Notes

{extras(infos, results)}

"wasmexport ... inference" is the graph alone: a benchmark build of the same runtime sources
(`-DWX_BENCH`, never shipped) whose `pred()` runs the graph `r` times; one round is
`(T(pred, r = 3) - min T(pred, r = 1)) / 2`. "pred() raw I/O" is the shipped module answering
a raw (base64) request with a raw output; "pred() JSON I/O" reads and writes nested JSON
lists. The request is written into linear memory once and `pred()` is called repeatedly, so
the host's own encoding is not counted. wasmtime runs with its defaults (Cranelift); relaxed
SIMD is enabled in its config. The relaxed-SIMD build differs from the plain one only in
exp's polynomial (fused multiply-add): its GEMM multiplies and then adds like the plain one,
because Cranelift's fused multiply-add measured slower there (`abi_runtime/src/gemm.c`):
x86-64 `vfmadd213ps` overwrites a multiplicand, so every accumulator moves to a new register
and back each step, and on AMD Zen cores, which run multiplies and adds on separate pipes,
SIMD128's multiply then add already issues at the fused rate (the GEMMs reach 51-59 GFLOP/s
either way). onnxruntime-web runs its WASM backend in Node with
`numThreads = 1`, SIMD on.

## Machine

{machine_info()}- engine versions: {", ".join(f"{k} {v}" for k, v in sorted(versions.items()))}

## Reproduce

    . /path/to/venv/bin/activate       # torch, onnx, onnxruntime, wasmtime, tract
    (cd benchmarks/node && npm install)
    PYTHONPATH=$PWD python benchmarks/run.py
"""
    DOC.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models",
                        help="comma-separated (default: all of benchmarks/models.py)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.models is None:
        from benchmarks.models import MODELS

        args.models = ",".join(MODELS)
    names = args.models.split(",")
    if args.worker:
        print(json.dumps(run_worker(args.worker, names[0], args.quick)))
        return 0

    sys.path.insert(0, str(ROOT))
    from benchmarks import targets

    infos, results = {}, {}
    print("building the benchmark runtimes ...", flush=True)
    runtimes = bench_runtimes()
    for name in names:
        print(f"preparing {name} ...", flush=True)
        infos[name] = prepare(name, runtimes)
        results[name] = {}
        for engine in ["ort", *[e for e in args.engines.split(",") if e != "ort"]]:
            if engine.startswith("ours"):
                key = "error_plain" if engine == "ours" else "error_relaxed"
                if key in infos[name]:
                    results[name][engine] = {"error": infos[name][key]}
                    continue
            print(f"  {engine} ...", flush=True)
            results[name][engine] = spawn(engine, name, args.quick)
    (BUILD / "results.json").write_text(json.dumps({"infos": infos, "results": results}))
    table = report(infos, results)
    goals = targets.table(targets.check(infos, results, runtime_sizes()))
    print(table)
    print(extras(infos, results))
    print(goals)
    if not args.no_doc:
        write_doc(table, goals, infos, results)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
