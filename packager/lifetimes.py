"""Value lifetimes for the runtime's memory plan: the last node that reads each activation.

The runtime places the activations of the main graph in one arena (abi_runtime/src/memplan.c)
and lets two of them share bytes only when their lifetimes do not overlap. A lifetime runs
from the node writing the value to its last use, which this module computes from the whole
plan, bodies included: a read from inside a body (If branches, Loop and Scan bodies, at any
depth) counts as a read by the node of the value's own graph that holds the body, and a value
its graph returns is kept to the end (``KEPT``). The loader checks these numbers against the
reads it sees (docs/plan-format.md, "Lifetimes").
"""

from __future__ import annotations

from .plan_format import ATTR_GRAPH, PlanBuilder

__all__ = ["KEPT", "last_uses"]

KEPT = -1  # a graph output: lives until the graph ends


def last_uses(plan: PlanBuilder) -> dict[int, int]:
    """Map each activation (value index) to the index of its last reader in its own graph.

    An activation nobody reads gets the index of the node writing it; a graph output gets
    ``KEPT``.
    """
    graph_of: dict[int, int] = {}  # value -> the graph whose node writes it
    cursor: dict[int, int] = {}  # graph on the current path -> the node being walked
    last: dict[int, int] = {}
    walked: set[int] = set()

    def read(v: int) -> None:
        g = graph_of.get(v)
        if g is not None:
            last[v] = cursor[g]

    def walk(gi: int) -> None:
        graph = plan.graphs[gi]
        for i, node in enumerate(graph.nodes):
            cursor[gi] = i
            for v in node.inputs:
                if v >= 0:
                    read(v)
            for a in node.attributes:
                # NOTE: a body index that could form a cycle or repeat is left to the
                # loader to refuse; it is not walked here
                if a.type == ATTR_GRAPH and gi < a.value < len(plan.graphs):
                    if a.value not in walked:
                        walked.add(a.value)
                        walk(a.value)
            for v in node.outputs:
                if v >= 0:
                    graph_of[v] = gi
                    last[v] = i
        cursor[gi] = len(graph.nodes)
        for v in graph.outputs:
            if graph_of.get(v) == gi:
                last[v] = KEPT
            else:
                read(v)

    walk(0)
    return last
