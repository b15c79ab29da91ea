"""Export the reference torch models with both exporters and list what the ONNX graphs use.

    python tests/exporters/report_ops.py                 # writes docs/torch_export_ops.md
    python tests/exporters/report_ops.py --out -         # prints the markdown instead

For each model and exporter: opset, graph input/output shapes, op_type counts, and any
local functions or non-ai.onnx domains, both as the exporter produced them ("raw", before
`finalize_onnx_model` inlines and checks) and in the final model. Each export is also run
in onnxruntime against the framework at the sample batch and at batch 3.

test_torch.py imports the model definitions from here, so tests and report measure the
same models.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn

# the shared model definitions live in tests/ (on pytest's pythonpath; added here for
# running this file as a script)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from torch_models import SuperResolutionNet  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / "docs" / "torch_export_ops.md"
OTHER_BATCH = 3
MAX_SHOWN_ELEMENTS = 8


def make_mlp() -> nn.Module:
    """(N, 20) -> (N, 10): Linear ReLU Linear Tanh Linear Sigmoid."""
    return nn.Sequential(
        nn.Linear(20, 64),
        nn.ReLU(),
        nn.Linear(64, 32),
        nn.Tanh(),
        nn.Linear(32, 10),
        nn.Sigmoid(),
    )


def make_mlp_softmax() -> nn.Module:
    """(N, 1, 4, 5) -> (N, 10): Flatten Linear ReLU Linear Softmax(dim=-1)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=-1)
    )


@dataclass(frozen=True)
class Case:
    """One model, its sample shape and the dynamic_axes it is exported with."""

    name: str
    build: Callable[[], nn.Module]
    sample_shape: tuple[int, ...]
    dynamic_axes: object = None  # None: the default (dynamic batch)


CASES = (
    Case("superres", SuperResolutionNet, (1, 1, 224, 224)),
    Case(
        "superres_hw",
        SuperResolutionNet,
        (1, 1, 224, 224),
        {0: {0: "batch", 2: "height", 3: "width"}},
    ),
    Case("mlp", make_mlp, (4, 20)),
    Case("mlp_softmax", make_mlp_softmax, (4, 1, 4, 5)),
)

# exporter label -> to_onnx options
EXPORTS = {
    "dynamo": {"exporter": "dynamo"},
    "legacy": {"exporter": "legacy"},
    "dynamo, optimize=False": {"exporter": "dynamo", "optimize": False},
}


def make_sample(case: Case, batch: int | None = None, seed: int = 0) -> np.ndarray:
    """A float32 sample of the case's shape, with axis 0 set to `batch` if given."""
    shape = case.sample_shape if batch is None else (batch, *case.sample_shape[1:])
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def op_counts(onnx_model: onnx.ModelProto) -> dict[str, int]:
    """op_type -> count in the main graph, most frequent first; "domain::op" off ai.onnx."""
    counts = collections.Counter(
        f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type
        for n in onnx_model.graph.node
    )
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def attributes(onnx_model: onnx.ModelProto) -> str:
    """Distinct attribute sets per op_type, plus the values of small constant inputs."""
    small = {
        t.name: onnx.numpy_helper.to_array(t).tolist()
        for t in onnx_model.graph.initializer
        if np.prod(t.dims) <= MAX_SHOWN_ELEMENTS and t.data_type == onnx.TensorProto.INT64
    }
    seen: dict[str, None] = {}
    for node in onnx_model.graph.node:
        attrs = [
            f"{a.name}={_attribute_text(a)}"
            for a in sorted(node.attribute, key=lambda a: a.name)
        ]
        attrs += [
            f"input{i}={small[name]}" for i, name in enumerate(node.input) if name in small
        ]
        seen.setdefault(f"{node.op_type}{{{', '.join(attrs)}}}" if attrs else node.op_type)
    return "; ".join(seen)


def _attribute_text(attribute: onnx.AttributeProto) -> str:
    value = onnx.helper.get_attribute_value(attribute)
    if isinstance(value, onnx.TensorProto):
        array = onnx.numpy_helper.to_array(value)
        return (
            f"{array.tolist()}"
            if array.size <= MAX_SHOWN_ELEMENTS
            else f"{array.dtype}{array.shape}"
        )
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def shapes(values) -> str:
    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    return ", ".join(f"{v.name} {dims(v)}" for v in values)


