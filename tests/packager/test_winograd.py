"""3x3 convolutions with stride 1 run by Winograd F(2x2, 3x3) (winograd.c) when they have
at least 8 input and output channels and 64 output tiles of 2x2; they must match
onnxruntime as the im2col path does, at every border: odd sizes (a last tile half outside),
asymmetric and zero padding, bias or none, a fused Relu or Clip, a batch, and groups of four
tiles that straddle a tile row. Smaller or other convolutions take the im2col path, checked
alongside.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import helper

from wasmexport.abi_runtime import load
from wasmexport.packager import package

R = np.random.default_rng(23)

# (c, m, h, w, pads, bias, activation, batch)
SHAPES = [
    (8, 8, 16, 16, [1, 1, 1, 1], True, None, 1),
    (16, 9, 17, 23, [1, 1, 1, 1], True, "Relu", 2),
    (12, 20, 20, 19, [0, 0, 0, 0], False, None, 1),
    (8, 8, 18, 18, [0, 1, 2, 1], True, "Relu", 1),
    (16, 16, 30, 41, [1, 1, 1, 1], True, "Clip", 1),
    (32, 24, 33, 66, [2, 0, 0, 2], True, None, 1),
    # packed weights of several k blocks (k = 64 * 9 and 520 * 9 > 512); the second also
    # transforms them into (m, c) matrices of several blocks (c = 520)
    (64, 13, 16, 18, [1, 1, 1, 1], True, "Relu", 1),
    (520, 8, 16, 16, [1, 1, 1, 1], False, None, 1),
    (4, 8, 32, 32, [1, 1, 1, 1], True, None, 1),  # 4 input channels: im2col
    (8, 8, 9, 9, [1, 1, 1, 1], True, None, 1),  # 25 tiles: im2col
]


def conv_model(c, m, h, w, pads, bias, activation, weight_input=False, dynamic=False):
    weight = (R.standard_normal((m, c, 3, 3)) * 0.3).astype(np.float32)
    inits = {} if weight_input else {"w": weight}
    if bias:
        inits["b"] = R.standard_normal(m).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w", *(["b"] if bias else [])],
                              ["c" if activation else "y"], pads=pads)]  # fmt: skip
    if activation == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    elif activation == "Clip":
        inits.update(lo=np.float32(-0.5), hi=np.float32(0.75))
        nodes.append(helper.make_node("Clip", ["c", "lo", "hi"], ["y"]))
    inputs = [("x", FLOAT, ["n", c, "h", "w"] if dynamic else ["n", c, h, w])]
    if weight_input:
        inputs.append(("w", FLOAT, [m, c, 3, 3]))
    model = make_model(nodes, inputs, [("y", FLOAT, None)], inits)
    return model, weight


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:4])))
def test_winograd_matches_onnxruntime(shape):
    c, m, h, w, pads, bias, activation, batch = shape
    model, _ = conv_model(c, m, h, w, pads, bias, activation)
    x = R.standard_normal((batch, c, h, w)).astype(np.float32)
    expected = onnxruntime_run(model, [x])[0]
    with load(package(model).wasm) as module:
        got = module.run(x)
    assert got.shape == expected.shape
    # the transforms round differently from a direct sum: a few float32 ulps of the sums
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_winograd_repeated_runs_and_new_sizes_agree():
    """One module, several requests and input sizes: tiles and blocks follow each size."""
    model, _ = conv_model(16, 16, 24, 24, [1, 1, 1, 1], True, "Relu", dynamic=True)
    with load(package(model).wasm) as module:
        for h, w in ((24, 24), (40, 18), (24, 24)):
            x = R.standard_normal((1, 16, h, w)).astype(np.float32)
            np.testing.assert_allclose(module.run(x), onnxruntime_run(model, [x])[0],
                                       rtol=1e-4, atol=1e-4)  # fmt: skip


def test_winograd_weight_given_as_input():
    """A weight that is not a constant may change per request: it is transformed anew."""
    model, _ = conv_model(8, 8, 20, 20, [1, 1, 1, 1], True, None, weight_input=True)
    with load(package(model).wasm) as module:
        for _ in range(2):
            x = R.standard_normal((1, 8, 20, 20)).astype(np.float32)
            wt = R.standard_normal((8, 8, 3, 3)).astype(np.float32)
            np.testing.assert_allclose(module.run([x, wt]),
                                       onnxruntime_run(model, [x, wt])[0],
                                       rtol=1e-4, atol=1e-4)  # fmt: skip
