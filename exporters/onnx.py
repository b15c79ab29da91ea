"""The ONNX pass-through adapter, and the ONNX checks every adapter's output goes through.

`OnnxAdapter` takes an ``onnx.ModelProto`` or a path to a ``.onnx`` file (external data
is loaded, so the weights end up inline), checks the sample inputs against the graph inputs
(count, dtype, rank, static dims) and reports the dynamic axes the graph already declares.
It has no framework model, so ``run_framework`` is None.

`finalize_onnx_model` is the common exit for every adapter: it inlines local functions,
drops unused opset imports, refuses nodes outside ai.onnx / ai.onnx.ml (but for the
runtime's ai.onnx.preview ops) and external data, and runs the ONNX checker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np
import onnx
import onnx.external_data_helper
import onnx.inliner
import onnx.version_converter

from ..errors import ConvertError, UnsupportedOpError, first_line
from .registry import ExportedModel
from .sample_inputs import format_shape, normalize_dynamic_axes, normalize_sample_inputs

__all__ = [
    "ALLOWED_DOMAINS",
    "OnnxAdapter",
    "check_domains",
    "declared_dynamic_axes",
    "default_opset",
    "finalize_onnx_model",
    "graph_inputs",
    "is_onnx_model",
    "value_shape",
]

logger = logging.getLogger(__name__)

# "" and "ai.onnx" are the same default domain.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
# Accepted only for the ops the runtime lists under it (FlexAttention).
PREVIEW_DOMAIN = "ai.onnx.preview"


def is_onnx_model(model: object) -> bool:
    """Detect an ``onnx.ModelProto`` or a str/PathLike path ending in ``.onnx``."""
    if isinstance(model, onnx.ModelProto):
        return True
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model).lower().endswith(".onnx")
    return False


class OnnxAdapter:
    """Pass an existing ONNX model through, checking it and its sample inputs."""

    name = "onnx"
    model_kind = "an ONNX model"

    def export(
        self,
        model: onnx.ModelProto | str | os.PathLike,
        sample_inputs: object,
        *,
        dynamic_axes: object = None,
        opset: int | None = None,
        external_data_dir: str | os.PathLike | None = None,
    ) -> ExportedModel:
        """Check an ONNX model and its sample inputs, and return them as an ExportedModel.

        Args:
            model: an ``onnx.ModelProto`` (copied, never modified) or a path to a .onnx file.
            sample_inputs: an array, a tuple/list of arrays, or a dict graph-input name ->
                array.
            dynamic_axes: only checked: an axis requested dynamic must be dynamic in the
                graph. None skips the check. The graph's own dims are kept as declared.
            opset: convert to this ai.onnx opset with the ONNX version converter.
            external_data_dir: where the external data of an in-memory ModelProto lives.

        Returns:
            The ExportedModel, with ``run_framework=None``.

        Raises:
            ConvertError: unreadable file, unresolved external data, failed opset
                conversion, invalid model, or samples that do not fit the graph inputs.
            UnsupportedOpError: a node outside ai.onnx / ai.onnx.ml.
        """
        # step 1: load, with the weights inline
        onnx_model = _load(model, external_data_dir)
        if opset is not None and default_opset(onnx_model) != opset:
            onnx_model = _convert_opset(onnx_model, opset)
        onnx_model = finalize_onnx_model(onnx_model, framework="onnx")

        # step 2: line the samples up with the graph inputs and check them
        inputs = graph_inputs(onnx_model)
        input_names = [value.name for value in inputs]
        arrays = _order_samples(sample_inputs, input_names)
        for value, array in zip(inputs, arrays, strict=True):
            _check_sample(value, array)
        _check_symbolic_dims(inputs, arrays)

        # step 3: report the dynamic axes the graph declares; check the user's against them
        _name_unnamed_dims(onnx_model)
        declared = declared_dynamic_axes(onnx_model)
        logger.info("onnx graph declares dynamic axes %s", declared or "none")
        if dynamic_axes is not None:
            requested = normalize_dynamic_axes(dynamic_axes, input_names, arrays)
            _check_requested_axes(requested, declared, inputs)

        return ExportedModel(
            onnx_model=onnx_model,
            framework="onnx",
            input_names=input_names,
            output_names=[value.name for value in onnx_model.graph.output],
            sample_inputs=arrays,
            dynamic_axes=declared,
            run_framework=None,
        )


def finalize_onnx_model(onnx_model: onnx.ModelProto, *, framework: str) -> onnx.ModelProto:
    """Make an exported model self-contained and check it; the common exit of all adapters.

    Inlines local functions, drops opset imports no node uses, then checks: domains
    (ai.onnx / ai.onnx.ml only), no external data, a default-domain opset, and the ONNX
    checker (``full_check=False``).

    Raises:
        UnsupportedOpError: a node outside the allowed domains.
        ConvertError: external data, no ai.onnx opset, or a checker failure.
    """
    if onnx_model.functions:
        logger.debug("inlining %d local function(s)", len(onnx_model.functions))
        onnx_model = onnx.inliner.inline_local_functions(onnx_model)
        del onnx_model.functions[:]
    _drop_unused_opsets(onnx_model)
    check_domains(onnx_model, framework=framework)

    if default_opset(onnx_model) == 0:
        raise ConvertError(f"{framework}: the ONNX model imports no ai.onnx opset")
    external = [t.name for t in _iter_tensors(onnx_model.graph) if _is_external(t)]
    if external:
        raise ConvertError(
            f"{framework}: tensor(s) {', '.join(external[:5])} still reference external "
            "data; load it first (onnx.load(path) or external_data_dir=...)"
        )
    try:
        onnx.checker.check_model(onnx_model, full_check=False)
    except onnx.checker.ValidationError as e:
        raise ConvertError(
            f"{framework}: the ONNX model fails onnx.checker: {first_line(e)}"
        ) from e
    return onnx_model


def check_domains(onnx_model: onnx.ModelProto, *, framework: str) -> None:
    """Raise UnsupportedOpError for the first node outside ai.onnx / ai.onnx.ml (and the
    runtime's ops of ai.onnx.preview)."""
    from ..packager.runtime_info import supported_op_types

    opset = default_opset(onnx_model)
    previews = sorted(op for d, op in supported_op_types() if d == PREVIEW_DOMAIN)
    # the onnx pass-through exports nothing: the node was in the user's own model
    origin = "from the ONNX file" if framework == "onnx" else f"from the {framework} export"
    for graph in iter_graphs(onnx_model.graph):
        for node in graph.node:
            if node.domain == PREVIEW_DOMAIN and node.op_type in previews:
                continue
            if node.domain not in ALLOWED_DOMAINS:
                raise UnsupportedOpError(
                    f"Cannot convert node {node.name!r} ({node.domain}::{node.op_type}, "
                    f"{origin}): only the ai.onnx and ai.onnx.ml "
                    f"domains are supported (and of {PREVIEW_DOMAIN}: "
                    f"{', '.join(previews)})",
                    node=node.name,
                    op_type=node.op_type,
                    opset=opset,
                )


def graph_inputs(onnx_model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """The real graph inputs: graph.input without initializers listed as inputs."""
    initializers = {t.name for t in onnx_model.graph.initializer}
    return [value for value in onnx_model.graph.input if value.name not in initializers]


def value_shape(value: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    """A tensor value's shape (ints, symbolic names, None if unknown); None if unranked."""
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        elif dim.dim_param:
            dims.append(dim.dim_param)
        else:
            dims.append(None)
    return tuple(dims)


def declared_dynamic_axes(onnx_model: onnx.ModelProto) -> dict[str, dict[int, str]]:
    """Graph input name -> {axis: symbolic name} for every non-static input dim."""
    declared: dict[str, dict[int, str]] = {}
    for value in graph_inputs(onnx_model):
        shape = value_shape(value) or ()
        axes = {axis: d or f"{value.name}_dim{axis}" for axis, d in enumerate(shape)}
        axes = {axis: d for axis, d in axes.items() if isinstance(d, str)}
        if axes:
            declared[value.name] = axes
    return declared


def default_opset(onnx_model: onnx.ModelProto) -> int:
    """The ai.onnx opset version the model imports (0 if none)."""
    for opset_id in onnx_model.opset_import:
        if opset_id.domain in ("", "ai.onnx"):
            return opset_id.version
    return 0


def _load(
    model: onnx.ModelProto | str | os.PathLike, external_data_dir: str | os.PathLike | None
) -> onnx.ModelProto:
    """A private copy of the model, with external data loaded."""
    if isinstance(model, onnx.ModelProto):
        onnx_model = onnx.ModelProto()
        onnx_model.CopyFrom(model)
        has_external = any(_is_external(t) for t in _iter_tensors(onnx_model.graph))
        if has_external and external_data_dir is not None:
            try:
                onnx.external_data_helper.load_external_data_for_model(
                    onnx_model, os.fspath(external_data_dir)
                )
            except OSError as e:
                raise ConvertError(
                    f"onnx: cannot load external data from {os.fspath(external_data_dir)!r}: "
                    f"{e}"
                ) from e
        return onnx_model
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(
            f"expected onnx.ModelProto or a .onnx path, got {type(model).__name__}"
        )

    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ConvertError(f"onnx: no such file {path!r}")
    try:
        return onnx.load(path, load_external_data=True)
    except Exception as e:  # DecodeError, OSError for missing data files, ...
        raise ConvertError(f"onnx: cannot load {path!r}: {first_line(e)}") from e


def _convert_opset(onnx_model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    current = default_opset(onnx_model)
    try:
        converted = onnx.version_converter.convert_version(onnx_model, opset)
    except Exception as e:
        raise ConvertError(
            f"onnx: cannot convert the model from opset {current} to {opset}: "
            f"{first_line(e)}; pass opset=None to keep opset {current}"
        ) from e
    logger.info("converted the onnx model from opset %d to %d", current, opset)
    return converted


def _order_samples(sample_inputs: object, input_names: list[str]) -> list[np.ndarray]:
    """Normalise the samples and put them in graph-input order (dict samples by name)."""
    arrays, names = normalize_sample_inputs(sample_inputs)
    if names is not None:
        unknown = [n for n in names if n not in input_names]
        missing = [n for n in input_names if n not in names]
        if unknown or missing:
            raise ConvertError(
                f"onnx: sample inputs {names} do not match the graph inputs {input_names} "
                f"(unknown: {unknown or 'none'}, missing: {missing or 'none'})"
            )
        by_name = dict(zip(names, arrays, strict=True))
        arrays = [by_name[n] for n in input_names]
    if len(arrays) != len(input_names):
        raise ConvertError(
            f"onnx: the graph has {len(input_names)} input(s) ({', '.join(input_names)}), "
            f"got {len(arrays)} sample input(s)"
        )
    return arrays


def _check_sample(value: onnx.ValueInfoProto, array: np.ndarray) -> None:
    """Check one sample's dtype, rank and static dims against its graph input."""
    if value.type.WhichOneof("value") != "tensor_type":
        raise ConvertError(
            f"input {value.name!r}: only tensor graph inputs are supported, "
            f"got {value.type.WhichOneof('value')}"
        )
    elem_type = value.type.tensor_type.elem_type
    expected_dtype = _np_dtype(elem_type)
    shape = value_shape(value)
    got = f"{array.dtype.name} {format_shape(array.shape)}"
    expected = (
        f"{_dtype_name(elem_type)} {format_shape(shape) if shape is not None else '(?)'}"
    )

    if elem_type == onnx.TensorProto.STRING:
        dtype_ok = array.dtype.kind in "USO"
    else:
        dtype_ok = expected_dtype is not None and array.dtype == expected_dtype
    rank_ok = shape is None or len(shape) == array.ndim
    dims_ok = rank_ok and (
        shape is None
        or all(
            not isinstance(d, int) or d == n for d, n in zip(shape, array.shape, strict=True)
        )
    )
    if not (dtype_ok and dims_ok):
        raise ConvertError(f"input {value.name!r}: expected {expected}, got {got}")


def _check_symbolic_dims(
    inputs: Sequence[onnx.ValueInfoProto], arrays: Sequence[np.ndarray]
) -> None:
    """A symbolic dim shared by several inputs must have one size across the samples."""
    seen: dict[str, tuple[str, int, int]] = {}
    for value, array in zip(inputs, arrays, strict=True):
        for axis, dim in enumerate(value_shape(value) or ()):
            if not isinstance(dim, str):
                continue
            size = array.shape[axis]
            first = seen.setdefault(dim, (value.name, axis, size))
            if first[2] != size:
                raise ConvertError(
                    f"input {value.name!r}: dim {dim!r} (axis {axis}) is {size} in the "
                    f"sample, but {first[2]} in input {first[0]!r} (axis {first[1]})"
                )


def _check_requested_axes(
    requested: dict[str, dict[int, str]],
    declared: dict[str, dict[int, str]],
    inputs: Sequence[onnx.ValueInfoProto],
) -> None:
    """The pass-through cannot change dims: a requested dynamic axis must be dynamic."""
    shapes = {value.name: value_shape(value) for value in inputs}
    for name, axes in requested.items():
        for axis, dim_name in axes.items():
            has = declared.get(name, {}).get(axis)
            if has is None:
                raise ConvertError(
                    f"input {name!r}: dynamic_axes asks for axis {axis} ({dim_name!r}) to be "
                    f"dynamic, but the ONNX graph declares it static "
                    f"{format_shape(shapes[name] or ())}; the onnx adapter keeps the graph's "
                    "dims: re-export the model with that axis dynamic"
                )
            if has != dim_name:
                logger.warning(
                    "input %r axis %d: requested name %r, the graph calls it %r (kept)",
                    name,
                    axis,
                    dim_name,
                    has,
                )


def _name_unnamed_dims(onnx_model: onnx.ModelProto) -> None:
    """Give graph input dims with neither value nor name the name '<input>_dim<axis>'."""
    for value in graph_inputs(onnx_model):
        if not value.type.tensor_type.HasField("shape"):
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if not dim.HasField("dim_value") and not dim.dim_param:
                dim.dim_param = f"{value.name}_dim{axis}"
                logger.debug("named dim %d of input %r %r", axis, value.name, dim.dim_param)


def _drop_unused_opsets(onnx_model: onnx.ModelProto) -> None:
    """Remove opset imports of domains no node uses (the default domain always stays)."""
    used = {node.domain for graph in iter_graphs(onnx_model.graph) for node in graph.node}
    keep = [
        o for o in onnx_model.opset_import if o.domain in used or o.domain in ("", "ai.onnx")
    ]
    if len(keep) != len(onnx_model.opset_import):
        dropped = [o.domain for o in onnx_model.opset_import if o not in keep]
        logger.debug("dropped unused opset imports %s", dropped)
        del onnx_model.opset_import[:]
        onnx_model.opset_import.extend(keep)


def rename_value(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Rename a value everywhere: nodes (subgraphs too), graph inputs, outputs, value_info."""
    for g in iter_graphs(graph):
        for node in g.node:
            node.input[:] = [new if name == old else name for name in node.input]
            node.output[:] = [new if name == old else name for name in node.output]
        for value in [*g.input, *g.output, *g.value_info]:
            if value.name == old:
                value.name = new


def iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and, depth first, every subgraph of its nodes (If, Loop, Scan bodies)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from iter_graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    yield from iter_graphs(subgraph)


def _iter_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every initializer and tensor attribute of the graph and its subgraphs."""
    for g in iter_graphs(graph):
        yield from g.initializer
        for node in g.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.TENSOR:
                    yield attribute.t
                elif attribute.type == onnx.AttributeProto.TENSORS:
                    yield from attribute.tensors


def _is_external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _np_dtype(elem_type: int) -> np.dtype | None:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError):
        return None


def _dtype_name(elem_type: int) -> str:
    dtype = _np_dtype(elem_type)
    if dtype is None or elem_type == onnx.TensorProto.STRING:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    return dtype.name