def foreign(onnx_model: onnx.ModelProto) -> str:
    """Local functions and node domains other than ai.onnx / ai.onnx.ml, or "none"."""
    domains = sorted({n.domain for n in onnx_model.graph.node} - {"", "ai.onnx", "ai.onnx.ml"})
    parts = [f"domain {d}" for d in domains]
    parts += [f"function {f.domain}::{f.name}" for f in onnx_model.functions]
    return ", ".join(parts) or "none"


def measure(case: Case, label: str) -> dict[str, str]:
    """Export one case with one exporter; return the report row."""
    import onnxruntime as ort

    from wasmexport.exporters import to_onnx
    from wasmexport.exporters import torch as torch_adapter

    raw: list[onnx.ModelProto] = []
    finalize = torch_adapter.finalize_onnx_model

    def recording_finalize(onnx_model, *, framework):
        raw.append(onnx.ModelProto.FromString(onnx_model.SerializeToString()))
        return finalize(onnx_model, framework=framework)

    torch.manual_seed(0)
    model = case.build()
    torch_adapter.finalize_onnx_model = recording_finalize
    try:
        start = time.perf_counter()
        exported = to_onnx(
            model, make_sample(case), dynamic_axes=case.dynamic_axes, **EXPORTS[label]
        )
        seconds = time.perf_counter() - start
    finally:
        torch_adapter.finalize_onnx_model = finalize

    session = ort.InferenceSession(
        exported.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    errors = []
    for batch in (None, OTHER_BATCH):
        x = make_sample(case, batch, seed=1)
        got = session.run(None, {exported.input_names[0]: x})[0]
        want = exported.run_framework([x])[0]
        errors.append(f"{float(np.abs(got - want).max()):.1e}")

    graph = exported.onnx_model.graph
    return {
        "model": case.name,
        "exporter": label,
        "opset": str(exported.opset),
        "inputs": shapes(graph.input),
        "outputs": shapes(graph.output),
        "ops": ", ".join(f"{op} x{n}" for op, n in op_counts(exported.onnx_model).items()),
        "attributes": attributes(exported.onnx_model),
        "nodes": str(len(graph.node)),
        "initializers": str(len(graph.initializer)),
        "raw_foreign": foreign(raw[0]),
        "final_foreign": foreign(exported.onnx_model),
        "max_abs_err": " / ".join(errors),
        "seconds": f"{seconds:.1f}",
    }


def render(rows: list[dict[str, str]]) -> str:
    """The markdown report."""
    lines = [
        "# Ops emitted by the torch exporters",
        "",
        f"Generated by `tests/exporters/report_ops.py` (torch {torch.__version__}, "
        f"onnx {onnx.__version__}); do not edit by hand.",
        "",
        "Models: `superres` is the PyTorch tutorial's SuperResolutionNet (sample (1, 1, 224, "
        "224), dynamic batch); `superres_hw` the same with batch, height and width dynamic; "
        "`mlp` is Linear(20,64) ReLU Linear(64,32) Tanh Linear(32,10) Sigmoid (sample batch "
        "4); `mlp_softmax` is Flatten Linear(20,64) ReLU Linear(64,10) Softmax(dim=-1) on "
        "(N, 1, 4, 5) (sample batch 4). Exported with `wasmexport.exporters.to_onnx` and "
        "default settings (dynamic batch) unless the name says otherwise.",
        "",
        "`raw foreign` lists local functions and non-ai.onnx domains in the exporter's own "
        "output, before the adapter inlines and checks; `final foreign` the same for the "
        f"model the adapter returns. `max abs err` compares onnxruntime with the framework "
        f"at the sample batch / at batch {OTHER_BATCH}.",
        "",
    ]
    for row in rows:
        lines += [
            f"## {row['model']} — {row['exporter']}",
            "",
            f"- opset: {row['opset']}",
            f"- inputs: {row['inputs']}",
            f"- outputs: {row['outputs']}",
            f"- op_types ({row['nodes']} nodes, {row['initializers']} initializers): "
            f"{row['ops']}",
            f"- attributes: {row['attributes']}",
            f"- raw foreign: {row['raw_foreign']}; final foreign: {row['final_foreign']}",
            f"- max abs err vs torch: {row['max_abs_err']}; export took {row['seconds']} s",
            "",
        ]
    lines += ["## Summary", "", "| model | exporter | opset | op_types |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['exporter']} | {r['opset']} | {r['ops']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(DEFAULT_OUT), help="markdown file, or - for stdout"
    )
    args = parser.parse_args(argv)

    rows = [measure(case, label) for case in CASES for label in EXPORTS]
    text = render(rows)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
