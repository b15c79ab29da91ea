"""Tests of the ONNX pass-through adapter and the checks every exported model goes through."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasmexport.errors import ConvertError, UnsupportedOpError
from wasmexport.exporters import find_adapter, to_onnx
from wasmexport.exporters.onnx import finalize_onnx_model, is_onnx_model

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3), dtype=np.float32)
B = RNG.standard_normal(3, dtype=np.float32)


def _dense_model(x_shape=("batch", 4), opset: int = 18) -> onnx.ModelProto:
    """y = relu(x @ W + B), x float32 of `x_shape`."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"], name="matmul0"),
            helper.make_node("Add", ["xw", "B"], ["xwb"], name="add0"),
            helper.make_node("Relu", ["xwb"], ["y"], name="relu0"),
        ],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [x_shape[0], 3])],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _reference(x: np.ndarray) -> np.ndarray:
    return np.maximum(x @ W + B, 0)


def _run(exported, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        exported.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {exported.input_names[0]: x})[0]


def test_onnx_detect():
    assert is_onnx_model(_dense_model())
    assert is_onnx_model("model.onnx") and is_onnx_model(Path("a/B.ONNX"))
    assert not is_onnx_model("model.pt") and not is_onnx_model(b"model.onnx")
    assert find_adapter(Path("m.onnx")).name == "onnx"


def test_onnx_model_proto_passes_through():
    model = _dense_model()
    x = RNG.standard_normal((2, 4), dtype=np.float32)
    exported = to_onnx(model, x)

    assert exported.framework == "onnx"
    assert exported.run_framework is None
    assert exported.input_names == ["x"] and exported.output_names == ["y"]
    assert exported.dynamic_axes == {"x": {0: "batch"}}
    assert exported.opset == 18
    assert exported.sample_inputs[0] is x
    assert exported.onnx_model is not model  # a copy; the caller's proto is untouched
    for batch in (2, 5):
        xb = RNG.standard_normal((batch, 4), dtype=np.float32)
        np.testing.assert_allclose(_run(exported, xb), _reference(xb), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("as_pathlike", [False, True])
def test_onnx_file_with_external_data_is_inlined(tmp_path, as_pathlike):
    path = tmp_path / "dense.onnx"
    onnx.save(
        _dense_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="dense.data",
        size_threshold=0,
    )
    assert (tmp_path / "dense.data").is_file()
    x = RNG.standard_normal((3, 4), dtype=np.float32)

    exported = to_onnx(path if as_pathlike else os.fspath(path), [x])

    initializers = exported.onnx_model.graph.initializer
    assert [t.name for t in initializers] == ["W", "B"]
    assert all(t.data_location == TensorProto.DEFAULT for t in initializers)
    np.testing.assert_array_equal(numpy_helper.to_array(initializers[0]), W)
    np.testing.assert_allclose(_run(exported, x), _reference(x), rtol=1e-6, atol=1e-6)


def test_onnx_proto_with_external_data(tmp_path):
    path = tmp_path / "dense.onnx"
    onnx.save(_dense_model(), path, save_as_external_data=True, size_threshold=0)
    unloaded = onnx.load(path, load_external_data=False)

    with pytest.raises(ConvertError, match=r"tensor\(s\) W, B still reference external data"):
        to_onnx(unloaded, np.zeros((1, 4), np.float32))
    exported = to_onnx(unloaded, np.zeros((1, 4), np.float32), external_data_dir=tmp_path)
    np.testing.assert_array_equal(
        numpy_helper.to_array(exported.onnx_model.graph.initializer[1]), B
    )


def test_onnx_missing_file():
    with pytest.raises(ConvertError, match=r"onnx: no such file 'nowhere/missing.onnx'"):
        to_onnx("nowhere/missing.onnx", np.zeros((1, 4), np.float32))


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (
            np.zeros((1, 4), np.float64),
            "input 'x': expected float32 (batch, 4), got float64 (1, 4)",
        ),
        (
            np.zeros((1, 5), np.float32),
            "input 'x': expected float32 (batch, 4), got float32 (1, 5)",
        ),
        (np.zeros(4, np.float32), "input 'x': expected float32 (batch, 4), got float32 (4,)"),
        (
            [np.zeros((1, 4), np.float32)] * 2,
            "onnx: the graph has 1 input(s) (x), got 2 sample input(s)",
        ),
        (
            {"z": np.zeros((1, 4), np.float32)},
            "onnx: sample inputs ['z'] do not match the graph inputs ['x'] "
            "(unknown: ['z'], missing: ['x'])",
        ),
    ],
)
def test_onnx_mismatched_samples(samples, message):
    with pytest.raises(ConvertError) as info:
        to_onnx(_dense_model(), samples)
    assert str(info.value) == message


