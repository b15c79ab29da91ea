"""bfloat16 end to end (Cast, kernels, raw / pb / JSON I/O through the ABI) and the float16 /
float64 paths of MatMul, Softmax and Conv, against onnx.reference and onnxruntime."""

from __future__ import annotations

import base64
import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from model_helpers import make_model, onnxruntime_run
from node_cases import check_conformance_case, conformance_cases
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from wasmexport import load
from wasmexport.errors import UnsupportedOpError
from wasmexport.packager import package

BF16, F16 = TensorProto.BFLOAT16, TensorProto.FLOAT16
FLOAT, DOUBLE = TensorProto.FLOAT, TensorProto.DOUBLE
bf16 = ml_dtypes.bfloat16
R = np.random.default_rng(7)


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}0", **attrs)


def reference(model: onnx.ModelProto, arrays: list[np.ndarray]) -> list[np.ndarray]:
    names = [i.name for i in model.graph.input]
    return ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))


def bits(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).view(np.uint16)


def assert_same_values(got: np.ndarray, want_bits: np.ndarray, json_text: bool) -> None:
    """Every bit equal; through JSON text a NaN is just "NaN" (no sign, no payload)."""
    got = bits(got).reshape(want_bits.shape)
    if json_text:
        nan = np.isnan(want_bits.view(bf16))
        np.testing.assert_array_equal(np.isnan(got.view(bf16)), nan)
        got, want_bits = got[~nan], want_bits[~nan]
    np.testing.assert_array_equal(got, want_bits)


