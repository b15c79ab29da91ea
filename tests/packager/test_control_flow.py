"""If, Loop and Scan: small hand-built models against onnxruntime, and the ONNX conformance
cases of these ops against their expected outputs.

The bodies read outer values by name (outer-scope references), nest (a Loop inside an If,
a Loop inside a Loop), run zero times, and pass values through unchanged, so that the
runtime's per-graph freeing and its moving and copying of body outputs are exercised.
Conditions are computed with Cast (float -> bool), which the runtime has.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from node_cases import check_conformance_case, conformance_cases
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from wasmexport.abi_runtime import load
from wasmexport.packager import package
from wasmexport.packager.embed import embed_blob, read_custom_sections
from wasmexport.packager.lower import lower
from wasmexport.packager.runtime_info import runtime_bytes, supported_op_types
from wasmexport.packager.signature import METADATA_SECTION

BOOL = TensorProto.BOOL
R = np.random.default_rng(11)


def randn(*shape):
    return R.standard_normal(shape).astype(np.float32)


def vi(name, dtype=FLOAT, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def graph(nodes, name, inputs, outputs, initializers=()):
    """A body graph; inputs and outputs are value infos."""
    inits = [
        onnx.numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()
    ]
    return helper.make_graph(nodes, name, inputs, outputs, inits)


def node(op, inputs, outputs, **attrs):
    return helper.make_node(op, list(inputs), list(outputs), **attrs)


def run_wasm(model, arrays):
    with load(package(model).wasm) as m:
        got = m.run(arrays)
    return [np.asarray(g) for g in (got if isinstance(got, list | tuple) else [got])]


def reference_run(model, arrays):
    """Outputs of onnx's reference evaluator (onnxruntime refuses bodies that return an
    outer value directly)."""
    names = [i.name for i in model.graph.input]
    return ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))


def assert_matches_onnxruntime(model, arrays, atol=1e-5, reference=onnxruntime_run):
    expected = reference(model, arrays)
    got = run_wasm(model, arrays)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape, (g.shape, e.shape)
        assert g.dtype == e.dtype, (g.dtype, e.dtype)
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=atol)


# ---- If ------------------------------------------------------------------------------


def if_model():
    """then: x + w (3,); else: concat(x * w, x * w) (6,), both read outer x and w."""
    then_g = graph([node("Add", ["x", "w"], ["t"])], "then", [], [vi("t")])
    else_g = graph(
        [node("Mul", ["x", "w"], ["e"]), node("Concat", ["e", "e"], ["e2"], axis=0)],
        "else",
        [],
        [vi("e2")],
    )
    return make_model(
        [
            node("Relu", ["x0"], ["x"]),  # an activation of graph 0 read only by the bodies
            node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g),
            node("Neg", ["y"], ["z"]),
        ],
        [("c", BOOL, []), ("x0", FLOAT, [3])],
        [("z", FLOAT, None)],
        {"w": randn(3)},
    )


@pytest.mark.parametrize("cond", [True, False])
def test_if_outer_values_and_branch_shapes(cond):
    assert_matches_onnxruntime(if_model(), [np.array(cond), randn(3)])


def test_if_body_reads_a_value_fusion_would_remove():
    """mm = x @ w feeds an Add (a fusable bias) in graph 0 and is also read by a branch:
    the product must stay a value of its own, and w an initializer."""
    then_g = graph([node("Relu", ["mm"], ["t"])], "then", [], [vi("t")])
    else_g = graph([node("MatMul", ["x", "w"], ["e"])], "else", [], [vi("e")])
    model = make_model(
        [node("MatMul", ["x", "w"], ["mm"]), node("Add", ["mm", "b"], ["y"]),
         node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g)],
        [("c", BOOL, []), ("x", FLOAT, [2, 4])],
        [("y", FLOAT, None), ("z", FLOAT, None)],
        {"w": randn(4, 3), "b": randn(3)},
    )  # fmt: skip
    for cond in (True, False):
        assert_matches_onnxruntime(model, [np.array(cond), randn(2, 4)])


def test_if_returns_outer_value_constant_and_input_pass_through():
    then_g = graph([], "then", [], [vi("x"), vi("k")], {"k": np.float32([4, 5])})
    else_g = graph([node("Identity", ["x"], ["i"])], "else", [], [vi("i"), vi("w")])
    model = make_model(
        [node("If", ["c"], ["a", "b"], then_branch=then_g, else_branch=else_g),
         node("Add", ["a", "x"], ["y"])],
        [("c", BOOL, []), ("x", FLOAT, [2])],
        [("y", FLOAT, None), ("b", FLOAT, None)],
        {"w": np.float32([7, 8])},
    )  # fmt: skip
    for cond in (True, False):
        assert_matches_onnxruntime(model, [np.array(cond), randn(2)], reference=reference_run)


# ---- Loop ----------------------------------------------------------------------------


def loop_for_model():
    """for i < M: s = (s + i) * w; scan out s; w is an outer initializer, v an outer
    activation read only inside the body."""
    body = graph(
        [
            node("Cast", ["i"], ["fi"], to=FLOAT),
            node("Add", ["s", "fi"], ["a"]),
            node("Mul", ["a", "w"], ["s2"]),
            node("Add", ["s2", "v"], ["sc"]),
            node("Identity", ["cin"], ["cout"]),
        ],
        "body",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("s", FLOAT, [3])],
        [vi("cout", BOOL, []), vi("s2", FLOAT, [3]), vi("sc", FLOAT, [3])],
    )
    return make_model(
        [node("Exp", ["x"], ["v"]), node("Loop", ["M", "", "x"], ["s", "scan"], body=body)],
        [("M", INT64, []), ("x", FLOAT, [3])],
        [("s", FLOAT, None), ("scan", FLOAT, None)],
        {"w": np.float32([0.5, -1.0, 1.5])},
    )


@pytest.mark.parametrize("trips", [0, 1, 4])
def test_loop_trip_count_with_outer_values(trips):
    assert_matches_onnxruntime(loop_for_model(), [np.array(trips, np.int64), randn(3)])


def loop_while_model(with_m: bool, with_cond: bool):
    """while s < limit (and i < M): s = s + step; the condition is Cast(Relu(limit - s))."""
    body = graph(
        [
            node("Add", ["s", "step"], ["s2"]),
            node("Sub", ["limit", "s2"], ["gap"]),
            node("Relu", ["gap"], ["pos"]),
            node("Cast", ["pos"], ["cout"], to=BOOL),
            node("Unsqueeze", ["s2", "ax"], ["sc"]),
        ],
        "body",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("s", FLOAT, [])],
        [vi("cout", BOOL, []), vi("s2", FLOAT, []), vi("sc", FLOAT, [1])],
        {"ax": np.int64([0])},
    )
    inputs = [("M", INT64, [])] if with_m else []
    inputs += [("s0", FLOAT, []), ("limit", FLOAT, []), ("step", FLOAT, [])]
    loop_inputs = ["M" if with_m else "", "c0" if with_cond else "", "s0"]
    return make_model(
        [node("Sub", ["limit", "s0"], ["g0"]), node("Cast", ["g0"], ["c0"], to=BOOL),
         node("Loop", loop_inputs, ["s", "scan"], body=body)],
        inputs,
        [("s", FLOAT, None), ("scan", FLOAT, None)],
    )  # fmt: skip


@pytest.mark.parametrize(
    "s0, limit, m, with_cond",
    [
        (0.0, 5.0, None, True),  # a while loop
        (0.0, 5.0, 3, True),  # M ends it first
        (0.0, 5.0, 100, True),  # cond ends it first
        (7.0, 5.0, None, True),  # cond false at entry: no iteration
        (5.0, 5.0, 2, True),
        (0.0, 5.0, 100, False),  # no cond input: the body's cond still ends it
        (0.0, 5.0, None, False),  # neither M nor cond: runs until the body's cond
    ],
)
def test_loop_while_condition(s0, limit, m, with_cond):
    """Loops ending on cond or on M. NOTE: without a cond input the ONNX text says the
    body's cond is ignored; onnxruntime, the verifier's reference, stops on it (as the
    runtime does)."""
    scalars = [np.array(v, np.float32) for v in (s0, limit, 1.5)]
    model = loop_while_model(m is not None, with_cond)
    arrays = ([np.array(m, np.int64)] if m is not None else []) + scalars
    assert_matches_onnxruntime(model, arrays)


def test_loop_pass_through_outer_output_and_unwanted_outputs():
    """Body outputs that are a body input, an outer value and a duplicate of another output;
    the final loop-carried value is not wanted (empty output name)."""
    body = graph(
        [node("Add", ["a", "x"], ["a2"]), node("Identity", ["cin"], ["cout"])],
        "body",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("a", FLOAT, [2]), vi("p", FLOAT, [2])],
        [vi("cout", BOOL, []), vi("a2"), vi("p"), vi("a2"), vi("x")],
    )
    model = make_model(
        [node("Loop", ["M", "c", "x", "x"], ["", "p_final", "sa", "sx"], body=body)],
        [("M", INT64, []), ("c", BOOL, []), ("x", FLOAT, [2])],
        [("p_final", FLOAT, None), ("sa", FLOAT, None), ("sx", FLOAT, None)],
    )
    for trips in (1, 3):  # onnx.reference cannot stack zero scan items
        arrays = [np.array(trips, np.int64), np.array(True), randn(2)]
        assert_matches_onnxruntime(model, arrays, reference=reference_run)


def nested_model():
    """If (c) then: Loop over i < M of s += Loop over j < i of (x * j) (a Loop in a Loop
    in an If, each reading values of every enclosing graph); else: x."""
    inner = graph(
        [node("Cast", ["j"], ["fj"], to=FLOAT), node("Mul", ["x", "fj"], ["xj"]),
         node("Add", ["t", "xj"], ["t2"]), node("Identity", ["cin2"], ["cout2"])],
        "inner",
        [vi("j", INT64, []), vi("cin2", BOOL, []), vi("t", FLOAT, [2])],
        [vi("cout2", BOOL, []), vi("t2", FLOAT, [2])],
    )  # fmt: skip
    outer = graph(
        [node("Loop", ["i", "", "zero"], ["inner_sum"], body=inner),
         node("Add", ["s", "inner_sum"], ["s2"]), node("Identity", ["cin"], ["cout"])],
        "outer",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("s", FLOAT, [2])],
        [vi("cout", BOOL, []), vi("s2", FLOAT, [2])],
    )  # fmt: skip
    then_g = graph([node("Loop", ["M", "", "zero"], ["total"], body=outer)], "then", [],
                   [vi("total")])  # fmt: skip
    else_g = graph([node("Identity", ["x"], ["xi"])], "else", [], [vi("xi")])
    return make_model(
        [node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        [("c", BOOL, []), ("M", INT64, []), ("x", FLOAT, [2])],
        [("y", FLOAT, None)],
        {"zero": np.zeros(2, np.float32)},
    )


@pytest.mark.parametrize("cond, trips", [(True, 4), (True, 0), (False, 3)])
def test_nested_loop_in_loop_in_if(cond, trips):
    arrays = [np.array(cond), np.array(trips, np.int64), randn(2)]
    assert_matches_onnxruntime(nested_model(), arrays)


def rnn_loop_model(seq: int, batch: int, hidden: int, features: int):
    """A GRU-like cell as a Loop body, the way tf2onnx and torch's exporter write it:
    Gather the step, MatMul, Add, Sigmoid, Tanh, Mul, Sub, Concat, Slice, Unsqueeze,
    Squeeze; weights are outer initializers, the sequence comes from graph 0."""
    h = hidden
    body = graph(
        [
            node("Gather", ["xs", "i"], ["xt"], axis=0),  # (batch, features)
            node("Concat", ["xt", "hp"], ["xh"], axis=1),  # (batch, features + h)
            node("MatMul", ["xh", "w"], ["g"]),  # (batch, 3h)
            node("Add", ["g", "b"], ["gb"]),
            node("Slice", ["gb", "s0", "s1", "ax1"], ["zr_in"]),
            node("Sigmoid", ["zr_in"], ["zr"]),
            node("Slice", ["zr", "s0", "sh", "ax1"], ["z"]),
            node("Slice", ["zr", "sh", "s1", "ax1"], ["r"]),
            node("Slice", ["gb", "s1", "s2", "ax1"], ["c_in"]),
            node("Mul", ["r", "c_in"], ["rc"]),
            node("Tanh", ["rc"], ["c"]),
            node("Sub", ["one", "z"], ["omz"]),
            node("Mul", ["omz", "c"], ["a"]),
            node("Mul", ["z", "hp"], ["bb"]),
            node("Add", ["a", "bb"], ["hn"]),
            node("Unsqueeze", ["hn", "ax0"], ["hu"]),
            node("Squeeze", ["hu", "ax0"], ["hs"]),
            node("Identity", ["cin"], ["cout"]),
        ],
        "cell",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("hp", FLOAT, [batch, h])],
        [vi("cout", BOOL, []), vi("hs", FLOAT, [batch, h]), vi("hu", FLOAT, [1, batch, h])],
        {
            "s0": np.int64([0]), "sh": np.int64([h]), "s1": np.int64([2 * h]),
            "s2": np.int64([3 * h]), "ax0": np.int64([0]), "ax1": np.int64([1]),
            "one": np.float32(1.0),
        },
    )  # fmt: skip
    return make_model(
        [node("Transpose", ["x"], ["xs"], perm=[1, 0, 2]),
         node("Shape", ["xs"], ["shape"]),
         node("Gather", ["shape", "zero_i"], ["n_steps"], axis=0),
         node("Loop", ["n_steps", "", "h0"], ["h_last", "hs"], body=body)],
        [("x", FLOAT, [batch, "seq", features]), ("h0", FLOAT, [batch, h])],
        [("h_last", FLOAT, None), ("hs", FLOAT, None)],
        {"w": randn(features + h, 3 * h) * 0.5, "b": randn(3 * h) * 0.1,
         "zero_i": np.int64(0)},
    )  # fmt: skip


def test_loop_rnn_cell_body():
    model = rnn_loop_model(seq=6, batch=2, hidden=5, features=3)
    for seq in (6, 1):
        assert_matches_onnxruntime(model, [randn(2, seq, 3), randn(2, 5)])


# ---- Scan ----------------------------------------------------------------------------


def scan_model(in_axes, in_dirs, out_axes, out_dirs):
    """Cumulative sum of two scanned inputs plus an outer bias; scan outputs the running
    sum and the product of the slices."""
    body = graph(
        [node("Add", ["acc", "a"], ["t"]), node("Add", ["t", "b"], ["t2"]),
         node("Add", ["t2", "bias"], ["acc2"]), node("Mul", ["a", "b"], ["prod"]),
         node("Identity", ["acc2"], ["sum"])],
        "body",
        [vi("acc", FLOAT, [2, 3]), vi("a", FLOAT, [2, 3]), vi("b", FLOAT, [2, 3])],
        [vi("acc2", FLOAT, [2, 3]), vi("sum"), vi("prod", FLOAT, [2, 3])],
    )  # fmt: skip
    attrs = {"num_scan_inputs": 2}
    for key, value in [
        ("scan_input_axes", in_axes),
        ("scan_input_directions", in_dirs),
        ("scan_output_axes", out_axes),
        ("scan_output_directions", out_dirs),
    ]:
        if value is not None:
            attrs[key] = value  # fmt: skip
    shape_a = [2, 3]
    shape_a.insert(in_axes[0] % 3 if in_axes else 0, 4)
    shape_b = [2, 3]
    shape_b.insert(in_axes[1] % 3 if in_axes else 0, 4)
    model = make_model(
        [node("Scan", ["acc0", "a", "b"], ["acc", "sums", "prods"], body=body, **attrs)],
        [("acc0", FLOAT, [2, 3]), ("a", FLOAT, shape_a), ("b", FLOAT, shape_b)],
        [("acc", FLOAT, None), ("sums", FLOAT, None), ("prods", FLOAT, None)],
        {"bias": np.float32([1.0, -2.0, 0.5])},
        opset=16,
    )
    return model, [randn(2, 3), randn(*shape_a), randn(*shape_b)]


@pytest.mark.parametrize(
    "in_axes, in_dirs, out_axes, out_dirs",
    [
        (None, None, None, None),
        ([0, 1], [1, 0], None, [0, 1]),
        ([2, -1], [0, 1], [1, -1], [1, 0]),
        ([1, 0], None, [2, 0], None),
    ],
)
def test_scan_axes_and_directions(in_axes, in_dirs, out_axes, out_dirs):
    model, arrays = scan_model(in_axes, in_dirs, out_axes, out_dirs)
    assert_matches_onnxruntime(model, arrays)


def test_scan_zero_length_sequence():
    model, _ = scan_model(None, None, None, None)
    model.graph.input[1].type.tensor_type.shape.dim[0].dim_param = "n"
    model.graph.input[2].type.tensor_type.shape.dim[0].dim_param = "n"
    arrays = [randn(2, 3), randn(0, 2, 3), randn(0, 2, 3)]
    # onnxruntime and onnx.reference refuse empty scan inputs; by the definition of Scan
    # the state passes through and each scan output stacks no items of shape (2, 3)
    acc, sums, prods = run_wasm(model, arrays)
    np.testing.assert_array_equal(acc, arrays[0])
    assert sums.shape == prods.shape == (0, 2, 3)


def test_scan_inside_loop_reads_loop_state():
    """A Scan in a Loop body whose body reads the Loop's carried value (two levels out)."""
    scan_body = graph(
        [node("Add", ["acc", "row"], ["t"]), node("Mul", ["t", "s"], ["acc2"])],
        "scan_body",
        [vi("acc", FLOAT, [3]), vi("row", FLOAT, [3])],
        [vi("acc2", FLOAT, [3])],
    )
    loop_body = graph(
        [node("Scan", ["s", "rows"], ["s2"], body=scan_body, num_scan_inputs=1),
         node("Identity", ["cin"], ["cout"])],
        "loop_body",
        [vi("i", INT64, []), vi("cin", BOOL, []), vi("s", FLOAT, [3])],
        [vi("cout", BOOL, []), vi("s2", FLOAT, [3])],
    )  # fmt: skip
    model = make_model(
        [node("Loop", ["M", "", "x"], ["y"], body=loop_body)],
        [("M", INT64, []), ("x", FLOAT, [3]), ("rows", FLOAT, [4, 3])],
        [("y", FLOAT, None)],
    )
    arrays = [np.array(3, np.int64), randn(3) * 0.5, randn(4, 3) * 0.5]
    assert_matches_onnxruntime(model, arrays)


