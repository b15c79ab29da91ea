"""The static memory plan of the main graph's activations (abi_runtime/src/memplan.c).

Activations of the same size share arena bytes once their lifetimes end, so every model
here is built so that a value freed too early would be overwritten by a later value of
the same size before its last reader runs: skip connections, values read only by If and
Loop bodies, graph outputs that later nodes read too, ops that look in-place (Identity,
Reshape, an op reading one value twice), and input shapes that change between requests.
Outputs are compared with onnxruntime; the lifetimes the packager writes are checked
against the reads of the plan, and a plan whose lifetimes are too short is refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from onnx import TensorProto, helper

from wasmexport.abi_runtime import load
from wasmexport.packager import lifetimes, package
from wasmexport.packager.lower import lower
from wasmexport.packager.plan_format import ValueKind

BOOL = TensorProto.BOOL
R = np.random.default_rng(5)
PAGE = 65536


def randn(*shape):
    return R.standard_normal(shape).astype(np.float32)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def body(nodes, name, outputs, inputs=()):
    outs = [helper.make_tensor_value_info(o, FLOAT, None) for o in outputs]
    return helper.make_graph(nodes, name, list(inputs), outs)


def assert_matches(model, arrays_list):
    """Run every input set in one module instance (plans are kept across requests)."""
    with load(package(model).wasm) as m:
        for arrays in arrays_list:
            got = m.run(arrays)
            got = got if isinstance(got, list | tuple) else [got]
            expected = onnxruntime_run(model, arrays)
            assert len(got) == len(expected)
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_allclose(np.asarray(g), e, rtol=1e-5, atol=1e-5)


def skip_model():
    """a is read again seven nodes later; b..g are the same size and would reuse it."""
    chain = [node("Neg", ["a"], ["b"])]
    for src, dst in zip("bcdef", "cdefg", strict=True):
        chain.append(node("Sigmoid" if dst in "ce" else "Tanh", [src], [dst]))
    return make_model(
        [node("Relu", ["x"], ["a"]), *chain, node("Add", ["g", "a"], ["y"])],
        [("x", FLOAT, ["batch", 64])],
        [("y", FLOAT, ["batch", 64])],
    )


def diamond_model():
    """Two branches of different lengths, an output read later, in-place-looking ops."""
    return make_model(
        [
            node("Relu", ["x"], ["r"]),  # also a graph output, read below
            node("Identity", ["r"], ["i"]),
            node("Reshape", ["i", "shape"], ["flat"]),
            node("Reshape", ["flat", "shape0"], ["back"]),
            node("Mul", ["back", "back"], ["sq"]),  # one value read twice
            node("Neg", ["x"], ["n1"]),
            node("Exp", ["n1"], ["n2"]),
            node("Sub", ["sq", "n2"], ["d"]),
            node("Add", ["d", "r"], ["y"]),
        ],
        [("x", FLOAT, [4, 8, 8])],
        [("y", FLOAT, [4, 8, 8]), ("r", FLOAT, [4, 8, 8])],
        {"shape": np.array([-1], np.int64), "shape0": np.array([4, 8, 8], np.int64)},
    )


def if_capture_model():
    """h is read only by the If's branches, after other same-size values were made."""
    then_g = body([node("Add", ["h", "w"], ["t"])], "then", ["t"])
    else_g = body([node("Mul", ["h", "h"], ["e"])], "else", ["e"])
    return make_model(
        [
            node("Tanh", ["x"], ["h"]),
            node("Neg", ["x"], ["u"]),
            node("Sigmoid", ["u"], ["v"]),
            node("Exp", ["v"], ["v2"]),
            node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g),
            node("Sub", ["z", "v2"], ["y"]),
        ],
        [("c", BOOL, []), ("x", FLOAT, [16, 16])],
        [("y", FLOAT, [16, 16])],
        {"w": randn(16, 16)},
    )


