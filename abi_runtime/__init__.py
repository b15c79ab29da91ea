"""The WASI runtime (C sources, prebuilt runtime.wasm) and the hosts that run it."""

from .host import WasmModel, load

__all__ = ["WasmModel", "load"]
