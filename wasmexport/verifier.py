"""The verifier: framework vs ONNX reference vs the wasm module, on the same inputs.

For every output it reports the max absolute and relative error, the worst element and
whether it is within tolerance. Label outputs (integer or string tensors) are compared
exactly and every differing element counts as a "label flip"; probability maps (a list of
{class: p} dicts, one per row, as ZipMap answers) are compared key by key, the error being
the max over all probabilities. It tells apart exporter faults (framework != ONNX) from
runtime faults (ONNX != wasm). When the batch dimension is dynamic, it checks a second
batch size too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from .errors import ConvertError, VerifyError
from .packager.signature import cast_same_kind

__all__ = ["Comparison", "VerifyReport", "compare_outputs", "onnx_reference", "verify"]

logger = logging.getLogger(__name__)

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-4
# Comparisons keep |got - expected| of at most this many elements (an even sample of
# bigger outputs) for the report's histogram, and the TOP_ELEMENTS worst ones.
MAX_KEPT_ERRORS = 100_000
TOP_ELEMENTS = 10

# Which side is at fault when a pair disagrees.
_FAULT = {
    ("framework", "onnxruntime"): "the ONNX export (framework != ONNX reference)",
    ("onnxruntime", "wasm"): "the wasm runtime (ONNX reference != wasm)",
    ("framework", "wasm"): "the export or the runtime",
}


@dataclass
class Comparison:
    """One output compared between two engines on one set of inputs."""

    output: str
    reference: str  # e.g. "onnxruntime"
    candidate: str  # e.g. "wasm"
    batch: int | None
    shape: tuple[int, ...]
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    expected_at_worst: float
    got_at_worst: float
    passed: bool
    # for reports: |got - expected| of up to MAX_KEPT_ERRORS elements (flat, float64; an
    # even sample of bigger outputs), and the worst elements as (index, expected, got, err)
    errors: np.ndarray | None = field(default=None, repr=False, compare=False)
    worst: list[tuple[tuple[int, ...], float, float, float]] = field(
        default_factory=list, repr=False, compare=False
    )
    note: str = ""
    flips: int | None = None  # label outputs: elements that differ; None for numbers


@dataclass
class VerifyReport:
    """All comparisons of one verification run, with the tolerances used."""

    rtol: float
    atol: float
    comparisons: list[Comparison] = field(default_factory=list)
    # the likely cause of a failure when it is known (replaces the per-pair guess)
    diagnosis: str = ""

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.comparisons)

    @property
    def max_abs_err(self) -> float:
        return max((c.max_abs_err for c in self.comparisons), default=0.0)

    @property
    def label_flips(self) -> int:
        """Differing elements over all label (integer or string) comparisons."""
        return sum(c.flips or 0 for c in self.comparisons)

    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.passed]

    def __str__(self) -> str:
        head = ("output", "compared", "batch", "shape", "max abs err", "max rel err", "ok")
        with_flips = any(c.flips is not None for c in self.comparisons)
        if with_flips:
            head = (*head[:-1], "label flips", head[-1])
        rows = [
            (
                c.output,
                f"{c.reference} vs {c.candidate}",
                "-" if c.batch is None else str(c.batch),
                "x".join(map(str, c.shape)) or "scalar",
                f"{c.max_abs_err:.3g}",
                f"{c.max_rel_err:.3g}",
                *([] if not with_flips else ["-" if c.flips is None else str(c.flips)]),
                "yes" if c.passed else "NO",
            )
            for c in self.comparisons
        ]
        widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
        lines = [
            "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
            for r in (head, *rows)
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{verdict} (tolerance: |got - expected| <= {self.atol:g} + "
                     f"{self.rtol:g} * |expected|)")  # fmt: skip
        for c in self.failures():
            suspect = (
                ""
                if self.diagnosis
                else (f"; suspect {_FAULT.get((c.reference, c.candidate), '?')}")
            )
            lines.append(
                f"  {c.output} ({c.reference} vs {c.candidate}, batch {c.batch}): worst at "
                f"index {c.worst_index}: expected {c.expected_at_worst:.9g}, got "
                f"{c.got_at_worst:.9g}{suspect}" + (f"; {c.note}" if c.note else "")
            )
        if self.diagnosis:
            lines.append(f"  cause: {self.diagnosis}")
        return "\n".join(lines)


def _kept_errors(diff: np.ndarray) -> np.ndarray:
    """The flat absolute errors, an even sample of MAX_KEPT_ERRORS when there are more."""
    flat = diff.reshape(-1)
    if flat.size > MAX_KEPT_ERRORS:
        flat = flat[:: -(-flat.size // MAX_KEPT_ERRORS)]
    return np.array(flat, dtype=np.float64)


def _worst_elements(diff, excess, e, g) -> list[tuple[tuple[int, ...], float, float, float]]:
    """The TOP_ELEMENTS elements furthest beyond the tolerance, worst first."""
    key = np.where(np.isnan(excess), np.inf, excess).reshape(-1)
    k = min(TOP_ELEMENTS, key.size)
    top = np.argpartition(-key, k - 1)[:k]
    top = top[np.argsort(-key[top], kind="stable")]
    rows = []
    for flat in top:
        index = tuple(int(i) for i in np.unravel_index(int(flat), e.shape))
        rows.append((index, float(e[index]), float(g[index]), float(diff[index])))
    return rows


def compare_outputs(
    name: str,
    expected: np.ndarray,
    got: np.ndarray,
    *,
    reference: str,
    candidate: str,
    batch: int | None,
    rtol: float,
    atol: float,
) -> Comparison:
    """Compare one output elementwise: |got - expected| <= atol + rtol * |expected|.

    Integer, bool and string outputs are compared exactly (differences counted in
    ``flips``); lists of dicts (probability maps) key by key, see `compare_maps`.
    """
    if _is_map_list(expected) or _is_map_list(got):
        return compare_maps(name, expected, got, reference=reference, candidate=candidate,
                            batch=batch, rtol=rtol, atol=atol)  # fmt: skip
    expected = np.asarray(expected)
    got = np.asarray(got)
    if expected.shape != got.shape:
        return Comparison(name, reference, candidate, batch, tuple(expected.shape),
                          float("inf"), float("inf"), (), float("nan"), float("nan"), False,
                          note=f"shape {got.shape} != expected {expected.shape}")  # fmt: skip
    if expected.size == 0:
        return Comparison(name, reference, candidate, batch, tuple(expected.shape),
                          0.0, 0.0, (), 0.0, 0.0, True)  # fmt: skip
    if expected.dtype.kind in "biuUSO" or got.dtype.kind in "USO":
        return _compare_labels(name, expected, got, reference, candidate, batch)
    e = expected.astype(np.float64)
    g = got.astype(np.float64)
    # NaN matches NaN and infinities match themselves; anything else non-finite is an error
    same = (e == g) | (np.isnan(e) & np.isnan(g))
    diff = np.where(same, 0.0, np.abs(g - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    # relative error where it means something: elements above the absolute tolerance
    significant = np.abs(e) > atol
    rel = np.where(significant, diff / np.maximum(np.abs(e), atol), 0.0)
    excess = diff - (atol + rtol * np.abs(e))
    worst = np.unravel_index(
        int(np.argmax(np.where(np.isnan(excess), np.inf, excess))), e.shape
    )
    return Comparison(
        output=name,
        reference=reference,
        candidate=candidate,
        batch=batch,
        shape=tuple(expected.shape),
        max_abs_err=float(diff.max()),
        max_rel_err=float(rel.max()),
        worst_index=tuple(int(i) for i in worst),
        expected_at_worst=float(e[worst]),
        got_at_worst=float(g[worst]),
        passed=bool((excess <= 0).all()),
        errors=_kept_errors(diff),
        worst=_worst_elements(diff, excess, e, g),
    )


def compare_maps(
    name: str,
    expected: Sequence[dict],
    got: Sequence[dict],
    *,
    reference: str,
    candidate: str,
    batch: int | None,
    rtol: float,
    atol: float,
) -> Comparison:
    """Compare two lists of {class: p} dicts: same rows, same keys, p within tolerance.

    The shape reported is (rows, keys); the worst index is (row, key position).
    """
    inf, nan = float("inf"), float("nan")

    def fail(note: str) -> Comparison:
        return Comparison(name, reference, candidate, batch, (len(expected),), inf, inf, (),
                          nan, nan, False, note=note)  # fmt: skip

    if not (_is_map_list(expected) and _is_map_list(got)):
        kinds = f"{type(got).__name__} vs expected {type(expected).__name__}"
        return fail(f"a list of dicts on one side only ({kinds})")
    if len(expected) != len(got):
        return fail(f"{len(got)} rows != expected {len(expected)}")
    if not expected:
        return Comparison(name, reference, candidate, batch, (0,), 0, 0, (), 0, 0, True)
    keys = list(expected[0])
    for row, (e_row, g_row) in enumerate(zip(expected, got, strict=True)):
        if set(_plain_key(k) for k in e_row) != set(_plain_key(k) for k in g_row):
            return fail(f"row {row}: keys {sorted(g_row, key=str)} != expected "
                        f"{sorted(e_row, key=str)}")  # fmt: skip
    e = np.array([[float(r[k]) for k in keys] for r in expected])
    by_plain = [{_plain_key(k): v for k, v in r.items()} for r in got]
    g = np.array([[float(r[_plain_key(k)]) for k in keys] for r in by_plain])
    comparison = compare_outputs(name, e, g, reference=reference, candidate=candidate,
                                 batch=batch, rtol=rtol, atol=atol)  # fmt: skip
    comparison.note = comparison.note or f"probability map over keys {keys}"
    return comparison


def _is_map_list(value: object) -> bool:
    """A list (or object array) of dicts: a ZipMap-style output."""
    if isinstance(value, np.ndarray):
        return (
            value.dtype == object
            and value.ndim == 1
            and value.size > 0
            and all(isinstance(v, dict) for v in value)
        )
    return isinstance(value, (list, tuple)) and all(isinstance(v, dict) for v in value)


def _plain_key(key: object) -> object:
    """numpy scalar keys as Python ones, so that np.int64(1) and 1 are one key."""
    return key.item() if isinstance(key, np.generic) else key


def _compare_labels(
    name: str,
    expected: np.ndarray,
    got: np.ndarray,
    reference: str,
    candidate: str,
    batch: int | None,
) -> Comparison:
    """Exact comparison of integer/bool/string outputs; differing elements are flips."""
    string = expected.dtype.kind in "USO" or got.dtype.kind in "USO"
    if string:
        e, g = expected.astype(str), got.astype(str)
        differ = e != g
    else:
        e, g = expected, got
        differ = e.astype(np.int64) != g.astype(np.int64)
    flips = int(np.count_nonzero(differ))
    worst = np.unravel_index(int(np.argmax(differ)), e.shape) if e.ndim else ()
    at = (lambda a: float("nan")) if string else (lambda a: float(a[worst]))
    note = ""
    if flips:
        first, want, have = tuple(int(i) for i in worst), e[worst], g[worst]
        note = (f"{flips} label flip(s); first at index {first}: "
                f"expected {_plain_key(want)!r}, got {_plain_key(have)!r}")  # fmt: skip
    return Comparison(
        output=name, reference=reference, candidate=candidate, batch=batch,
        shape=tuple(expected.shape), max_abs_err=0.0 if not flips else float("inf"),
        max_rel_err=0.0 if not flips else float("inf"),
        worst_index=tuple(int(i) for i in worst), expected_at_worst=at(e),
        got_at_worst=at(g), passed=flips == 0, note=note, flips=flips,
    )  # fmt: skip


def onnx_reference(
    onnx_model: onnx.ModelProto,
) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A runner for the ONNX reference: onnxruntime, or onnx.reference as a fallback."""
    names = [i.name for i in onnx_model.graph.input
             if i.name not in {t.name for t in onnx_model.graph.initializer}]  # fmt: skip
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return lambda arrays: session.run(None, dict(zip(names, arrays, strict=True)))
    except Exception as e:  # noqa: BLE001 - e.g. an op onnxruntime lacks
        logger.warning("onnxruntime cannot run the model (%s); using onnx.reference", e)
        from onnx.reference import ReferenceEvaluator

        evaluator = ReferenceEvaluator(onnx_model)
        return lambda arrays: evaluator.run(None, dict(zip(names, arrays, strict=True)))


