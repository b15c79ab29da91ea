"""The SIMD fast paths of MaxPool, Softmax / LogSoftmax, LayerNormalization and Clip vs
onnxruntime.

Rows wide enough for the four-at-a-time MaxPool step (strides 1, 2 and 3, dilation,
padding that clips windows at the borders), softmax lines whose length is not a multiple
of four and that hold -inf and very negative values, layer norms with and without bias, and
clips of NaN and infinities with bounds as inputs, one bound only, or attributes (opset 6).
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import helper

from wasmexport import load
from wasmexport.packager import package

RNG = np.random.default_rng(11)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def one_node(op, x, inits=None, inputs=("x",), opset=17, **attrs):
    node = helper.make_node(op, list(inputs), ["y"], name=op.lower(), **attrs)
    model = make_model([node], [("x", FLOAT, list(x.shape))], [("y", FLOAT, None)],
                       inits or {}, opset=opset)  # fmt: skip
    return model, [x]


def softmax_input() -> np.ndarray:
    x = 30 * randn(3, 5, 37)
    x[0, 0, 3] = -np.inf
    x[1, 2, :] = -200.0  # every exp below the normal range but one
    x[1, 2, 5] = 0.0
    return x


def clip_input() -> np.ndarray:
    x = 2 * randn(3, 43)
    x[0, :3] = [np.nan, np.inf, -np.inf]
    x[2, -1] = np.nan
    return x


CASES = {
    "maxpool_3x3_s2_p1": one_node("MaxPool", randn(1, 3, 23, 29), kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool_2x2_s1": one_node("MaxPool", randn(2, 2, 9, 17), kernel_shape=[2, 2]),
    "maxpool_3x2_s3_dil2": one_node("MaxPool", randn(1, 2, 19, 31), kernel_shape=[3, 2],
                                    strides=[3, 3], dilations=[2, 2], pads=[2, 1, 0, 1]),
    "maxpool_ceil": one_node("MaxPool", randn(1, 1, 10, 22), kernel_shape=[3, 3],
                             strides=[2, 2], ceil_mode=1),
    # rows of two 16-output blocks and a remainder (stride 1, 2 and 3)
    "maxpool_wide_s2": one_node("MaxPool", randn(1, 3, 9, 75), kernel_shape=[3, 3],
                                strides=[2, 2], pads=[1, 1, 1, 1]),
    "maxpool_wide_s1": one_node("MaxPool", randn(1, 2, 5, 41), kernel_shape=[2, 4]),
    "maxpool_wide_s3_dil2": one_node("MaxPool", randn(1, 2, 11, 110), kernel_shape=[2, 3],
                                     strides=[3, 3], dilations=[2, 2], pads=[1, 0, 1, 2]),
    "softmax_last_axis": one_node("Softmax", softmax_input(), axis=-1),
    "logsoftmax_last_axis": one_node("LogSoftmax", softmax_input(), axis=-1),
    "softmax_middle_axis": one_node("Softmax", randn(2, 7, 6), axis=1),
    "layernorm_bias": one_node("LayerNormalization", 3 + 2 * randn(4, 6, 70),
                               {"s": randn(70), "b": randn(70)}, ("x", "s", "b"), axis=-1),
    "layernorm_no_bias_2d": one_node("LayerNormalization", randn(5, 3, 9),
                                     {"s": randn(3, 9)}, ("x", "s"), axis=1, epsilon=1e-3),
    "clip_inputs": one_node("Clip", clip_input(),
                            {"lo": np.float32(-0.5), "hi": np.float32(0.7)},
                            ("x", "lo", "hi")),
    "clip_upper_only": one_node("Clip", clip_input(), {"hi": np.float32(1.5)},
                                ("x", "", "hi")),
    "clip_opset6": one_node("Clip", clip_input(), opset=6, min=-1.0, max=0.25),
}  # fmt: skip


@pytest.mark.parametrize("simd", ["plain", "relaxed"])
@pytest.mark.parametrize("name", list(CASES))
def test_simd_paths_match_onnxruntime(name, simd):
    model, arrays = CASES[name]
    expected = onnxruntime_run(model, arrays)[0]
    with load(package(model, simd=simd).wasm) as module:
        got = module.run(arrays)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
