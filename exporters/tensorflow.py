"""The tensorflow adapter: Keras 3 models, tf.functions and SavedModels to ONNX with tf2onnx.

What it takes:

    keras.Model              Sequential, functional or subclassed (TensorFlow backend),
                             called with ``training=False``
    tf.function              with an input signature (its None dims stay dynamic) or
                             without one (traced from the sample)
    ConcreteFunction         e.g. ``loaded.signatures["serving_default"]``
    SavedModel               a directory holding ``saved_model.pb`` (or the object
                             ``tf.saved_model.load`` returns); its ``serving_default``
                             signature unless ``signature_key=`` names another

Every source is exported the same way: wrapped in a ``tf.function`` whose input signature
has the requested dynamic axes as None (the batch axis by default), frozen with
``tf2onnx.tf_loader.from_function`` and converted with ``tf2onnx.convert.from_graph_def``.
Keras models never go through ``tf2onnx.convert.from_keras``, which fails on Keras 3
Sequential models (``KeyError: 'keras_tensor_N'``).

Names and layouts stay the user's: graph inputs are named after the Keras inputs (or the
signature's arguments; ``input``/``input_0``, ... when the model has no names of its own),
outputs after the output layers or dict keys (``output``/``output_0``, ... otherwise), and
NHWC inputs stay NHWC (tf2onnx's ``inputs_as_nchw`` is never used).

tf2onnx leaves a TensorFlow op it cannot convert in the graph as it is and carries on; such
a node is refused here with an `UnsupportedOpError` naming the node (its TensorFlow name
holds the Keras layer) and the op.

tensorflow and tf2onnx are imported only when an export runs; `is_tensorflow_model` never
imports them. During an export their Python loggers are no louder than wasmexport's (``-q``
hides their deprecation warnings); TensorFlow's C++ logs are cut to errors through
TF_CPP_MIN_LOG_LEVEL unless the user set it (see `quiet_native_logs`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnx.defs
import onnx.shape_inference

from ..errors import ConvertError, UnsupportedOpError, first_line
from .onnx import (
    ALLOWED_DOMAINS,
    declared_dynamic_axes,
    default_opset,
    finalize_onnx_model,
    graph_inputs,
    iter_graphs,
    rename_value,
)
from .registry import ExportedModel
from .sample_inputs import (
    DEFAULT_BATCH_NAME,
    format_shape,
    normalize_dynamic_axes,
    normalize_sample_inputs,
)

__all__ = [
    "DEFAULT_OPSET",
    "TensorflowAdapter",
    "check_converted_ops",
    "is_tensorflow_model",
    "quiet_native_logs",
]

logger = logging.getLogger(__name__)

# tf2onnx 1.17 converts up to opset 18; 17 keeps Split/Reduce* axes as attributes.
DEFAULT_OPSET = 17
DEFAULT_SIGNATURE_KEY = "serving_default"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

TENSORFLOW_INSTALL_HINT = "pip install 'wasmexport[tensorflow]'"

# names Keras gives tensors the user did not name (Sequential models built by a call)
_AUTO_KERAS_NAME = re.compile(r"^keras_tensor(_\d+)?$")
_TENSOR_SUFFIX = re.compile(r":\d+$")
_SCOPE_SUFFIX = re.compile(r"_\d+$")
_TF_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/]*$")
# the Python loggers TensorFlow, tf2onnx and Keras (through absl) write to
_FRAMEWORK_LOGGERS = ("tensorflow", "tf2onnx", "absl")


def is_tensorflow_model(model: object) -> bool:
    """Detect a Keras model, a tf.function, a loaded SavedModel or a SavedModel directory.

    Never imports tensorflow: a directory is recognised by its ``saved_model.pb``, and a
    model object can only exist if its framework is already in ``sys.modules``.
    """
    if isinstance(model, (str, os.PathLike)):
        return _is_saved_model_dir(model)
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return True
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    experimental = tf.types.experimental
    if isinstance(model, (experimental.PolymorphicFunction, experimental.ConcreteFunction)):
        return True
    return _has_signatures(model, tf)


@dataclass
class _Source:
    """One model to export, reduced to what the export needs.

    Attributes:
        description: how errors name it, e.g. "Sequential 'mlp'".
        input_names: graph input names, or None to name them after the sample count.
        input_dtypes: declared dtypes (tf.DType), or None where the sample decides.
        input_shapes: the declared signature (None dims are dynamic), or None when the
            model has no signature and the sample plus dynamic_axes decide.
        call: runs the model on a list of tensors in input order; any output structure.
        output_names: names for the flattened outputs, or None to derive them.
        layer_names: the Keras layer names inside the model, to name a layer in errors.
        float_dtype: without declared dtypes, floating samples are cast to this (a Keras
            model's compute dtype: its layers would cast them anyway).
        owner: an object to keep alive with the source (a loaded SavedModel owns the
            variables its signature functions read).
    """

    description: str
    input_names: list[str] | None
    input_dtypes: list[Any] | None
    input_shapes: list[tuple[int | None, ...]] | None
    call: Callable[[list[Any]], Any]
    output_names: list[str] | None = None
    layer_names: frozenset[str] = frozenset()
    float_dtype: str | None = None
    owner: Any = None


class TensorflowAdapter:
    """Export Keras models, tf.functions and SavedModels through tf2onnx."""

    name = "tensorflow"
    model_kind = "a TensorFlow/Keras model"

    def export(
        self,
        model: Any,
        sample_inputs: object,
        *,
        dynamic_axes: object = None,
        opset: int | None = None,
        signature_key: str = DEFAULT_SIGNATURE_KEY,
    ) -> ExportedModel:
        """Export a TensorFlow / Keras model to ONNX.

        Args:
            model: a keras.Model, a tf.function, a ConcreteFunction, a loaded SavedModel or
                the path of a SavedModel directory.
            sample_inputs: an array, a list of arrays in input order, or a dict input name
                -> array. Samples are cast to the declared input dtypes where numpy allows
                it ("same_kind", e.g. float64 -> float32, int64 -> float32).
            dynamic_axes: see `wasmexport.exporters.to_onnx`. None: the batch axis (axis 0
                of every input), or for a function with an input signature the dims that
                signature leaves None.
            opset: ai.onnx opset; DEFAULT_OPSET when None.
            signature_key: the SavedModel signature to export.

        Returns:
            The ExportedModel, with a ``run_framework`` that calls the model
            (``training=False`` for Keras) on numpy inputs.

        Raises:
            ConvertError: tensorflow or tf2onnx missing, the model fails on the sample, a
                requested dynamic axis is static in the model's signature, or tf2onnx fails.
            UnsupportedOpError: tf2onnx left a TensorFlow op it could not convert.
            TypeError: `model` is none of the accepted kinds.
        """
        tf, tf2onnx = _import_tensorflow()
        opset = DEFAULT_OPSET if opset is None else opset
        with _quiet_python_logs():
            source = _make_source(model, tf, signature_key)

        # step 1: samples in input order, dtypes and the input signature
        arrays, sample_names = normalize_sample_inputs(sample_inputs)
        input_names = _input_names(source, arrays, sample_names)
        arrays = _order_samples(arrays, sample_names, input_names, source.description)
        arrays = _cast_samples(arrays, source, input_names, tf)
        axes = _resolve_axes(dynamic_axes, source, input_names, arrays)
        specs = [
            tf.TensorSpec(_spec_shape(a.shape, axes.get(n, {})), tf.as_dtype(a.dtype), name=n)
            for n, a in zip(input_names, arrays, strict=True)
        ]

        # step 2: one run on the sample fixes the outputs and their names
        run_framework = _make_runner(source, tf)
        flat = _run_sample(source, arrays, tf)
        output_names = _output_names(source, flat)

        # step 3: trace with the signature and convert
        logger.info(
            "tensorflow: converting %s with tf2onnx %s, opset %d, inputs %s",
            source.description,
            tf2onnx.__version__,
            opset,
            ", ".join(f"{s.name}{format_shape(_dims(s.shape))}" for s in specs),
        )
        with _quiet_python_logs():
            onnx_model = _convert(tf, tf2onnx, source, specs, output_names, opset)

        # step 4: the user's names and dim names, no TensorFlow op left, the common checks
        _fix_value_names(onnx_model, input_names, output_names, source.description)
        _name_dynamic_dims(onnx_model, axes)
        check_converted_ops(onnx_model, source.description, source.layer_names)
        if default_opset(onnx_model) != opset:
            raise ConvertError(
                f"tensorflow: asked tf2onnx for opset {opset}, got opset "
                f"{default_opset(onnx_model)} for {source.description}"
            )
        onnx_model = finalize_onnx_model(onnx_model, framework="tensorflow")
        logger.info(
            "tensorflow: exported %s, %d nodes", source.description, len(onnx_model.graph.node)
        )

        return ExportedModel(
            onnx_model=onnx_model,
            framework="tensorflow",
            input_names=input_names,
            output_names=output_names,
            sample_inputs=arrays,
            dynamic_axes=declared_dynamic_axes(onnx_model),
            run_framework=run_framework,
        )


def check_converted_ops(
    onnx_model: onnx.ModelProto,
    description: str = "the model",
    layer_names: frozenset[str] = frozenset(),
) -> None:
    """Refuse nodes tf2onnx left unconverted: unknown ONNX ops or foreign domains.

    Args:
        onnx_model: what tf2onnx produced.
        description: how to name the model in the error.
        layer_names: Keras layer names; the error names the one the node belongs to.

    Raises:
        UnsupportedOpError: naming the first such node (its TensorFlow name, which holds
            the Keras layer), the op and the opset.
    """
    opset = default_opset(onnx_model)
    for graph in iter_graphs(onnx_model.graph):
        for node in graph.node:
            if node.domain in ALLOWED_DOMAINS and onnx.defs.has(node.op_type, node.domain):
                continue
            where = f"node {node.name!r}"
            layer = _layer_of(node.name, layer_names)
            if layer:
                where += f" (layer {layer!r})"
            if node.domain not in ALLOWED_DOMAINS:
                what = f"became {node.domain}::{node.op_type}, outside ai.onnx / ai.onnx.ml"
            else:
                what = f"is the TensorFlow op {node.op_type!r}, which tf2onnx cannot convert"
            raise UnsupportedOpError(
                f"Cannot convert {where} of {description} (opset {opset}): it {what}. "
                "Replace that op or layer with standard ones (or try another opset=).",
                node=node.name,
                op_type=node.op_type,
                opset=opset,
            )


def quiet_native_logs() -> None:
    """Set TF_CPP_MIN_LOG_LEVEL=2 (C++ errors only) if TensorFlow is not imported yet.

    A user's own TF_CPP_MIN_LOG_LEVEL is kept. TensorFlow's C++ code (the CPU-feature
    notice at import, grappler's "Number of eligible GPUs" at every conversion) writes to
    stderr past Python logging, so -q cannot reach it. It reads TF_CPP_MIN_LOG_LEVEL once,
    while TensorFlow is imported, so this only helps before that import: the CLI may call
    it before importing a user's module.

    NOTE: TensorFlow 2.21 prints its oneDNN notice before its logging reads the variable;
    only TF_ENABLE_ONEDNN_OPTS=0 hides it, which changes the numbers, so it stays.
    """
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow() -> tuple[Any, Any]:
    """Import tensorflow and tf2onnx, or fail with the exact install command."""
    quiet_native_logs()
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ConvertError(
            "The tensorflow adapter needs TensorFlow, which is not installed: "
            f"{TENSORFLOW_INSTALL_HINT}"
        ) from e
    try:
        import tf2onnx
    except ImportError as e:
        raise ConvertError(
            f"The tensorflow adapter needs tf2onnx, which is not installed: "
            f"{TENSORFLOW_INSTALL_HINT}"
        ) from e
    return tf, tf2onnx


@contextlib.contextmanager
def _quiet_python_logs() -> Iterator[None]:
    """Raise TensorFlow's, tf2onnx's and absl's loggers to our own level for the block.

    tf2onnx calls TensorFlow 1 APIs whose deprecation notices TensorFlow logs at WARNING;
    with ``-q`` (our level ERROR) they are noise. Their loggers are never made louder, and
    get their own levels back afterwards.
    """
    level = logger.getEffectiveLevel()
    saved = [(log, log.level) for log in map(logging.getLogger, _FRAMEWORK_LOGGERS)]
    for log, _ in saved:
        if log.getEffectiveLevel() < level:
            log.setLevel(level)
    try:
        yield
    finally:
        for log, previous in saved:
            log.setLevel(previous)


def _has_signatures(model: object, tf: Any) -> bool:
    """Whether `model` is what tf.saved_model.load returns: a map of signature functions."""
    signatures = getattr(model, "signatures", None)
    if not isinstance(signatures, Mapping) or not signatures:
        return False
    concrete = tf.types.experimental.ConcreteFunction
    return all(isinstance(f, concrete) for f in signatures.values())


def _is_saved_model_dir(path: str | os.PathLike) -> bool:
    path = os.fspath(path)
    return os.path.isdir(path) and any(
        os.path.isfile(os.path.join(path, name)) for name in SAVED_MODEL_FILES
    )


# --- sources -------------------------------------------------------------------------------


def _make_source(model: Any, tf: Any, signature_key: str) -> _Source:
    """Reduce any accepted model kind to a _Source."""
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return _keras_source(model, keras)
    experimental = tf.types.experimental
    if isinstance(model, experimental.PolymorphicFunction):
        return _function_source(model)
    if isinstance(model, experimental.ConcreteFunction):
        return _concrete_source(model, f"ConcreteFunction {model.name!r}")
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not _is_saved_model_dir(path):
            raise ConvertError(
                f"tensorflow: {path!r} is not a SavedModel directory (no "
                f"{' or '.join(SAVED_MODEL_FILES)} in it)"
            )
        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:
            raise ConvertError(
                f"tensorflow: cannot load the SavedModel {path!r}: {first_line(e)}"
            ) from e
        return _saved_model_source(loaded, f"SavedModel {path!r}", signature_key)
    if _has_signatures(model, tf):
        return _saved_model_source(model, "the loaded SavedModel", signature_key)
    raise TypeError(
        "expected a keras.Model, a tf.function, a ConcreteFunction or a SavedModel "
        f"directory, got {type(model).__name__}"
    )


def _keras_source(model: Any, keras: Any) -> _Source:
    """A Keras model: names from its Input layers, called as model(x) or model([x1, ...])."""
    if keras.backend.backend() != "tensorflow":
        raise ConvertError(
            f"tensorflow: the Keras model {model.name!r} runs on the "
            f"{keras.backend.backend()!r} backend; export it with KERAS_BACKEND=tensorflow "
            "(or use that backend's adapter)"
        )
    kind = type(model).__name__
    description = f"{kind} {model.name!r}"
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):
        inputs = []  # a subclassed model, or a Sequential model without inputs yet
    names = [t.name for t in inputs]
    if not names or any(_AUTO_KERAS_NAME.match(n) for n in names):
        names = None
    dtypes = [t.dtype for t in inputs] or None

    output_names = None
    if isinstance(model, keras.Sequential) and model.layers:
        output_names = [model.layers[-1].name]
    elif getattr(model, "output_names", None):
        output_names = list(model.output_names)

    def call(tensors: list[Any]) -> Any:
        return model(tensors[0] if len(tensors) == 1 else list(tensors), training=False)

    return _Source(
        description,
        names,
        dtypes,
        None,
        call,
        output_names,
        layer_names=frozenset(_keras_layer_names(model)),
        float_dtype=getattr(model, "compute_dtype", None),
    )


def _keras_layer_names(layer: Any) -> list[str]:
    """The names of a Keras layer's sublayers, depth first (nested models included)."""
    names = []
    for sublayer in getattr(layer, "layers", None) or []:
        names.append(sublayer.name)
        names.extend(_keras_layer_names(sublayer))
    return names


def _function_source(function: Any) -> _Source:
    """A tf.function: its input signature when it has one, else traced from the sample."""
    name = getattr(function, "__name__", None) or "function"
    description = f"tf.function {name!r}"
    signature = function.input_signature
    params = _param_names(function.python_function)
    if signature is None:
        return _Source(description, None, None, None, lambda t: function(*t))

    specs = list(signature)
    _check_flat_specs(specs, description)
    names = [
        _clean_name(spec.name)
        if spec.name
        else (params[i] if i < len(params) else f"input_{i}")
        for i, spec in enumerate(specs)
    ]
    return _Source(
        description,
        names,
        [spec.dtype for spec in specs],
        [tuple(spec.shape.as_list()) for spec in specs],
        lambda t: function(*t),
    )


def _concrete_source(function: Any, description: str) -> _Source:
    """A ConcreteFunction: flat positional tensor arguments, or keyword-only (signatures)."""
    args, kwargs = function.structured_input_signature
    if args and kwargs:
        raise ConvertError(
            f"tensorflow: {description} takes both positional and keyword tensors; "
            "export a function that takes one kind"
        )
    if kwargs:
        names = sorted(kwargs)  # NOTE: the order TensorFlow flattens keyword arguments in
        specs = [kwargs[n] for n in names]
        _check_flat_specs(specs, description)

        def call(tensors: list[Any]) -> Any:
            return function(**dict(zip(names, tensors, strict=True)))

    else:
        specs = list(args)
        _check_flat_specs(specs, description)
        names = [_clean_name(s.name) if s.name else f"input_{i}" for i, s in enumerate(specs)]

        def call(tensors: list[Any]) -> Any:
            return function(*tensors)

    return _Source(
        description,
        names,
        [spec.dtype for spec in specs],
        [tuple(spec.shape.as_list()) for spec in specs],
        call,
    )


def _saved_model_source(loaded: Any, description: str, signature_key: str) -> _Source:
    signatures = loaded.signatures
    if signature_key not in signatures:
        raise ConvertError(
            f"tensorflow: {description} has no signature {signature_key!r}; it has "
            f"{', '.join(sorted(signatures)) or 'none'} (pass signature_key=...)"
        )
    source = _concrete_source(
        signatures[signature_key], f"{description} (signature {signature_key!r})"
    )
    source.owner = loaded
    return source


def _check_flat_specs(specs: Sequence[Any], description: str) -> None:
    tf = sys.modules["tensorflow"]
    for i, spec in enumerate(specs):
        if not isinstance(spec, tf.TensorSpec):
            raise ConvertError(
                f"tensorflow: argument {i} of {description} is a {type(spec).__name__}; "
                "only flat dense tensor arguments (tf.TensorSpec) can be exported"
            )
        if spec.shape.rank is None:
            raise ConvertError(
                f"tensorflow: argument {i} of {description} has an unknown rank; give its "
                "tf.TensorSpec a shape (None for dynamic dims)"
            )


def _param_names(function: Callable[..., Any]) -> list[str]:
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.name != "self"]


# --- samples, signature --------------------------------------------------------------------


def _input_names(
    source: _Source, arrays: list[np.ndarray], sample_names: list[str] | None
) -> list[str]:
    """The graph input names: the model's, else the sample dict's keys, else input[_i]."""
    if source.input_names is not None:
        if len(arrays) != len(source.input_names):
            raise ConvertError(
                f"tensorflow: {source.description} takes {len(source.input_names)} "
                f"input(s) ({', '.join(source.input_names)}), got {len(arrays)} sample "
                "input(s)"
            )
        return list(source.input_names)
    if sample_names is not None:
        bad = [n for n in sample_names if not _TF_NAME.match(n)]
        if bad:
            raise ConvertError(
                f"tensorflow: sample input names {bad} are not valid TensorFlow names "
                "(letters, digits, '_', '.', '-', '/')"
            )
        return list(sample_names)
    return ["input"] if len(arrays) == 1 else [f"input_{i}" for i in range(len(arrays))]


def _order_samples(
    arrays: list[np.ndarray],
    sample_names: list[str] | None,
    input_names: list[str],
    description: str,
) -> list[np.ndarray]:
    """Put dict samples in input order; a sequence is taken as already in order."""
    if sample_names is None:
        return arrays
    if set(sample_names) != set(input_names):
        raise ConvertError(
            f"tensorflow: sample inputs {sample_names} do not match the inputs "
            f"{input_names} of {description}"
        )
    by_name = dict(zip(sample_names, arrays, strict=True))
    return [by_name[n] for n in input_names]


def _cast_samples(
    arrays: list[np.ndarray], source: _Source, input_names: list[str], tf: Any
) -> list[np.ndarray]:
    """Cast the samples to the declared dtypes where that keeps their kind of value."""
    if source.input_dtypes is None:
        if source.float_dtype is None:
            return [np.ascontiguousarray(a) for a in arrays]
        wanted = np.dtype(tf.as_dtype(source.float_dtype).as_numpy_dtype)
        return [
            np.ascontiguousarray(a.astype(wanted) if a.dtype.kind == "f" else a)
            for a in arrays
        ]
    out = []
    for name, array, dtype in zip(input_names, arrays, source.input_dtypes, strict=True):
        wanted = np.dtype(tf.as_dtype(dtype).as_numpy_dtype)
        if array.dtype != wanted:
            if not np.can_cast(array.dtype, wanted, casting="same_kind"):
                raise ConvertError(
                    f"tensorflow: input {name!r} of {source.description} is {wanted.name}, "
                    f"the sample is {array.dtype.name}; pass a {wanted.name} sample"
                )
            logger.debug("tensorflow: sample %r cast %s -> %s", name, array.dtype, wanted)
            array = array.astype(wanted)
        out.append(np.ascontiguousarray(array))
    return out


def _resolve_axes(
    dynamic_axes: object, source: _Source, input_names: list[str], arrays: list[np.ndarray]
) -> dict[str, dict[int, str]]:
    """The dynamic axes of the signature to trace with, checked against a declared one."""
    for name, array, shape in zip(
        input_names, arrays, source.input_shapes or [], strict=False
    ):
        if len(shape) != array.ndim or any(
            d is not None and d != n for d, n in zip(shape, array.shape, strict=True)
        ):
            raise ConvertError(
                f"tensorflow: input {name!r} of {source.description} has the signature "
                f"shape {format_shape(_dims(shape))}, the sample {format_shape(array.shape)}"
            )
    if dynamic_axes is None and source.input_shapes is not None:
        return {
            name: {
                axis: DEFAULT_BATCH_NAME if axis == 0 else f"{name}_dim{axis}"
                for axis, d in enumerate(shape)
                if d is None
            }
            for name, shape in zip(input_names, source.input_shapes, strict=True)
            if None in shape
        }

    axes = normalize_dynamic_axes(dynamic_axes, input_names, arrays)
    for name, shape in zip(input_names, source.input_shapes or [], strict=False):
        static = [axis for axis in axes.get(name, {}) if shape[axis] is not None]
        if static:
            raise ConvertError(
                f"tensorflow: dynamic_axes asks for axis {static[0]} of input {name!r} to be "
                f"dynamic, but the input signature of {source.description} fixes it: "
                f"{format_shape(_dims(shape))}. Give the signature None there, or leave the "
                "axis out of dynamic_axes"
            )
    return axes


def _spec_shape(shape: tuple[int, ...], axes: dict[int, str]) -> list[int | None]:
    return [None if axis in axes else int(n) for axis, n in enumerate(shape)]


def _dims(shape: Sequence[int | None] | Any) -> tuple[int | str, ...]:
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    return tuple("?" if d is None else d for d in dims)


# --- running the model ---------------------------------------------------------------------


def _make_runner(source: _Source, tf: Any) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """run_framework: the model on numpy inputs, outputs flattened in graph-output order."""

    def run_framework(inputs: list[np.ndarray]) -> list[np.ndarray]:
        tensors = [tf.convert_to_tensor(np.ascontiguousarray(a)) for a in inputs]
        return [np.asarray(t) for _, t in _flatten_outputs(source.call(tensors), tf)]

    return run_framework


def _flatten_outputs(outputs: Any, tf: Any) -> list[tuple[str | None, Any]]:
    """(name or None, tensor) pairs; dict outputs named by key, in TensorFlow's key order."""
    if isinstance(outputs, dict):
        return [(str(key), outputs[key]) for key in sorted(outputs, key=str)]
    flat = tf.nest.flatten(outputs)
    for item in flat:
        if not tf.is_tensor(item) and not isinstance(item, np.ndarray):
            raise ConvertError(
                f"tensorflow: the model returned a {type(item).__name__} among its outputs; "
                "only tensors (in lists, tuples or dicts) can be graph outputs"
            )
    return [(None, item) for item in flat]


def _run_sample(
    source: _Source, arrays: list[np.ndarray], tf: Any
) -> list[tuple[str | None, Any]]:
    tensors = [tf.convert_to_tensor(a) for a in arrays]
    try:
        flat = _flatten_outputs(source.call(tensors), tf)
    except ConvertError:
        raise
    except Exception as e:
        shapes = ", ".join(f"{a.dtype.name}{format_shape(a.shape)}" for a in arrays)
        raise ConvertError(
            f"tensorflow: running {source.description} on the sample inputs ({shapes}) "
            f"failed: {type(e).__name__}: {first_line(e)}"
        ) from e
    if not flat:
        raise ConvertError(f"tensorflow: {source.description} returned no tensors")
    return flat


def _output_names(source: _Source, flat: list[tuple[str | None, Any]]) -> list[str]:
    """Dict keys, else the model's output names, else output / output_0, output_1, ..."""
    if all(name is not None for name, _ in flat):
        names = [name for name, _ in flat]
    elif source.output_names is not None and len(source.output_names) == len(flat):
        names = list(source.output_names)
    else:
        names = ["output"] if len(flat) == 1 else [f"output_{i}" for i in range(len(flat))]
    unique: list[str] = []
    for name in names:
        name = _clean_name(name)
        candidate, i = name, 1
        while candidate in unique:
            candidate, i = f"{name}_{i}", i + 1
        unique.append(candidate)
    return unique


# --- conversion ----------------------------------------------------------------------------


def _convert(
    tf: Any,
    tf2onnx: Any,
    source: _Source,
    specs: list[Any],
    output_names: list[str],
    opset: int,
) -> onnx.ModelProto:
    """Trace the model under the signature, freeze it and convert it with tf2onnx."""

    def traced(*tensors: Any) -> dict[str, Any]:
        flat = _flatten_outputs(source.call(list(tensors)), tf)
        # NOTE: tf2onnx names graph outputs after the keys of a dict output
        return {name: tf.identity(t) for name, (_, t) in zip(output_names, flat, strict=True)}

    # step 1: trace; the signature's tensors come first among the inputs, captures after
    function = tf.function(traced, input_signature=specs, autograph=False)
    try:
        concrete = function.get_concrete_function()
    except Exception as e:
        raise ConvertError(
            f"tensorflow: tracing {source.description} with the input signature "
            f"{[(s.name, _dims(s.shape)) for s in specs]} failed: {type(e).__name__}: "
            f"{first_line(e)}"
        ) from e
    input_tensors = [t.name for t in concrete.inputs[: len(specs)]]
    output_tensors = [t.name for t in concrete.outputs]
    renames = tf2onnx.convert.tensor_names_from_structed(
        concrete, input_tensors, output_tensors
    )

    # step 2: freeze (variables and captured tensors become constants), then convert
    # NOTE: not tf2onnx.convert.from_function, which keeps captured tensors as graph inputs
    try:
        frozen = tf2onnx.tf_loader.from_function(concrete, input_tensors, output_tensors)
        onnx_model, _ = tf2onnx.convert.from_graph_def(
            frozen,
            name=source.description,
            input_names=input_tensors,
            output_names=output_tensors,
            opset=opset,
            tensors_to_rename=renames,
        )
    except Exception as e:
        raise ConvertError(
            f"tf2onnx failed on {source.description} (opset {opset}): "
            f"{type(e).__name__}: {first_line(e)}"
        ) from e
    # TODO(exporters): a model over 2 GB needs tf2onnx's large_model (external data) path;
    # refuse it with a clear ConvertError instead of protobuf's serialisation error.
    return onnx_model


def _fix_value_names(
    onnx_model: onnx.ModelProto,
    input_names: list[str],
    output_names: list[str],
    description: str,
) -> None:
    """Graph inputs and outputs named exactly as the user knows them, outputs in order."""
    graph = onnx_model.graph
    for value in [*graph_inputs(onnx_model), *graph.output]:
        clean = _TENSOR_SUFFIX.sub("", value.name)
        if clean != value.name:
            rename_value(graph, value.name, clean)

    got_inputs = [value.name for value in graph_inputs(onnx_model)]
    got_outputs = sorted(value.name for value in graph.output)
    if got_inputs != input_names or got_outputs != sorted(output_names):
        raise ConvertError(
            f"tensorflow: tf2onnx named the graph of {description} inputs {got_inputs}, "
            f"outputs {got_outputs}; expected inputs {input_names}, outputs {output_names}"
        )
    by_name = {value.name: value for value in graph.output}
    ordered = [onnx.ValueInfoProto() for _ in output_names]
    for value, name in zip(ordered, output_names, strict=True):
        value.CopyFrom(by_name[name])
    del graph.output[:]
    graph.output.extend(ordered)


def _name_dynamic_dims(onnx_model: onnx.ModelProto, axes: dict[str, dict[int, str]]) -> None:
    """Give the dynamic input dims the requested names (tf2onnx calls them unk__N).

    Output dims follow: tf2onnx gives them names of their own, so each unnamed or unk__N
    output dim takes the name ONNX shape inference derives for it from the inputs, and an
    unk__N name it cannot derive is dropped (the dim reads as unknown, not as a symbol that
    ties it to nothing).
    """
    names: set[str] = set()
    for value in graph_inputs(onnx_model):
        dims = value.type.tensor_type.shape.dim
        for axis, name in axes.get(value.name, {}).items():
            dim = dims[axis]
            if dim.HasField("dim_value"):
                raise ConvertError(
                    f"tensorflow: axis {axis} of input {value.name!r} was traced as dynamic "
                    f"but tf2onnx made it static ({dim.dim_value})"
                )
            dim.dim_param = name
            names.add(name)
    if not names:
        return

    probe = onnx.ModelProto()
    probe.CopyFrom(onnx_model)
    for value in probe.graph.output:
        value.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True).graph.output
    except Exception as e:  # inference is a nicety here; the packager infers again
        logger.debug("tensorflow: no output dim names (shape inference: %s)", first_line(e))
        return
    for value, guess in zip(onnx_model.graph.output, inferred, strict=True):
        dims = value.type.tensor_type.shape.dim
        guessed = guess.type.tensor_type.shape.dim
        if len(guessed) != len(dims):
            continue
        for dim, hint in zip(dims, guessed, strict=True):
            unnamed = not dim.HasField("dim_value") and (
                not dim.dim_param or dim.dim_param.startswith("unk__")
            )
            if unnamed and hint.dim_param in names:
                dim.dim_param = hint.dim_param
            elif dim.dim_param.startswith("unk__"):
                dim.ClearField("dim_param")


def _layer_of(node_name: str, layer_names: frozenset[str]) -> str:
    """The layer a TensorFlow node name points into: 'seq/log_gamma_1/Lgamma' -> 'log_gamma'.

    TensorFlow name scopes add '_1', '_2', ... to a layer's name when it is traced again;
    the innermost scope that is a known layer name (with or without that suffix) wins, else
    the scope just above the op.
    """
    scopes = [p for p in node_name.split("/") if p][:-1]
    for scope in reversed(scopes):
        for name in (scope, _SCOPE_SUFFIX.sub("", scope)):
            if name in layer_names:
                return name
    return scopes[-1] if scopes else ""


def _clean_name(name: str) -> str:
    return _TENSOR_SUFFIX.sub("", name)


