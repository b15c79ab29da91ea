"""Walking ONNX graphs with their subgraphs (If branches, Loop and Scan bodies)."""

from __future__ import annotations

from collections.abc import Iterator

import onnx

__all__ = ["all_nodes", "drop_unused_initializers", "names_read", "subgraphs"]

_AP = onnx.AttributeProto


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs held by a node's attributes."""
    graphs = []
    for attr in node.attribute:
        if attr.type == _AP.GRAPH:
            graphs.append(attr.g)
        elif attr.type == _AP.GRAPHS:
            graphs.extend(attr.graphs)
    return graphs


def all_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of graph and, depth first, of the subgraphs of its nodes."""
    for node in graph.node:
        yield node
        for sub in subgraphs(node):
            yield from all_nodes(sub)


def names_read(graph: onnx.GraphProto) -> set[str]:
    """Every value name read by graph: node inputs and outputs at any depth.

    A body reads outer values by name, without listing them as inputs of its node, so a
    value is live while any subgraph mentions it.
    """
    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        for sub in subgraphs(node):
            names |= names_read(sub)
    names.discard("")
    return names


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Delete the initializers of graph that nothing reads, subgraphs included."""
    used = names_read(graph)
    for i in reversed(range(len(graph.initializer))):
        if graph.initializer[i].name not in used:
            del graph.initializer[i]