def test_bfloat16_cast_from_double_rounds_once_like_ml_dtypes():
    # ties to even, a value that float32 would round onto a tie first, subnormals,
    # the largest finite value and the overflow threshold, NaN, infinities, signed zero
    x = np.array([0.0, -0.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-8 + 2**-30, 2**-133,
                  3 * 2**-134, 2**-126 - 2**-134, 3.3895313892515355e38, 3.3961e38, -1e39,
                  np.nan, -np.inf, 1 / 3, 2**-140],
                 np.float64)  # fmt: skip
    model = make_model([node("Cast", ["x"], to=BF16)], [("x", DOUBLE, [x.size])],
                       [("y", BF16, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run(x)
    assert got.dtype == bf16
    with np.errstate(over="ignore"):
        expected = x.astype(bf16)
    np.testing.assert_array_equal(bits(got), bits(expected))


def test_bfloat16_cast_float32_both_ways_matches_reference():
    edges = np.array([np.nan, np.inf, -0.0, 1e-40, 3.39e38], np.float32)
    x = np.concatenate([R.standard_normal(64).astype(np.float32) * 1e3, edges])
    to_bf = make_model([node("Cast", ["x"], to=BF16)], [("x", FLOAT, [x.size])],
                       [("y", BF16, None)], opset=21)  # fmt: skip
    back = make_model([node("CastLike", ["x", "like"])],
                      [("x", BF16, [x.size]), ("like", FLOAT, [1])],
                      [("y", FLOAT, None)], opset=21)  # fmt: skip
    with load(package(to_bf).wasm) as module:
        y = module.run(x)
    np.testing.assert_array_equal(bits(y), bits(reference(to_bf, [x])[0]))
    like = np.zeros(1, np.float32)
    with load(package(back).wasm) as module:
        z = module.run([y, like])
    np.testing.assert_array_equal(z, reference(back, [y, like])[0])


def test_bfloat16_io_raw_pb_and_json_keep_every_bit():
    model = make_model([node("Neg", ["x"])], [("x", BF16, [2, 4])], [("y", BF16, [2, 4])])
    x = np.array([[1.5, -0.0, np.inf, np.nan], [3.0e38, 1e-40, -2.25, 0.1]], bf16)
    want = bits(-x)
    with load(package(model).wasm) as module:
        # raw base64 both ways, and nested JSON lists both ways (module.run)
        for raw in (True, False):
            got = module.run(x, raw=raw)
            assert got.dtype == bf16
            assert_same_values(got, want, json_text=not raw)
        # a TensorProto in (raw_data, and the int32_data of make_tensor), pb / raw / JSON out
        typed = helper.make_tensor("x", BF16, [2, 4], x.astype(np.float32).ravel().tolist())
        for proto in (numpy_helper.from_array(x, "x"), typed):
            data = base64.b64encode(proto.SerializeToString()).decode()
            for out_type in ("pb", "raw", None):
                request = {"input": data, "type": "pb"}
                if out_type:
                    request["output_type"] = out_type
                rc, text = module.request(json.dumps(request))
                response = json.loads(text)
                assert rc == 0, response
                if out_type == "pb":
                    out = onnx.TensorProto.FromString(base64.b64decode(response["output"]))
                    assert out.data_type == BF16 and list(out.dims) == [2, 4]
                    y = numpy_helper.to_array(out)
                elif out_type == "raw":
                    assert response["dtype"] == "bfloat16"
                    y = np.frombuffer(base64.b64decode(response["output"]), np.uint16)
                else:
                    assert json.dumps(response["output"][0][3]) == '"NaN"'
                    y = np.asarray(response["output"], dtype=object)
                    y = np.vectorize(float)(y).astype(bf16)
                assert_same_values(y, want, json_text=out_type is None)


@pytest.mark.parametrize(
    ("op", "attrs"),
    [("Add", {}), ("Mul", {}), ("Div", {}), ("Celu", {"alpha": 0.5}), ("Sqrt", {}),
     ("ReduceMax", {"keepdims": 1}), ("Softmax", {"axis": -1}), ("LogSoftmax", {"axis": 0}),
     ("MatMul", {}), ("Unique", {})],
)  # fmt: skip
def test_bfloat16_kernels_match_reference(op, attrs):
    x = (R.standard_normal((3, 5)) * 4).astype(bf16)
    if op == "Sqrt":
        x = np.abs(x)
    inputs, arrays = [("x", BF16, [3, 5])], [x]
    if op in ("Add", "Mul", "Div"):
        inputs.append(("b", BF16, [5]))
        arrays.append((R.random(5) + 0.5).astype(bf16))
    if op == "MatMul":
        inputs.append(("b", BF16, [5, 4]))
        arrays.append(R.standard_normal((5, 4)).astype(bf16))
    if op == "Unique":
        x[1] = x[0]
    names = [name for name, _, _ in inputs]
    model = make_model([node(op, names, **attrs)], inputs, [("y", BF16, None)], opset=21)
    with load(package(model).wasm) as module:
        got = module.run(arrays)
    expected = reference(model, arrays)[0]
    assert got.dtype == bf16 and got.shape == expected.shape
    # the reference computes in float32 and rounds each step to bfloat16, as the kernels do
    np.testing.assert_array_equal(bits(got), bits(expected))


@pytest.mark.parametrize(
    ("dtype", "attrs", "exact"),
    [(BF16, {"is_causal": 1}, True), (F16, {"is_causal": 1}, True),
     (BF16, {"scale": 0.3}, True),
     # the evaluator divides by softcap as a float32 scalar, promoting the scores to float32;
     # the kernel rounds softcap to bfloat16 as Attention's function body (and the
     # conformance data) do, so the two may differ by one unit in the last place
     (BF16, {"softcap": 0.7}, False)],
)  # fmt: skip
def test_bfloat16_attention_matches_reference_bit_for_bit(dtype, attrs, exact):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    q, k, v = (R.random((1, 2, 3, 8)).astype(np_type), R.random((1, 2, 5, 8)).astype(np_type),
               R.random((1, 2, 5, 8)).astype(np_type))  # fmt: skip
    model = make_model(
        [node("Attention", ["q", "k", "v"], **attrs)],
        [("q", dtype, [1, 2, 3, 8]), ("k", dtype, [1, 2, 5, 8]), ("v", dtype, [1, 2, 5, 8])],
        [("y", dtype, None)], opset=23,
    )  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run([q, k, v])
    expected = reference(model, [q, k, v])[0]
    if exact:
        np.testing.assert_array_equal(bits(got), bits(expected))
    else:
        np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32),
                                   rtol=2**-7, atol=0)  # fmt: skip


@pytest.mark.parametrize("dtype", [F16, DOUBLE])
@pytest.mark.parametrize("activation", [None, "Relu", "Clip"])
def test_bfloat16_matmul_float16_and_float64_match_onnxruntime(dtype, activation):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    a = R.standard_normal((2, 3, 7)).astype(np_type)
    b = R.standard_normal((7, 5)).astype(np_type)
    nodes = [node("MatMul", ["a", "b"], ["m" if activation else "y"])]
    consts = {"b": b}
    if activation == "Relu":  # fused into the product (wx_clip) by the packager
        nodes.append(helper.make_node("Relu", ["m"], ["y"], name="act"))
    if activation == "Clip":  # bounds that float32 (wx_clip) cannot hold in float64
        nodes.append(helper.make_node("Clip", ["m", "lo", "hi"], ["y"], name="act"))
        consts.update(lo=np.array(-0.1, np_type), hi=np.array(0.7, np_type))
    model = make_model(nodes, [("a", dtype, [2, 3, 7])], [("y", dtype, None)], consts)
    with load(package(model).wasm) as module:
        got = module.run(a)
    expected = onnxruntime_run(model, [a])[0]
    assert got.dtype == np_type
    tol = 1e-3 if dtype == F16 else 1e-12
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [F16, DOUBLE])
def test_bfloat16_softmax_float16_and_float64_match_onnxruntime(dtype):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    x = (R.standard_normal((2, 3, 6)) * 3).astype(np_type)
    model = make_model([node("Softmax", ["x"], axis=1)], [("x", dtype, [2, 3, 6])],
                       [("y", dtype, None)], opset=13)  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run(x)
    expected = onnxruntime_run(model, [x])[0]
    tol = 1e-3 if dtype == F16 else 1e-12
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=tol, atol=tol)


