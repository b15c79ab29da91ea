"""Each supported op, packaged alone (or in a small chain), against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from onnx import helper

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package

R = np.random.default_rng(7)


def randn(*shape):
    return R.standard_normal(shape).astype(np.float32)


def node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}0", **attrs)


# (id, model, input arrays): float32 unless the model says otherwise
CASES = [
    (
        "relu",
        make_model([node("Relu", ["x"])], [("x", FLOAT, ["n", 5])], [("y", FLOAT, None)]),
        [randn(3, 5)],
    ),
    (
        "sigmoid",
        make_model([node("Sigmoid", ["x"])], [("x", FLOAT, ["n", 7])], [("y", FLOAT, None)]),
        [randn(4, 7) * 30],
    ),
    (
        "tanh",
        make_model([node("Tanh", ["x"])], [("x", FLOAT, [6])], [("y", FLOAT, None)]),
        [randn(6) * 5],
    ),
    (
        "leaky_relu",
        make_model(
            [node("LeakyRelu", ["x"], alpha=0.2)], [("x", FLOAT, [9])], [("y", FLOAT, None)]
        ),
        [randn(9)],
    ),
    (
        "exp_log_sqrt_abs_neg",
        make_model(
            [
                node("Abs", ["x"], ["a"]),
                node("Sqrt", ["a"], ["s"]),
                node("Exp", ["s"], ["e"]),
                node("Log", ["e"], ["l"]),
                node("Neg", ["l"]),
            ],
            [("x", FLOAT, [2, 3])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3)],
    ),
    (
        "add_broadcast",
        make_model(
            [node("Add", ["a", "b"])],
            [("a", FLOAT, ["n", 3, 4]), ("b", FLOAT, [4])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3, 4), randn(4)],
    ),
    (
        "sub_broadcast_both",
        make_model(
            [node("Sub", ["a", "b"])],
            [("a", FLOAT, [3, 1]), ("b", FLOAT, [1, 5])],
            [("y", FLOAT, None)],
        ),
        [randn(3, 1), randn(1, 5)],
    ),
    (
        "mul_scalar",
        make_model(
            [node("Mul", ["a", "b"])],
            [("a", FLOAT, [2, 3]), ("b", FLOAT, [])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3), randn()],
    ),
    (
        "div_middle_axis",
        make_model(
            [node("Div", ["a", "b"])],
            [("a", FLOAT, [2, 3, 4]), ("b", FLOAT, [3, 1])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3, 4), randn(3, 1) + 3],
    ),
    (
        "pow",
        make_model(
            [node("Pow", ["a", "b"])],
            [("a", FLOAT, [5]), ("b", FLOAT, [5])],
            [("y", FLOAT, None)],
        ),
        [np.abs(randn(5)) + 0.1, randn(5)],
    ),
    (
        "int64_arith",
        make_model(
            [
                node("Add", ["a", "b"], ["s"]),
                node("Mul", ["s", "b"], ["m"]),
                node("Div", ["m", "c"]),
            ],
            [("a", INT64, [4]), ("b", INT64, [4]), ("c", INT64, [4])],
            [("y", INT64, None)],
        ),
        [
            np.array([1, -7, 9, 2**40], np.int64),
            np.array([3, 4, -5, 6], np.int64),
            np.array([2, -3, 4, 7], np.int64),
        ],
    ),
    (
        "gemm_plain",
        make_model(
            [node("Gemm", ["a", "w", "c"])],
            [("a", FLOAT, ["n", 20])],
            [("y", FLOAT, None)],
            {"w": randn(20, 13), "c": randn(13)},
        ),
        [randn(5, 20)],
    ),
    (
        "gemm_trans_alpha_beta",
        make_model(
            [node("Gemm", ["a", "w", "c"], transA=1, transB=1, alpha=0.5, beta=2.0)],
            [("a", FLOAT, [20, 6])],
            [("y", FLOAT, None)],
            {"w": randn(9, 20), "c": randn(6, 1)},
        ),
        [randn(20, 6)],
    ),
    (
        "gemm_no_c",
        make_model(
            [node("Gemm", ["a", "w"])],
            [("a", FLOAT, ["n", 3])],
            [("y", FLOAT, None)],
            {"w": randn(3, 2)},
        ),
        [randn(1, 3)],
    ),
    (
        "matmul_batched_broadcast",
        make_model(
            [node("MatMul", ["a", "b"])],
            [("a", FLOAT, [2, 1, 5, 7]), ("b", FLOAT, [3, 7, 9])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 1, 5, 7), randn(3, 7, 9)],
    ),
    (
        "matmul_vector",
        make_model(
            [node("MatMul", ["a", "b"])],
            [("a", FLOAT, [7]), ("b", FLOAT, [7, 3])],
            [("y", FLOAT, None)],
        ),
        [randn(7), randn(7, 3)],
    ),
    (
        "matmul_large",
        make_model(
            [node("MatMul", ["a", "b"])],
            [("a", FLOAT, [67, 129]), ("b", FLOAT, [129, 301])],
            [("y", FLOAT, None)],
        ),
        [randn(67, 129), randn(129, 301)],
    ),
    (
        "conv_pad_stride",
        make_model(
            [node("Conv", ["x", "w", "b"], pads=[1, 2, 1, 0], strides=[2, 1])],
            [("x", FLOAT, ["n", 3, 11, 10])],
            [("y", FLOAT, None)],
            {"w": randn(5, 3, 3, 3), "b": randn(5)},
        ),
        [randn(2, 3, 11, 10)],
    ),
    (
        "conv_dilation_group",
        make_model(
            [node("Conv", ["x", "w"], dilations=[2, 2], group=2, pads=[2, 2, 2, 2])],
            [("x", FLOAT, [1, 4, 9, 9])],
            [("y", FLOAT, None)],
            {"w": randn(6, 2, 3, 3)},
        ),
        [randn(1, 4, 9, 9)],
    ),
    (
        "conv_depthwise_same_upper",
        make_model(
            [node("Conv", ["x", "w", "b"], group=4, auto_pad="SAME_UPPER", strides=[2, 2])],
            [("x", FLOAT, [1, 4, 8, 7])],
            [("y", FLOAT, None)],
            {"w": randn(4, 1, 3, 3), "b": randn(4)},
        ),
        [randn(1, 4, 8, 7)],
    ),
    (
        "conv_1d_valid",
        make_model(
            [node("Conv", ["x", "w"], auto_pad="VALID")],
            [("x", FLOAT, [2, 3, 20])],
            [("y", FLOAT, None)],
            {"w": randn(4, 3, 5)},
        ),
        [randn(2, 3, 20)],
    ),
    (
        "conv_1x1",
        make_model(
            [node("Conv", ["x", "w", "b"])],
            [("x", FLOAT, [1, 16, 5, 6])],
            [("y", FLOAT, None)],
            {"w": randn(8, 16, 1, 1), "b": randn(8)},
        ),
        [randn(1, 16, 5, 6)],
    ),
    (
        "softmax_13_axis1",
        make_model(
            [node("Softmax", ["x"], axis=1)], [("x", FLOAT, [2, 5, 3])], [("y", FLOAT, None)]
        ),
        [randn(2, 5, 3) * 4],
    ),
    (
        "softmax_11_flattens",
        make_model(
            [node("Softmax", ["x"], axis=1)],
            [("x", FLOAT, [2, 5, 3])],
            [("y", FLOAT, None)],
            opset=11,
        ),
        [randn(2, 5, 3) * 4],
    ),
    (
        "log_softmax",
        make_model(
            [node("LogSoftmax", ["x"])], [("x", FLOAT, ["n", 10])], [("y", FLOAT, None)]
        ),
        [randn(3, 10) * 10],
    ),
    (
        "flatten",
        make_model(
            [node("Flatten", ["x"], axis=2)],
            [("x", FLOAT, [2, 3, 4, 5])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3, 4, 5)],
    ),
    (
        "reshape_zero_minus_one",
        make_model(
            [node("Reshape", ["x", "s"])],
            [("x", FLOAT, ["n", 6, 4])],
            [("y", FLOAT, None)],
            {"s": np.array([0, -1, 2], np.int64)},
        ),
        [randn(3, 6, 4)],
    ),
    (
        "transpose",
        make_model(
            [node("Transpose", ["x"], perm=[2, 0, 3, 1])],
            [("x", FLOAT, [2, 3, 4, 5])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 3, 4, 5)],
    ),
    (
        "transpose_default",
        make_model([node("Transpose", ["x"])], [("x", FLOAT, [3, 4])], [("y", FLOAT, None)]),
        [randn(3, 4)],
    ),
    (
        "depth_to_space_dcr",
        make_model(
            [node("DepthToSpace", ["x"], blocksize=2)],
            [("x", FLOAT, [2, 8, 3, 4])],
            [("y", FLOAT, None)],
        ),
        [randn(2, 8, 3, 4)],
    ),
    (
        "depth_to_space_crd",
        make_model(
            [node("DepthToSpace", ["x"], blocksize=3, mode="CRD")],
            [("x", FLOAT, [1, 18, 2, 3])],
            [("y", FLOAT, None)],
        ),
        [randn(1, 18, 2, 3)],
    ),
    (
        "dynamic_shape_chain",
        make_model(
            [
                node("Shape", ["x"], ["s"]),
                node("Gather", ["s", "i0"], ["b"], axis=0),
                node("Unsqueeze", ["b", "ax"], ["bu"]),
                node("Concat", ["bu", "rest"], ["shape"], axis=0),
                node("Reshape", ["x", "shape"], ["r"]),
                node("Cast", ["s"], ["sf"], to=FLOAT),
                node("Slice", ["r", "st", "en", "axs", "sp"], ["y"]),
            ],
            [("x", FLOAT, ["n", 2, 3, 4])],
            [("y", FLOAT, None)],
            {
                "i0": np.array(0, np.int64),
                "ax": np.array([0], np.int64),
                "rest": np.array([-1, 4], np.int64),
                "st": np.array([5, 3], np.int64),
                "en": np.array([-100, 0], np.int64),
                "axs": np.array([1, -1], np.int64),
                "sp": np.array([-2, -1], np.int64),
            },
        ),
        [randn(2, 2, 3, 4)],
    ),
    (
        "squeeze_unsqueeze_attrs_opset11",
        make_model(
            [node("Unsqueeze", ["x"], ["u"], axes=[0, 3]), node("Squeeze", ["u"], axes=[0])],
            [("x", FLOAT, [2, 3])],
            [("y", FLOAT, None)],
            opset=11,
        ),
        [randn(2, 3)],
    ),
    (
        "constant_of_shape_int",
        make_model(
            [
                node("Shape", ["x"], ["s"]),
                node("ConstantOfShape", ["s"], value=helper.make_tensor("v", INT64, [1], [7])),
            ],
            [("x", FLOAT, ["n", 3])],
            [("y", INT64, None)],
        ),
        [randn(2, 3)],
    ),
    (
        "cast_float_to_int_saturating",
        make_model([node("Cast", ["x"], to=INT64)], [("x", FLOAT, [6])], [("y", INT64, None)]),
        [np.array([1.7, -2.5, 3.0, -0.2, 100.9, -7.99], np.float32)],
    ),
    (
        "identity_dropout",
        make_model(
            [node("Dropout", ["x"], ["d"]), node("Identity", ["d"])],
            [("x", FLOAT, [3])],
            [("y", FLOAT, None)],
        ),
        [randn(3)],
    ),
]


def _batch_variant(arrays, model):
    """Inputs one row longer on every symbolic leading dim (exercises dynamic shapes)."""
    out = []
    for spec, a in zip(model.graph.input, arrays, strict=True):
        dims = spec.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            a = np.concatenate([a, a[:1]], axis=0)
        out.append(a)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_op_matches_onnxruntime(case):
    _, model, arrays = case
    wasm = package(model).wasm
    with load(wasm) as module:
        for inputs in (arrays, _batch_variant(arrays, model)):
            expected = onnxruntime_run(model, inputs)
            got = module.run(inputs)
            got = got if isinstance(got, list) else [got]
            for e, g in zip(expected, got, strict=True):
                assert g.shape == e.shape and g.dtype == e.dtype
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
            # the JSON path gives the same values as the raw path
            json_out = module.run(inputs, raw=False)
            json_out = json_out if isinstance(json_out, list) else [json_out]
            for g, j in zip(got, json_out, strict=True):
                np.testing.assert_array_equal(g, j)


def test_op_unsupported_is_refused_at_export():
    # random draws are never executed: the runtime is deterministic
    model = make_model([node("RandomNormalLike", ["x"])], [("x", FLOAT, [2, 3])],
                       [("y", FLOAT, None)])  # fmt: skip
    with pytest.raises(UnsupportedOpError) as info:
        package(model)
    assert "randomnormallike0" in str(info.value) and "RandomNormalLike" in str(info.value)
    assert "opset 17" in str(info.value)
    assert info.value.node == "randomnormallike0" and info.value.opset == 17


def test_op_custom_domain_is_refused_at_export():
    custom = helper.make_node("Fancy", ["x"], ["y"], name="fancy0", domain="com.example")
    model = make_model([custom], [("x", FLOAT, [2])], [("y", FLOAT, None)])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpError, match="fancy0.*com.example"):
        package(model)


def test_op_runtime_error_names_node_and_shapes():
    model = make_model([node("MatMul", ["a", "b"])], [("a", FLOAT, ["n", "k"]),
                                                      ("b", FLOAT, ["k2", 3])],
                       [("y", FLOAT, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        with pytest.raises(
            RuntimeABIError, match=r"node 'matmul0' \(MatMul\).*\(2, 4\).*\(5, 3\)"
        ):
            module.run([randn(2, 4), randn(5, 3)])
        # the module keeps working after an error
        b = np.ones((4, 3), np.float32)
        a = randn(2, 4)
        np.testing.assert_allclose(module.run([a, b]), a @ b, rtol=1e-5, atol=1e-5)


def test_op_integer_division_by_zero_is_an_error_not_a_trap():
    model = make_model([node("Div", ["a", "b"])], [("a", INT64, [2]), ("b", INT64, [2])],
                       [("y", INT64, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match="division by zero"):
            module.run([np.array([1, 2]), np.array([1, 0])])
        np.testing.assert_array_equal(
            module.run([np.array([7, -7]), np.array([2, 2])]), [3, -3]
        )