def check_sample(specs, arrays) -> list:
    """The sample fitted to the module's inputs: count, rank and static dims checked,
    tensors cast to the declared dtype where numpy's same_kind rule allows (float64 ->
    float32, int32 -> int64, int -> float), as WasmModel.run casts them.

    Raises:
        ConvertError: a sample that does not fit (a bad sample, like one given to
            export_wasm), naming the input, the declared shape or dtype and the sample's.
    """
    if len(arrays) != len(specs):
        names = ", ".join(s.name for s in specs)
        raise ConvertError(f"the sample has {len(arrays)} input{'s' * (len(arrays) != 1)}; "
                           f"the module takes {len(specs)} ({names})")  # fmt: skip
    fitted = []
    for spec, a in zip(specs, arrays, strict=True):
        shape = np.shape(a)
        declared = spec.shape
        fits = declared is None or isinstance(a, dict) or (len(shape) == len(declared) and all(
            not isinstance(d, int) or d == s for d, s in zip(declared, shape, strict=True)
        ))  # fmt: skip
        if not fits:
            raise ConvertError(
                f"sample input {spec.name!r} has shape {tuple(shape)}; the module takes "
                f"{spec.shape_str()}. Give a sample of that shape."
            )
        if isinstance(a, np.ndarray) and spec.dtype != "string" and "(" not in spec.dtype:
            # tensors only: sequences, maps and optionals are checked by the module
            cast = cast_same_kind(a, spec.dtype)
            if cast is None:
                raise ConvertError(
                    f"sample input {spec.name!r} is {a.dtype}; the module takes "
                    f"{spec.dtype}. Give a sample of that dtype (x.astype(np.{spec.dtype}))."
                )
            a = cast
        fitted.append(a)
    return fitted


