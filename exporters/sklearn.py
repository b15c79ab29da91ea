"""The scikit-learn adapter: fitted estimators, Pipelines and ColumnTransformers via skl2onnx.

Graph inputs are inferred from the sample:

    numpy array        one input "X", (batch, n_features); floats as chosen by ``dtype``,
                       integers as int64, str/object as string
    pandas DataFrame   one input per column, (batch, 1), named after the column (what
                       skl2onnx expects for a ColumnTransformer selecting columns by name);
                       float columns as chosen by ``dtype``, integer columns as int64,
                       object/string/category columns as string

Floating-point precision (``dtype``):

    None / "float32"   (default) float inputs become float32. The ai.onnx.ml kernels
                       (LinearClassifier, SVMClassifier, TreeEnsemble*, Scaler, ...) compute
                       in float32, and scikit-learn's trees themselves split on float32(X).
    "float64"          float inputs stay double where skl2onnx has a double converter
                       (linear models, scalers, SVMs, ...). Few of those graphs run on the
                       runtime yet: its MatMul, Add, Sub, Mul, ... are float32 only, so
                       LinearRegression, Ridge, StandardScaler, MinMaxScaler in float64 are
                       refused when packaging (measured); SVR (SVMRegressor) runs in double.
                       TODO: float64 kernels for MatMul and the elementwise arithmetic ops.
                       Tree ensembles are the exception in the other direction: in
                       ai.onnx.ml opset 1-3 their thresholds are float, and a double input
                       compared against them splits differently from scikit-learn (measured
                       on diabetes, RandomForestRegressor: max abs error 13.3 against
                       ``predict``; onnxruntime refuses the graph). skl2onnx 1.20 does not
                       emit the opset-5 ``TreeEnsemble`` op (double thresholds) even with
                       ``ml_opset=5``. So a graph with a tree ensemble is converted again
                       with float32 inputs, with a warning.

Classifiers answer with two outputs, ``label`` (int64 or string labels, like ``predict``)
and ``probabilities``: with ``zipmap=True`` (the default, as in skl2onnx) a list of
``{class: probability}`` dicts, one per row; with ``zipmap=False`` an (N, n_classes) float
matrix. Estimators without ``predict_proba`` (SVC without probability, LinearSVC) answer
with their decision scores, as skl2onnx does. Regressors answer ``variable`` (N, 1);
transformers their ``transform``; KMeans ``label`` and ``scores`` (the distances of
``transform``).

scikit-learn, skl2onnx and pandas are imported only when an export runs.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from ..errors import ConvertError, first_line
from .onnx import finalize_onnx_model, graph_inputs
from .registry import ExportedModel

__all__ = ["DEFAULT_ML_OPSET", "DEFAULT_OPSET", "SklearnAdapter", "is_sklearn_estimator"]

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17  # ai.onnx
DEFAULT_ML_OPSET = 3  # ai.onnx.ml
DTYPES = (None, "float32", "float64")
SKLEARN_INSTALL_HINT = "pip install 'wasmexport[sklearn]'"
BATCH_DIM = "batch"
_TREE_OPS = frozenset({"TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble"})


def is_sklearn_estimator(model: object) -> bool:
    """Detect an estimator defined by scikit-learn itself, without importing sklearn.

    Estimators of other packages that follow the sklearn API (LightGBM, XGBoost, ...) are
    left to their own adapters; pass ``framework="sklearn"`` to convert one whose skl2onnx
    converter you registered.
    """
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator) and type(model).__module__.startswith("sklearn.")


class SklearnAdapter:
    """Export fitted scikit-learn estimators with skl2onnx."""

    name = "sklearn"
    model_kind = "a scikit-learn estimator"

    def export(
        self,
        model: Any,
        sample_inputs: object,
        *,
        dynamic_axes: object = None,
        opset: int | None = None,
        zipmap: bool = True,
        dtype: str | None = None,
        options: dict | None = None,
        ml_opset: int | None = None,
    ) -> ExportedModel:
        """Convert a fitted estimator to ONNX.

        Args:
            model: a fitted estimator, Pipeline or ColumnTransformer.
            sample_inputs: a numpy array (N, n_features) or a pandas DataFrame.
            dynamic_axes: None (dynamic batch, the default) or False (the sample's batch).
            opset: ai.onnx opset; DEFAULT_OPSET when None.
            zipmap: classifiers: probabilities as a list of {class: p} dicts (True) or an
                (N, n_classes) matrix (False). Ignored by converters without the option.
            dtype: None or "float32" (float inputs as float32) or "float64"; see the module
                docstring for where float64 cannot be kept.
            options: skl2onnx conversion options, passed through (they win over zipmap).
            ml_opset: ai.onnx.ml opset; DEFAULT_ML_OPSET when None.

        Returns:
            The ExportedModel; ``run_framework`` runs the estimator (predict,
            predict_proba / decision_function, transform) matched to the graph outputs.

        Raises:
            ConvertError: scikit-learn or skl2onnx missing, an unfitted estimator, a sample
                of an unsupported type, or a skl2onnx failure.
        """
        skl2onnx, data_types = _import_skl2onnx()
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        if dtype not in DTYPES:
            raise ConvertError(f"sklearn: dtype must be one of {DTYPES}, got {dtype!r}")
        if dynamic_axes not in (None, False):
            raise ConvertError(
                "sklearn: dynamic_axes must be None (dynamic batch) or False (static); "
                f"got {dynamic_axes!r}: scikit-learn models have no other dynamic axis"
            )
        try:
            check_is_fitted(model)
        except NotFittedError as e:
            raise ConvertError(
                f"sklearn: the {type(model).__name__} is not fitted; call fit() first"
            ) from e
        opset = DEFAULT_OPSET if opset is None else opset
        ml_opset = DEFAULT_ML_OPSET if ml_opset is None else ml_opset
        model_name = type(model).__name__

        # step 1: one graph input per array (numpy) or per column (DataFrame)
        columns = _sample_columns(sample_inputs)
        _check_feature_count(model, sample_inputs, columns)
        float_dtype = np.float64 if dtype == "float64" else np.float32
        graph = _convert(model, skl2onnx, data_types, columns, float_dtype, dynamic_axes,
                         opset, ml_opset, zipmap, options)  # fmt: skip
        if float_dtype == np.float64 and _has_trees(graph):
            warnings.warn(
                f"sklearn: {model_name} has a tree ensemble, whose ai.onnx.ml thresholds are "
                "float32; exporting with float32 inputs instead of float64",
                UserWarning,
                stacklevel=4,
            )
            float_dtype = np.float32
            graph = _convert(model, skl2onnx, data_types, columns, float_dtype, dynamic_axes,
                             opset, ml_opset, zipmap, options)  # fmt: skip
        graph = finalize_onnx_model(graph, framework="sklearn")

        # step 2: the samples as the graph takes them; a runner matched to the outputs
        inputs = graph_inputs(graph)
        names = [value.name for value in inputs]
        arrays = [_cast_column(a, float_dtype) for _, a in columns]
        if names != [name for name, _ in columns]:
            raise ConvertError(
                f"sklearn: skl2onnx made graph inputs {names}, expected "
                f"{[name for name, _ in columns]}"
            )
        outputs = list(graph.graph.output)
        run_framework = _make_runner(model, sample_inputs, outputs)
        axes = {} if dynamic_axes is False else {n: {0: BATCH_DIM} for n in names}
        logger.info("sklearn: exported %s (%d input(s), outputs %s)", model_name, len(names),
                    [o.name for o in outputs])  # fmt: skip
        return ExportedModel(
            onnx_model=graph,
            framework="sklearn",
            input_names=names,
            output_names=[o.name for o in outputs],
            sample_inputs=arrays,
            dynamic_axes=axes,
            run_framework=run_framework,
        )


def _import_skl2onnx() -> tuple[Any, Any]:
    """Import scikit-learn and skl2onnx, or fail with the exact install command."""
    try:
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ConvertError(
            "The sklearn adapter needs scikit-learn, which is not installed: "
            f"{SKLEARN_INSTALL_HINT}"
        ) from e
    try:
        import skl2onnx
        from skl2onnx.common import data_types
    except ImportError as e:
        raise ConvertError(
            "The sklearn adapter needs skl2onnx, which is not installed: "
            f"{SKLEARN_INSTALL_HINT}"
        ) from e
    return skl2onnx, data_types


def _is_dataframe(sample: object) -> bool:
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(sample, pandas.DataFrame)


def _sample_columns(sample: object) -> list[tuple[str, np.ndarray]]:
    """(graph input name, 2-D array) pairs: "X" for an array, one per DataFrame column."""
    if _is_dataframe(sample):
        columns = []
        for name in sample.columns:
            column = sample[name]
            values = column.to_numpy()
            if values.dtype.kind not in "biuf":
                values = column.astype(str).to_numpy(dtype=object)
            columns.append((str(name), values.reshape(-1, 1)))
        return columns
    if isinstance(sample, (list, tuple, dict)):
        raise ConvertError(
            f"sklearn: expected the sample as one numpy array or a pandas DataFrame, got a "
            f"{type(sample).__name__}; for several inputs use a DataFrame (one per column)"
        )
    array = np.asarray(sample)
    if array.ndim != 2:
        raise ConvertError(
            f"sklearn: expected a 2-D sample (n_samples, n_features), got shape {array.shape}"
        )
    return [("X", array)]


def _check_feature_count(
    model: Any, sample: object, columns: list[tuple[str, np.ndarray]]
) -> None:
    """The sample must have the feature count the estimator was fitted on (n_features_in_).

    skl2onnx would declare the sample's count as the graph input's width, and the module
    could never run; estimators without n_features_in_ are left to skl2onnx.
    """
    expected = getattr(model, "n_features_in_", None)
    if not isinstance(expected, (int, np.integer)):
        return
    got = sum(array.shape[1] for _, array in columns)
    if got == expected:
        return
    if _is_dataframe(sample):
        where = f"DataFrame columns {', '.join(name for name, _ in columns)}"
        fix = "pass a DataFrame with the columns it was fitted on"
    else:
        where = f"shape {columns[0][1].shape}"
        fix = f"pass a sample of shape (n_samples, {expected})"
    raise ConvertError(
        f"sklearn: the sample has {got} feature(s) ({where}), but the "
        f"{type(model).__name__} was fitted on {expected} (n_features_in_); {fix}"
    )


def _cast_column(array: np.ndarray, float_dtype: type) -> np.ndarray:
    """The array as the graph takes it: floats in float_dtype, ints int64, else str."""
    kind = array.dtype.kind
    if kind == "f":
        return np.ascontiguousarray(array, dtype=float_dtype)
    if kind in "biu":
        return np.ascontiguousarray(array, dtype=np.int64)
    if kind in "USO":
        return np.asarray(array, dtype=object).astype(str).astype(object)
    raise ConvertError(f"sklearn: cannot map a {array.dtype} sample column to an ONNX type")


def _initial_types(columns, data_types: Any, float_dtype: type, dynamic_axes: object):
    """skl2onnx initial_types for the sample columns."""
    initial = []
    for name, array in columns:
        kind = array.dtype.kind
        if kind == "f":
            cls = (data_types.DoubleTensorType if float_dtype == np.float64
                   else data_types.FloatTensorType)  # fmt: skip
        elif kind in "biu":
            cls = data_types.Int64TensorType
        else:
            cls = data_types.StringTensorType
        batch = array.shape[0] if dynamic_axes is False else None
        initial.append((name, cls([batch, array.shape[1]])))
    return initial


def _convert(model, skl2onnx, data_types, columns, float_dtype, dynamic_axes, opset,
             ml_opset, zipmap, options) -> onnx.ModelProto:  # fmt: skip
    """Run skl2onnx; name the dynamic batch dims BATCH_DIM."""
    final = _final_step(model)
    merged: dict = {}
    if _accepts_option(final, "zipmap"):
        merged[id(final)] = {"zipmap": bool(zipmap)}
    for key, value in (options or {}).items():
        merged[key] = value
    initial = _initial_types(columns, data_types, float_dtype, dynamic_axes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            graph = skl2onnx.convert_sklearn(
                model,
                initial_types=initial,
                target_opset={"": opset, "ai.onnx.ml": ml_opset},
                options=merged or None,
            )
    except Exception as e:
        raise ConvertError(
            f"sklearn: skl2onnx cannot convert {type(model).__name__}: "
            f"{type(e).__name__}: {first_line(e)}"
        ) from e
    if dynamic_axes is not False:
        for value in graph_inputs(graph):
            dims = value.type.tensor_type.shape.dim
            if dims and not dims[0].HasField("dim_value"):
                dims[0].dim_param = BATCH_DIM
    return graph


def _final_step(model: Any) -> Any:
    """The last estimator of a (nested) Pipeline; the model itself otherwise."""
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def _accepts_option(estimator: Any, option: str) -> bool:
    """Whether skl2onnx's converter for this estimator declares `option`."""
    try:
        from skl2onnx._supported_operators import sklearn_operator_name_map
        from skl2onnx.common._registration import get_converter

        alias = sklearn_operator_name_map[type(estimator)]
        allowed = get_converter(alias).get_allowed_options() or {}
    except Exception:  # noqa: BLE001 - unknown estimator: let skl2onnx report it
        return False
    return option in allowed


def _has_trees(graph: onnx.ModelProto) -> bool:
    return any(node.op_type in _TREE_OPS for node in graph.graph.node)


def _make_runner(
    model: Any, sample: object, outputs: Sequence[onnx.ValueInfoProto]
) -> Callable[[list[np.ndarray]], list[Any]]:
    """A runner: graph-input arrays -> the estimator's answers, one per graph output."""
    from sklearn.base import is_classifier

    final = _final_step(model)
    frame_columns = list(sample.columns) if _is_dataframe(sample) else None
    frame_dtypes = sample.dtypes if frame_columns is not None else None

    def as_input(arrays: list[np.ndarray]) -> Any:
        if frame_columns is None:
            return arrays[0]
        import pandas

        data = {}
        for name, array in zip(frame_columns, arrays, strict=True):
            column = array.reshape(-1)
            if frame_dtypes[name].kind in "biuf":
                column = column.astype(frame_dtypes[name])
            data[name] = column
        return pandas.DataFrame(data, columns=frame_columns)

    def run(arrays: list[np.ndarray]) -> list[Any]:
        x = as_input(arrays)
        answers: list[Any] = []
        for index, output in enumerate(outputs):
            if is_classifier(model) and index == 0:
                answers.append(np.asarray(model.predict(x)))
            elif is_classifier(model) and index == 1:
                answers.append(_scores(model, final, x, output))
            elif hasattr(final, "cluster_centers_") and index == 0:
                answers.append(np.asarray(model.predict(x)))
            elif hasattr(final, "cluster_centers_") and index == 1:
                answers.append(np.asarray(model.transform(x)))
            elif hasattr(model, "transform") and not hasattr(final, "predict"):
                answers.append(_dense(model.transform(x)))
            else:
                answers.append(_as_rank(np.asarray(model.predict(x)), output))
        return answers

    return run


def _scores(model: Any, final: Any, x: Any, output: onnx.ValueInfoProto) -> Any:
    """predict_proba (or the decision scores), as a matrix or a list of dicts (ZipMap)."""
    if hasattr(model, "predict_proba"):
        scores = np.asarray(model.predict_proba(x))
    else:
        scores = np.asarray(model.decision_function(x))
        dims = output.type.tensor_type.shape.dim
        columns = dims[1].dim_value if len(dims) == 2 else 0
        if scores.ndim == 1 and columns == 1:  # binary LinearSVC & co: (d,)
            scores = scores.reshape(-1, 1)
        elif scores.ndim == 1 and type(final).__name__ in ("SVC", "NuSVC"):
            scores = np.stack([scores, -scores], axis=1)  # skl2onnx: (d, -d) for libsvm
        elif scores.ndim == 1:
            scores = np.stack([-scores, scores], axis=1)  # and (-d, d) for the others
    if output.type.WhichOneof("value") != "sequence_type":
        return scores
    classes = [c.item() if isinstance(c, np.generic) else c for c in final.classes_]
    classes = [str(c) if isinstance(c, str) else int(c) for c in classes]
    return [dict(zip(classes, map(float, row), strict=True)) for row in scores]


def _dense(values: Any) -> np.ndarray:
    return np.asarray(values.toarray() if hasattr(values, "toarray") else values)


def _as_rank(values: np.ndarray, output: onnx.ValueInfoProto) -> np.ndarray:
    """predict's (N,) as the graph's (N, 1)."""
    dims = output.type.tensor_type.shape.dim
    if values.ndim == 1 and len(dims) == 2:
        return values.reshape(-1, 1)
    return values


