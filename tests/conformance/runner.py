"""Run the ONNX operator conformance suite through packaged wasm modules.

    python tests/conformance/runner.py [--ops Relu,Conv] [--out docs/conformance.md] [--jobs N]

Every case of ``onnx.backend.test.case.node.collect_testcases()`` is packaged with
``wasmexport.packager.package``, each of its data sets is run through the module
(``wasmexport.load(...).run``, raw base64 I/O) and the outputs are compared with the
expected ones the way ONNX's backend tests compare them (same shape and dtype, then
``np.testing.assert_allclose`` with the case's rtol/atol, NaN equal to NaN; integers and
booleans exactly; sequences item by item, empty optionals as None).

Outcomes, one per case:
    pass         every data set matches
    fail         a wrong result, or a runtime error on an op the packager accepted
    unsupported  refused at export (UnsupportedOpError / PackageError), or a clean
                 runtime error saying the op, attribute or dtype is not supported
    excluded     the case uses float8, sub-byte (2/4-bit) or complex types, or the
                 training domain ai.onnx.preview.training; out of scope

A fail where the module answered without an error is "silently wrong", the worst
outcome; the report lists those apart. Where a float output misses the suite's expected
values, the case's model is evaluated again with onnx's reference evaluator on its float
inputs widened to float64: a module whose output matches that evaluation within the case's
tolerances passes, and the report lists it with the difference (the suite's expected output
then carries float32 rounding larger than the case's own atol). Cases run in worker processes with a time
limit each, so that one case can never stop the run.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import re
import sys
import time
import traceback
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

logger = logging.getLogger(__name__)

# Seconds one case may take (export, load and every data set) before it counts as failed.
CASE_TIMEOUT_S = 120.0
TRAINING_DOMAIN = "ai.onnx.preview.training"
_T = onnx.TensorProto
EXCLUDED_DTYPES = {
    _T.COMPLEX64: "complex64",
    _T.COMPLEX128: "complex128",
    _T.FLOAT8E4M3FN: "float8e4m3fn",
    _T.FLOAT8E4M3FNUZ: "float8e4m3fnuz",
    _T.FLOAT8E5M2: "float8e5m2",
    _T.FLOAT8E5M2FNUZ: "float8e5m2fnuz",
    _T.FLOAT8E8M0: "float8e8m0",
    _T.UINT4: "uint4",
    _T.INT4: "int4",
    _T.FLOAT4E2M1: "float4e2m1",
    _T.UINT2: "uint2",
    _T.INT2: "int2",
    _T.FLOAT6E2M3: "float6e2m3",
    _T.FLOAT6E3M2: "float6e3m2",
}
# numpy / ml_dtypes names of those types ("float64" must not match "float6")
_EXCLUDED_NUMPY = re.compile(r"^(float8_|float6_|float4_|u?int[24]$|complex)")
_UNSUPPORTED_RUNTIME = re.compile(r"not supported|unsupported", re.IGNORECASE)

PASS, FAIL, UNSUPPORTED, EXCLUDED = "pass", "fail", "unsupported", "excluded"


@dataclass
class CaseResult:
    """The outcome of one case; reason is a one-line explanation for non-passes."""

    name: str
    op: str
    outcome: str
    reason: str = ""
    silent: bool = False  # a wrong answer without any error
    seconds: float = 0.0
    note: str = ""  # a pass judged against the float64 evaluation: why


# ---- which op a case tests ------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _schema_names() -> list[str]:
    return sorted({s.name for s in onnx.defs.get_all_schemas_with_history()})


def _graph_op_types(graph: onnx.GraphProto) -> list[str]:
    return [n.op_type for n in graph.node]


def op_of_case(name: str, model: onnx.ModelProto, schemas: list[str]) -> str:
    """The op a case tests, from its name (test_reduce_sum_... -> ReduceSum).

    The longest op whose snake_case or lower-case spelling prefixes the test name wins,
    preferring ops that occur in the model; a case nothing matches takes its first op.
    """
    stem = re.sub(r"_expanded(_ver\d+)?$", "", name[len("test_") :])
    stem = re.sub(r"^ai_onnx_ml_", "", stem)

    def matches(op: str) -> int:
        best = 0
        for form in {_snake(op), op.lower()}:
            if stem.startswith(form) and (
                len(stem) == len(form) or stem[len(form)] == "_" or stem[len(form)].isdigit()
            ):
                best = max(best, len(form))
        return best

    in_model = _graph_op_types(model.graph)
    for pool in (in_model, schemas):
        scored = [(matches(op), op) for op in pool]
        scored = [s for s in scored if s[0]]
        if scored:
            return max(scored)[1]
    return in_model[0] if in_model else "?"


# ---- exclusions -----------------------------------------------------------------------


def _elem_types(graph: onnx.GraphProto):
    """Every tensor element type a graph declares or stores (recursively)."""
    for vi in (*graph.input, *graph.output, *graph.value_info):
        yield vi.type.tensor_type.elem_type
    for t in graph.initializer:
        yield t.data_type
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                yield a.t.data_type
            elif a.type == onnx.AttributeProto.GRAPH:
                yield from _elem_types(a.g)
            elif a.name in ("to", "output_dtype") and a.type == onnx.AttributeProto.INT:
                yield a.i


def exclusion_reason(model: onnx.ModelProto, data_sets) -> str:
    """Why a case is out of scope, or "" when it is in scope."""
    domains = {n.domain for n in model.graph.node} | {o.domain for o in model.opset_import}
    if TRAINING_DOMAIN in domains:
        return f"training domain {TRAINING_DOMAIN}"
    found = {EXCLUDED_DTYPES[t] for t in _elem_types(model.graph) if t in EXCLUDED_DTYPES}
    excluded = sorted(found)
    if excluded:
        return "dtype " + ", ".join(excluded)
    for inputs, outputs in data_sets:
        for a in (*inputs, *outputs):
            if isinstance(a, onnx.TensorProto):
                if a.data_type in EXCLUDED_DTYPES:
                    return f"dtype {EXCLUDED_DTYPES[a.data_type]}"
                continue
            name = getattr(getattr(a, "dtype", None), "name", "")
            if _EXCLUDED_NUMPY.match(name):
                return f"dtype {name}"
    return ""


# ---- comparison -----------------------------------------------------------------------


def compare(expected: np.ndarray, got: np.ndarray, rtol: float, atol: float) -> str:
    """Why got differs from expected under the backend-test rules; empty when it matches."""
    expected, got = np.asarray(expected), np.asarray(got)
    if expected.shape != got.shape:
        return f"shape {got.shape}, expected {expected.shape}"
    if expected.dtype != got.dtype:
        return f"dtype {got.dtype}, expected {expected.dtype}"
    if expected.dtype.kind == "O":  # string tensors: the same text everywhere
        bad = [i for i, (e, g) in enumerate(zip(expected.flat, got.flat)) if e != g]
        if bad:
            i = np.unravel_index(bad[0], expected.shape) if expected.ndim else ()
            return f"{len(bad)} of {expected.size} strings differ, first at {i}: " \
                   f"{got[i]!r} vs {expected[i]!r}"  # fmt: skip
        return ""
    if expected.dtype.kind in "biu":
        bad = np.flatnonzero(expected != got)
        if bad.size:
            i = np.unravel_index(bad[0], expected.shape) if expected.ndim else ()
            return f"{bad.size} of {expected.size} values differ, first at {i}: " \
                   f"{got[i]!r} vs {expected[i]!r}"  # fmt: skip
        return ""
    try:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    except AssertionError:
        e64, g64 = expected.astype(np.float64), got.astype(np.float64)
        with np.errstate(invalid="ignore"):
            err = np.abs(g64 - e64)
            ok = err <= atol + rtol * np.abs(e64)
            ok |= (np.isnan(e64) & np.isnan(g64)) | (e64 == g64)
        bad = np.flatnonzero(~ok)
        i = np.unravel_index(bad[0], expected.shape) if expected.ndim else ()
        return (f"{bad.size} of {expected.size} values off (rtol {rtol:g}, atol {atol:g}), "
                f"first at {i}: {g64[i]!r} vs {e64[i]!r}")  # fmt: skip
    return ""


# ---- one case -------------------------------------------------------------------------


def _to_array(value):
    """A data-set entry as an array (some cases store TensorProtos); a sequence stays a list
    of arrays and an empty optional None."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_to_array(v) for v in value]
    if isinstance(value, onnx.TensorProto):
        return onnx.numpy_helper.to_array(value)
    return np.asarray(value)


