"""Package an ONNX model into a self-contained wasm module."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass

import onnx

from .. import __version__
from ..errors import PackageError
from .embed import embed_blob
from .lower import lower
from .runtime_info import runtime_bytes, runtime_subset_for
from .signature import METADATA_SECTION, Metadata, TensorSpec

__all__ = ["PackagedModel", "package"]

logger = logging.getLogger(__name__)


@dataclass
class PackagedModel:
    """The packaged module and what went into it."""

    wasm: bytes
    metadata: Metadata
    onnx_model: onnx.ModelProto  # after folding and shape inference
    # the prebuilt runtime embedded: "core" (the neural-network op subset), "full" (every
    # op), or "custom" (a runtime passed in)
    runtime: str = "full"

    @property
    def runtime_bytes(self) -> int:
        return len(self.wasm) - self.metadata.plan_bytes


def package(
    onnx_model: onnx.ModelProto,
    *,
    framework: str = "onnx",
    simd: str = "plain",
    runtime: bytes | None = None,
) -> PackagedModel:
    """Package an ONNX model into a wasm module (runtime + plan), in pure Python.

    Args:
        onnx_model: the model; only ai.onnx and ai.onnx.ml ops the runtime executes.
        framework: recorded in the module's metadata.
        simd: "plain" (SIMD128, runs on every host) or "relaxed" (relaxed-SIMD fused
            multiply-add in exp's polynomial; the GEMM multiplies then adds in both
            builds, which measured faster; needs a host with the relaxed-SIMD proposal
            enabled, e.g. wasmtime, or Node with --experimental-wasm-relaxed-simd).
        runtime: another build of the runtime to embed into (benchmarks use one built
            with -DWX_BENCH). When None, the prebuilt runtime of `simd` with the fewest
            kernels that still has every op of the plan (the core runtime for most neural
            networks, the full one otherwise).

    Returns:
        The module bytes with their metadata.

    Raises:
        TypeError: onnx_model is not an onnx.ModelProto.
        UnsupportedOpError: a node the runtime cannot execute.
        PackageError: the graph cannot be lowered or embedded.
    """
    if not isinstance(onnx_model, onnx.ModelProto):
        raise TypeError(f"expected onnx.ModelProto, got {type(onnx_model).__name__}")

    # step 1: lower to a plan
    plan, prepared = lower(onnx_model)
    try:
        blob = plan.to_bytes()
    except (ValueError, OverflowError) as e:
        raise PackageError(f"cannot serialise the plan: {e}") from e

    # step 2: the smallest runtime that executes every op of the plan, and the metadata
    subset = runtime_subset_for(plan_op_types(plan))
    kind = "custom" if runtime is not None else subset or "full"
    graph = prepared.graph
    initializers = {t.name for t in graph.initializer}
    metadata = Metadata(
        inputs=[
            TensorSpec.from_value_info(v) for v in graph.input if v.name not in initializers
        ],
        outputs=[TensorSpec.from_value_info(v) for v in graph.output],
        producer_version=__version__,
        framework=framework,
        opsets={imp.domain or "ai.onnx": imp.version for imp in prepared.opset_import},
        # the ONNX ops the module computes (before fusion merged some into others)
        ops=dict(sorted(Counter(n.op_type for n in graph.node).items())),
        plan_sha256=hashlib.sha256(blob).hexdigest(),
        plan_bytes=len(blob),
        runtime=kind,
    )

    # step 3: embed
    embedded = runtime or runtime_bytes(simd, subset)
    wasm = embed_blob(embedded, blob, {METADATA_SECTION: metadata.to_bytes()})
    logger.info("packaged %d nodes into the %s runtime: plan %d bytes, module %d bytes",
                len(plan.main.nodes), kind, len(blob), len(wasm))  # fmt: skip
    return PackagedModel(wasm, metadata, prepared, kind)


def plan_op_types(plan) -> set[tuple[str, str]]:
    """(domain, op_type) of every node of the plan, subgraphs included."""
    return {(node.domain, node.op_type) for graph in plan.graphs for node in graph.nodes}
