"""Lower an ONNX model to a plan: checks, constants, shapes, attributes.

Steps (each a function below):
    1. check     domains and ops against what the runtime executes
    2. prepare   inline local functions, infer shapes, fold constants
    3. build     values (inputs, constants, activations), nodes, outputs
"""

from __future__ import annotations

import difflib
import logging
from collections import Counter

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import PackageError, UnsupportedOpError
from .fold import fold_constants
from .fuse import fuse
from .graph_walk import all_nodes, subgraphs
from .op_checks import check_node
from .pack import pack_weights
from .plan_format import (
    ATTR_FLOAT,
    ATTR_FLOATS,
    ATTR_GRAPH,
    ATTR_INT,
    ATTR_INTS,
    ATTR_STRING,
    ATTR_STRINGS,
    ATTR_TENSOR,
    DIM_UNKNOWN,
    Attribute,
    PlanBuilder,
    PlanGraph,
    PlanNode,
    PlanValue,
    TypeKind,
    ValueKind,
)
from .runtime_info import supported_op_types
from .support import check_model_support

__all__ = ["ALLOWED_DOMAINS", "check_ops", "lower", "opset_of"]

logger = logging.getLogger(__name__)

ALLOWED_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
# ai.onnx.preview is accepted only for the ops the runtime lists under it (FlexAttention).
PREVIEW_DOMAIN = "ai.onnx.preview"
_AP = onnx.AttributeProto
# TensorProto data types the runtime stores (FLOAT .. UINT64, BFLOAT16); complex, float8
# and 4-bit types are refused at export rather than at load.
RUNTIME_DTYPES = frozenset(range(1, 14)) | {onnx.TensorProto.BFLOAT16}


def _check_dtype(dtype: int, what: str, node: onnx.NodeProto | None = None) -> None:
    """Refuse a value whose dtype the runtime cannot hold (0 means not inferred)."""
    if dtype == 0 or dtype in RUNTIME_DTYPES:
        return
    name = (
        onnx.TensorProto.DataType.Name(dtype)
        if dtype in onnx.TensorProto.DataType.values()
        else str(dtype)
    )
    where = f"node {node.name!r} ({node.op_type}): " if node is not None else ""
    raise UnsupportedOpError(
        f"Cannot package {where}{what}: dtype {name} is not supported by the runtime "
        "(supported: float32, float64, float16, bfloat16, int8..int64, uint8..uint64, bool, "
        "string). "
        "Cast it in the model before exporting.",
        node=node.name if node is not None else "",
        op_type=node.op_type if node is not None else "",
    )


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
    graph = onnx_model.graph
    # dtypes of inputs, initializers and inferred values, for check_node's dtype check
    elem_types = {v.name: v.type.tensor_type.elem_type
                  for v in (*graph.input, *graph.value_info, *graph.output)}  # fmt: skip
    elem_types.update({t.name: t.data_type for t in graph.initializer})
    for node in all_nodes(onnx_model.graph):
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            continue  # lowered to a constant value, never executed
        opset = opset_of(onnx_model, node.domain)
        where = f"node {node.name!r} ({node.op_type}, opset {opset})"
        preview = node.domain == PREVIEW_DOMAIN and (node.domain, node.op_type) in supported
        if node.domain not in ALLOWED_DOMAINS and not preview:
            previews = ", ".join(sorted(op for d, op in supported if d == PREVIEW_DOMAIN))
            raise UnsupportedOpError(
                f"Cannot package {where}: domain {node.domain!r} is not ai.onnx or "
                f"ai.onnx.ml (of {PREVIEW_DOMAIN}, only {previews}). Convert the model "
                "without custom or framework-specific ops.",
                node=node.name,
                op_type=node.op_type,
                opset=opset,
            )
        key = ("" if node.domain == "ai.onnx" else node.domain, node.op_type)
        if key not in supported:
            known = sorted(op for d, op in supported if d == key[0])
            close = difflib.get_close_matches(node.op_type, known, n=3, cutoff=0.6)
            raise UnsupportedOpError(
                f"Cannot package {where}: the runtime has no {node.op_type} kernel"
                f"{' (close: ' + ', '.join(close) + ')' if close else ''}. Change the model "
                "so that it does without this op (e.g. compute random draws or custom "
                "steps outside it and pass them in as inputs); the runtime executes "
                f"{len(known)} ops of {key[0] or 'ai.onnx'}, listed by `wasmexport ops`.",
                node=node.name,
                op_type=node.op_type,
                opset=opset,
            )
        if key[0] == "":
            first = elem_types.get(node.input[0], 0) if node.input else 0
            check_node(node, opset, first)
    # dtypes and attribute values the kernels refuse (support.py)
    check_model_support(onnx_model, opset_of)