def second_batch(
    arrays: Sequence[np.ndarray], batch_inputs: Sequence[bool]
) -> list[np.ndarray]:
    """The sample at another batch size: rows taken in reverse, one more than before."""
    out = []
    for a, dynamic in zip(arrays, batch_inputs, strict=True):
        if dynamic:
            n = a.shape[0]
            rows = [(n - 1 - i) % n for i in range(n + 1)]
            a = np.ascontiguousarray(a[rows])
        out.append(a)
    return out


def verify(
    wasm_model,
    onnx_model: onnx.ModelProto,
    sample_inputs: Sequence[np.ndarray],
    *,
    run_framework: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    raise_on_failure: bool = True,
) -> VerifyReport:
    """Run the sample (and a second batch size if the batch is dynamic) through every engine.

    Args:
        wasm_model: a loaded module (wasmexport.load) to check.
        onnx_model: the ONNX model the module was packaged from.
        sample_inputs: numpy arrays in graph-input order.
        run_framework: runs the original framework model, or None (ONNX only).
        rtol, atol: elementwise tolerance |got - expected| <= atol + rtol * |expected|.
        raise_on_failure: raise VerifyError instead of returning a failed report.

    Raises:
        ConvertError: the sample does not fit the module's inputs (see check_sample).
        VerifyError: an output is out of tolerance (carries the report).
    """
    sample_inputs = check_sample(wasm_model.inputs, sample_inputs)
    report = VerifyReport(rtol=rtol, atol=atol)
    reference = onnx_reference(onnx_model)
    out_names = [o.name for o in wasm_model.outputs]
    batch_inputs = [
        bool(spec.shape) and isinstance(spec.shape[0], str) and a.ndim > 0
        for spec, a in zip(wasm_model.inputs, sample_inputs, strict=True)
    ]
    input_sets = [list(sample_inputs)]
    if any(batch_inputs):
        input_sets.append(second_batch(sample_inputs, batch_inputs))

    for arrays in input_sets:
        batch = next(
            (a.shape[0] for a, b in zip(arrays, batch_inputs, strict=True) if b), None
        )
        engines: dict[str, list[np.ndarray]] = {}
        if run_framework is not None:
            engines["framework"] = [_as_value(o) for o in run_framework(arrays)]
        engines["onnxruntime"] = [_as_value(o) for o in reference(arrays)]
        wasm_out = wasm_model.run(arrays)
        # one output comes back bare, and a ZipMap output is itself a list
        engines["wasm"] = wasm_out if len(out_names) > 1 else [wasm_out]
        counts = {k: len(v) for k, v in engines.items()}
        if len(set(counts.values())) > 1:
            raise VerifyError(f"the engines return different numbers of outputs: {counts}")
        pairs = [("onnxruntime", "wasm")]
        if run_framework is not None:
            pairs.insert(0, ("framework", "onnxruntime"))
        for ref, cand in pairs:
            for name, e, g in zip(out_names, engines[ref], engines[cand], strict=True):
                for c in compare_values(name, e, g, reference=ref, candidate=cand,
                                        batch=batch, rtol=rtol, atol=atol):  # fmt: skip
                    report.comparisons.append(c)
                    logger.debug("%s %s vs %s batch %s: max abs %.3g", c.output, ref, cand,
                                 batch, c.max_abs_err)  # fmt: skip

    flips = report.label_flips
    if flips:
        logger.warning("verification: %d label flip(s)", flips)
    logger.info("verification %s (max abs err %.3g)",
                "passed" if report.passed else "FAILED", report.max_abs_err)  # fmt: skip
    if raise_on_failure and not report.passed:
        raise VerifyError(f"verification failed:\n{report}", report)
    return report


