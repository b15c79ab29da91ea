"""GridSample, AffineGrid, RoiAlign, NonMaxSuppression and DeformConv against references.

Inputs go beyond the ONNX conformance cases: random shapes, grid coordinates outside
[-1, 1], regions partly outside the image, hundreds of boxes. Each test packages one
module holding several small models (one load costs about a second); onnxruntime is the
reference, and onnx's reference evaluator where onnxruntime has no kernel (DeformConv).
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from op_case_helpers import check_all, onnx_type

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package

R = np.random.default_rng(11)


def model_of(op, inputs, attrs=None, consts=None, opset=20, out_type=None, out_shape=None):
    """A one-node model: inputs [(name, array)] fed, consts {name: array} as initializers."""
    consts = consts or {}
    node = helper.make_node(op, [n for n, _ in inputs] + list(consts), ["y"],
                            name=f"{op.lower()}0", **(attrs or {}))  # fmt: skip
    out_type = out_type or onnx_type(inputs[0][1].dtype)
    graph = helper.make_graph(
        [node], "spatial",
        [helper.make_tensor_value_info(n, onnx_type(a.dtype), list(a.shape))
         for n, a in inputs],
        [helper.make_tensor_value_info("y", out_type, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model, [a for _, a in inputs]


def uniform(shape, lo, hi, dtype="float32"):
    return R.uniform(lo, hi, shape).astype(dtype)


@pytest.mark.parametrize("opset", [16, 20])
def test_spatial_grid_sample_2d_modes_and_padding(opset):
    old = opset < 20
    modes = ("bilinear" if old else "linear", "nearest", "bicubic" if old else "cubic")
    cases = []
    for mode in modes:
        for padding in ("zeros", "border", "reflection"):
            for align in (0, 1):
                x = uniform((2, 3, 5, 6), -2, 2)
                # a third of the points lie outside [-1, 1]
                grid = uniform((2, 4, 7, 2), -1.7, 1.7)
                attrs = {"mode": mode, "padding_mode": padding, "align_corners": align}
                cases.append(model_of("GridSample", [("x", x), ("grid", grid)], attrs,
                                      opset=opset))  # fmt: skip
    check_all(cases, tol=1e-4)


def test_spatial_grid_sample_dtypes_and_far_points():
    cases = []
    for dtype in ("float64", "float16"):
        x = uniform((1, 2, 4, 3), -1, 1, dtype)
        grid = uniform((1, 5, 2, 2), -1.2, 1.2, dtype)
        cases.append(model_of("GridSample", [("x", x), ("grid", grid)], opset=20))
    # points many widths away: reflection folds them back, border clamps them
    far = uniform((1, 3, 3, 2), -40, 40)
    for padding in ("border", "reflection"):
        for align in (0, 1):
            attrs = {"mode": "linear", "padding_mode": padding, "align_corners": align}
            cases.append(model_of("GridSample", [("x", uniform((1, 2, 4, 5), -1, 1)),
                                                 ("grid", far)], attrs))  # fmt: skip
    check_all(cases, tol=1e-3)


def test_spatial_grid_sample_volumetric():
    cases = []
    for mode in ("linear", "nearest"):
        for padding in ("zeros", "border", "reflection"):
            for align in (0, 1):
                x = uniform((2, 2, 3, 4, 5), -1, 1)
                grid = uniform((2, 2, 3, 4, 3), -1.4, 1.4)
                attrs = {"mode": mode, "padding_mode": padding, "align_corners": align}
                cases.append(model_of("GridSample", [("x", x), ("grid", grid)], attrs,
                                      opset=22))  # fmt: skip
    check_all(cases, tol=1e-4)


def test_spatial_affine_grid_feeds_grid_sample():
    cases = []
    for align in (0, 1):
        # NOTE: an axis of one element with align_corners=1 is left to the torch test
        # below: onnxruntime puts its point at 1, PyTorch (and the runtime) at 0
        for size in ([2, 3, 5, 7], [2, 1, 1 + align, 4], [1, 2, 3, 4, 5],
                     [1, 1, 2, 1 + align, 3]):  # fmt: skip
            r = len(size) - 2
            theta = uniform((size[0], r, r + 1), -1.5, 1.5)
            cases.append(model_of("AffineGrid", [("theta", theta)], {"align_corners": align},
                                  {"size": np.array(size, np.int64)}))  # fmt: skip
    check_all(cases, tol=1e-5)

    # a spatial transformer: the grid of AffineGrid read by GridSample
    nodes = [helper.make_node("AffineGrid", ["theta", "size"], ["g"], name="affine0"),
             helper.make_node("GridSample", ["x", "g"], ["y"], name="sample0",
                              padding_mode="border")]  # fmt: skip
    graph = helper.make_graph(
        nodes, "stn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 6, 6]),
         helper.make_tensor_value_info("theta", TensorProto.FLOAT, [2, 2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array([2, 3, 4, 5], np.int64), "size")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    check_all([(model, [uniform((2, 3, 6, 6), -1, 1), uniform((2, 2, 3), -1, 1)])])


@pytest.mark.filterwarnings("ignore:Since version 1.3.0, affine_grid")
def test_spatial_affine_grid_single_element_axes_follow_torch():
    torch = pytest.importorskip("torch")
    for size in ([2, 1, 1, 3], [1, 1, 3, 1, 2]):
        r = len(size) - 2
        theta = uniform((size[0], r, r + 1), -1.5, 1.5)
        model, arrays = model_of("AffineGrid", [("theta", theta)], {"align_corners": 1},
                                 {"size": np.array(size, np.int64)})  # fmt: skip
        want = torch.nn.functional.affine_grid(torch.tensor(theta), size, align_corners=True)
        with load(package(model).wasm) as module:
            np.testing.assert_allclose(module.run(arrays), want.numpy(), rtol=1e-5, atol=1e-5)


def rois_of(count, height, width):
    """Regions [x1, y1, x2, y2], some partly or wholly outside the image."""
    x1 = R.uniform(-3, width, count)
    y1 = R.uniform(-3, height, count)
    x2 = x1 + R.uniform(0.2, width / 1.5, count)
    y2 = y1 + R.uniform(0.2, height / 1.5, count)
    return np.stack([x1, y1, x2, y2], 1).astype(np.float32)


@pytest.mark.parametrize("opset", [10, 16])
def test_spatial_roi_align(opset):
    x = uniform((2, 3, 10, 12), -1, 1)
    rois = rois_of(9, 10, 12) * 2  # spatial_scale 0.5 maps them back
    batch = R.integers(0, 2, 9).astype(np.int64)
    cases = []
    for mode in ("avg", "max"):
        for ratio in (0, 2):
            for ct in ("half_pixel", "output_half_pixel") if opset >= 16 else (None,):
                attrs = {"mode": mode, "sampling_ratio": ratio, "spatial_scale": 0.5,
                         "output_height": 3, "output_width": 4}  # fmt: skip
                if ct:
                    attrs["coordinate_transformation_mode"] = ct
                cases.append(model_of("RoiAlign", [("x", x), ("rois", rois),
                                                   ("batch_indices", batch)], attrs,
                                      opset=opset))  # fmt: skip
    check_all(cases, tol=1e-5)


def boxes_of(batches, count, center):
    """Random boxes, corners in either order, or [x_center, y_center, width, height]."""
    if center:
        xy = R.uniform(0, 20, (batches, count, 2))
        wh = R.uniform(0.5, 6, (batches, count, 2))
        return np.concatenate([xy, wh], 2).astype(np.float32)
    return R.uniform(0, 20, (batches, count, 4)).astype(np.float32)


def test_spatial_nms_many_boxes():
    cases = []
    for center in (0, 1):
        for limit, iou, score in ((500, 0.5, None), (7, 0.3, 0.4), (0, 0.5, None),
                                  (40, 0.0, 0.9), (3, 1.0, None)):  # fmt: skip
            boxes = boxes_of(2, 300, center)
            scores = R.uniform(0, 1, (2, 3, 300)).astype(np.float32)
            scores[0, 0, 10:20] = scores[0, 0, 5]  # ties: lower index first
            consts = {"max_output_boxes_per_class": np.array([limit], np.int64),
                      "iou_threshold": np.array([iou], np.float32)}  # fmt: skip
            if score is not None:
                consts["score_threshold"] = np.array([score], np.float32)
            cases.append(model_of("NonMaxSuppression", [("boxes", boxes), ("scores", scores)],
                                  {"center_point_box": center}, consts, opset=11,
                                  out_type=TensorProto.INT64))  # fmt: skip
    check_all(cases)


def test_spatial_nms_without_optional_inputs_selects_nothing():
    boxes, scores = boxes_of(1, 6, 0), R.uniform(0, 1, (1, 2, 6)).astype(np.float32)
    model, arrays = model_of("NonMaxSuppression", [("boxes", boxes), ("scores", scores)],
                             opset=10, out_type=TensorProto.INT64)  # fmt: skip
    check_all([(model, arrays)])


def deform_case(
    n,
    c,
    h,
    w,
    oc,
    k,
    group=1,
    offset_group=1,
    strides=(1, 1),
    pads=(0,) * 4,
    dilations=(1, 1),
    with_mask=False,
    with_bias=False,
    dtype="float32",
):
    """A DeformConv model and its inputs; offsets move taps up to 2 pixels, also outside."""
    kh, kw = k
    eh, ew = (kh - 1) * dilations[0] + 1, (kw - 1) * dilations[1] + 1
    oh = (h + pads[0] + pads[2] - eh) // strides[0] + 1
    ow = (w + pads[1] + pads[3] - ew) // strides[1] + 1
    inputs = [
        ("x", uniform((n, c, h, w), -1, 1, dtype)),
        ("w", uniform((oc, c // group, kh, kw), -1, 1, dtype)),
        ("offset", uniform((n, offset_group * kh * kw * 2, oh, ow), -2, 2, dtype)),
    ]
    inputs.append(("b", uniform((oc,), -1, 1, dtype)) if with_bias else ("", None))
    if with_mask:
        inputs.append(("mask", uniform((n, offset_group * kh * kw, oh, ow), 0, 1, dtype)))
    while inputs[-1][0] == "":
        inputs.pop()
    fed = [(name, a) for name, a in inputs if name]
    node = helper.make_node("DeformConv", [name for name, _ in inputs], ["y"], name="dc0",
                            group=group, offset_group=offset_group, strides=list(strides),
                            pads=list(pads), dilations=list(dilations))  # fmt: skip
    graph = helper.make_graph(
        [node], "deform",
        [helper.make_tensor_value_info(name, onnx_type(a.dtype), list(a.shape))
         for name, a in fed],
        [helper.make_tensor_value_info("y", onnx_type(np.dtype(dtype)), None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    return model, [a for _, a in fed]


def test_spatial_deform_conv():
    cases = [
        deform_case(1, 2, 4, 5, 3, (2, 2), with_bias=True),
        deform_case(2, 4, 5, 4, 4, (3, 2), group=2, offset_group=2, pads=(1, 0, 1, 1),
                    with_mask=True, with_bias=True),
        deform_case(1, 2, 6, 6, 2, (2, 2), strides=(2, 1), dilations=(2, 1), with_mask=True),
        deform_case(1, 2, 4, 4, 2, (2, 2), with_mask=True, dtype="float64"),
    ]  # fmt: skip
    expected = [ReferenceEvaluator(m).run(None, {i.name: a for i, a in
                                                 zip(m.graph.input, arrays, strict=True)})
                for m, arrays in cases]  # fmt: skip
    for (model, arrays), (want,) in zip(cases, expected, strict=True):
        with load(package(model).wasm) as module:
            got = module.run(arrays)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_spatial_bad_inputs_fail_cleanly():
    # boxes of 3 coordinates, declared with a free last axis so that only the runtime sees it
    model, _ = model_of("NonMaxSuppression", [("boxes", boxes_of(1, 5, 0)),
                                              ("scores", np.ones((1, 1, 5), np.float32))],
                        consts={"max_output_boxes_per_class": np.array([3], np.int64)},
                        opset=11, out_type=TensorProto.INT64)  # fmt: skip
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "k"
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"nonmaxsuppression0.*boxes \(b, s, 4\)"):
            module.run([np.ones((1, 5, 3), np.float32), np.ones((1, 1, 5), np.float32)])
        assert module.run([boxes_of(1, 5, 0), np.ones((1, 1, 5), np.float32)]).shape[1] == 3

    # a batch index past the images, and a grid whose last axis does not match X
    rois = rois_of(2, 4, 4)
    model, _ = model_of(
        "RoiAlign",
        [
            ("x", uniform((1, 1, 4, 4), 0, 1)),
            ("rois", rois),
            ("batch_indices", np.zeros(2, np.int64)),
        ],
        opset=16,
    )
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"roialign0.*batch_indices\[1\] is 5"):
            module.run([uniform((1, 1, 4, 4), 0, 1), rois, np.array([0, 5], np.int64)])
    model, _ = model_of(
        "GridSample",
        [("x", uniform((1, 1, 4, 4), 0, 1)), ("grid", uniform((1, 2, 2, 2), -1, 1))],
    )
    model.graph.input[1].type.tensor_type.shape.dim[3].dim_param = "r"
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "h"
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"gridsample0.*grid must be"):
            module.run([uniform((1, 1, 4, 4), 0, 1), uniform((1, 2, 2, 3), -1, 1)])
        with pytest.raises(RuntimeABIError, match=r"gridsample0.*no elements to sample"):
            module.run([uniform((1, 1, 0, 4), 0, 1), uniform((1, 2, 2, 2), -1, 1)])
        # NaN and huge coordinates read as points outside, without a trap
        grid = np.array([[[[np.nan, 0], [1e30, -1e30]], [[np.inf, 0], [-np.inf, np.nan]]]],
                        np.float32)  # fmt: skip
        assert np.all(module.run([uniform((1, 1, 4, 4), 0, 1), grid]) == 0)


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "opset", "match"),
    [
        ("GridSample", [("x", np.ones((1, 1, 2, 2), np.float32)),
                        ("grid", np.zeros((1, 1, 1, 2), np.float32))],
         {"mode": "linear"}, 16, "mode 'linear'"),
        ("GridSample", [("x", np.ones((1, 1, 2, 2), np.float32)),
                        ("grid", np.zeros((1, 1, 1, 2), np.float32))],
         {"padding_mode": "wrap"}, 20, "padding_mode 'wrap'"),
        ("RoiAlign", [("x", np.ones((1, 1, 2, 2), np.float32)),
                      ("rois", np.zeros((1, 4), np.float32)),
                      ("batch_indices", np.zeros(1, np.int64))],
         {"mode": "median"}, 16, "mode 'median'"),
        ("GridSample", [("x", np.ones((1, 1, 2, 2), np.int64)),
                        ("grid", np.zeros((1, 1, 1, 2), np.float32))],
         {"mode": "nearest"}, 20, "INT64"),
    ],
    ids=["grid_sample_mode_of_opset_20", "grid_sample_padding", "roi_align_mode",
         "grid_sample_int64"],
)  # fmt: skip
def test_spatial_unsupported_is_refused_at_export(op, inputs, attrs, opset, match):
    model, _ = model_of(op, inputs, attrs, opset=opset)
    with pytest.raises(UnsupportedOpError, match=match):
        package(model)


def test_spatial_deform_conv_1d_is_refused_at_export():
    node = helper.make_node("DeformConv", ["x", "w", "offset"], ["y"], name="dc0",
                            kernel_shape=[2])  # fmt: skip
    graph = helper.make_graph(
        [node], "deform",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 2]),
         helper.make_tensor_value_info("offset", TensorProto.FLOAT, [1, 2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)])
    model.ir_version = 10
    with pytest.raises(UnsupportedOpError, match="2-D DeformConv only"):
        package(model)