def loop_capture_model():
    """A Loop body reads outer h on every iteration; same-size values are made around it."""
    body_g = helper.make_graph(
        [
            node("Identity", ["cond"], ["cond_out"]),
            node("Add", ["s", "h"], ["s_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", INT64, []),
            helper.make_tensor_value_info("cond", BOOL, []),
            helper.make_tensor_value_info("s", FLOAT, None),
        ],
        [
            helper.make_tensor_value_info("cond_out", BOOL, []),
            helper.make_tensor_value_info("s_out", FLOAT, None),
        ],
    )
    return make_model(
        [
            node("Relu", ["x"], ["h"]),
            node("Neg", ["x"], ["s0"]),
            node("Loop", ["n", "", "s0"], ["s_final"], body=body_g),
            node("Tanh", ["s_final"], ["a"]),
            node("Sigmoid", ["a"], ["y"]),
        ],
        [("n", INT64, []), ("x", FLOAT, [8, 8])],
        [("y", FLOAT, [8, 8])],
    )


def test_memplan_skip_connection_and_changing_batch():
    """The plan is made for batch 3, remade for 7 and for 1, and reused for 3 again."""
    model = skip_model()
    assert_matches(model, [[randn(3, 64)], [randn(7, 64)], [randn(1, 64)], [randn(3, 64)]])


def test_memplan_branches_outputs_and_in_place_looking_ops():
    model = diamond_model()
    assert_matches(model, [[randn(4, 8, 8)], [randn(4, 8, 8)]])


@pytest.mark.parametrize("cond", [True, False])
def test_memplan_value_read_only_by_if_branches(cond):
    assert_matches(if_capture_model(), [[np.array(cond), randn(16, 16)]] * 2)


def test_memplan_value_read_by_loop_body():
    assert_matches(loop_capture_model(), [[np.array(3, np.int64), randn(8, 8)]] * 2)


def test_memplan_lifetimes_cover_every_read():
    """Every activation's last use is its last reader in its own graph; body reads count
    for the node holding the body; graph outputs are kept."""
    plan, _ = lower(if_capture_model())
    last = lifetimes.last_uses(plan)
    index = {v.name: i for i, v in enumerate(plan.values)}
    names = [n.op_type for n in plan.main.nodes]
    assert last[index["h"]] == names.index("If")  # read only inside the branches
    assert last[index["v2"]] == names.index("Sub")
    assert last[index["y"]] == lifetimes.KEPT
    for gi, g in enumerate(plan.graphs):
        for i, n in enumerate(g.nodes):
            for v in n.inputs:
                if v >= 0 and plan.values[v].kind == ValueKind.ACTIVATION and gi == 0:
                    assert last[v] == lifetimes.KEPT or last[v] >= i


def test_memplan_loader_refuses_a_too_short_lifetime(monkeypatch):
    """A plan claiming that h dies before the If reads it would let its bytes be reused."""
    model = if_capture_model()
    real = lifetimes.last_uses

    def too_short(plan):
        last = real(plan)
        h = next(i for i, v in enumerate(plan.values) if v.name == "h")
        last[h] = 0
        return last

    monkeypatch.setattr(lifetimes, "last_uses", too_short)
    wasm = package(model).wasm
    with load(wasm) as m:
        request = json.dumps({"input": [True, randn(16, 16).tolist()]})
        status, answer = m.request(request)
    assert status == 1
    assert "value 'h': last use 0" in json.loads(answer)["error"]


def chain_model(length):
    """length elementwise ops on a 1 MB tensor: Relu, Neg, Relu, ..."""
    nodes, src = [], "x"
    for i in range(length):
        nodes.append(node("Neg" if i % 2 else "Relu", [src], [f"v{i}"]))
        src = f"v{i}"
    return make_model(nodes, [("x", FLOAT, [256, 1024])], [(src, FLOAT, [256, 1024])])


def memory_growth(model, x, runs=3):
    """Bytes of linear memory the requests add after the plan is loaded; the output."""
    with load(package(model).wasm) as m:
        m.request('{"input": [[0]]}')  # loads the plan (the request itself fails)
        before = m._memory.data_len(m._store)
        for _ in range(runs):
            y = m.run([x])
        return m._memory.data_len(m._store) - before, y


def test_memplan_peak_memory_of_a_long_chain():
    """20 elementwise ops need one activation slot more than 1 op: two slots in turn,
    whatever the length; request, input and response cost the same in both."""
    x = randn(256, 1024)
    grown_1, _ = memory_growth(chain_model(1), x)
    grown_20, y = memory_growth(chain_model(20), x)
    expected = x
    for i in range(20):
        expected = -expected if i % 2 else np.maximum(expected, 0)
    np.testing.assert_allclose(y, expected)
    assert grown_20 - grown_1 <= x.nbytes + 2 * PAGE, (grown_1, grown_20, x.nbytes)