def test_onnx_static_dims_checked():
    model = _dense_model(x_shape=(1, 4))
    with pytest.raises(ConvertError) as info:
        to_onnx(model, np.zeros((2, 4), np.float32))
    assert str(info.value) == "input 'x': expected float32 (1, 4), got float32 (2, 4)"


def test_onnx_dynamic_axes_only_checked():
    x = np.zeros((1, 4), np.float32)
    exported = to_onnx(_dense_model(), x, dynamic_axes={"x": {0: "batch"}})
    assert exported.dynamic_axes == {"x": {0: "batch"}}
    exported = to_onnx(_dense_model(), x, dynamic_axes=False)  # the graph's dims are kept
    assert exported.dynamic_axes == {"x": {0: "batch"}}

    assert to_onnx(_dense_model(x_shape=(1, 4)), x).dynamic_axes == {}  # None: no check
    with pytest.raises(ConvertError) as info:
        to_onnx(_dense_model(x_shape=(1, 4)), x, dynamic_axes={"x": [0]})
    assert str(info.value).startswith(
        "input 'x': dynamic_axes asks for axis 0 ('x_dim0') to be dynamic, but the ONNX "
        "graph declares it static (1, 4)"
    )


def test_onnx_unnamed_dynamic_dim_gets_a_name():
    model = _dense_model(x_shape=(None, 4))
    exported = to_onnx(model, np.zeros((2, 4), np.float32))
    assert exported.dynamic_axes == {"x": {0: "x_dim0"}}
    assert (
        exported.onnx_model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "x_dim0"
    )


def test_onnx_shared_symbolic_dim_must_agree():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 2]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    exported = to_onnx(
        model, {"b": np.zeros((3, 2), np.float32), "a": np.ones((3, 2), np.float32)}
    )
    assert exported.sample_inputs[0][0, 0] == 1.0  # reordered to graph-input order
    with pytest.raises(ConvertError) as info:
        to_onnx(model, [np.zeros((3, 2), np.float32), np.zeros((4, 2), np.float32)])
    assert str(info.value) == (
        "input 'b': dim 'n' (axis 0) is 4 in the sample, but 3 in input 'a' (axis 0)"
    )


def test_onnx_foreign_domain_rejected():
    model = _dense_model()
    model.graph.node[2].domain = "com.microsoft"
    model.graph.node[2].op_type = "FusedRelu"
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpError) as info:
        to_onnx(model, np.zeros((1, 4), np.float32))
    assert str(info.value).startswith(
        "Cannot convert node 'relu0' (com.microsoft::FusedRelu, from the ONNX file): only "
        "the ai.onnx and ai.onnx.ml domains are supported"
    )
    assert info.value.op_type == "FusedRelu"


def test_onnx_foreign_domain_of_an_export_names_the_framework():
    model = _dense_model()
    model.graph.node[2].domain = "com.example"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(UnsupportedOpError) as info:
        finalize_onnx_model(model, framework="torch")
    assert "(com.example::Relu, from the torch export)" in str(info.value)


def test_onnx_local_functions_inlined():
    function = helper.make_function(
        "local",
        "DoubleRelu",
        ["a"],
        ["b"],
        [
            helper.make_node("Add", ["a", "a"], ["t"]),
            helper.make_node("Relu", ["t"], ["b"]),
        ],
        opset_imports=[helper.make_opsetid("", 18)],
    )
    graph = helper.make_graph(
        [helper.make_node("DoubleRelu", ["x"], ["y"], domain="local", name="f0")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])],
    )
    model = helper.make_model(
        graph,
        functions=[function],
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("local", 1)],
    )
    finalized = finalize_onnx_model(model, framework="test")
    assert len(finalized.functions) == 0
    assert [n.op_type for n in finalized.graph.node] == ["Add", "Relu"]
    assert [o.domain for o in finalized.opset_import] == [""]

    exported = to_onnx(model, np.array([-1.0, 2.0], np.float32))
    np.testing.assert_array_equal(_run(exported, np.array([-1.0, 2.0], np.float32)), [0, 4])


def test_onnx_opset_conversion():
    exported = to_onnx(_dense_model(opset=17), np.zeros((1, 4), np.float32), opset=18)
    assert exported.opset == 18
    with pytest.raises(
        ConvertError, match="onnx: cannot convert the model from opset 18 to 999"
    ):
        to_onnx(_dense_model(), np.zeros((1, 4), np.float32), opset=999)


def test_onnx_invalid_model_is_convert_error():
    model = _dense_model()
    model.graph.node[0].input[1] = "does_not_exist"
    with pytest.raises(ConvertError, match="onnx: the ONNX model fails onnx.checker"):
        to_onnx(model, np.zeros((1, 4), np.float32))
