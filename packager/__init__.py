"""ONNX -> plan -> wasm module: lowering, the plan format and the wasm patcher."""

from .embed import embed_blob, read_custom_sections
from .lower import check_ops, lower
from .package import PackagedModel, package
from .signature import METADATA_SECTION, Metadata, TensorSpec

__all__ = [
    "METADATA_SECTION",
    "Metadata",
    "PackagedModel",
    "TensorSpec",
    "check_ops",
    "embed_blob",
    "lower",
    "package",
    "read_custom_sections",
]
