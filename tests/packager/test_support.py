"""Export-time refusals of dtypes and attribute values (packager/support.py), and the
dtype-generic kernels they guard, against numpy and onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_model, onnxruntime_run
from onnx import TensorProto, helper

from wasmexport import load
from wasmexport.errors import UnsupportedOpError
from wasmexport.packager import package

FLOAT, DOUBLE, F8 = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT8E5M2
F16, BOOL, INT8 = TensorProto.FLOAT16, TensorProto.BOOL, TensorProto.INT8


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}0", **attrs)


def test_support_float8_value_is_refused_at_export():
    model = make_model([node("Cast", ["x"], to=F8)], [("x", FLOAT, [3])], [("y", F8, [3])])
    with pytest.raises(UnsupportedOpError, match=r"cast0.*FLOAT8E5M2"):
        package(model)


def test_support_float32_only_kernel_refuses_float64():
    model = make_model(
        [node("Gemm", ["a", "b"])], [("a", DOUBLE, [2, 3]), ("b", DOUBLE, [3, 4])],
        [("y", DOUBLE, None)],
    )  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"gemm0.*input 0.*double.*supports float"):
        package(model)


def test_support_dropout_constant_training_mode_is_refused():
    # training_mode true with the default ratio 0.5 draws a random mask; a training_mode
    # fed at run time is checked by the runtime (test_signal_quant_ops.py)
    model = make_model(
        [node("Dropout", ["x", "", "t"])], [("x", FLOAT, [4])], [("y", FLOAT, None)],
        {"t": np.array(True)},
    )  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"dropout0.*training_mode is true.*0\.5"):
        package(model)


def test_support_lp_normalization_p3_is_refused():
    model = make_model([node("LpNormalization", ["x"], p=3)], [("x", FLOAT, [2, 3])],
                       [("y", FLOAT, None)])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="p = 3"):
        package(model)


def test_support_cast_to_float16_rounds_like_numpy():
    # ties to even, subnormals, overflow to inf, NaN and signed zero
    x = np.array([0.0, -0.0, 1.0 + 2**-11, 1.0 + 3 * 2**-11, 65504.0, 65519.0, 65520.0,
                  2**-25, 3 * 2**-26, 2**-14 - 2**-26, -1e9, np.nan, np.inf, 1 / 3],
                 np.float64)  # fmt: skip
    model = make_model([node("Cast", ["x"], to=F16)], [("x", DOUBLE, [x.size])],
                       [("y", F16, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run(x)
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16)
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize(
    ("op", "dtype", "attrs"),
    [("Add", INT8, {}), ("Mod", INT8, {}), ("Mod", DOUBLE, {"fmod": 1}), ("Max", F16, {}),
     ("Less", DOUBLE, {}), ("Mul", TensorProto.UINT16, {})],
)  # fmt: skip
def test_support_generic_binary_matches_onnxruntime(op, dtype, attrs):
    rng = np.random.default_rng(0)
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    a = (rng.standard_normal((3, 4)) * 50).astype(np_type)
    b = (rng.integers(1, 9, (4,)) * np.where(rng.random(4) < 0.5, -1, 1)).astype(np_type)
    out = BOOL if op == "Less" else dtype
    inputs = [("a", dtype, [3, 4]), ("b", dtype, [4])]
    model = make_model([node(op, ["a", "b"], **attrs)], inputs, [("y", out, None)], opset=18)
    with load(package(model).wasm) as module:
        got = module.run([a, b])
    (expected,) = onnxruntime_run(model, [a, b])
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64), rtol=1e-3)


@pytest.mark.parametrize("is_causal", [0, 1])
def test_support_attention_gqa_with_cache_matches_reference(is_causal):
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(1)
    b, hq, hkv, lq, past, d = 2, 4, 2, 3, 2, 8
    arrays = [rng.standard_normal(s).astype(np.float32) for s in
              [(b, lq, hq * d), (b, lq, hkv * d), (b, lq, hkv * d),
               (b, hkv, past, d), (b, hkv, past, d)]]  # fmt: skip
    names = ["q", "k", "v", "pk", "pv"]
    attention = helper.make_node(
        "Attention", [*names[:3], "", "pk", "pv"], ["y", "present_k", "present_v"],
        name="attention0", q_num_heads=hq, kv_num_heads=hkv, is_causal=is_causal,
    )  # fmt: skip
    inputs = [(n, FLOAT, list(a.shape)) for n, a in zip(names, arrays, strict=True)]
    outputs = [(n, FLOAT, None) for n in ("y", "present_k", "present_v")]
    model = make_model([attention], inputs, outputs, opset=23)
    model.ir_version = 10
    expected = ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))
    with load(package(model).wasm) as module:
        got = module.run(arrays)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