def _name_nodes(graph: onnx.GraphProto, prefix: str = "") -> None:
    """Give every unnamed node (also inside subgraphs) a name unique to its position."""
    for i, node in enumerate(graph.node):
        if not node.name:
            node.name = f"{prefix}{node.op_type}_{i}"
        for k, sub in enumerate(subgraphs(node)):
            _name_nodes(sub, f"{node.name}/{k}/")


def _prepare(onnx_model: onnx.ModelProto) -> onnx.ModelProto:
    """Inline local functions, name nodes, infer shapes and fold constants."""
    model = onnx.ModelProto()
    model.CopyFrom(onnx_model)
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    _name_nodes(model.graph)
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


def _value_type(type_proto: onnx.TypeProto, where: str) -> tuple[int, int, int, tuple | None]:
    """(type kind, dtype, map key dtype, dims) of a value's type.

    Tensors give their element dtype and dims; a map gives its value dtype and key dtype;
    a sequence of maps (ZipMap's output) the same with TypeKind.SEQ_MAP. A sequence of
    tensors gives the tensors' dtype and no dims (they may differ per tensor); an optional
    the kind, dtype and dims of what it holds, with an OPT_ kind.
    """
    which = type_proto.WhichOneof("value")
    kind = TypeKind.TENSOR
    if which == "optional_type":
        kind, dtype, _, dims = _value_type(type_proto.optional_type.elem_type, where)
        if kind not in (TypeKind.TENSOR, TypeKind.SEQ_TENSOR):
            raise PackageError(f"{where}: optionals must hold a tensor or a sequence")
        opt = TypeKind.OPT_TENSOR if kind == TypeKind.TENSOR else TypeKind.OPT_SEQ_TENSOR
        return opt, dtype, 0, dims if kind == TypeKind.TENSOR else None
    if which == "sequence_type":
        type_proto = type_proto.sequence_type.elem_type
        inner = type_proto.WhichOneof("value")
        if inner in ("tensor_type", None):
            return TypeKind.SEQ_TENSOR, type_proto.tensor_type.elem_type, 0, None
        if inner != "map_type":
            raise PackageError(f"{where}: sequences of {inner} are not supported")
        kind = TypeKind.SEQ_MAP
        which = "map_type"
    if which == "map_type":
        m = type_proto.map_type
        if m.key_type not in (onnx.TensorProto.INT64, onnx.TensorProto.STRING):
            raise PackageError(f"{where}: map keys must be int64 or string")
        if m.value_type.WhichOneof("value") != "tensor_type":
            raise PackageError(f"{where}: map values must be tensor elements")
        value_dtype = m.value_type.tensor_type.elem_type
        return (kind or TypeKind.MAP), value_dtype, m.key_type, None
    if which not in ("tensor_type", None):
        raise PackageError(f"{where}: values of type {which} are not supported")
    return TypeKind.TENSOR, type_proto.tensor_type.elem_type, 0, _dims_of(type_proto)


def _attribute(
    attr: onnx.AttributeProto, node: onnx.NodeProto, add_constant, add_graph=None
) -> Attribute:
    """Convert one attribute; tensors become constants and graphs plan graphs, by index."""
    t = attr.type
    if t == _AP.GRAPH and add_graph is not None:
        return Attribute(attr.name, ATTR_GRAPH, add_graph(attr.g, node))
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
        f"type {_AP.AttributeType.Name(t)} is not supported yet (lists of graphs and "
        "sparse tensors).",
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


