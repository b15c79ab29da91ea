"""The speed, size and memory targets, checked against one run of benchmarks/run.py.

Every row compares a number measured in that run with its bound; nothing here is measured
again or assumed. A model or engine missing from the run gives no row.
"""

from __future__ import annotations

from dataclasses import dataclass

# the models of the I/O targets and of the packaging-time target
IO_MODEL = "superres"
PACKAGING_MODEL = "resnet18w48"

PLAIN_MAX_RATIO = 1.0  # plain SIMD128 inference / onnxruntime-web
RELAXED_MAX_RATIO = 0.6  # relaxed-SIMD inference / onnxruntime-web
RUNTIME_MAX_BYTES = 300 * 1024  # a runtime .wasm without the plan
PACKAGING_MAX_S = 2.0  # export to a module, framework export excluded
JSON_MAX_RATIO = 2.0  # JSON pred() / inference
RAW_MAX_RATIO = 1.1  # raw pred() / inference


@dataclass(frozen=True)
class Row:
    target: str
    model: str
    measured: str
    bound: str
    met: bool


def _ratio_rows(infos: dict, results: dict) -> list[Row]:
    rows = []
    for engine, title, bound in (("ours", "plain SIMD128 inference x ort-web",
                                  PLAIN_MAX_RATIO),
                                 ("ours_relaxed", "relaxed SIMD inference x ort-web",
                                  RELAXED_MAX_RATIO)):  # fmt: skip
        for name in infos:
            ours, web = results[name].get(engine, {}), results[name].get("ort_web", {})
            if "infer" not in ours or "infer" not in web:
                continue
            ratio = min(ours["infer"]) / min(web["infer"])
            rows.append(Row(title, name, f"{ratio:.2f}", f"<= {bound:.1f}", ratio <= bound))
    return rows


def _memory_rows(infos: dict, results: dict) -> list[Row]:
    rows = []
    for name, info in infos.items():
        r = results[name].get("ours", {})
        if "peak_memory" not in r:
            continue
        used = r["peak_memory"] - (r.get("base_memory") or 0)
        bound = info["weight_bytes"] + 2 * info["live_bytes"]
        rows.append(Row("linear memory above the runtime's own", name, f"{used / 1e6:.2f} MB",
                        f"<= {bound / 1e6:.2f} MB (weights + 2 x live activations)",
                        used <= bound))  # fmt: skip
    return rows


def _other_rows(infos: dict, results: dict, runtime_sizes: dict[str, int]) -> list[Row]:
    rows = []
    for kind, size in sorted(runtime_sizes.items()):
        used_by = [n for n, i in infos.items() if i.get("runtime") == kind]
        rows.append(Row(f"runtime .wasm without the plan ({kind})",
                        ", ".join(used_by) or "(no model here)", f"{size / 1024:.0f} KB",
                        f"< {RUNTIME_MAX_BYTES // 1024} KB",
                        size < RUNTIME_MAX_BYTES))  # fmt: skip
    if "package_s" in infos.get(PACKAGING_MODEL, {}):
        s = infos[PACKAGING_MODEL]["package_s"]
        rows.append(Row("packaging CPU time", PACKAGING_MODEL, f"{s:.2f} s",
                        f"< {PACKAGING_MAX_S:.0f} s", s < PACKAGING_MAX_S))  # fmt: skip
    r = results.get(IO_MODEL, {}).get("ours", {})
    if "infer" in r:
        infer = min(r["infer"])
        for key, bound in (("json", JSON_MAX_RATIO), ("raw", RAW_MAX_RATIO)):
            if key in r:
                ratio = min(r[key]) / infer
                rows.append(Row(f"{key} pred() / inference", IO_MODEL, f"{ratio:.2f}x",
                                f"< {bound:.1f}x" if key == "json" else f"<= {bound:.1f}x",
                                ratio < bound if key == "json"
                                else ratio <= bound))  # fmt: skip
    return rows


def check(infos: dict, results: dict, runtime_sizes: dict[str, int]) -> list[Row]:
    """Every target row of the run: inference ratios, memory, sizes, packaging, I/O."""
    return (_ratio_rows(infos, results) + _memory_rows(infos, results)
            + _other_rows(infos, results, runtime_sizes))  # fmt: skip


def table(rows: list[Row]) -> str:
    lines = ["| target | model | measured | bound | met |", "|---|---|---:|---|---|"]
    lines += [f"| {r.target} | {r.model} | {r.measured} | {r.bound} | "
              f"{'yes' if r.met else '**no**'} |" for r in rows]  # fmt: skip
    met = sum(r.met for r in rows)
    lines.append("")
    lines.append(f"{met} of {len(rows)} targets met.")
    return "\n".join(lines)
