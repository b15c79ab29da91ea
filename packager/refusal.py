"""The export-time refusal of one node, shared by the packager's support checks."""

from __future__ import annotations

import onnx

from ..errors import UnsupportedOpError

__all__ = ["node_attr", "refuse"]


def refuse(node: onnx.NodeProto, opset: int, why: str, dtype: str = "") -> UnsupportedOpError:
    """The error that refuses `node`: its name, op and opset, and why (a clause, no period);
    `dtype` names the input dtype refused, when that is why."""
    return UnsupportedOpError(
        f"Cannot package node {node.name!r} ({node.op_type}, opset {opset}): {why}.",
        node=node.name,
        op_type=node.op_type,
        opset=opset,
        dtype=dtype,
    )


def node_attr(node: onnx.NodeProto, name: str, default):
    """The value of attribute `name` of node, or default when the node does not set it."""
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default
