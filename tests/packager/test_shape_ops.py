"""Indexing, replication and layout ops, packaged alone, against onnxruntime.

Each case runs in several dtypes; where onnxruntime has no kernel for a dtype the case
names onnx's reference evaluator instead.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from model_helpers import make_model, onnxruntime_run
from node_cases import check_conformance_case
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from op_case_helpers import RUNTIME_NUMPY_DTYPES, check_all, onnx_type

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package

R = np.random.default_rng(11)
ALL_DTYPES = RUNTIME_NUMPY_DTYPES


def arr(shape, dtype="float32"):
    """Random test data of a shape and dtype (small integers for integer types)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return R.random(shape) < 0.5
    if dtype.kind in "iu":
        return R.integers(0 if dtype.kind == "u" else -50, 50, shape).astype(dtype)
    return R.standard_normal(shape).astype(dtype)


def i64(*values):
    return np.array(values, np.int64)


def one_node(op, inputs, attrs=None, consts=None, opset=18, n_out=1, out_types=None):
    """A model of one node; inputs are (name, array) with arrays fed at run time."""
    names = [n for n, _ in inputs]
    consts = consts or {}
    node = helper.make_node(op, names + list(consts), [f"y{i}" for i in range(n_out)],
                            name=f"{op.lower()}0", **(attrs or {}))  # fmt: skip
    first = np.asarray(inputs[0][1])
    out_types = out_types or [onnx_type(first.dtype)] * n_out
    model = make_model(
        [node],
        [(n, onnx_type(np.asarray(a).dtype), list(np.shape(a))) for n, a in inputs],
        [(f"y{i}", t, None) for i, t in enumerate(out_types)],
        consts,
        opset=opset,
    )
    return model, [np.asarray(a) for _, a in inputs]


# each builder takes a dtype and returns (model, arrays)
def _expand(dt):
    return one_node("Expand", [("x", arr((3, 1), dt))], consts={"s": i64(2, 1, 4)})


def _tile(dt):
    return one_node("Tile", [("x", arr((2, 3), dt))], consts={"r": i64(2, 3)})


def _split_input(dt):
    m, a = one_node("Split", [("x", arr((7, 2), dt))], {"axis": 0}, {"s": i64(2, 5)},
                    opset=13, n_out=2)  # fmt: skip
    return m, a


def _split_num_outputs(dt):
    m, a = one_node("Split", [("x", arr((2, 7), dt))], {"axis": -1, "num_outputs": 3},
                    opset=18, n_out=3)  # fmt: skip
    return m, a


def _split_attr_11(dt):
    m, a = one_node("Split", [("x", arr((6,), dt))], {"split": [1, 2, 3]}, opset=11, n_out=3)
    return m, a


def _pad_modes(mode):
    def build(dt):
        consts = {"p": i64(1, 2, 2, 0)}
        if mode == "constant":
            consts["v"] = np.array(arr((1,), dt)[0], dtype=dt)
        m, a = one_node("Pad", [("x", arr((3, 4), dt))], {"mode": mode}, consts, opset=19)
        return m, a

    return build


def _pad_axes_negative(dt):
    consts = {"p": i64(-1, 2, 1, -2), "v": np.array(0, dt), "a": i64(2, 0)}
    m, a = one_node("Pad", [("x", arr((3, 4, 5), dt))], {"mode": "edge"}, consts)
    # axes input comes after constant_value: drop the constant for edge mode
    m.graph.node[0].input[2] = ""
    return m, a


def _pad_attr_2(dt):
    m, a = one_node("Pad", [("x", arr((2, 3), dt))], {"pads": [0, 1, 1, 0], "value": 1.5},
                    opset=2)  # fmt: skip
    return m, a


def _range(dt):
    start, limit, delta = (np.array(v, dt) for v in (2, 17, 3))
    node = helper.make_node("Range", ["a", "b", "c"], ["y0"], name="range0")
    model = make_model([node], [(k, onnx_type(np.dtype(dt)), []) for k in "abc"],
                       [("y0", onnx_type(np.dtype(dt)), None)])  # fmt: skip
    return model, [start, limit, delta]