@pytest.mark.parametrize("with_lens", [True, False])
def test_scan_opset8_batch_axis_and_sequence_lens(with_lens):
    """Scan 8: inputs carry a batch axis 0, steps on axis 1, optional sequence_lens
    (scan outputs are zero past each entry's length), directions per scanned input."""
    body = graph(
        [node("Add", ["acc", "a"], ["acc2"]), node("Mul", ["a", "b"], ["prod"])],
        "body",
        [vi("acc", FLOAT, [2]), vi("a", FLOAT, [2]), vi("b", FLOAT, [2])],
        [vi("acc2", FLOAT, [2]), vi("prod", FLOAT, [2])],
    )
    scan = node("Scan", ["lens" if with_lens else "", "acc0", "a", "b"], ["acc", "prods"],
                body=body, num_scan_inputs=2, directions=[0, 1])  # fmt: skip
    inputs = [("lens", INT64, [3])] if with_lens else []
    inputs += [("acc0", FLOAT, [3, 2]), ("a", FLOAT, [3, 4, 2]), ("b", FLOAT, [3, 4, 2])]
    model = make_model([scan], inputs, [("acc", FLOAT, None), ("prods", FLOAT, None)], opset=8)
    arrays = [np.array([4, 1, 3], np.int64)] if with_lens else []
    arrays += [randn(3, 2), randn(3, 4, 2), randn(3, 4, 2)]
    assert_matches_onnxruntime(model, arrays)


