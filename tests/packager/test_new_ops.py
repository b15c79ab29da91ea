"""SwiGLU, TensorScatter, CausalConvWithState, LinearAttention and FlexAttention (domain
ai.onnx.preview) against onnx's reference evaluator, on shapes, dtypes and attribute mixes
beyond the ONNX conformance cases, plus clean refusals of malformed models and inputs.

onnxruntime does not run these ops yet, so onnx.reference is the only reference. Each op's
configurations share one model (one node per configuration), so that each op loads one wasm
module.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package

FLOAT, F16, DOUBLE = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE
INT64, BOOL = TensorProto.INT64, TensorProto.BOOL
NP = {FLOAT: np.float32, F16: np.float16, DOUBLE: np.float64, INT64: np.int64, BOOL: bool}
PREVIEW = "ai.onnx.preview"
R = np.random.default_rng(27)


def randn(dtype, *shape, scale=1.0):
    return (R.standard_normal(shape) * scale).astype(NP[dtype])


def vi(name, dtype, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def model_of(nodes, inputs, outputs, opset=28, preview=False):
    """A model of nodes; inputs and outputs are value infos (outputs untyped if dtype 0)."""
    graph = helper.make_graph(nodes, "new_ops", inputs, outputs)
    opsets = [helper.make_opsetid("", opset)]
    if preview:
        opsets.append(helper.make_opsetid(PREVIEW, 1))
    return helper.make_model(graph, opset_imports=opsets)


def check_against_reference(model, feeds, rtol=1e-5, atol=1e-6, module=None):
    """Run model in wasm (or module, already loaded) and onnx.reference; compare outputs."""
    expected = ReferenceEvaluator(model).run(None, feeds)
    if module is None:
        with load(package(model).wasm) as m:
            got = m.run(feeds)
    else:
        got = module.run(feeds)
    got = got if isinstance(got, list) else [got]
    assert len(got) == len(expected)
    for out, g, e in zip(model.graph.output, got, expected, strict=True):
        g = np.asarray(g)
        assert g.shape == e.shape, f"{out.name}: shape {g.shape}, expected {e.shape}"
        assert g.dtype == e.dtype, f"{out.name}: dtype {g.dtype}, expected {e.dtype}"
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(g, e, err_msg=out.name)
        else:
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, err_msg=out.name)


# ---- SwiGLU --------------------------------------------------------------------------


def test_swiglu_float_dtypes_and_alpha_match_reference():
    nodes, inputs, outputs, feeds = [], [], [], {}
    for tag, dtype, shape, alpha in (("f32", FLOAT, [2, 3, 5], 1.702),
                                     ("f16", F16, [4, 6], 0.5),
                                     ("f64", DOUBLE, [3, 1, 7], 1.0)):  # fmt: skip
        a, b = f"a_{tag}", f"b_{tag}"
        nodes.append(helper.make_node("SwiGLU", [a, b], [f"y_{tag}"], alpha=alpha))
        inputs += [vi(a, dtype, shape), vi(b, dtype, shape)]
        outputs.append(vi(f"y_{tag}", dtype))
        feeds[a], feeds[b] = randn(dtype, *shape, scale=3.0), randn(dtype, *shape)
    # float16: one rounding of the float32 result; the reference rounds each step
    check_against_reference(model_of(nodes, inputs, outputs), feeds, rtol=2e-3, atol=1e-4)


# ---- TensorScatter -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tensor_scatter():
    """(model, module): caches of several dtypes and axes, one node each."""
    nodes = [
        # axis 1 of a rank-4 cache, linear
        helper.make_node("TensorScatter", ["c1", "u1", "w1"], ["y1"], axis=1),
        # circular, wrapping past the end and from a negative index
        helper.make_node("TensorScatter", ["c2", "u2", "w2"], ["y2"], mode="circular"),
        # int64 cache along the last axis, no write_indices (all zero)
        helper.make_node("TensorScatter", ["c3", "u3"], ["y3"], axis=-1),
        # bool cache, the update as long as the cache
        helper.make_node("TensorScatter", ["c4", "u4", "w4"], ["y4"], axis=2),
    ]
    inputs = [
        vi("c1", FLOAT, [3, 6, 2, 4]), vi("u1", FLOAT, [3, 2, 2, 4]), vi("w1", INT64, ["b"]),
        vi("c2", F16, [2, 3, 5, 2]), vi("u2", F16, [2, 3, 3, 2]), vi("w2", INT64, [2]),
        vi("c3", INT64, [2, 3, 6]), vi("u3", INT64, [2, 3, 2]),
        vi("c4", BOOL, [2, 1, 3]), vi("u4", BOOL, [2, 1, 3]), vi("w4", INT64, [2]),
    ]  # fmt: skip
    outputs = [vi(f"y{i}", 0) for i in range(1, 5)]
    model = model_of(nodes, inputs, outputs, opset=24)
    with load(package(model).wasm) as module:
        yield model, module


def tensor_scatter_feeds(w1):
    return {
        "c1": randn(FLOAT, 3, 6, 2, 4), "u1": randn(FLOAT, 3, 2, 2, 4),
        "w1": np.array(w1, np.int64),
        "c2": randn(F16, 2, 3, 5, 2), "u2": randn(F16, 2, 3, 3, 2),
        "w2": np.array([4, -2], np.int64),
        "c3": R.integers(-9, 9, (2, 3, 6)), "u3": R.integers(-9, 9, (2, 3, 2)),
        "c4": R.random((2, 1, 3)) < 0.5, "u4": R.random((2, 1, 3)) < 0.5,
        "w4": np.array([0, 0], np.int64),
    }  # fmt: skip


def test_tensor_scatter_axes_modes_and_dtypes_match_reference(tensor_scatter):
    model, module = tensor_scatter
    check_against_reference(model, tensor_scatter_feeds([0, 4, 2]), module=module)


def test_tensor_scatter_write_past_the_end_is_a_clean_error(tensor_scatter):
    model, module = tensor_scatter
    with pytest.raises(RuntimeABIError, match=r"TensorScatter.*write_indices\[1\] = 5"):
        module.run(tensor_scatter_feeds([0, 5, 2]))  # 5 + 2 rows > 6
    with pytest.raises(RuntimeABIError, match=r"write_indices must be int64 of shape \(3,\)"):
        module.run(tensor_scatter_feeds([0, 1]))
    check_against_reference(model, tensor_scatter_feeds([4, 0, 1]), module=module)


# ---- CausalConvWithState -------------------------------------------------------------


def test_causal_conv_with_state_matches_reference():
    nodes, inputs, outputs, feeds = [], [], [], {}
    configs = (
        # tag, dtype, (B, C, L, k), bias, past, activation
        ("prefill", FLOAT, (3, 5, 7, 3), True, True, "silu"),
        ("decode", F16, (2, 3, 1, 6), False, True, "none"),
        ("short", FLOAT, (1, 2, 2, 5), True, False, "swish"),
    )
    for tag, dtype, (B, C, L, k), bias, past, act in configs:
        names = [f"x_{tag}", f"w_{tag}", f"b_{tag}" if bias else "",
                 f"p_{tag}" if past else ""]  # fmt: skip
        shapes = [[B, C, L], [C, 1, k], [C], [B, C, k - 1]]
        nodes.append(helper.make_node("CausalConvWithState", names,
                                      [f"y_{tag}", f"s_{tag}"], activation=act))  # fmt: skip
        for name, shape in zip(names, shapes, strict=True):
            if name:
                inputs.append(vi(name, dtype, shape))
                feeds[name] = randn(dtype, *shape)
        outputs += [vi(f"y_{tag}", dtype), vi(f"s_{tag}", dtype)]
    check_against_reference(model_of(nodes, inputs, outputs, opset=27), feeds,
                            rtol=2e-3, atol=1e-4)  # fmt: skip


# ---- LinearAttention -----------------------------------------------------------------


@pytest.fixture(scope="module")
def linear_attention():
    """(model, feeds, module): update rules, head groupings and state dtypes, one node each.

    gd: gated_delta, 4 query heads on 2 kv heads, per-head decay, d_k 3 != d_v 5, float16
        activations with a float32 state; d: delta, beta of width 1, explicit scale;
    g:  gated, per-key-dim decay, 3 query heads on 1 kv head, no past state;
    l:  linear, one token, past state.
    """
    B, T = 2, 5
    configs = {
        # tag: (rule, dtype, state dtype, Hq, Hkv, d_k, d_v, decay width, beta width, past)
        "gd": ("gated_delta", F16, FLOAT, 4, 2, 3, 5, "head", 2, True),
        "d": ("delta", FLOAT, FLOAT, 2, 2, 4, 4, None, 1, True),
        "g": ("gated", FLOAT, None, 3, 1, 4, 2, "dim", None, False),
        "l": ("linear", FLOAT, FLOAT, 2, 2, 3, 3, None, None, True),
    }
    nodes, inputs, outputs, feeds = [], [], [], {}
    for tag, (rule, dt, sdt, hq, hkv, dk, dv, decay, beta, past) in configs.items():
        t = 1 if tag == "l" else T
        shapes = {
            f"q_{tag}": (dt, [B, t, hq * dk]), f"k_{tag}": (dt, [B, t, hkv * dk]),
            f"v_{tag}": (dt, [B, t, hkv * dv]),
            f"p_{tag}": (sdt, ["batch"] + [f"{d}_{tag}" for d in ("h", "dk", "dv")])
            if past else None,
            f"g_{tag}": (dt, [B, t, hkv * (dk if decay == "dim" else 1)]) if decay else None,
            f"b_{tag}": (dt, [B, t, beta]) if beta else None,
        }  # fmt: skip
        for name, spec in shapes.items():
            if spec is None:
                continue
            inputs.append(vi(name, *spec))
            dims = {"batch": B, f"h_{tag}": hkv, f"dk_{tag}": dk, f"dv_{tag}": dv}
            shape = [dims.get(d, d) for d in spec[1]]
            if name[0] == "k":  # unit-norm keys per head, as delta rules expect
                x = R.standard_normal((B, t, hkv, dk))
                x /= np.linalg.norm(x, axis=-1, keepdims=True)
                feeds[name] = x.reshape(shape).astype(NP[dt])
            elif name[0] == "g":  # log-space decay in (-inf, 0)
                feeds[name] = (-np.log1p(np.exp(R.standard_normal(shape)))).astype(NP[dt])
            elif name[0] == "b":  # update rate in (0, 1)
                feeds[name] = (1 / (1 + np.exp(-R.standard_normal(shape)))).astype(NP[dt])
            else:
                feeds[name] = randn(spec[0], *shape, scale=0.5)
        names = [f"q_{tag}", f"k_{tag}", f"v_{tag}", f"p_{tag}" if past else "",
                 f"g_{tag}" if decay else "", f"b_{tag}" if beta else ""]  # fmt: skip
        while not names[-1]:
            names.pop()
        attrs = {"scale": 0.3} if tag == "d" else {}
        nodes.append(helper.make_node(
            "LinearAttention", names, [f"y_{tag}", f"s_{tag}"], update_rule=rule,
            q_num_heads=hq, kv_num_heads=hkv, **attrs))  # fmt: skip
        outputs += [vi(f"y_{tag}", dt), vi(f"s_{tag}", sdt or dt)]
    model = model_of(nodes, inputs, outputs, opset=27)
    with load(package(model).wasm) as module:
        yield model, feeds, module


def test_linear_attention_rules_heads_and_state_dtypes_match_reference(linear_attention):
    model, feeds, module = linear_attention
    check_against_reference(model, feeds, rtol=2e-3, atol=1e-4, module=module)


def test_linear_attention_past_state_of_wrong_shape_is_a_clean_error(linear_attention):
    model, feeds, module = linear_attention
    bad = dict(feeds, p_d=feeds["p_d"][:, :, :3])  # d_k 3 instead of 4
    with pytest.raises(RuntimeABIError, match=r"LinearAttention.*past_state.*must be"):
        module.run(bad)


def test_linear_attention_unknown_update_rule_is_refused_at_export():
    node = helper.make_node("LinearAttention", ["q", "k", "v"], ["y", "s"],
                            update_rule="mamba", q_num_heads=1, kv_num_heads=1)  # fmt: skip
    qkv = [vi(n, FLOAT, [1, 2, 4]) for n in "qkv"]
    model = model_of([node], qkv, [vi("y", FLOAT), vi("s", FLOAT)], opset=27)
    with pytest.raises(UnsupportedOpError, match=r"update_rule 'mamba' is not supported"):
        package(model)


# ---- FlexAttention -------------------------------------------------------------------


def score_graph(kind, dtype):
    """A modifier body (B, H, L, S) -> same: causal mask, soft cap, relative position,
    or a scale (for probabilities)."""
    x, y = vi("x", dtype, ["B", "H", "L", "S"]), vi("y", dtype, ["B", "H", "L", "S"])
    c = helper.make_tensor
    if kind == "scale":
        return helper.make_graph([helper.make_node("Mul", ["x", "c"], ["y"])], kind, [x], [y],
                                 [c("c", dtype, [], [0.75])])  # fmt: skip
    if kind == "softcap":
        nodes = [helper.make_node("Div", ["x", "c"], ["t0"]),
                 helper.make_node("Tanh", ["t0"], ["t1"]),
                 helper.make_node("Mul", ["t1", "c"], ["y"])]  # fmt: skip
        return helper.make_graph(nodes, kind, [x], [y], [c("c", dtype, [], [2.0])])
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "i2"], ["L"], axis=0),
        helper.make_node("Gather", ["shape", "i3"], ["S"], axis=0),
        helper.make_node("Range", ["zero", "L", "one"], ["lr"]),
        helper.make_node("Reshape", ["lr", "col"], ["qi"]),
        helper.make_node("Range", ["zero", "S", "one"], ["kr"]),
    ]
    inits = [c("zero", INT64, [], [0]), c("one", INT64, [], [1]), c("i2", INT64, [], [2]),
             c("i3", INT64, [], [3]), c("col", INT64, [2], [-1, 1])]  # fmt: skip
    if kind == "causal":  # keys after the query's position (offset by S - L) get -inf
        nodes += [helper.make_node("Sub", ["S", "L"], ["off"]),
                  helper.make_node("Add", ["qi", "off"], ["qpos"]),
                  helper.make_node("GreaterOrEqual", ["qpos", "kr"], ["keep"]),
                  helper.make_node("Where", ["keep", "x", "ninf"], ["y"])]  # fmt: skip
        inits.append(c("ninf", dtype, [], [-np.inf]))
    else:  # relative: scores + 0.1 * (q - k)
        nodes += [helper.make_node("Sub", ["qi", "kr"], ["rel"]),
                  helper.make_node("Cast", ["rel"], ["relf"], to=dtype),
                  helper.make_node("Mul", ["relf", "tenth"], ["bias"]),
                  helper.make_node("Add", ["x", "bias"], ["y"])]  # fmt: skip
        inits.append(c("tenth", dtype, [], [0.1]))
    return helper.make_graph(nodes, kind, [x], [y], inits)


def test_flex_attention_heads_mods_and_precisions_match_reference():
    configs = (
        # tag, dtype, (B, Hq, Hkv, L, S, E, Ev), score_mod, prob_mod, attributes
        ("gqa", FLOAT, (2, 6, 2, 5, 7, 4, 3), "causal", "scale", {"scale": 0.4}),
        ("f64", DOUBLE, (1, 2, 2, 3, 4, 8, 8), "softcap", None, {}),
        ("f16", F16, (1, 4, 1, 4, 6, 8, 2), "relative", None, {}),
        ("wide", FLOAT, (2, 2, 2, 3, 3, 5, 6), "softcap", "scale",
         {"softmax_precision": DOUBLE}),
    )  # fmt: skip
    nodes, inputs, outputs, feeds = [], [], [], {}
    for tag, dtype, (B, hq, hkv, L, S, E, ev), score, prob, attrs in configs:
        body_dtype = attrs.get("softmax_precision", DOUBLE if dtype == DOUBLE else FLOAT)
        for name, shape in ((f"q_{tag}", [B, hq, L, E]), (f"k_{tag}", [B, hkv, S, E]),
                            (f"v_{tag}", [B, hkv, S, ev])):  # fmt: skip
            inputs.append(vi(name, dtype, shape))
            feeds[name] = randn(dtype, *shape)
        if score:
            attrs["score_mod"] = score_graph(score, body_dtype)
        if prob:
            attrs["prob_mod"] = score_graph(prob, body_dtype)
        nodes.append(helper.make_node("FlexAttention", [f"q_{tag}", f"k_{tag}", f"v_{tag}"],
                                      [f"y_{tag}"], domain=PREVIEW, **attrs))  # fmt: skip
        outputs.append(vi(f"y_{tag}", dtype))
    model = model_of(nodes, inputs, outputs, opset=26, preview=True)
    check_against_reference(model, feeds, rtol=2e-3, atol=1e-4)


def flex_model(domain=PREVIEW, op="FlexAttention", **attrs):
    node = helper.make_node(op, ["q", "k", "v"], ["y"], domain=domain, **attrs)
    qkv = [vi(n, FLOAT, [1, 2, 3, 4]) for n in "qkv"]
    model = model_of([node], qkv, [vi("y", FLOAT)], opset=26)
    model.opset_import.append(helper.make_opsetid(domain, 1))
    return model


def test_flex_attention_score_mod_changing_the_shape_is_a_clean_error():
    x, y = vi("x", FLOAT, ["B", "H", "L", "S"]), vi("y", FLOAT, ["B", "H", "L", 1])
    body = helper.make_graph([helper.make_node("ReduceMax", ["x"], ["y"], keepdims=1)],
                             "reduce", [x], [y])  # fmt: skip
    model = flex_model(score_mod=body)
    arrays = [randn(FLOAT, 1, 2, 3, 4) for _ in range(3)]
    with load(package(model).wasm) as m:
        with pytest.raises(RuntimeABIError, match=r"score_mod returned float32 \(1, 1, 1, 1"):
            m.run(arrays)


def test_preview_domain_accepts_flex_attention_only():
    with pytest.raises(UnsupportedOpError, match=r"'ai.onnx.preview'.*only FlexAttention"):
        package(flex_model(op="Attention"))
    with pytest.raises(UnsupportedOpError, match=r"domain 'com.example' is not ai.onnx"):
        package(flex_model(domain="com.example"))


def test_flex_attention_bfloat16_softmax_precision_is_refused_at_export():
    with pytest.raises(UnsupportedOpError, match=r"softmax_precision BFLOAT16"):
        package(flex_model(softmax_precision=TensorProto.BFLOAT16))


def test_new_ops_are_listed_by_the_runtime():
    from wasmexport.packager.runtime_info import supported_op_types

    ops = supported_op_types()
    for op in ("SwiGLU", "TensorScatter", "CausalConvWithState", "LinearAttention"):
        assert ("", op) in ops
    assert (PREVIEW, "FlexAttention") in ops
    assert onnx.defs.has("FlexAttention", PREVIEW)


def test_flex_attention_passes_the_onnx_adapter_and_verifies(tmp_path):
    from wasmexport import export_wasm

    node = helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain=PREVIEW)
    qkv = [vi(n, FLOAT, [1, 2, 3, 4]) for n in "qkv"]
    model = model_of([node], qkv, [vi("y", FLOAT, [1, 2, 3, 4])], opset=26, preview=True)
    arrays = [randn(FLOAT, 1, 2, 3, 4) for _ in range(3)]
    export_wasm(model, arrays, tmp_path / "flex.wasm")  # verifies by default
    expected = ReferenceEvaluator(model).run(None, dict(zip("qkv", arrays, strict=True)))
    with load((tmp_path / "flex.wasm").read_bytes()) as m:
        np.testing.assert_allclose(m.run(arrays), expected[0], rtol=1e-5, atol=1e-6)