def _one_hot(dt):
    ix = np.array([[0, 2], [-1, 7]], np.int64)
    m, a = one_node("OneHot", [("i", ix)], {"axis": 1},
                    {"d": np.array(4, np.int64), "v": np.array([0, 5], dt)},
                    out_types=[onnx_type(np.dtype(dt))])  # fmt: skip
    return m, a


def _non_zero(dt):
    x = arr((3, 4), dt)
    x[1] = 0
    return one_node("NonZero", [("x", x)], out_types=[TensorProto.INT64])


def _gather_elements(dt):
    ix = np.array([[0, -1, 1], [2, 0, 0]], np.int64)
    return one_node("GatherElements", [("x", arr((3, 3), dt)), ("i", ix)], {"axis": 0})


def _gather_nd_batch(dt):
    ix = np.array([[[1], [0]], [[0], [1]]], np.int64)
    m, a = one_node("GatherND", [("x", arr((2, 2, 3), dt)), ("i", ix)], {"batch_dims": 1})
    return m, a


def _scatter_elements(red):
    def build(dt):
        ix = np.array([[1, 0, 2], [0, 2, 1]], np.int64)
        attrs = {"axis": 1, "reduction": red}
        m, a = one_node(
            "ScatterElements",
            [("x", arr((2, 3), dt)), ("i", ix), ("u", arr((2, 3), dt))],
            attrs,
        )
        return m, a

    return build


def _scatter_nd(red):
    def build(dt):
        ix = np.array([[1], [0], [1]], np.int64)
        m, a = one_node("ScatterND",
                        [("x", arr((2, 3), dt)), ("i", ix), ("u", arr((3, 3), dt))],
                        {"reduction": red})  # fmt: skip
        return m, a

    return build


def _trilu(dt):
    m, a = one_node("Trilu", [("x", arr((2, 3, 4), dt))], {"upper": 0},
                    {"k": np.array(1, np.int64)})  # fmt: skip
    return m, a


def _eye_like(dt):
    m, a = one_node("EyeLike", [("x", arr((3, 4), dt))], {"k": -1})
    return m, a


def _size(dt):
    return one_node("Size", [("x", arr((3, 0, 2), dt))], out_types=[TensorProto.INT64])


def _space_to_depth(dt):
    return one_node("SpaceToDepth", [("x", arr((1, 2, 4, 6), dt))], {"blocksize": 2})


def _compress(dt):
    cond = np.array([True, False, True], bool)
    return one_node("Compress", [("x", arr((2, 3), dt)), ("c", cond)], {"axis": 1})


def _reverse_sequence(dt):
    m, a = one_node("ReverseSequence", [("x", arr((4, 3, 2), dt)), ("l", i64(4, 1, 3))],
                    {"batch_axis": 1, "time_axis": 0})  # fmt: skip
    return m, a


def _unique(dt):
    x = np.array([3, 1, 3, 2, 1, 7], dt)
    m, a = one_node("Unique", [("x", x)], {"sorted": 1}, n_out=4,
                    out_types=[onnx_type(np.dtype(dt))] + [TensorProto.INT64] * 3)  # fmt: skip
    return m, a


def _unique_axis(dt):
    x = np.array([[1, 0, 0], [1, 0, 0], [2, 3, 4]], dt)
    m, a = one_node("Unique", [("x", x)], {"sorted": 0, "axis": 0}, n_out=4,
                    out_types=[onnx_type(np.dtype(dt))] + [TensorProto.INT64] * 3)  # fmt: skip
    return m, a


def _einsum(eq, *shapes):
    def build(dt):
        inputs = [(f"x{i}", arr(s, dt)) for i, s in enumerate(shapes)]
        return one_node("Einsum", inputs, {"equation": eq})

    return build


def _center_crop_pad(dt):
    return one_node("CenterCropPad", [("x", arr((5, 2, 3), dt))], {"axes": [0, 2]},
                      {"s": i64(2, 6)})  # fmt: skip