# ---- torch and Keras exports ---------------------------------------------------------


def test_torch_scripted_loop_legacy_export(tmp_path):
    """torch's legacy exporter writes a scripted for-loop as an ONNX Loop."""
    torch = pytest.importorskip("torch")
    from wasmexport import export_wasm

    class Recurrence(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(4, 4) * 0.5)

        def forward(self, x):
            h = torch.zeros_like(x[:, 0])
            for t in range(x.shape[1]):
                h = torch.tanh(h @ self.w + x[:, t])
            return h

    torch.manual_seed(0)
    model = torch.jit.script(Recurrence().eval())
    result = export_wasm(model, torch.randn(2, 5, 4), tmp_path / "m.wasm", exporter="legacy")
    assert result.report.passed
    assert "Loop" in result.metadata.ops


# tf2onnx's Loop condition and gates need these
KERAS_LOOP_MISSING = sorted(
    {"Less", "And", "Split", "Expand"} - {op for _, op in supported_op_types()}
)


@pytest.mark.skipif(
    bool(KERAS_LOOP_MISSING), reason=f"the runtime lacks {KERAS_LOOP_MISSING} (tf2onnx's Loop)"
)
def test_keras_gru_loop_from_tf2onnx():
    """Keras 3 GRU converted by tf2onnx is a Loop carrying its weights as loop state."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    tf2onnx = pytest.importorskip("tf2onnx")
    inp = keras.Input((5, 4), name="x")
    model = keras.Model(inp, keras.layers.GRU(6)(inp))
    spec = (tf.TensorSpec((None, 5, 4), tf.float32, name="x"),)
    onnx_model, _ = tf2onnx.convert.from_function(
        tf.function(lambda x: model(x), input_signature=spec), input_signature=spec, opset=17
    )
    assert any(n.op_type == "Loop" for n in onnx_model.graph.node)
    x = randn(3, 5, 4)
    np.testing.assert_allclose(run_wasm(onnx_model, [x])[0], model(x).numpy(), atol=1e-5)


# ---- ONNX conformance cases ----------------------------------------------------------

CONFORMANCE = conformance_cases("if_", "loop", "scan")


# test_if_seq, test_if_opt, test_loop13_seq and test_loop16_seq_none carry sequences and
# optionals through the bodies (tests/packager/test_sequences.py covers those values)
@pytest.mark.parametrize("case", CONFORMANCE, ids=lambda c: c.name)
def test_conformance(case):
    check_conformance_case(case)


# ---- loader checks and memory --------------------------------------------------------


def load_error_of(model, mutate) -> str:
    """Lower model, let mutate() corrupt the plan, embed it with metadata that records the
    corrupt plan's digest (so that the host's damage check passes and the runtime's loader
    is what refuses it); return the module's error."""
    plan, _ = lower(model)
    mutate(plan)
    blob = plan.to_bytes()
    metadata = json.loads(read_custom_sections(package(model).wasm)[METADATA_SECTION])
    metadata.update(plan_sha256=hashlib.sha256(blob).hexdigest(), plan_bytes=len(blob))
    wasm = embed_blob(runtime_bytes(), blob, {METADATA_SECTION: json.dumps(metadata).encode()})
    with load(wasm) as m:
        status, answer = m.request('{"input": [true, [1, 2, 3]]}')
    assert status == 1
    return json.loads(answer)["error"]


