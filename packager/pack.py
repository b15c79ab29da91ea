"""Store constant weights of Conv, Gemm and MatMul in the GEMM's packed panel layout.

The runtime's micro-kernel (abi_runtime/src/gemm.c) reads its operands as panels:

    packed A (Conv weights, per group):  ceil(m / GEMM_MR) panels of (k, GEMM_MR)
    packed B (Gemm / MatMul weights):    ceil(n / GEMM_NR) panels of (k, GEMM_NR)

rows or columns past the end zero. Packed A is stored k block by k block (blocks of
k_step(k) columns): each block holds every panel's slice, so that the runtime streams a
block of weights from memory in one sequential run. Packing at export time means the
runtime reads the weights in place, with no copy and no packing per call. A packed node
gets its weight input replaced by a 1-D float32 constant of that layout and the attribute
``wx_weight_shape`` (the weight's ONNX shape); the original initializer is dropped when
nothing else reads it.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .graph_walk import drop_unused_initializers

__all__ = ["GEMM_KC", "GEMM_MR", "GEMM_NR", "k_step", "pack_a", "pack_b", "pack_weights"]

logger = logging.getLogger(__name__)

GEMM_MR = 2  # NOTE: must equal GEMM_MR in abi_runtime/src/gemm.h (a test checks)
GEMM_NR = 16  # NOTE: must equal GEMM_NR in abi_runtime/src/gemm.h
GEMM_KC = 512  # NOTE: must equal GEMM_KC in abi_runtime/src/gemm.h


def k_step(k: int) -> int:
    """Columns of k per block: equal blocks of at most GEMM_KC (gemm_k_step in gemm.h)."""
    blocks = -(-k // GEMM_KC)
    return -(-k // blocks) if blocks > 1 else GEMM_KC


def pack_a(a: np.ndarray) -> np.ndarray:
    """Panels of (k, GEMM_MR) of an (m, k) matrix, block of k after block, flattened."""
    m, k = a.shape
    mp = -(-m // GEMM_MR) * GEMM_MR
    padded = np.zeros((mp, k), np.float32)
    padded[:m] = a
    panels = padded.reshape(mp // GEMM_MR, GEMM_MR, k).transpose(0, 2, 1)  # (panel, k, MR)
    step = k_step(k)
    blocks = [panels[:, p0 : p0 + step].ravel() for p0 in range(0, max(k, 1), step)]
    return np.concatenate(blocks)


def pack_b(b: np.ndarray) -> np.ndarray:
    """Panels of (k, GEMM_NR) of a (k, n) matrix, flattened."""
    k, n = b.shape
    np_ = -(-n // GEMM_NR) * GEMM_NR
    padded = np.zeros((k, np_), np.float32)
    padded[:, :n] = b
    return np.ascontiguousarray(padded.reshape(k, np_ // GEMM_NR, GEMM_NR).transpose(1, 0, 2))


def _attr(node: onnx.NodeProto, name: str, default: int) -> int:
    for a in node.attribute:
        if a.name == name:
            return a.i
    return default


def _packed(node: onnx.NodeProto, w: np.ndarray) -> np.ndarray | None:
    """The packed form of weight w of node, or None when the node is not packable."""
    if w.dtype != np.float32:
        return None
    if node.op_type == "Conv" and w.ndim in (3, 4):
        group = _attr(node, "group", 1)
        m = w.shape[0]
        if group < 1 or m % group:
            return None
        mg, k = m // group, int(np.prod(w.shape[1:]))
        groups = w.reshape(group, mg, k)
        return np.concatenate([pack_a(g).ravel() for g in groups])
    if node.op_type == "Gemm" and w.ndim == 2:
        return pack_b(w.T if _attr(node, "transB", 0) else w).ravel()
    if node.op_type == "MatMul" and w.ndim == 2:
        return pack_b(w).ravel()
    return None


def pack_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of `model` whose constant Conv/Gemm/MatMul weights are packed."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    inits = {t.name: t for t in graph.initializer}
    new = []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
            continue
        if node.domain not in ("", "ai.onnx") or node.input[1] not in inits:
            continue
        if any(a.name == "wx_weight_shape" for a in node.attribute):
            continue
        w = numpy_helper.to_array(inits[node.input[1]])
        packed = _packed(node, w)
        if packed is None:
            continue
        name = f"{node.input[1]}.packed.{node.name}"
        new.append(numpy_helper.from_array(packed, name))
        node.attribute.append(helper.make_attribute("wx_weight_shape", list(w.shape)))
        node.input[1] = name
        logger.debug("packed the weight of %s (%s), shape %s", node.name, node.op_type,
                     w.shape)  # fmt: skip
    graph.initializer.extend(new)
    drop_unused_initializers(graph)
    if new:
        logger.info("packed %d weights into GEMM panels", len(new))
    return out
