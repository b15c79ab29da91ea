"""What the prebuilt runtime is: its bytes and the ops it executes."""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["runtime_bytes", "supported_op_types"]


def _runtime_file(name: str):
    return resources.files("wasmexport.abi_runtime").joinpath(name)


# simd option -> prebuilt runtime file
RUNTIME_FILES = {"plain": "runtime.wasm", "relaxed": "runtime_relaxed.wasm"}


@functools.cache
def runtime_bytes(simd: str = "plain") -> bytes:
    """The prebuilt runtime module: runtime.wasm (SIMD128), or runtime_relaxed.wasm
    (relaxed SIMD: fused multiply-add; hosts must enable the relaxed-SIMD proposal)."""
    if simd not in RUNTIME_FILES:
        raise ValueError(f"simd must be one of {sorted(RUNTIME_FILES)}, got {simd!r}")
    return _runtime_file(RUNTIME_FILES[simd]).read_bytes()


@functools.cache
def supported_op_types() -> frozenset[tuple[str, str]]:
    """(domain, op_type) pairs the runtime executes; domain "" is ai.onnx."""
    table = json.loads(_runtime_file("runtime_ops.json").read_text())
    return frozenset((op["domain"], op["op_type"]) for op in table["ops"])