def compare_value(expected, got, rtol: float, atol: float) -> str:
    """compare() for any value: sequences item by item, empty optionals (None) by identity."""
    if expected is None or got is None:
        same = expected is None and got is None
        return "" if same else f"got {got!r}, expected {expected!r}"
    if isinstance(expected, list) or isinstance(got, list):
        if not (isinstance(expected, list) and isinstance(got, list)):
            return f"got {type(got).__name__}, expected {type(expected).__name__}"
        if len(expected) != len(got):
            return f"sequence of {len(got)} tensors, expected {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = compare_value(e, g, rtol, atol)
            if diff:
                return f"item {i}: {diff}"
        return ""
    return compare(expected, got, rtol, atol)


def _is_float_array(value) -> bool:
    return isinstance(value, np.ndarray) and value.dtype in (np.float32, np.float16)


def _float64_evaluation(model: onnx.ModelProto, feed: dict) -> list | None:
    """The outputs of onnx's reference evaluator with float32/float16 inputs widened to
    float64; None where it cannot evaluate the model that way."""
    from onnx.reference import ReferenceEvaluator

    wide = {k: v.astype(np.float64) if _is_float_array(v) else v for k, v in feed.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = ReferenceEvaluator(model).run(None, wide)
    except Exception:  # noqa: BLE001 - no float64 evaluation: the suite's values decide
        return None
    if not all(isinstance(o, np.ndarray) for o in outputs):
        return None
    return list(outputs)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def run_case(case, op: str) -> CaseResult:
    """Package, run and compare one case; never raises."""
    from wasmexport import load
    from wasmexport.errors import PackageError, RuntimeABIError, UnsupportedOpError
    from wasmexport.packager import package

    start = time.perf_counter()
    result = CaseResult(case.name, op, PASS)
    why = exclusion_reason(case.model, case.data_sets)
    if why:
        result.outcome, result.reason = EXCLUDED, why
        return result

    # step 1: export; a refusal is "unsupported", any other exception a fail
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            packaged = package(case.model)
    except (UnsupportedOpError, PackageError) as e:
        result.outcome, result.reason = UNSUPPORTED, _one_line(e)
        return result
    except Exception as e:  # noqa: BLE001 - an exporter crash is a failure to report
        result.outcome = FAIL
        result.reason = _one_line(f"export crashed: {type(e).__name__}: {e}")
        return result

    # step 2: run each data set (inputs by name) and compare every output
    initializers = {t.name for t in case.model.graph.initializer}
    input_names = [i.name for i in case.model.graph.input if i.name not in initializers]
    try:
        with load(packaged.wasm) as module:
            for k, (inputs, expected) in enumerate(case.data_sets):
                feed = dict(zip(input_names, (_to_array(a) for a in inputs), strict=True))
                expected = [_to_array(a) for a in expected]
                try:
                    got = module.run(feed)
                except RuntimeABIError as e:
                    st = UNSUPPORTED if _UNSUPPORTED_RUNTIME.search(str(e)) else FAIL
                    result.outcome, result.reason = st, _one_line(f"runtime: {e}")
                    return result
                got = [got] if len(expected) == 1 else list(got)
                if len(got) != len(expected):
                    result.outcome, result.silent = FAIL, True
                    result.reason = f"{len(got)} outputs, expected {len(expected)}"
                    return result
                wide = None  # the float64 evaluation, made on the first float mismatch
                for j, (e_out, g_out) in enumerate(zip(expected, got, strict=True)):
                    diff = compare_value(e_out, g_out, case.rtol, case.atol)
                    if diff and _is_float_array(e_out):
                        wide = wide if wide is not None else _float64_evaluation(case.model, feed)
                        if wide is not None and not compare_value(
                            wide[j].astype(e_out.dtype), g_out, case.rtol, case.atol
                        ):
                            result.note = _one_line(f"data set {k}, output {j}: matches the "
                                                    f"float64 evaluation; the suite: {diff}")
                            continue
                    if diff:
                        result.outcome, result.silent = FAIL, True
                        result.reason = _one_line(f"data set {k}, output {j}: {diff}")
                        return result
    except Exception as e:  # noqa: BLE001 - one case must never stop the run
        result.outcome = FAIL
        result.reason = _one_line(f"{type(e).__name__}: {e}")
        logger.debug("case %s crashed:\n%s", case.name, traceback.format_exc())
    finally:
        result.seconds = time.perf_counter() - start
    return result


# ---- the pool: workers with a per-case time limit -----------------------------------

_CASES: list = []  # filled before the workers fork; they inherit it
_OPS: list[str] = []


def _worker(conn) -> None:
    warnings.simplefilter("ignore")
    while True:
        index = conn.recv()
        if index is None:
            return
        conn.send(run_case(_CASES[index], _OPS[index]))


def run_all(indices: list[int], jobs: int, progress: bool = True) -> list[CaseResult]:
    """Run the cases of _CASES at indices on jobs worker processes (jobs 0: in process).

    Workers are forked so that they inherit the cases; a process that has already started
    native threads (onnxruntime, torch: e.g. inside pytest) can deadlock its forked
    children, so such callers run in process, without the per-case time limit.
    """
    if jobs <= 0:
        return [run_case(_CASES[i], _OPS[i]) for i in indices]
    ctx = mp.get_context("fork")
    pending = list(reversed(indices))
    results: list[CaseResult] = []
    workers: list[dict] = []

    def spawn() -> dict:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        return {"proc": proc, "conn": parent, "index": None, "since": 0.0}

    workers = [spawn() for _ in range(max(1, min(jobs, len(indices))))]
    while pending or any(w["index"] is not None for w in workers):
        for w in workers:
            if w["index"] is None and pending:
                w["index"], w["since"] = pending.pop(), time.monotonic()
                w["conn"].send(w["index"])
        for i, w in enumerate(workers):
            if w["index"] is None:
                continue
            idx = w["index"]
            done = w["conn"].poll(0.02)
            if done:
                try:
                    results.append(w["conn"].recv())
                except EOFError:  # the worker died (a crash inside native code)
                    results.append(CaseResult(_CASES[idx].name, _OPS[idx], FAIL,
                                              "the worker process died"))  # fmt: skip
                    w["proc"].join(1)
                    workers[i] = spawn()
                    continue
                w["index"] = None
            elif time.monotonic() - w["since"] > CASE_TIMEOUT_S:
                why = f"timed out after {CASE_TIMEOUT_S:.0f} s"
                results.append(CaseResult(_CASES[idx].name, _OPS[idx], FAIL, why))
                w["proc"].kill()
                w["proc"].join(5)
                workers[i] = spawn()
                continue
            else:
                continue
            if progress and len(results) % 100 == 0:
                print(f"  {len(results)}/{len(indices)} cases", file=sys.stderr, flush=True)
    for w in workers:
        w["conn"].send(None)
        w["proc"].join(5)
    return results


def collect(ops: set[str] | None = None) -> list[int]:
    """Load the suite into _CASES/_OPS; return the indices of the cases to run."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    schemas = _schema_names()
    _CASES[:] = cases
    _OPS[:] = [op_of_case(c.name, c.model, schemas) for c in cases]
    # an expanded case reports under the op of its unexpanded twin
    by_name = {c.name: op for c, op in zip(cases, _OPS, strict=True)}
    for i, c in enumerate(cases):
        base = re.sub(r"_expanded(_ver\d+)?$", "", c.name)
        if base != c.name and base in by_name:
            _OPS[i] = by_name[base]
    return [i for i, op in enumerate(_OPS) if ops is None or op in ops]


def run(
    ops: set[str] | None = None, jobs: int = 2, progress: bool = False
) -> list[CaseResult]:
    """Collect the suite and run the cases of ops (all when None); results sorted by name."""
    indices = collect(ops)
    results = run_all(indices, jobs, progress)
    return sorted(results, key=lambda r: (r.op, r.name))


# ---- the report -----------------------------------------------------------------------


def summarise(results: list[CaseResult]) -> dict[str, Counter]:
    """Outcome counts per op."""
    per_op: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        per_op[r.op][r.outcome] += 1
        per_op[r.op]["cases"] += 1
        per_op[r.op]["silent"] += r.silent
    return per_op


def totals(results: list[CaseResult]) -> Counter:
    t = Counter(r.outcome for r in results)
    t["cases"] = len(results)
    t["silent"] = sum(r.silent for r in results)
    return t


def pass_rate(t: Counter) -> float:
    considered = t["cases"] - t[EXCLUDED]
    return 100.0 * t[PASS] / considered if considered else 0.0


def render_markdown(results: list[CaseResult], command: str) -> str:
    """The report: totals, the per-op table, excluded cases, failing cases."""
    t, per_op = totals(results), summarise(results)
    lines = [
        "# ONNX operator conformance",
        "",
        "The ONNX backend node test suite (`onnx.backend.test.case.node.collect_testcases()`, "
        f"onnx {onnx.__version__}) run inside the packaged WASM runtime. Regenerate with:",
        "",
        f"    {command}",
        "",
        "Each case is packaged, each data set runs through the module (raw base64 I/O) and "
        "the outputs are compared as ONNX's backend tests do (shape, dtype, then "
        "`assert_allclose` with the case's rtol/atol; integers and booleans exactly). "
        "*unsupported*: refused at export or by a clean runtime error naming what is not "
        "supported; *excluded*: float8, sub-byte (2/4/6-bit) or complex types, or the "
        "training domain. *Silently wrong*: a wrong answer without an error. A float output "
        "that misses the suite's values but matches the reference evaluator run on the "
        "inputs widened to float64 passes, and is listed below with the difference.",
        "",
        "| cases | pass | fail | unsupported | excluded | silently wrong "
        "| pass rate (non-excluded) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {t['cases']} | {t[PASS]} | {t[FAIL]} | {t[UNSUPPORTED]} | {t[EXCLUDED]} | "
        f"{t['silent']} | {pass_rate(t):.1f}% |",
        "",
        "## Per op",
        "",
        "| op | cases | pass | fail | unsupported | excluded |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for op in sorted(per_op):
        c = per_op[op]
        lines.append(f"| {op} | {c['cases']} | {c[PASS]} | {c[FAIL]} | {c[UNSUPPORTED]} | "
                     f"{c[EXCLUDED]} |")  # fmt: skip
    wide = [r for r in results if r.outcome == PASS and r.note]
    lines += ["", f"## Passing against the float64 evaluation ({len(wide)})", ""]
    lines += [f"- `{r.name}` ({r.op}): {r.note}" for r in wide] or ["None."]
    silent = [r for r in results if r.silent]
    lines += ["", f"## Silently wrong ({len(silent)})", ""]
    lines += [f"- `{r.name}` ({r.op}): {r.reason}" for r in silent] or ["None."]
    failing = [r for r in results if r.outcome == FAIL and not r.silent]
    lines += ["", f"## Failing with an error ({len(failing)})", ""]
    lines += [f"- `{r.name}` ({r.op}): {r.reason}" for r in failing] or ["None."]
    excluded = [r for r in results if r.outcome == EXCLUDED]
    lines += ["", f"## Excluded ({len(excluded)})", ""]
    lines += [f"- `{r.name}` ({r.op}): {r.reason}" for r in excluded] or ["None."]
    unsupported = [r for r in results if r.outcome == UNSUPPORTED]
    lines += ["", f"## Unsupported ({len(unsupported)})", ""]
    lines += [f"- `{r.name}` ({r.op}): {r.reason}" for r in unsupported] or ["None."]
    return "\n".join(lines) + "\n"


def print_summary(results: list[CaseResult]) -> None:
    per_op, t = summarise(results), totals(results)
    print(f"{'op':<32}{'cases':>6}{'pass':>6}{'fail':>6}{'unsup':>7}{'excl':>6}")
    for op in sorted(per_op):
        c = per_op[op]
        print(f"{op:<32}{c['cases']:>6}{c[PASS]:>6}{c[FAIL]:>6}{c[UNSUPPORTED]:>7}"
              f"{c[EXCLUDED]:>6}")  # fmt: skip
    print(f"{'TOTAL':<32}{t['cases']:>6}{t[PASS]:>6}{t[FAIL]:>6}{t[UNSUPPORTED]:>7}"
          f"{t[EXCLUDED]:>6}")  # fmt: skip
    print(f"silently wrong: {t['silent']}; pass rate over non-excluded cases: "
          f"{pass_rate(t):.1f}%")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ONNX node test suite in WASM.")
    parser.add_argument("--ops", help="comma-separated op types to run (default: all)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: 2)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    ops = set(args.ops.split(",")) if args.ops else None
    start = time.perf_counter()
    results = run(ops, args.jobs, progress=True)
    print_summary(results)
    print(f"{len(results)} cases in {time.perf_counter() - start:.0f} s")
    if args.out:
        command = (
            "python tests/conformance/runner.py"
            + (f" --ops {args.ops}" if args.ops else "")
            + f" --out {args.out}"
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(render_markdown(results, command))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
