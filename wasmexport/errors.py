"""The exceptions wasmexport raises.

Every error names what failed, where (framework, node name, op_type, opset),
what was observed against what was expected, and what to do next::

    WasmExportError
     ├── ConvertError            framework model -> ONNX failed
     │    ├── AdapterNotFoundError   no adapter recognises the model object
     │    └── UnsupportedOpError     a node the runtime cannot execute
     ├── PackageError            ONNX -> plan -> .wasm failed
     ├── RuntimeABIError         the module answered a request with an error
     └── VerifyError             framework, ONNX reference and WASM disagree
"""

from __future__ import annotations

__all__ = [
    "AdapterNotFoundError",
    "ConvertError",
    "PackageError",
    "RuntimeABIError",
    "UnsupportedOpError",
    "VerifyError",
    "WasmExportError",
    "first_line",
]


class WasmExportError(Exception):
    """Base class of every error raised by wasmexport."""


class ConvertError(WasmExportError):
    """Turning a framework model into ONNX failed."""


class AdapterNotFoundError(ConvertError):
    """No registered adapter recognises the model object."""


class UnsupportedOpError(ConvertError):
    """A node uses an op, attribute or dtype that the runtime does not execute.

    `dtype` names the refused input dtype (ONNX's name, e.g. "DOUBLE") when that is the
    reason, else it is empty.
    """

    def __init__(self, message: str, *, node: str = "", op_type: str = "", opset: int = 0,
                 dtype: str = ""):  # fmt: skip
        super().__init__(message)
        self.node = node
        self.op_type = op_type
        self.opset = opset
        self.dtype = dtype


class PackageError(WasmExportError):
    """Lowering ONNX to a plan or embedding it into the runtime failed."""


class RuntimeABIError(WasmExportError):
    """The wasm module answered `pred()` with an error response."""


class VerifyError(WasmExportError):
    """Outputs of the framework, the ONNX reference and the wasm module disagree.

    Carries the full report (``report``); ``str()`` prints the numbers.
    """

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


def first_line(error: BaseException) -> str:
    """The first line of an error's message (its type name when the message is empty)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
