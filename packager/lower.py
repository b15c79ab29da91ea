"""Lower an ONNX model to a plan: checks, constants, shapes, attributes.

Steps (each a function below):
    1. check     domains and ops against what the runtime executes
    2. prepare   inline local functions, infer shapes, fold constants
    3. build     values (inputs, constants, activations), nodes, outputs
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import PackageError, UnsupportedOpError
from .fold import fold_constants
from .plan_format import (
    ATTR_FLOAT,
    ATTR_FLOATS,
    ATTR_INT,
    ATTR_INTS,
    ATTR_STRING,
    ATTR_STRINGS,
    ATTR_TENSOR,
    DIM_UNKNOWN,
    Attribute,
    PlanBuilder,
    PlanNode,
    PlanValue,
    ValueKind,
)
from .runtime_info import supported_op_types
from .support import check_model_support

__all__ = ["ALLOWED_DOMAINS", "check_ops", "lower", "opset_of"]

logger = logging.getLogger(__name__)

ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
_AP = onnx.AttributeProto


def opset_of(onnx_model: onnx.ModelProto, domain: str) -> int:
    """The model's opset version for a domain ("" and "ai.onnx" are the same)."""
    names = ("", "ai.onnx") if domain in ("", "ai.onnx") else (domain,)
    for imp in onnx_model.opset_import:
        if imp.domain in names:
            return imp.version
    return 0


def check_ops(onnx_model: onnx.ModelProto) -> None:
    """Refuse any node whose domain or op the runtime does not execute.

    Raises:
        UnsupportedOpError: naming the node, its op_type, domain and opset.
    """
    supported = supported_op_types()
    for node in onnx_model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue  # lowered to a constant value, never executed
        opset = opset_of(onnx_model, node.domain)
        where = f"node {node.name!r} ({node.op_type}, opset {opset})"
        if node.domain not in ALLOWED_DOMAINS:
            raise UnsupportedOpError(
                f"Cannot package {where}: domain {node.domain!r} is not ai.onnx or "
                "ai.onnx.ml. Convert the model without custom or framework-specific ops.",
                node=node.name,
                op_type=node.op_type,
                opset=opset,
            )
        key = ("" if node.domain == "ai.onnx" else node.domain, node.op_type)
        if key not in supported:
            known = ", ".join(sorted(op for d, op in supported if d == key[0]))
            raise UnsupportedOpError(
                f"Cannot package {where}: the runtime has no {node.op_type} kernel. "
                f"Supported ops: {known}.",
                node=node.name,
                op_type=node.op_type,
                opset=opset,
            )
    # dtypes and attribute values the kernels refuse (support.py)
    check_model_support(onnx_model, opset_of)


