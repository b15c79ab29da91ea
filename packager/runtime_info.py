"""What the prebuilt runtime is: its bytes and the ops it executes."""

from __future__ import annotations

import functools
import json
from importlib import resources

__all__ = ["runtime_bytes", "supported_op_types"]


def _runtime_file(name: str):
    return resources.files("wasmexport.abi_runtime").joinpath(name)


@functools.cache
def runtime_bytes() -> bytes:
    """The prebuilt runtime module (runtime.wasm shipped with the package)."""
    return _runtime_file("runtime.wasm").read_bytes()


@functools.cache
def supported_op_types() -> frozenset[tuple[str, str]]:
    """(domain, op_type) pairs the runtime executes; domain "" is ai.onnx."""
    table = json.loads(_runtime_file("runtime_ops.json").read_text())
    return frozenset((op["domain"], op["op_type"]) for op in table["ops"])