def _transpose(dt):
    return one_node("Transpose", [("x", arr((2, 3, 4), dt))], {"perm": [1, 2, 0]})


def _gather_slice_concat(dt):
    x = arr((4, 5), dt)
    nodes = [
        helper.make_node("Gather", ["x", "i"], ["g"], axis=0),
        helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["sl"]),
        helper.make_node("Concat", ["g", "sl"], ["y0"], axis=0),
    ]
    t = onnx_type(x.dtype)
    model = make_model(nodes, [("x", t, [4, 5])], [("y0", t, None)],
                       {"i": i64(3, 0, -1), "s": i64(3), "e": i64(-10), "a": i64(0),
                        "t": i64(-2)})  # fmt: skip
    return model, [x]


ORT_EINSUM = ["float32", "float64", "int32", "int64"]
CASES = [
    ("expand", _expand, ALL_DTYPES),
    ("tile", _tile, ALL_DTYPES),
    ("split_input", _split_input, ALL_DTYPES),
    ("split_num_outputs", _split_num_outputs, ["float32", "int64", "bool"]),
    ("split_attr_11", _split_attr_11, ["float32", "uint8"]),
    ("pad_constant", _pad_modes("constant"), ALL_DTYPES),
    ("pad_reflect", _pad_modes("reflect"), ["float32", "float64", "int64", "uint8"]),
    ("pad_edge", _pad_modes("edge"), ["float32", "int32", "bool"]),
    ("pad_wrap", _pad_modes("wrap"), ["float32", "int8"]),
    ("pad_axes_negative", _pad_axes_negative, ["float32", "int64"]),
    ("pad_attr_opset2", _pad_attr_2, ["float32"]),
    ("range", _range, ["float32", "float64", "int16", "int32", "int64"]),
    ("one_hot", _one_hot, ["float32", "int64", "int32"]),
    ("non_zero", _non_zero, ["float32", "int64", "bool", "uint8"]),
    ("gather_elements", _gather_elements, ALL_DTYPES),
    ("gather_nd_batch_dims", _gather_nd_batch, ALL_DTYPES),
    ("scatter_elements", _scatter_elements("none"), ALL_DTYPES),
    ("scatter_elements_add", _scatter_elements("add"), ["float32", "int64", "float16"]),
    ("scatter_elements_mul", _scatter_elements("mul"), ["float32", "int32"]),
    ("scatter_elements_max", _scatter_elements("max"), ["float64", "int8"]),
    ("scatter_elements_min", _scatter_elements("min"), ["float32", "uint64"]),
    ("scatter_nd", _scatter_nd("none"), ALL_DTYPES),
    ("scatter_nd_add", _scatter_nd("add"), ["float32", "int64"]),
    ("scatter_nd_max", _scatter_nd("max"), ["float32", "int16"]),
    ("trilu_lower_k", _trilu, ALL_DTYPES),
    ("eye_like", _eye_like, ["float32", "float64", "int32", "int64", "uint64"]),
    ("size", _size, ALL_DTYPES),
    ("space_to_depth", _space_to_depth, ALL_DTYPES),
    ("compress", _compress, ALL_DTYPES),
    ("reverse_sequence", _reverse_sequence, ALL_DTYPES),
    ("unique_sorted", _unique, ["float32", "int64", "int8"]),
    ("unique_axis_unsorted", _unique_axis, ["float32", "int64"]),
    ("einsum_batch_matmul", _einsum("bij,bjk->bik", (2, 3, 4), (2, 4, 5)), ORT_EINSUM),
    ("einsum_implicit_transpose", _einsum("ji", (3, 4)), ORT_EINSUM),
    ("einsum_diagonal_ellipsis", _einsum("...ii->...i", (2, 3, 3)), ["float32"]),
    ("einsum_outer_sum", _einsum("i,j->", (3,), (4,)), ["float32", "float64"]),
    (
        "einsum_broadcast_ellipsis",
        _einsum("...j,...j->...", (2, 1, 4), (1, 3, 4)),
        ["float32"],
    ),
    ("center_crop_pad", _center_crop_pad, ["float32", "int32"]),
    ("transpose", _transpose, ALL_DTYPES),
    ("gather_slice_concat", _gather_slice_concat, ALL_DTYPES),
]