class _Lowering:
    """Lowers graph 0 and, recursively, every subgraph into one PlanBuilder.

    Names resolve through a chain of scopes, innermost last: a body sees its own values,
    then those of the graphs enclosing it (outer-scope references), as ONNX defines.
    """

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.plan = PlanBuilder()
        self.scopes: list[dict[str, int]] = []

    def lookup(self, name: str) -> int | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def add_constant(self, name: str, dtype: int, array: np.ndarray) -> int:
        value = PlanValue(name, dtype, ValueKind.CONSTANT, tuple(array.shape), array)
        self.scopes[-1][name] = self.plan.add_value(value)
        return self.scopes[-1][name]

    def add_graph(self, graph: onnx.GraphProto, node: onnx.NodeProto) -> int:
        """Lower a subgraph of node into a new plan graph; returns its index."""
        index = len(self.plan.graphs)
        self.plan.graphs.append(PlanGraph())
        self.lower_graph(graph, index, where=f"{node.name!r} ({node.op_type})")
        return index

    def lower_graph(self, graph: onnx.GraphProto, gi: int, where: str = "") -> None:
        """Lower graph into plan graph gi: inputs, initializers, nodes, outputs."""
        plan_graph = self.plan.graphs[gi]
        scope: dict[str, int] = {}
        self.scopes.append(scope)
        body_of = f" of the body of node {where}" if where else ""

        # step 1: graph inputs and initializers
        initializers = {t.name for t in graph.initializer}
        for inp in graph.input:
            if inp.name in initializers:
                continue
            where = f"graph input {inp.name!r}{body_of}"
            kind, dtype, key, dims = _value_type(inp.type, where)
            if gi != 0 and kind in (TypeKind.MAP, TypeKind.SEQ_MAP):
                raise UnsupportedOpError(
                    f"Cannot package {where}: bodies take tensors, sequences of tensors "
                    "and optionals, not maps."
                )
            _check_dtype(dtype, where)
            scope[inp.name] = self.plan.add_value(
                PlanValue(inp.name, dtype, ValueKind.INPUT, dims, type_kind=kind,
                          key_dtype=key)
            )  # fmt: skip
            plan_graph.inputs.append(scope[inp.name])
        for init in graph.initializer:
            _check_dtype(init.data_type, f"initializer {init.name!r}{body_of}")
            self.add_constant(init.name, init.data_type, numpy_helper.to_array(init))

        # step 2: nodes; Constant nodes become constants
        shapes = {vi.name: vi.type for vi in (*graph.value_info, *graph.output)}
        for node in graph.node:
            self.lower_node(node, plan_graph, shapes)

        # step 3: outputs (a body may return an outer value or one of its inputs)
        for out in graph.output:
            index = self.lookup(out.name)
            if index is None:
                raise PackageError(f"graph output {out.name!r} is never computed")
            plan_graph.outputs.append(index)
        self.scopes.pop()

    def lower_node(self, node: onnx.NodeProto, plan_graph: PlanGraph, shapes) -> None:
        opset = opset_of(self.model, node.domain)
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            dtype, array = _constant_node_value(node)
            self.add_constant(node.output[0], dtype, array)
            return
        inputs = []
        for name in node.input:
            index = self.lookup(name) if name else -1
            if index is None:
                raise PackageError(
                    f"node {node.name!r} ({node.op_type}) reads {name!r}, which no "
                    "earlier node, input or initializer defines"
                )
            inputs.append(index)
        # subgraphs first: their values get indices after the node's inputs. Optional's
        # `type` (a TypeProto) only types an empty optional: the runtime needs none.
        attrs = [
            _attribute(a, node, self.add_constant, self.add_graph)
            for a in node.attribute
            if not (node.op_type == "Optional" and a.type == _AP.TYPE_PROTO)
        ]
        outputs = []
        for name in node.output:
            if not name:
                outputs.append(-1)
                continue
            if name in self.scopes[-1]:
                raise PackageError(f"value {name!r} is written twice (node {node.name!r})")
            type_proto = shapes.get(name)
            kind, dtype, key, dims = TypeKind.TENSOR, 0, 0, None
            if type_proto is not None:
                kind, dtype, key, dims = _value_type(type_proto, f"value {name!r}")
            _check_dtype(dtype, f"output {name!r}", node)
            self.scopes[-1][name] = self.plan.add_value(
                PlanValue(name, dtype or onnx.TensorProto.FLOAT, ValueKind.ACTIVATION, dims,
                          type_kind=kind, key_dtype=key)
            )  # fmt: skip
            outputs.append(self.scopes[-1][name])
        domain = "" if node.domain == "ai.onnx" else node.domain
        plan_graph.nodes.append(
            PlanNode(node.name, node.op_type, domain, opset, inputs, outputs, attrs)
        )
        logger.debug("lowered %s (%s, opset %d)", node.name, node.op_type, opset)


def lower(onnx_model: onnx.ModelProto) -> tuple[PlanBuilder, onnx.ModelProto]:
    """Lower onnx_model to a plan; returns the plan and the prepared ONNX model.

    Subgraphs (If branches, Loop and Scan bodies) become further plan graphs; a body reads
    the values of its enclosing graphs by their global index (docs/plan-format.md).

    Raises:
        UnsupportedOpError: a node the runtime cannot execute.
        PackageError: the graph is malformed (unknown value, value written twice).
    """
    # step 1: prepare (inline, fold, infer) and check
    model = _prepare(onnx_model)
    # fused and packed for the runtime only; `model` stays plain ONNX for the caller.
    # Checked after fusion: a Relu or Clip fused into a product needs no kernel of its own.
    runnable = pack_weights(fuse(model))
    check_ops(runnable)

    # step 2: graph 0, and its subgraphs as they come
    lowering = _Lowering(runnable)
    lowering.lower_graph(runnable.graph, 0)
    plan = lowering.plan
    counts = Counter(n.op_type for g in plan.graphs for n in g.nodes)
    logger.info(
        "lowered %d nodes in %d graphs (%s), %d constants",
        sum(len(g.nodes) for g in plan.graphs),
        len(plan.graphs),
        ", ".join(f"{op} x{c}" for op, c in sorted(counts.items())),
        sum(v.kind == ValueKind.CONSTANT for v in plan.values),
    )
    return plan, model
