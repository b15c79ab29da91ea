"""Constant folding: evaluate, at export time, nodes whose inputs are all known.

A node folds when every input is an initializer or the output of a Constant or folded
node, or when it is a Shape of a value whose shape is fully static. Its outputs become
initializers and the node disappears, so the runtime never executes shape arithmetic
that does not depend on the request. Evaluation uses onnx's reference evaluator.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from .graph_walk import drop_unused_initializers

__all__ = ["MAX_FOLDED_ELEMENTS", "fold_constants"]

logger = logging.getLogger(__name__)

# A folded result larger than this stays a node: it would bloat the plan.
MAX_FOLDED_ELEMENTS = 1 << 20
# Ops whose result is not a function of their inputs.
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}  # fmt: skip
# Ops whose result is a sequence or an optional: an initializer holds only a tensor.
_NOT_TENSOR_VALUED = {"SequenceEmpty", "SequenceConstruct", "SequenceInsert",
                      "SequenceErase", "SplitToSequence", "SequenceMap", "Optional",
                      "OptionalGetElement"}  # fmt: skip


def _static_shape(type_proto: onnx.TypeProto) -> list[int] | None:
    t = type_proto.tensor_type
    if not t.HasField("shape") or not all(d.HasField("dim_value") for d in t.shape.dim):
        return None
    return [d.dim_value for d in t.shape.dim]


def _evaluate(node: onnx.NodeProto, inputs: dict[str, np.ndarray], opsets) -> list[np.ndarray]:
    """Run one node with onnx's reference evaluator."""
    graph = onnx.helper.make_graph(
        [node],
        "fold",
        [],
        [onnx.helper.make_value_info(o, onnx.TypeProto()) for o in node.output if o],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in inputs.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=opsets)
    return ReferenceEvaluator(model).run(None, {})


def fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of model with constant subgraphs replaced by initializers."""
    graph = model.graph
    known: dict[str, np.ndarray] = {
        t.name: numpy_helper.to_array(t) for t in graph.initializer
    }
    shapes = {vi.name: vi.type for vi in (*graph.input, *graph.value_info)}
    graph_outputs = {o.name for o in graph.output}
    kept: list[onnx.NodeProto] = []
    folded: dict[str, np.ndarray] = {}
    for node in graph.node:
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in _NONDETERMINISTIC
            and node.op_type not in _NOT_TENSOR_VALUED
        )
        if foldable and node.op_type == "Shape" and node.input[0] not in known:
            static = _static_shape(shapes[node.input[0]]) if node.input[0] in shapes else None
            foldable = static is not None
            if foldable:
                # evaluate Shape on a zero tensor of the static shape (cheap, exact)
                inputs = {node.input[0]: np.zeros(static, dtype=np.float32)}
        elif foldable:
            foldable = all(not name or name in known for name in node.input)
            inputs = {name: known[name] for name in node.input if name} if foldable else {}
        if not foldable or any(o in graph_outputs for o in node.output):
            kept.append(node)
            continue
        try:
            results = _evaluate(node, inputs, model.opset_import)
        except Exception as e:  # noqa: BLE001 - a node we cannot fold simply stays
            logger.debug("not folding %s (%s): %s", node.name, node.op_type, e)
            kept.append(node)
            continue
        if any(np.asarray(r).size > MAX_FOLDED_ELEMENTS for r in results):
            kept.append(node)
            continue
        for name, value in zip(node.output, results, strict=True):
            if name:
                known[name] = folded[name] = np.asarray(value)
        logger.debug("folded %s (%s)", node.name, node.op_type)

    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.node[:]
    out.graph.node.extend(kept)
    # drop folded values' stale shape records, add the folded initializers
    stale = set(folded)
    keep_vi = [vi for vi in out.graph.value_info if vi.name not in stale]
    del out.graph.value_info[:]
    out.graph.value_info.extend(keep_vi)
    out.graph.initializer.extend(numpy_helper.from_array(v, n) for n, v in folded.items())
    # initializers that only fed folded nodes are dead weight in the plan
    drop_unused_initializers(out.graph)
    if folded:
        logger.info("folded %d constant values", len(folded))
    return out
