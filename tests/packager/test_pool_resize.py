"""Pooling, transposed and 3-D convolution, Resize and Upsample against onnxruntime.

Each test packages one module holding several small models (one load costs about a
second); onnx's reference evaluator stands in where onnxruntime has no kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_model
from node_cases import check_conformance_case
from onnx import TensorProto, helper
from op_case_helpers import check_all, onnx_type

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError
from wasmexport.packager import package

R = np.random.default_rng(5)


def arr(shape, dtype="float32"):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return R.integers(0 if dtype.kind == "u" else -100, 100, shape).astype(dtype)
    return R.standard_normal(shape).astype(dtype)


def one(op, x, attrs=None, consts=None, opset=19, n_out=1, extra=(), out_types=None):
    """A one-node model: x (and extra (name, array) inputs) fed, consts as initializers."""
    consts = consts or {}
    inputs = [("x", x), *extra]
    node = helper.make_node(op, [n for n, _ in inputs] + list(consts),
                            [f"y{i}" for i in range(n_out)], name=f"{op.lower()}0",
                            **(attrs or {}))  # fmt: skip
    out_types = out_types or [onnx_type(x.dtype)] * n_out
    model = make_model([node], [(n, onnx_type(a.dtype), list(a.shape)) for n, a in inputs],
                       [(f"y{i}", t, None) for i, t in enumerate(out_types)], consts,
                       opset=opset)  # fmt: skip
    return model, [a for _, a in inputs]


POOL_2D = [
    {"kernel_shape": [3, 3]},
    {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1]},
    {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [2, 3], "auto_pad": "SAME_LOWER"},
    {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "auto_pad": "VALID", "strides": [2, 1]},
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int8", "uint8"])
def test_pool_max_2d_with_indices(dtype):
    cases = [
        one(
            "MaxPool",
            arr((2, 3, 7, 6), dtype),
            a,
            n_out=2,
            out_types=[onnx_type(np.dtype(dtype)), TensorProto.INT64],
        )
        for a in POOL_2D
    ]
    cases.append(one("MaxPool", arr((1, 2, 5, 4), dtype), {"kernel_shape": [2, 2],
                     "storage_order": 1}, n_out=2,
                     out_types=[onnx_type(np.dtype(dtype)), TensorProto.INT64]))  # fmt: skip
    check_all(cases)


def test_pool_average_2d():
    cases = [one("AveragePool", arr((2, 3, 7, 6)), {**a, "count_include_pad": c})
             for a in POOL_2D for c in (0, 1)]  # fmt: skip
    cases.append(one("AveragePool", arr((1, 2, 6, 6), "float16"), POOL_2D[1]))
    check_all(cases)


def test_pool_1d_and_3d():
    cases = [
        one("MaxPool", arr((2, 3, 11)), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
        one("AveragePool", arr((2, 3, 11)), {"kernel_shape": [4], "ceil_mode": 1,
                                             "strides": [3]}),
        one("MaxPool", arr((1, 2, 5, 6, 7)), {"kernel_shape": [2, 3, 2], "strides": [1, 2, 2],
                                              "pads": [1, 0, 1, 0, 1, 1]}),
        one("AveragePool", arr((1, 2, 5, 6, 7)), {"kernel_shape": [3, 3, 3],
                                                  "auto_pad": "SAME_UPPER"}),
        one("LpPool", arr((2, 3, 9)), {"kernel_shape": [3], "p": 3, "strides": [2]}),
        one("LpPool", arr((1, 2, 6, 5)), {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0]}),
        one("GlobalAveragePool", arr((2, 3, 4, 5))),
        one("GlobalMaxPool", arr((2, 3, 4, 5, 2))),
        one("GlobalLpPool", arr((2, 3, 7)), {"p": 3}),
    ]  # fmt: skip
    check_all(cases, tol=1e-4)


def test_pool_max_unpool_round_trip():
    x = arr((1, 2, 4, 4))
    pool = helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2], strides=[2, 2])
    unpool = helper.make_node("MaxUnpool", ["p", "i"], ["y0"], kernel_shape=[2, 2],
                              strides=[2, 2])  # fmt: skip
    model = make_model([pool, unpool], [("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                       [("y0", TensorProto.FLOAT, None)])  # fmt: skip
    check_all([(model, [x])])


def test_conv_transpose_and_conv_3d():
    w2 = arr((4, 3, 3, 3))
    cases = [
        one("ConvTranspose", arr((2, 4, 5, 5)), {}, {"w": w2, "b": arr((3,))}),
        one("ConvTranspose", arr((1, 4, 5, 4)), {"strides": [2, 3], "pads": [1, 0, 2, 1],
                                                 "output_padding": [1, 2]}, {"w": w2}),
        one("ConvTranspose", arr((1, 4, 4, 4)), {"strides": [2, 2], "dilations": [2, 1],
                                                 "group": 2}, {"w": arr((4, 2, 2, 3))}),
        one("ConvTranspose", arr((1, 4, 3, 3)), {"strides": [3, 2],
                                                 "output_shape": [10, 8]}, {"w": w2}),
        one("ConvTranspose", arr((1, 4, 3, 4)), {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
            {"w": w2}),
        one("ConvTranspose", arr((2, 3, 7)), {"strides": [2], "pads": [1, 2]},
            {"w": arr((3, 5, 4)), "b": arr((5,))}),
        one("ConvTranspose", arr((1, 2, 3, 4, 3)), {"strides": [2, 1, 2]},
            {"w": arr((2, 3, 2, 3, 2)), "b": arr((3,))}),
        one("Conv", arr((2, 4, 5, 6, 7)), {"pads": [1, 0, 1, 1, 2, 0], "strides": [1, 2, 2],
                                       "group": 2},
            {"w": arr((6, 2, 3, 2, 3)), "b": arr((6,))}),
        one("Conv", arr((1, 3, 6, 5, 4)), {"auto_pad": "SAME_LOWER", "strides": [2, 1, 2]},
            {"w": arr((2, 3, 2, 3, 3))}),
        one("Conv", arr((1, 2, 6, 5, 4)), {"dilations": [2, 1, 2]},
            {"w": arr((3, 2, 2, 2, 2))}),
    ]  # fmt: skip
    check_all(cases, tol=1e-4)


def _resize(x, opset, attrs, roi=None, scales=None, sizes=None):
    consts = {}
    if opset >= 11:
        consts["roi"] = np.array(roi if roi is not None else [], np.float32)
    consts["scales"] = np.array(scales if scales is not None else [], np.float32)
    if sizes is not None:
        consts["sizes"] = np.array(sizes, np.int64)
    return one("Resize", x, attrs, consts, opset=opset)


def test_resize_opset_19():
    x, xi = arr((1, 2, 4, 5)), arr((1, 2, 4, 5), "uint8")
    coord = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
             "asymmetric"]  # fmt: skip
    cases = []
    for mode in ("nearest", "linear", "cubic"):
        for c in coord:
            a = {"mode": mode, "coordinate_transformation_mode": c}
            # NOTE: align_corners with a non-integral scale * size: onnxruntime divides by
            # the integer output size, the spec (and this runtime) by scale * size
            if c != "align_corners":
                cases.append(_resize(x, 19, a, scales=[1, 1, 1.7, 0.6]))
            cases.append(_resize(x, 19, a, sizes=[1, 2, 7, 3]))
    for nm in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        cases.append(_resize(x, 19, {"nearest_mode": nm}, scales=[1, 1, 2.5, 1.5]))
    cases += [
        _resize(x, 19, {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1},
                scales=[1, 1, 2, 2]),
        _resize(x, 19, {"mode": "linear", "coordinate_transformation_mode":
                        "tf_crop_and_resize", "extrapolation_value": 3.0},
                roi=[0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4], sizes=[1, 2, 5, 6]),
        _resize(x, 19, {"mode": "linear", "axes": [3, 2], "keep_aspect_ratio_policy":
                        "not_larger"}, sizes=[4, 9]),
        _resize(x, 19, {"axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"},
                sizes=[3, 3]),
        _resize(x, 19, {"mode": "linear", "antialias": 1}, scales=[1, 1, 0.5, 0.4]),
        _resize(x, 19, {"mode": "cubic", "antialias": 1}, scales=[1, 1, 0.6, 0.5]),
    ]  # fmt: skip
    check_all(cases, tol=1e-4)
    check_all([_resize(xi, 19, {"mode": "nearest"}, scales=[1, 1, 2, 0.5]),
               _resize(xi, 19, {"mode": "nearest", "coordinate_transformation_mode":
                                "align_corners"}, sizes=[1, 2, 3, 9])])  # fmt: skip


@pytest.mark.parametrize("opset", [10, 11, 13])
def test_resize_older_opsets(opset):
    x = arr((2, 1, 3, 4))
    cases = [
        _resize(x, opset, {"mode": "nearest"}, scales=[1, 1, 2, 1.5]),
        _resize(x, opset, {"mode": "linear"}, scales=[1, 1, 0.7, 2]),
    ]
    if opset >= 11:
        cases += [
            _resize(x, opset, {"mode": "cubic", "coordinate_transformation_mode":
                               "align_corners"}, sizes=[2, 1, 5, 3]),
            _resize(x, opset, {"mode": "nearest", "coordinate_transformation_mode":
                               "asymmetric", "nearest_mode": "ceil"}, scales=[1, 1, 1.5, 2.5]),
        ]  # fmt: skip
    check_all(cases, tol=1e-4)


def test_upsample_opset_9_and_7():
    x = arr((1, 2, 3, 3))
    up9 = one("Upsample", x, {"mode": "nearest"},
              {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9)  # fmt: skip
    check_all([up9, one("Upsample", x, {"mode": "linear"},
                        {"s": np.array([1, 1, 2, 1.5], np.float32)}, opset=9)])  # fmt: skip
    check_all([one("Upsample", x, {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 2.0]},
                   opset=7)])  # fmt: skip


def test_pool_resize_conformance_sample():
    """A sample of the ONNX backend node tests for these ops, compared with their outputs."""
    from onnx.backend.test.case.node import collect_testcases

    wanted = {"test_maxpool_2d_ceil_output_size_reduce_by_one",
              "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
              "test_convtranspose_autopad_same",
              "test_resize_downsample_scales_cubic_antialias",
              "test_resize_tf_crop_and_resize_extrapolation_value",
              "test_resize_upsample_sizes_nearest_not_smaller"}  # fmt: skip
    seen = set()
    for case in collect_testcases():
        if case.name not in wanted:
            continue
        seen.add(case.name)
        check_conformance_case(case)
    assert seen == wanted, wanted - seen


def test_pool_errors_are_clear():
    model, (x,) = one("MaxPool", arr((1, 1, 2, 2)), {"kernel_shape": [3, 3]})
    for d, name in ((2, "h"), (3, "w")):
        model.graph.input[0].type.tensor_type.shape.dim[d].dim_param = name
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"maxpool0.*smaller than the window"):
            module.run(x)
        assert module.run(arr((1, 1, 4, 3))).shape == (1, 1, 2, 1)
    bad, _ = one("AveragePool", arr((1, 1, 4, 4)), {"kernel_shape": [2, 2],
                                                    "auto_pad": "SAME_MIDDLE"})  # fmt: skip
    with pytest.raises(Exception, match="SAME_MIDDLE"):
        with load(package(bad).wasm) as module:
            module.run(arr((1, 1, 4, 4)))


@pytest.mark.parametrize(
    "op,x,attrs,consts,match",
    [
        ("Resize", arr((1, 1, 2, 2)), {"mode": "area"},
         {"r": np.array([], np.float32), "s": np.array([1, 1, 2, 2], np.float32)},
         r"resize0.*mode 'area' is not supported"),
        ("Resize", arr((1, 1, 2, 2)),
         {"coordinate_transformation_mode": "tf_half_pixel_for_nn"},
         {"r": np.array([], np.float32), "s": np.array([1, 1, 2, 2], np.float32)},
         r"tf_half_pixel_for_nn"),
        ("ConvTranspose", arr((1, 1, 3), "float64"), {}, {"w": arr((1, 1, 2), "float64")},
         r"convtranspose0.*input dtype DOUBLE is not supported"),
        ("AveragePool", arr((1, 1, 4), "int8"), {"kernel_shape": [2]}, {},
         r"averagepool0.*input dtype INT8"),
        ("Resize", arr((1, 1, 2, 2), "uint8"), {"mode": "linear"},
         {"r": np.array([], np.float32), "s": np.array([1, 1, 2, 2], np.float32)},
         r"resize0.*mode 'linear' on UINT8"),
    ],
    ids=["resize_mode", "resize_coordinate_mode", "conv_transpose_float64", "avg_pool_int8",
         "resize_linear_uint8"],
)  # fmt: skip
def test_pool_resize_unsupported_is_refused_at_export(op, x, attrs, consts, match):
    from wasmexport.errors import UnsupportedOpError

    model, _ = one(op, x, attrs, consts, opset=11 if op == "Resize" else 19)
    with pytest.raises(UnsupportedOpError, match=match):
        package(model)


def test_pool_max_roi_pool():
    rois = np.array([[0, 1, 1, 6, 5], [1, 0, 0, 3, 3], [0, 2.4, 0.6, 9, 9], [1, 5, 5, 5, 5]],
                    np.float32)  # fmt: skip
    cases = [one("MaxRoiPool", arr((2, 3, 8, 7)), {"pooled_shape": [2, 3], "spatial_scale": s},
                 extra=[("rois", rois)]) for s in (1.0, 0.5)]  # fmt: skip
    check_all(cases)
