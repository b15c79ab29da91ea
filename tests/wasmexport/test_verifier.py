"""The verifier's label and probability-map paths: exact labels counted as flips, maps
compared key by key, and VerifyError on any flip."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper

from wasmexport.errors import VerifyError
from wasmexport.verifier import compare_maps, compare_outputs, verify

TOL = {"reference": "onnxruntime", "candidate": "wasm", "batch": 3, "rtol": 1e-4,
       "atol": 1e-4}  # fmt: skip


def test_int_labels_are_exact_and_counted_as_flips():
    same = compare_outputs("label", np.array([0, 1, 2]), np.array([0, 1, 2]), **TOL)
    assert same.passed and same.flips == 0
    flipped = compare_outputs("label", np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), **TOL)
    assert not flipped.passed and flipped.flips == 2
    assert flipped.worst_index == (1,) and "expected 1, got 2" in flipped.note


def test_string_labels_are_exact():
    e = np.array(["cat", "dog", "dog"], dtype=object)
    assert compare_outputs("label", e, e.copy(), **TOL).flips == 0
    c = compare_outputs("label", e, np.array(["cat", "dog", "cow"], dtype=object), **TOL)
    assert not c.passed and c.flips == 1 and "'cow'" in c.note


def test_numbers_keep_the_tolerance():
    c = compare_outputs("y", np.array([1.0, 2.0]), np.array([1.0, 2.00005]), **TOL)
    assert c.passed and c.flips is None and c.max_abs_err == pytest.approx(5e-5)


def test_probability_maps_compared_key_by_key():
    expected = [{0: 0.25, 1: 0.75}, {0: 0.5, 1: 0.5}]
    # np.int64 keys and another key order are the same map
    got = [{np.int64(1): 0.75, np.int64(0): 0.25}, {1: 0.5, 0: 0.50003}]
    c = compare_outputs("proba", expected, got, **TOL)
    assert c.passed and c.shape == (2, 2) and c.max_abs_err == pytest.approx(3e-5)
    off = compare_maps("proba", expected, [{0: 0.25, 1: 0.75}, {0: 0.4, 1: 0.6}], **TOL)
    assert not off.passed and off.max_abs_err == pytest.approx(0.1)
    assert off.worst_index in ((1, 0), (1, 1))


def test_probability_maps_with_other_keys_or_rows_fail():
    expected = [{"a": 0.5, "b": 0.5}]
    assert "keys" in compare_maps("p", expected, [{"a": 0.5, "c": 0.5}], **TOL).note
    assert "rows" in compare_maps("p", expected, expected * 2, **TOL).note
    assert not compare_outputs("p", expected, np.array([[0.5, 0.5]]), **TOL).passed


def _identity_model():
    """label (int64) and proba (float) pass through: onnxruntime answers the input."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["l"], ["label"]),
         helper.make_node("Identity", ["p"], ["proba"])],
        "g",
        [helper.make_tensor_value_info("l", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("p", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
         helper.make_tensor_value_info("proba", TensorProto.FLOAT, ["batch", 2])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _fake_module(flip_row=None):
    """A stand-in for a loaded module that answers its inputs, one label flipped."""

    def run(arrays):
        label = arrays[0].copy()
        if flip_row is not None:
            label[flip_row] += 1
        return [label, arrays[1]]

    return SimpleNamespace(
        inputs=[
            SimpleNamespace(name="label_in", shape=("batch",), dtype="int64"),
            SimpleNamespace(name="proba_in", shape=("batch", 2), dtype="float32"),
        ],
        outputs=[SimpleNamespace(name="label"), SimpleNamespace(name="proba")],
        run=run,
    )


def test_verify_counts_flips_and_raises():
    model = _identity_model()
    sample = [np.array([0, 1, 1], np.int64), np.full((3, 2), 0.5, np.float32)]
    report = verify(_fake_module(), model, sample)
    assert report.passed and report.label_flips == 0
    assert "label flips" in str(report)

    with pytest.raises(VerifyError) as info:
        verify(_fake_module(flip_row=0), model, sample)
    report = info.value.report
    assert report.label_flips == 2  # row 0 at batch 3, and again at batch 4
    text = str(report)
    assert "label flip(s)" in text and "FAILED" in text
    assert [c.flips for c in report.failures()] == [1, 1]


def test_sample_dtypes_are_cast_or_refused():
    from wasmexport.abi_runtime.host import TensorSpec
    from wasmexport.errors import ConvertError
    from wasmexport.verifier import check_sample

    specs = [TensorSpec("x", "float32", ["batch", 2]), TensorSpec("ids", "int64", [3])]
    x, ids = check_sample(specs, [np.ones((4, 2), np.float64), np.arange(3, dtype=np.int32)])
    assert x.dtype == np.float32 and ids.dtype == np.int64
    with pytest.raises(ConvertError, match=r"sample input 'ids' is float32; the module "
                                           r"takes int64"):  # fmt: skip
        check_sample(specs, [np.ones((4, 2), np.float32), np.ones(3, np.float32)])
    with pytest.raises(ConvertError, match=r"the sample has 1 input; the module takes 2"):
        check_sample(specs, [np.ones((4, 2), np.float32)])