def _move_first_node_last(plan):
    plan.main.nodes.append(plan.main.nodes.pop(0))


def _same_body_twice(plan):
    if_node = next(n for n in plan.main.nodes if n.op_type == "If")
    if_node.attributes[1].value = if_node.attributes[0].value


def _body_index_not_after_its_graph(plan):
    if_node = next(n for n in plan.main.nodes if n.op_type == "If")
    if_node.attributes[0].value = 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (_move_first_node_last, "input 'x' is read before it is computed"),
        (_same_body_twice, "is the body of two attributes"),
        (_body_index_not_after_its_graph, "graph attribute index out of range"),
    ],
)
def test_loader_refuses_bad_subgraph_plans(mutate, message):
    """A body reading an outer value that is computed later, a body shared by two
    attributes, a body index that could form a cycle."""
    assert message in load_error_of(if_model(), mutate)


def test_repeated_requests_do_not_grow_memory():
    """Body inputs, scan stacks and moved outputs are all released after each request."""
    model = nested_model()
    arrays = [np.array(True), np.array(6, np.int64), randn(2)]
    with load(package(model).wasm) as m:
        for _ in range(5):
            m.run(arrays)
        size = m._memory.data_len(m._store)
        for _ in range(40):
            m.run(arrays)
        assert m._memory.data_len(m._store) == size
