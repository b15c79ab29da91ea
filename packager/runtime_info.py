"""What the prebuilt runtimes are: their bytes and the ops they execute.

Four runtimes ship (abi_runtime/build.py builds them from the same sources): with every op or
with the core subset (the ops neural-network exports produce; a smaller module), each in
plain SIMD128 and in relaxed SIMD. The packager embeds a model into the core runtime when
every op of its plan is in the core, and into the full runtime otherwise.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources

__all__ = ["core_op_types", "runtime_bytes", "runtime_subset_for", "supported_op_types"]

SIMD_OPTIONS = ("plain", "relaxed")
# (simd option, op subset or None for every op) -> prebuilt runtime file
RUNTIME_FILES = {
    ("plain", None): "runtime.wasm",
    ("relaxed", None): "runtime_relaxed.wasm",
    ("plain", "core"): "runtime_core.wasm",
    ("relaxed", "core"): "runtime_core_relaxed.wasm",
}


def _runtime_file(name: str):
    return resources.files("wasmexport.abi_runtime").joinpath(name)


@functools.cache
def runtime_bytes(simd: str = "plain", subset: str | None = None) -> bytes:
    """A prebuilt runtime module: SIMD128 ("plain") or relaxed SIMD (fused multiply-add in
    exp's polynomial; hosts must enable the relaxed-SIMD proposal), with every op (subset None) or the kernels
    of an op subset only ("core")."""
    if simd not in SIMD_OPTIONS:
        raise ValueError(f"simd must be one of {list(SIMD_OPTIONS)}, got {simd!r}")
    if (simd, subset) not in RUNTIME_FILES:
        raise ValueError(f"no runtime with op subset {subset!r}; known: {sorted(_subsets())}")
    return _runtime_file(RUNTIME_FILES[simd, subset]).read_bytes()


@functools.cache
def _runtime_ops_table() -> dict:
    return json.loads(_runtime_file("runtime_ops.json").read_text())


@functools.cache
def supported_op_types() -> frozenset[tuple[str, str]]:
    """(domain, op_type) pairs the full runtime executes; domain "" is ai.onnx."""
    return frozenset((op["domain"], op["op_type"]) for op in _runtime_ops_table()["ops"])


def core_op_types() -> frozenset[str]:
    """The ai.onnx op types of the core runtime."""
    return _subsets()["core"]


@functools.cache
def _subsets() -> dict[str, frozenset[str]]:
    """Op subset name -> its ai.onnx op types."""
    return {name: frozenset(ops) for name, ops in _runtime_ops_table()["subsets"].items()}


def runtime_subset_for(ops: Iterable[tuple[str, str]]) -> str | None:
    """The smallest runtime for a plan's (domain, op_type) pairs: "core" when the core
    subset has every one of them, None (the full runtime) otherwise."""
    needed = {(("" if domain == "ai.onnx" else domain), op) for domain, op in ops}
    for name, subset in _subsets().items():
        if all(domain == "" and op in subset for domain, op in needed):
            return name
    return None
