"""Framework models to ONNX: one adapter per framework, a registry, and a plugin hook.

    from wasmexport.exporters import to_onnx
    exported = to_onnx(torch_model, sample)          # adapter picked by detect()
    exported.onnx_model                              # onnx.ModelProto, weights inline

Built-in adapters: ``torch`` (dynamo, or ``exporter="legacy"``), ``tensorflow`` (Keras
models, tf.functions and SavedModels, through tf2onnx), ``sklearn`` (fitted estimators,
Pipelines and ColumnTransformers, through skl2onnx) and ``onnx`` (a ModelProto or a .onnx
path). Third-party adapters register through the ``wasmexport.adapters``
entry-point group; see `wasmexport.exporters.registry`. Importing this package imports no
framework.
"""

from __future__ import annotations

from .registry import (
    ENTRY_POINT_GROUP,
    Adapter,
    ExportedModel,
    find_adapter,
    list_adapters,
    register_adapter,
    to_onnx,
)
from .sample_inputs import normalize_dynamic_axes, normalize_sample_inputs

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "ExportedModel",
    "find_adapter",
    "list_adapters",
    "normalize_dynamic_axes",
    "normalize_sample_inputs",
    "register_adapter",
    "to_onnx",
]