def _prepare(onnx_model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline local functions, name nodes, infer shapes and fold constants."""
    model = onnx.ModelProto()
    model.CopyFrom(onnx_model)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    model = fold_constants(_infer_shapes(model))
    return _infer_shapes(model)


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except onnx.shape_inference.InferenceError as e:
        raise PackageError(f"ONNX shape inference failed: {e}") from e


def _dims_of(type_proto: onnx.TypeProto) -> tuple[int | str, ...] | None:
    """Declared dims of a tensor type: int, symbol name, or DIM_UNKNOWN; None if no shape."""
    tensor = type_proto.tensor_type
    if not tensor.HasField("shape"):
        return None
    dims: list[int | str] = []
    for d in tensor.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.dim_param:
            dims.append(d.dim_param)
        else:
            dims.append(DIM_UNKNOWN)
    return tuple(dims)


def _attribute(attr: onnx.AttributeProto, node: onnx.NodeProto, add_constant) -> Attribute:
    """Convert one attribute; tensors become constants referenced by index."""
    t = attr.type
    if t == _AP.FLOAT:
        return Attribute(attr.name, ATTR_FLOAT, attr.f)
    if t == _AP.INT:
        return Attribute(attr.name, ATTR_INT, attr.i)
    if t == _AP.STRING:
        return Attribute(attr.name, ATTR_STRING, attr.s.decode("utf-8"))
    if t == _AP.FLOATS:
        return Attribute(attr.name, ATTR_FLOATS, list(attr.floats))
    if t == _AP.INTS:
        return Attribute(attr.name, ATTR_INTS, list(attr.ints))
    if t == _AP.STRINGS:
        return Attribute(attr.name, ATTR_STRINGS, [s.decode("utf-8") for s in attr.strings])
    if t == _AP.TENSOR:
        array = numpy_helper.to_array(attr.t)
        index = add_constant(f"{node.name}.{attr.name}", attr.t.data_type, array)
        return Attribute(attr.name, ATTR_TENSOR, index)
    raise UnsupportedOpError(
        f"Cannot package node {node.name!r} ({node.op_type}): attribute {attr.name!r} of "
        f"type {_AP.AttributeType.Name(t)} is not supported yet (subgraphs and sparse "
        "tensors come later).",
        node=node.name,
        op_type=node.op_type,
    )


def _constant_node_value(node: onnx.NodeProto) -> tuple[int, np.ndarray]:
    """The (dtype, array) a Constant node produces."""
    attr = node.attribute[0]
    if attr.name == "value":
        return attr.t.data_type, numpy_helper.to_array(attr.t)
    scalars = {
        "value_float": (onnx.TensorProto.FLOAT, np.float32),
        "value_floats": (onnx.TensorProto.FLOAT, np.float32),
        "value_int": (onnx.TensorProto.INT64, np.int64),
        "value_ints": (onnx.TensorProto.INT64, np.int64),
    }
    if attr.name in scalars:
        dtype, np_type = scalars[attr.name]
        return dtype, np.asarray(onnx.helper.get_attribute_value(attr), dtype=np_type)
    raise UnsupportedOpError(
        f"Cannot package node {node.name!r} (Constant): attribute {attr.name!r} is not "
        "supported yet.",
        node=node.name,
        op_type="Constant",
    )


def lower(onnx_model: onnx.ModelProto) -> tuple[PlanBuilder, onnx.ModelProto]:
    """Lower onnx_model to a plan; returns the plan and the prepared ONNX model.

    Raises:
        UnsupportedOpError: a node the runtime cannot execute.
        PackageError: the graph is malformed (unknown value, value written twice).
    """
    # step 1: prepare (inline, fold, infer) and check
    model = _prepare(onnx_model)
    check_ops(model)
    graph = model.graph
    plan = PlanBuilder()
    index: dict[str, int] = {}

    def add_constant(name: str, dtype: int, array: np.ndarray) -> int:
        value = PlanValue(name, dtype, ValueKind.CONSTANT, tuple(array.shape), array)
        index[name] = plan.add_value(value)
        return index[name]

    # step 2: graph inputs and initializers
    initializers = {t.name for t in graph.initializer}
    for inp in graph.input:
        if inp.name in initializers:
            continue
        if not inp.type.HasField("tensor_type"):
            raise PackageError(f"graph input {inp.name!r}: only tensor inputs are supported")
        dtype = inp.type.tensor_type.elem_type
        index[inp.name] = plan.add_value(
            PlanValue(inp.name, dtype, ValueKind.INPUT, _dims_of(inp.type))
        )
        plan.main.inputs.append(index[inp.name])
    for init in graph.initializer:
        add_constant(init.name, init.data_type, numpy_helper.to_array(init))

    # step 3: nodes; Constant nodes become constants
    shapes = {vi.name: vi.type for vi in (*graph.value_info, *graph.output)}
    for node in graph.node:
        opset = opset_of(model, node.domain)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            dtype, array = _constant_node_value(node)
            add_constant(node.output[0], dtype, array)
            continue
        inputs = []
        for name in node.input:
            if name and name not in index:
                raise PackageError(
                    f"node {node.name!r} ({node.op_type}) reads {name!r}, which no "
                    "earlier node, input or initializer defines"
                )
            inputs.append(index[name] if name else -1)
        outputs = []
        for name in node.output:
            if not name:
                outputs.append(-1)
                continue
            if name in index:
                raise PackageError(f"value {name!r} is written twice (node {node.name!r})")
            type_proto = shapes.get(name)
            dtype = type_proto.tensor_type.elem_type if type_proto is not None else 0
            dims = _dims_of(type_proto) if type_proto is not None else None
            index[name] = plan.add_value(
                PlanValue(name, dtype or onnx.TensorProto.FLOAT, ValueKind.ACTIVATION, dims)
            )
            outputs.append(index[name])
        attrs = [_attribute(a, node, add_constant) for a in node.attribute]
        domain = "" if node.domain == "ai.onnx" else node.domain
        plan.main.nodes.append(
            PlanNode(node.name, node.op_type, domain, opset, inputs, outputs, attrs)
        )
        logger.debug("lowered %s (%s, opset %d)", node.name, node.op_type, opset)

    # step 4: outputs
    for out in graph.output:
        if out.name not in index:
            raise PackageError(f"graph output {out.name!r} is never computed")
        plan.main.outputs.append(index[out.name])
    counts = Counter(n.op_type for n in plan.main.nodes)
    logger.info(
        "lowered %d nodes (%s), %d constants",
        len(plan.main.nodes),
        ", ".join(f"{op} x{c}" for op, c in sorted(counts.items())),
        sum(v.kind == ValueKind.CONSTANT for v in plan.values),
    )
    return plan, model