def _as_value(output: object) -> object:
    """An engine's output: lists of dicts (probability maps) kept, sequences of tensors as
    lists of arrays, an empty optional as None, the rest as arrays."""
    if output is None:
        return None
    if _is_map_list(output):
        return list(output)
    if isinstance(output, (list, tuple)):
        return [np.asarray(v) for v in output]
    return np.asarray(output)


def _parts(name: str, value: object) -> list[tuple[str, object]]:
    """An output as comparable parts: a sequence of tensors item by item ("y[0]", ...), an
    empty optional as one None; anything else (maps included) whole."""
    if isinstance(value, list) and value and not _is_map_list(value):
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [(name, value)]


def compare_values(name: str, expected: object, got: object, *, reference: str,
                   candidate: str, batch: int | None, rtol: float,
                   atol: float) -> list[Comparison]:  # fmt: skip
    """compare_outputs for any output: sequences of tensors item by item (one Comparison
    each), empty optionals (None) equal only to None."""
    e_parts, g_parts = _parts(name, expected), _parts(name, got)
    e_none = [p for p, v in e_parts if v is None]
    g_none = [p for p, v in g_parts if v is None]
    if [p for p, _ in e_parts] != [p for p, _ in g_parts] or e_none != g_none:
        inf, nan = float("inf"), float("nan")
        note = (f"{len(g_parts)} sequence item(s) or an empty optional != expected "
                f"{len(e_parts)}")  # fmt: skip
        return [Comparison(name, reference, candidate, batch, (len(e_parts),), inf, inf, (),
                           nan, nan, False, note=note)]  # fmt: skip
    if e_none:  # both empty optionals
        return [Comparison(name, reference, candidate, batch, (), 0.0, 0.0, (), 0.0, 0.0,
                           True, note="empty optional")]  # fmt: skip
    options = dict(reference=reference, candidate=candidate, batch=batch, rtol=rtol, atol=atol)
    return [
        compare_outputs(part, e, g, **options)
        for (part, e), (_, g) in zip(e_parts, g_parts, strict=True)
    ]
