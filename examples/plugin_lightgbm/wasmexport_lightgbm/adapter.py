"""The lightgbm adapter: Booster, LGBMClassifier and LGBMRegressor through onnxmltools.

The sample is one float array (N, n_features); the graph has one float32 input "X" with a
dynamic batch. Classifiers answer ``label`` and ``probabilities`` (a list of {class: p}
dicts with ``zipmap=True``, else an (N, n_classes) matrix); regressions ``variable``
(N, 1). A Booster trained with a binary or multiclass objective counts as a classifier,
with the classes 0 .. n_classes - 1.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np

from wasmexport.errors import ConvertError
from wasmexport.exporters import ExportedModel, register_adapter
from wasmexport.exporters.onnx import finalize_onnx_model

logger = logging.getLogger(__name__)

# onnxmltools 1.16 converts LightGBM up to ai.onnx opset 15
DEFAULT_OPSET = 15
INSTALL_HINT = "pip install lightgbm onnxmltools"
BATCH_DIM = "batch"


def is_lightgbm_model(model: object) -> bool:
    """A lightgbm Booster or scikit-learn-style LightGBM estimator (lightgbm imported)."""
    lightgbm = sys.modules.get("lightgbm")
    if lightgbm is None:
        return False
    return isinstance(model, (lightgbm.Booster, lightgbm.LGBMModel))


@register_adapter("lightgbm", detect=is_lightgbm_model)
class LightgbmAdapter:
    """Export LightGBM models with onnxmltools."""

    name = "lightgbm"

    def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None, zipmap=True):
        """Convert a trained LightGBM model; see the module docstring for the outputs.

        Raises:
            ConvertError: onnxmltools missing, a sample that is not 2-D, or a failed
                conversion.
        """
        try:
            from onnxmltools import convert_lightgbm
            from onnxmltools.convert.common.data_types import FloatTensorType
        except ImportError as e:
            raise ConvertError(
                f"the lightgbm adapter needs onnxmltools: {INSTALL_HINT}"
            ) from e
        x = np.ascontiguousarray(np.asarray(sample_inputs), dtype=np.float32)
        if x.ndim != 2:
            raise ConvertError(f"lightgbm: expected a 2-D sample, got shape {x.shape}")
        batch = x.shape[0] if dynamic_axes is False else None
        try:
            onnx_model = convert_lightgbm(
                model,
                initial_types=[("X", FloatTensorType([batch, x.shape[1]]))],
                target_opset=DEFAULT_OPSET if opset is None else opset,
                zipmap=zipmap,
            )
        except Exception as e:
            raise ConvertError(f"lightgbm: onnxmltools cannot convert the model: {e}") from e
        if batch is None:
            onnx_model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = BATCH_DIM
        onnx_model = finalize_onnx_model(onnx_model, framework="lightgbm")
        outputs = [o.name for o in onnx_model.graph.output]
        return ExportedModel(
            onnx_model=onnx_model,
            framework="lightgbm",
            input_names=["X"],
            output_names=outputs,
            sample_inputs=[x],
            dynamic_axes={} if batch is not None else {"X": {0: BATCH_DIM}},
            run_framework=_runner(model, len(outputs) == 2, zipmap),
        )


def _runner(model: Any, classifier: bool, zipmap: bool):
    """Runs the model on [X] and answers like the graph: [label, probabilities] or [y]."""

    def run(arrays):
        x = arrays[0]
        if not classifier:
            return [np.asarray(model.predict(x)).reshape(-1, 1)]
        if hasattr(model, "predict_proba"):
            proba = np.asarray(model.predict_proba(x))
            classes = list(model.classes_)
        else:  # a Booster: predict gives p (binary) or (N, n_classes)
            proba = np.asarray(model.predict(x))
            if proba.ndim == 1:
                proba = np.stack([1.0 - proba, proba], axis=1)
            classes = list(range(proba.shape[1]))
        labels = np.asarray(classes)[np.argmax(proba, axis=1)]
        if not zipmap:
            return [labels, proba]
        keys = [c.item() if isinstance(c, np.generic) else c for c in classes]
        return [labels, [dict(zip(keys, map(float, row), strict=True)) for row in proba]]

    return run
