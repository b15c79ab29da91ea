"""wasmexport: trained models to one self-contained, verified WebAssembly (WASI) file."""

from __future__ import annotations

import os as _os

# In a source checkout the subpackages live in top-level folders beside this one
# (pyproject.toml maps them to wasmexport.exporters, .packager, .abi_runtime).
# An installed wheel has them inside this folder; a checkout imported directly
# (cwd on sys.path) needs the checkout root on this package's path to find them.
_root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if not _os.path.isdir(
    _os.path.join(_os.path.dirname(__file__), "packager")
) and _os.path.isfile(_os.path.join(_root, "packager", "__init__.py")):
    __path__.append(_root)  # noqa: F821  (package __path__)

from .errors import (  # noqa: E402
    AdapterNotFoundError,
    ConvertError,
    PackageError,
    RuntimeABIError,
    UnsupportedOpError,
    VerifyError,
    WasmExportError,
)

__version__ = "0.1.0"

# The API pulls in onnx, numpy and wasmtime; import it on first use so that
# `wasmexport --help` and `import wasmexport.errors` stay fast.
_LAZY = {
    "ExportResult": ".api",
    "export_wasm": ".api",
    "load": ".api",
    "verify": ".api",
    "VerifyReport": ".verifier",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wasmexport' has no attribute {name!r}")


__all__ = [
    "AdapterNotFoundError",
    "ConvertError",
    "ExportResult",
    "PackageError",
    "RuntimeABIError",
    "UnsupportedOpError",
    "VerifyError",
    "VerifyReport",
    "WasmExportError",
    "__version__",
    "export_wasm",
    "load",
    "verify",
]
