"""Fusion (packager/fuse.py) and weight packing (packager/pack.py) against onnxruntime."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import helper

from wasmexport.abi_runtime import load
from wasmexport.packager import package
from wasmexport.packager.fuse import fuse
from wasmexport.packager.pack import (
    GEMM_KC,
    GEMM_MR,
    GEMM_NR,
    k_step,
    pack_a,
    pack_b,
    pack_weights,
)

R = np.random.default_rng(11)
GEMM_H = Path(__file__).resolve().parents[2] / "abi_runtime" / "src" / "gemm.h"


def randn(*shape):
    return R.standard_normal(shape).astype(np.float32)


def node(op, inputs, output, **attrs):
    return helper.make_node(op, list(inputs), [output], name=f"{op}_{output}", **attrs)


def conv_relu(group=1, clip=None):
    w = randn(12, 8 // group, 3, 3)
    act = node("Clip", ["c", "lo", "hi"], "y") if clip else node("Relu", ["c"], "y")
    inits = {"w": w, "b": randn(12)}
    if clip:
        inits |= {"lo": np.float32(clip[0]), "hi": np.float32(clip[1])}
    return make_model(
        [node("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1], group=group), act],
        [("x", FLOAT, [2, 8, 9, 7])],
        [("y", FLOAT, None)],
        inits,
    ), [randn(2, 8, 9, 7)]


def gemm_relu():
    return make_model(
        [node("Gemm", ["x", "w", "b"], "g", transB=1), node("Relu", ["g"], "y")],
        [("x", FLOAT, [5, 33])],
        [("y", FLOAT, None)],
        {"w": randn(19, 33), "b": randn(19)},
    ), [randn(5, 33)]


def gemm_clip_upper_only():
    """Clip without a lower bound: -inf products become float32's lowest, as in the spec."""
    x = randn(5, 33)
    x[0, 3] = -np.inf  # row 0 of the product: +-inf
    return make_model(
        [node("Gemm", ["x", "w", "b"], "g", transB=1), node("Clip", ["g", "", "hi"], "y")],
        [("x", FLOAT, [5, 33])],
        [("y", FLOAT, None)],
        {"w": randn(19, 33), "b": randn(19), "hi": np.float32(0.5)},
    ), [x]


def matmul_add_relu():
    return make_model(
        [
            node("MatMul", ["x", "w"], "m"),
            node("Add", ["b", "m"], "a"),
            node("Relu", ["a"], "y"),
        ],
        [("x", FLOAT, [2, 7, 20])],
        [("y", FLOAT, None)],
        {"w": randn(20, 13), "b": randn(13)},
    ), [randn(2, 7, 20)]


def shared_intermediate():
    """The Conv output feeds Relu and is a graph output: nothing may fuse."""
    return make_model(
        [node("Conv", ["x", "w"], "c"), node("Relu", ["c"], "y")],
        [("x", FLOAT, [1, 3, 5, 5])],
        [("y", FLOAT, None), ("c", FLOAT, None)],
        {"w": randn(4, 3, 1, 1)},
    ), [randn(1, 3, 5, 5)]


CASES = {
    "conv_relu": (conv_relu, 1),
    "conv_group_relu": (lambda: conv_relu(group=2), 1),
    "conv_clip": (lambda: conv_relu(clip=(-0.5, 0.7)), 1),
    "gemm_relu": (gemm_relu, 1),
    "gemm_clip_upper_only": (gemm_clip_upper_only, 1),
    "matmul_add_relu": (matmul_add_relu, 1),
    "shared_intermediate": (shared_intermediate, 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fuse_matches_onnxruntime(name):
    make, nodes_after = CASES[name]
    model, inputs = make()
    fused = fuse(model)
    assert len(fused.graph.node) == nodes_after
    expected = onnxruntime_run(model, inputs)
    with load(package(model).wasm) as m:
        got = m.run(inputs if len(inputs) > 1 else inputs[0])
    got = got if isinstance(got, list) else [got]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_fuse_records_clip_bounds():
    model, _ = conv_relu(clip=(-0.5, 0.7))
    (conv,) = fuse(model).graph.node
    attrs = {a.name: a for a in conv.attribute}
    assert list(attrs["wx_clip"].floats) == pytest.approx([-0.5, 0.7])
    assert conv.output[0] == "y"


def test_pack_layout_matches_runtime_constants():
    text = GEMM_H.read_text()
    assert int(re.search(r"#define GEMM_MR (\d+)", text).group(1)) == GEMM_MR
    assert int(re.search(r"#define GEMM_NR (\d+)", text).group(1)) == GEMM_NR
    assert int(re.search(r"#define GEMM_KC (\d+)", text).group(1)) == GEMM_KC
    # k = 600: two blocks of 300 columns; element (3, 450) is in the second block, the
    # second panel's slice of it (after both panels' slices of the first), row 150, lane 1
    a = randn(4, 600)
    assert k_step(600) == 300
    assert pack_a(a)[300 * 4 + 1 * 300 * GEMM_MR + 150 * GEMM_MR + 1] == a[3, 450]
    a = randn(GEMM_MR + 1, 5)
    pa = pack_a(a).reshape(2, 5, GEMM_MR)
    assert pa[0, 3, 1] == a[1, 3] and pa[1, 4, 0] == a[GEMM_MR, 4] and pa[1, 0, 1] == 0
    b = randn(4, GEMM_NR + 3)
    pb = pack_b(b).reshape(2, 4, GEMM_NR)
    assert pb[1, 2, 1] == b[2, GEMM_NR + 1] and pb[1, 0, 3] == 0


def test_pack_weights_replaces_weight_and_drops_original():
    model, _ = gemm_relu()
    packed = pack_weights(model)
    names = {t.name for t in packed.graph.initializer}
    assert "w" not in names and any(n.startswith("w.packed") for n in names)
    (gemm, _) = packed.graph.node
    shape = next(a for a in gemm.attribute if a.name == "wx_weight_shape")
    assert list(shape.ints) == [19, 33]


@pytest.mark.parametrize("name", ["conv_group_relu", "matmul_add_relu"])
def test_relaxed_simd_build_matches_onnxruntime(name):
    model, inputs = CASES[name][0]()
    expected = onnxruntime_run(model, inputs)[0]
    for simd in ("plain", "relaxed"):
        with load(package(model, simd=simd).wasm) as m:
            np.testing.assert_allclose(m.run(inputs[0]), expected, rtol=1e-5, atol=1e-5)