@pytest.mark.parametrize("builder,dtypes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_shape_op_matches_reference(builder, dtypes):
    check_all([builder(np.dtype(dt)) for dt in dtypes])


def test_shape_op_pad_reflect_wider_than_axis_is_an_error():
    model, arrays = one_node("Pad", [("x", arr((2, 3)))], {"mode": "reflect"},
                             {"p": i64(0, 3, 0, 0)})  # fmt: skip
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"pad0.*reflect padding 3.*below the axis"):
            module.run(arrays)


def test_shape_op_index_out_of_range_is_an_error():
    model, arrays = one_node(
        "GatherElements", [("x", arr((2, 2))), ("i", np.array([[0, 5]], np.int64))]
    )
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"gatherelements0.*value 5 out of range"):
            module.run(arrays)
        ok = [arrays[0], np.array([[0, 1]], np.int64)]
        np.testing.assert_array_equal(module.run(ok), onnxruntime_run(model, ok)[0])


def test_shape_op_scatter_bad_reduction_is_refused(monkeypatch):
    """Refused at export; and, were the export check skipped, by the runtime at load."""
    model, arrays = one_node(
        "ScatterElements",
        [("x", arr((2, 3))), ("i", i64(0, 1, 0)[None]), ("u", arr((1, 3)))],
        {"reduction": "median"},
    )
    with pytest.raises(UnsupportedOpError, match=r"scatterelements0.*reduction 'median'"):
        package(model)
    lower_module = sys.modules["wasmexport.packager.lower"]
    monkeypatch.setattr(lower_module, "check_node", lambda *args: None)
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"reduction 'median' is not none"):
            module.run(arrays)


def test_shape_op_complex64_is_refused_at_export():
    node = helper.make_node("Identity", ["x"], ["y"], name="id0")
    model = make_model([node], [("x", TensorProto.COMPLEX64, [2])],
                       [("y", TensorProto.COMPLEX64, None)])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"'x'.*COMPLEX64"):
        package(model)


def test_shape_op_conformance_cases_pass():
    """A sample of the ONNX backend node tests for these ops, compared with their outputs."""
    from onnx.backend.test.case.node import collect_testcases

    wanted = {"test_reflect_pad", "test_wrap_pad", "test_gathernd_example_int32_batch_dim1",
              "test_scatternd_multiply", "test_unique_sorted_with_axis_3d",
              "test_einsum_batch_diagonal", "test_center_crop_pad_crop_and_pad",
              "test_reversesequence_batch"}  # fmt: skip
    seen = set()
    for case in collect_testcases():
        if case.name not in wanted:
            continue
        seen.add(case.name)
        check_conformance_case(case)
    assert seen == wanted, wanted - seen


def test_shape_op_pad_unknown_mode_is_refused():
    """A mode the runtime lacks is refused (at export or at load), never run wrongly."""
    consts = {"p": i64(0, 1, 0, 0)}
    model, arrays = one_node("Pad", [("x", arr((2, 3)))], {"mode": "mirror"}, consts)
    with pytest.raises((UnsupportedOpError, RuntimeABIError), match="mirror"):
        with load(package(model).wasm) as module:
            module.run(arrays)


def test_shape_op_unique_keeps_nan_apart_from_numbers():
    """NaNs form one unique value sorted last, as in numpy (onnx.reference)."""
    x = np.array([2.0, np.nan, 1.0, np.nan, 2.0], np.float32)
    types = [TensorProto.FLOAT] + [TensorProto.INT64] * 3
    model, arrays = one_node("Unique", [("x", x)], n_out=4, out_types=types)
    expected = ReferenceEvaluator(model).run(None, {"x": x})
    with load(package(model).wasm) as module:
        got = module.run(arrays)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g, e)
