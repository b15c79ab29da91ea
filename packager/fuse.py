"""Fuse bias additions and activations into the matrix product before them.

A pass over a prepared ONNX model (shapes inferred, constants folded). Patterns, each only
when the intermediate value has no other reader and is not a graph output:

    MatMul(X, W) -> Add(., b)      MatMul with attribute wx_bias = b (n values, W 2-D)
    Conv | Gemm | MatMul -> Relu   the product with attribute wx_clip = [0, inf]
    Conv | Gemm | MatMul -> Clip   the product with attribute wx_clip = [min, max]

The attributes are the runtime's own (ops_conv.c, ops_matmul.c); the fused graph is only
lowered to a plan, never handed back as ONNX.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .graph_walk import drop_unused_initializers, names_read, subgraphs

__all__ = ["fuse"]

logger = logging.getLogger(__name__)

PRODUCTS = ("Conv", "Gemm", "MatMul")


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer}


def _readers(graph: onnx.GraphProto) -> dict[str, int]:
    """Number of readers of each value; graph outputs count as a reader."""
    count: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                count[name] = count.get(name, 0) + 1
    for out in graph.output:
        count[out.name] = count.get(out.name, 0) + 1
    # a body of If, Loop or Scan that reads a value by name is a reader too
    for node in graph.node:
        for sub in subgraphs(node):
            for name in names_read(sub):
                count[name] = count.get(name, 0) + 1
    return count


def _clip_range(node: onnx.NodeProto, consts: dict[str, np.ndarray]) -> tuple[float, float]:
    """[lo, hi] of a Relu or Clip node; None when a bound is not a float32 constant."""
    if node.op_type == "Relu":
        return 0.0, math.inf
    # an absent bound is float32's lowest() / max() (the spec's default): Clip maps an
    # infinity to the largest finite float, where Relu keeps +inf
    big = float(np.finfo(np.float32).max)
    lo, hi = -big, big
    for attr in node.attribute:  # opset < 11
        if attr.name == "min":
            lo = attr.f
        elif attr.name == "max":
            hi = attr.f
    for i, name in enumerate(node.input[1:3]):
        if not name:
            continue
        if name not in consts or consts[name].size != 1:
            return None
        v = float(consts[name].reshape(()))
        if v != float(np.float32(v)):
            return None  # wx_clip holds float32: a float64 bound must stay a Clip node
        lo, hi = (v, hi) if i == 0 else (lo, v)
    return lo, hi


def _bias(matmul: onnx.NodeProto, add: onnx.NodeProto, consts: dict[str, np.ndarray]):
    """The bias vector of an Add after a MatMul with a 2-D constant B, or None."""
    w = consts.get(matmul.input[1])
    if w is None or w.ndim != 2 or w.dtype != np.float32:
        return None
    other = add.input[1] if add.input[0] == matmul.output[0] else add.input[0]
    b = consts.get(other)
    n = w.shape[1]
    if b is None or b.dtype != np.float32 or b.size != n or (b.ndim and b.shape[-1] != n):
        return None
    return b.reshape(n)


def fuse(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of `model` with bias additions and activations fused (see above)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if len({n.name for n in graph.node}) != len(graph.node):
        logger.warning("fusion skipped: node names are not unique")
        return out
    consts = _constants(graph)
    producer = {}
    for node in graph.node:
        for name in node.output:
            producer[name] = node
    readers = _readers(graph)
    outputs = {o.name for o in graph.output}
    removed = set()
    fused = 0

    for node in list(graph.node):
        if node.op_type not in ("Add", "Relu", "Clip") or node.domain not in ("", "ai.onnx"):
            continue
        src = next((producer.get(i) for i in node.input[:2] if producer.get(i)), None)
        if src is None or src.name in removed or src.op_type not in PRODUCTS:
            continue
        mid = src.output[0]
        if readers.get(mid, 0) != 1 or mid in outputs or mid not in node.input:
            continue
        names = {a.name for a in src.attribute}
        if node.op_type == "Add":
            if src.op_type != "MatMul" or "wx_bias" in names or "wx_clip" in names:
                continue
            if node.input[0] != mid and node.input[1] != mid:
                continue
            bias = _bias(src, node, consts)
            if bias is None:
                continue
            tensor = numpy_helper.from_array(bias, f"{src.name}.wx_bias")
            src.attribute.append(helper.make_attribute("wx_bias", tensor))
        else:
            if node.input[0] != mid or "wx_clip" in names:
                continue
            bounds = _clip_range(node, consts)
            if bounds is None:
                continue
            src.attribute.append(helper.make_attribute("wx_clip", list(bounds)))
        logger.debug("fused %s (%s) into %s (%s)", node.name, node.op_type, src.name,
                     src.op_type)  # fmt: skip
        src.output[0] = node.output[0]
        producer[node.output[0]] = src
        removed.add(node.name)
        fused += 1

    for i in reversed(range(len(graph.node))):
        if graph.node[i].name in removed:
            del graph.node[i]
    drop_unused_initializers(graph)
    if fused:
        logger.info("fused %d bias/activation nodes into matrix products", fused)
    return out