def test_bfloat16_conv_float16_with_bias_matches_onnxruntime():
    x = R.standard_normal((1, 4, 6, 6)).astype(np.float16)
    w = (R.standard_normal((6, 2, 3, 3)) * 0.3).astype(np.float16)
    b = R.standard_normal(6).astype(np.float16)
    model = make_model(
        [node("Conv", ["x", "w", "b"], ["c"], group=2, pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"], name="relu")],
        [("x", F16, [1, 4, 6, 6])], [("y", F16, None)], {"w": w, "b": b},
    )  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run(x)
    expected = onnxruntime_run(model, [x])[0]
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("op", "dtype", "match"),
    [("Gemm", BF16, r"gemm0.*input 0.*bfloat16"), ("Conv", DOUBLE, r"conv0.*DOUBLE"),
     ("Cast", TensorProto.FLOAT8E4M3FN, r"cast0.*FLOAT8E4M3FN")],
)  # fmt: skip
def test_bfloat16_unsupported_dtypes_are_refused_at_export(op, dtype, match):
    if op == "Cast":
        model = make_model([node("Cast", ["x"], to=dtype)], [("x", FLOAT, [4])],
                           [("y", dtype, None)])  # fmt: skip
    else:
        model = make_model([node(op, ["x", "w"])], [("x", dtype, [1, 2, 3, 3])],
                           [("y", dtype, None)],
                           {"w": np.ones((2, 2, 1, 1) if op == "Conv" else (3, 3), np.float32)
                            .astype(helper.tensor_dtype_to_np_dtype(dtype))})  # fmt: skip
        if op == "Gemm":
            model.graph.input[0].type.tensor_type.shape.ClearField("dim")
            for d in (2, 3):
                model.graph.input[0].type.tensor_type.shape.dim.add().dim_value = d
    with pytest.raises(UnsupportedOpError, match=match):
        package(model)


def test_bfloat16_string_casts_are_refused_at_export():
    model = make_model([node("Cast", ["x"], to=TensorProto.STRING)], [("x", BF16, [2])],
                       [("y", TensorProto.STRING, None)])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="string and BFLOAT16"):
        package(model)


def test_bfloat16_float32_only_recurrent_layers_are_refused_at_export():
    w = np.zeros((1, 8, 3), np.float32).astype(bf16)
    model = make_model([node("LSTM", ["x", "w", "r"], hidden_size=2)],
                       [("x", BF16, [4, 1, 3])], [("y", BF16, None)],
                       {"w": w, "r": np.zeros((1, 8, 2), bf16)})  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"lstm0.*input 0.*bfloat16.*supports float"):
        package(model)


def test_bfloat16_conformance_cases_pass():
    """The ONNX backend node cases of bfloat16 for the ops that hold it without casting."""
    cases = conformance_cases("attention", "celu", "compress", "einsum", "onehot", "rangeop",
                              "reversesequence", "unique")  # fmt: skip
    picked = [c for c in cases if "bf16" in c.name or "bfloat16" in c.name]
    ops = {c.model.graph.node[0].op_type for c in picked}
    assert {"Attention", "Celu", "Einsum", "Unique"} <= ops and len(picked) >= 12
    for case in picked:
        check_conformance_case(case)
