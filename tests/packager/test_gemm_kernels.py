"""The GEMM and convolution kernels of the runtime (gemm.c, ops_conv.c, ops_matmul.c,
depthwise.c) against onnxruntime.

Sizes are chosen to reach every branch of the micro-kernel and the im2col packer: tiles
with 1 and 2 valid rows (m % 2), partial column panels (n % 16), several k blocks
(k > 512), fused bias and clamp, strides, dilations, groups, padding on every side and
1-D convolution, in both runtime builds (plain SIMD128 and relaxed SIMD). The depthwise
cases cover the direct kernel's row loops (stride 1, 2 and other, partial 16-pixel
blocks), channel multipliers past a packed panel (1 to 4 outputs per input channel) and
weights read as given.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import helper

from wasmexport import load
from wasmexport.packager import package

RNG = np.random.default_rng(7)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def conv_case(name, x_shape, w_shape, bias=True, relu=False, **attrs):
    """A Conv (optionally followed by a Relu, which the packager fuses) on a random input."""
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    nodes = [helper.make_node("Conv", inputs, ["c" if relu else "y"], name="conv", **attrs)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"], name="relu"))
    inits = {"w": randn(*w_shape)}
    if bias:
        inits["b"] = randn(w_shape[0])
    model = make_model(nodes, [("x", FLOAT, list(x_shape))], [("y", FLOAT, None)], inits)
    return name, model, [randn(*x_shape)]


def conv_weight_input_case(name, x_shape, w_shape, **attrs):
    """A Conv whose weight is a graph input: read in place, not packed by the packager."""
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)
    inputs = [("x", FLOAT, list(x_shape)), ("w", FLOAT, list(w_shape))]
    model = make_model([node], inputs, [("y", FLOAT, None)], {})
    return name, model, [randn(*x_shape), randn(*w_shape)]


CONV_CASES = [
    # output channels 1..4 past a multiple of 4: every row count of the micro-kernel
    conv_case("m9_3x3_pad1", (1, 5, 13, 14), (9, 5, 3, 3), pads=[1, 1, 1, 1]),
    conv_case("m6_3x3_relu", (1, 7, 9, 17), (6, 7, 3, 3), relu=True, pads=[1, 1, 1, 1]),
    conv_case("m7_5x5_one_channel", (1, 1, 23, 25), (7, 1, 5, 5), pads=[2, 2, 2, 2]),
    conv_case("m4_no_bias", (1, 3, 12, 12), (4, 3, 3, 3), bias=False),
    # k = 64 * 9 = 576 > 512 (GEMM_KC): two k blocks, with a clamp on the last one only
    conv_case("k576_relu", (1, 64, 6, 31), (13, 64, 3, 3), relu=True, pads=[1, 1, 1, 1]),
    # strides, dilations, asymmetric padding, groups, 1x1 strided
    conv_case(
        "stride2_pad3_7x7", (1, 3, 29, 31), (10, 3, 7, 7), strides=[2, 2], pads=[3, 3, 3, 3]
    ),
    conv_case(
        "stride_2x3_asym_pads", (2, 4, 15, 16), (5, 4, 3, 2), strides=[2, 3], pads=[0, 2, 1, 1]
    ),
    conv_case(
        "dilation_3x2", (1, 6, 17, 19), (11, 6, 3, 3), dilations=[3, 2], pads=[2, 1, 0, 3]
    ),
    conv_case("groups3", (1, 9, 10, 26), (15, 3, 3, 3), group=3, pads=[1, 1, 1, 1]),
    conv_case(
        "depthwise_stride2",
        (1, 8, 14, 15),
        (8, 1, 3, 3),
        group=8,
        strides=[2, 2],
        pads=[1, 1, 1, 1],
    ),
    # depthwise (direct kernel): ow of 37 = two blocks of 16 and a partial one
    conv_case("depthwise_3x3_relu", (2, 6, 11, 37), (6, 1, 3, 3), group=6, relu=True,
              pads=[1, 1, 1, 1]),  # fmt: skip
    conv_case("depthwise_stride3_5x5_dilated", (1, 4, 23, 40), (4, 1, 5, 5), group=4,
              strides=[3, 3], dilations=[2, 2], pads=[3, 1, 2, 4]),  # fmt: skip
    conv_case("depthwise_stride_1x2_asym", (1, 5, 12, 50), (5, 1, 3, 4), group=5,
              strides=[1, 2], pads=[0, 2, 1, 0]),  # fmt: skip
    # three outputs per input channel: the third sits in the second packed panel
    conv_case("depthwise_multiplier3_no_bias", (1, 4, 9, 18), (12, 1, 3, 3), group=4,
              bias=False, pads=[1, 1, 1, 1]),  # fmt: skip
    conv_case("depthwise_multiplier4", (1, 3, 8, 20), (12, 1, 3, 3), group=3, strides=[2, 2]),
    conv_case("depthwise_1d", (2, 7, 45), (7, 1, 5), group=7, pads=[2, 2], dilations=[2]),
    conv_weight_input_case("depthwise_weight_input_multiplier2", (1, 5, 10, 21),
                           (10, 1, 3, 3), group=5, pads=[1, 1, 1, 1]),  # fmt: skip
    # weights as an input (im2col: stride 2), two groups of 5 output channels
    conv_weight_input_case("weight_input_groups2", (1, 6, 9, 11), (10, 3, 3, 3), group=2,
                           strides=[2, 1], pads=[1, 0, 1, 0]),
    conv_case("pointwise_1x1", (1, 19, 7, 7), (23, 19, 1, 1)),
    conv_case("pointwise_1x1_stride2", (1, 12, 9, 11), (18, 12, 1, 1), strides=[2, 2]),
    conv_case("conv_1d", (2, 5, 41), (7, 5, 4), strides=[2], pads=[1, 2], dilations=[2]),
    conv_case("same_lower", (1, 3, 10, 13), (5, 3, 4, 4), auto_pad="SAME_LOWER"),
]


def matmul_case(name, m, k, n, bias=False, relu=False):
    """MatMul with a constant (k, n) weight, optionally + bias and Relu (both fused)."""
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"], name="mm")]
    last = "p"
    inits = {"w": randn(k, n)}
    if bias:
        inits["b"] = randn(n)
        nodes.append(helper.make_node("Add", [last, "b"], ["q"], name="add"))
        last = "q"
    if relu:
        nodes.append(helper.make_node("Relu", [last], ["r"], name="relu"))
        last = "r"
    nodes[-1].output[0] = "y"
    model = make_model(nodes, [("a", FLOAT, [m, k])], [("y", FLOAT, None)], inits)
    return name, model, [randn(m, k)]


def gemm_case(name, m, k, n, trans_b=1, trans_a=0):
    """Gemm with a constant weight; with trans_a, A is read column by column (stride m)."""
    w = randn(n, k) if trans_b else randn(k, n)
    a_shape = [k, m] if trans_a else [m, k]
    node = helper.make_node("Gemm", ["a", "w", "c"], ["y"], name="gemm", transA=trans_a,
                            transB=trans_b, alpha=1.0, beta=1.0)  # fmt: skip
    model = make_model([node], [("a", FLOAT, a_shape)], [("y", FLOAT, None)],
                       {"w": w, "c": randn(n)})  # fmt: skip
    return name, model, [randn(*a_shape)]


def batched_matmul_case(name, b, m, k, n):
    """MatMul of two activations: both operands packed at run time."""
    node = helper.make_node("MatMul", ["a", "c"], ["y"], name="bmm")
    model = make_model([node], [("a", FLOAT, [b, m, k]), ("c", FLOAT, [b, k, n])],
                       [("y", FLOAT, None)])  # fmt: skip
    return name, model, [randn(b, m, k), randn(b, k, n)]


GEMM_CASES = [
    matmul_case("matmul_m1", 1, 37, 29),
    matmul_case("matmul_m5_bias_relu", 5, 300, 13, bias=True, relu=True),
    matmul_case("matmul_m62_k784", 62, 784, 35, bias=True),
    gemm_case("gemm_m3_transb", 3, 19, 25),
    gemm_case("gemm_m10_k513", 10, 513, 12, trans_b=0),
    gemm_case("gemm_m7_k600_transa", 7, 600, 21, trans_a=1),
    batched_matmul_case("bmm_odd", 3, 7, 65, 11),
]


@pytest.mark.parametrize("simd", ["plain", "relaxed"])
@pytest.mark.parametrize("case", CONV_CASES + GEMM_CASES,
                         ids=[c[0] for c in CONV_CASES + GEMM_CASES])  # fmt: skip
def test_gemm_kernels_match_onnxruntime(case, simd):
    _, model, arrays = case
    expected = onnxruntime_run(model, arrays)[0]
    with load(package(model, simd=simd).wasm) as module:
        got = module.run(arrays)
    assert got.shape == expected.shape
    # k up to 784: float32 sums of that many products differ in the last bits
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
