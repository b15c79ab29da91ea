"""The tensorflow adapter: Keras models, tf.functions and SavedModels -> ONNX -> wasm.

Each reference model is built once (fixed seeds, module-scoped cache) and checked twice:

- `test_tensorflow_to_onnx_matches_framework`: the adapter alone, for every model: the ONNX
  graph in onnxruntime against Keras at two batch sizes, and the ops it needs against the
  list the model declares;
- `test_tensorflow_export_wasm`: ``wasmexport.export_wasm`` end to end (framework vs
  onnxruntime vs wasm at two batch sizes). A model whose ops the runtime does not execute
  yet is skipped, naming the ops; it runs as soon as runtime_ops.json lists them.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
tf2onnx = pytest.importorskip("tf2onnx")
ort = pytest.importorskip("onnxruntime")
import keras  # noqa: E402

from wasmexport import ConvertError, UnsupportedOpError, export_wasm, load  # noqa: E402
from wasmexport.exporters import find_adapter, to_onnx  # noqa: E402
from wasmexport.exporters.tensorflow import (  # noqa: E402
    TENSORFLOW_INSTALL_HINT,
    is_tensorflow_model,
)
from wasmexport.packager.lower import _prepare  # noqa: E402
from wasmexport.packager.runtime_info import supported_op_types  # noqa: E402

L = keras.layers
TOLERANCE = 1e-4
RUNTIME_OPS = frozenset(op for domain, op in supported_op_types() if domain in ("", "ai.onnx"))


def _dense(units: int, activation: str | None = None, name: str | None = None) -> L.Dense:
    """A Dense layer with a random bias (a zero bias would let tf2onnx drop the Add)."""
    return L.Dense(units, activation=activation, bias_initializer="random_normal", name=name)


def _rng(seed: int) -> np.random.Generator:
    keras.utils.set_random_seed(seed)
    return np.random.default_rng(seed)


# --- the reference models ------------------------------------------------------------------


def build_dense_mlp():
    rng = _rng(1)
    model = keras.Sequential(
        [
            keras.Input((12,), name="features"),
            _dense(16, "relu", "fc1"),
            _dense(8, "tanh", "fc2"),
            _dense(4, name="logits"),
        ],
        name="mlp",
    )
    return model, rng.standard_normal((3, 12)).astype(np.float32)


def build_sequential_built_by_call():
    """A Sequential without an Input layer, built by a first call: from_keras fails on it."""
    rng = _rng(2)
    model = keras.Sequential([_dense(8, "relu"), _dense(3, "softmax", "probs")], name="late")
    x = rng.standard_normal((2, 5)).astype(np.float32)
    model(x)
    return model, x


def build_cnn_maxpool():
    rng = _rng(3)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            L.Conv2D(
                4, 3, padding="same", activation="relu", bias_initializer="random_normal"
            ),
            L.MaxPooling2D(2),
            L.Flatten(),
            _dense(10, name="logits"),
        ],
        name="cnn",
    )
    return model, rng.standard_normal((2, 8, 8, 1)).astype(np.float32)


def build_depthwise_conv():
    rng = _rng(4)
    model = keras.Sequential(
        [
            keras.Input((7, 7, 3), name="image"),
            L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, strides=1,
                              bias_initializer="random_normal"),
            L.ReLU(),
        ],
        name="depthwise",
    )  # fmt: skip
    return model, rng.standard_normal((2, 7, 7, 3)).astype(np.float32)


def build_conv_transpose():
    rng = _rng(5)
    model = keras.Sequential(
        [
            keras.Input((5, 5, 3), name="image"),
            L.Conv2DTranspose(
                4, 3, strides=2, padding="same", bias_initializer="random_normal"
            ),
        ],
        name="upconv",
    )
    return model, rng.standard_normal((2, 5, 5, 3)).astype(np.float32)


def build_batchnorm():
    """Conv, BatchNormalization, Dense, trained a few steps so the moving stats move."""
    rng = _rng(6)
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2), name="image"),
            L.Conv2D(4, 3, bias_initializer="random_normal"),
            L.BatchNormalization(momentum=0.5, name="bn"),
            L.ReLU(),
            L.Flatten(),
            _dense(8),
            L.BatchNormalization(momentum=0.5, name="bn_dense"),
            _dense(2, name="out"),
        ],
        name="bn_net",
    )
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
    x = (rng.standard_normal((32, 6, 6, 2)) * 3 + 1).astype(np.float32)
    y = rng.standard_normal((32, 2)).astype(np.float32)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    return model, x[:3]


def build_dropout():
    rng = _rng(7)
    model = keras.Sequential(
        [keras.Input((10,), name="features"), _dense(16, "relu"), L.Dropout(0.5),
         _dense(3, name="out")],
        name="dropout_net",
    )  # fmt: skip
    return model, rng.standard_normal((4, 10)).astype(np.float32)


def build_embedding_pool():
    rng = _rng(8)
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32", name="tokens"),
            L.Embedding(20, 8, embeddings_initializer="uniform"),
            L.GlobalAveragePooling1D(),
            _dense(3, name="out"),
        ],
        name="bag",
    )
    return model, rng.integers(0, 20, (3, 6)).astype(np.int32)


def build_embedding_mask_lstm():
    """mask_zero=True into an LSTM, with pre-padded and post-padded rows."""
    _rng(9)
    model = keras.Sequential(
        [
            keras.Input((6,), dtype="int32", name="tokens"),
            L.Embedding(20, 8, mask_zero=True),
            L.LSTM(5, name="lstm"),
        ],
        name="masked_lstm",
    )
    tokens = np.array(
        [[3, 7, 1, 9, 0, 0], [0, 0, 0, 4, 12, 5], [2, 4, 6, 8, 10, 12]], dtype=np.int32
    )
    return model, tokens


def build_lstm():
    rng = _rng(10)
    model = keras.Sequential(
        [keras.Input((7, 4), name="series"), L.LSTM(6, return_sequences=True), L.LSTM(5),
         _dense(2, name="out")],
        name="lstm_net",
    )  # fmt: skip
    return model, rng.standard_normal((2, 7, 4)).astype(np.float32)


def build_gru():
    rng = _rng(11)
    model = keras.Sequential(
        [keras.Input((7, 4), name="series"), L.GRU(6, name="gru"), _dense(2, name="out")],
        name="gru_net",
    )
    return model, rng.standard_normal((2, 7, 4)).astype(np.float32)


def build_upsampling_bilinear():
    rng = _rng(12)
    model = keras.Sequential(
        [keras.Input((4, 5, 3), name="image"), L.UpSampling2D(2, interpolation="bilinear")],
        name="upsample",
    )
    return model, rng.standard_normal((2, 4, 5, 3)).astype(np.float32)


def build_functional_residual():
    """A functional model: Add and Concatenate blocks, a softmax and a sigmoid head."""
    rng = _rng(13)
    image = keras.Input((6, 6, 3), name="image")
    h = L.Conv2D(3, 3, padding="same", activation="relu", bias_initializer="random_normal")(
        image
    )
    h = L.Add(name="residual")([image, h])
    branch = L.Conv2D(2, 1, bias_initializer="random_normal")(h)
    h = L.Concatenate(name="concat")([h, branch])
    h = L.Flatten()(h)
    probs = _dense(4, "softmax", "probs")(h)
    score = _dense(1, "sigmoid", "score")(h)
    model = keras.Model(image, [probs, score], name="residual_net")
    return model, rng.standard_normal((3, 6, 6, 3)).astype(np.float32)


class _Gated(keras.Model):
    """A subclassed model with two inputs: a gated sum of two Dense projections."""

    def __init__(self):
        super().__init__(name="gated")
        self.left = _dense(6, name="left")
        self.right = _dense(6, name="right")
        self.head = _dense(2, name="head")

    def call(self, inputs, training=None):
        a, b = inputs
        gate = keras.ops.sigmoid(self.left(a))
        return self.head(gate * self.right(b) + (1.0 - gate) * a[:, :6])


def build_subclassed():
    rng = _rng(14)
    model = _Gated()
    a = rng.standard_normal((3, 8)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    model([a, b])
    return model, [a, b]


def build_tf_function():
    """A tf.function with an input signature over variables and raw TensorFlow ops."""
    rng = _rng(15)
    w = tf.Variable(rng.standard_normal((4, 3)).astype(np.float32))
    b = tf.Variable(rng.standard_normal((3,)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="x")])
    def affine_tanh(x):
        return {"y": tf.tanh(tf.matmul(x, w) + b), "z": tf.nn.softmax(x * 2.0)}

    affine_tanh.variables = (w, b)  # NOTE: keep the captured variables alive
    return affine_tanh, rng.standard_normal((2, 4)).astype(np.float32)


@functools.cache
def _saved_model_dir() -> str:
    """The functional residual model exported as a SavedModel, removed at exit."""
    model, _ = build_functional_residual()
    root = tempfile.mkdtemp(prefix="wasmexport_tf_")
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    path = os.path.join(root, "residual_savedmodel")
    model.export(path, verbose=False)
    return path


def build_saved_model():
    """A Keras model exported as a SavedModel directory, given as its path."""
    _, x = build_functional_residual()
    return _saved_model_dir(), x


@dataclass(frozen=True)
class Case:
    build: Callable[[], tuple[object, object]]
    ops: frozenset[str]  # ONNX op types of the packaged graph (Loop bodies included)


def _ops(names: str) -> frozenset[str]:
    return frozenset(names.split())


_FLATTEN = "Shape Slice Gather Cast Concat Reshape"
CASES = {
    "dense_mlp": Case(build_dense_mlp, _ops("MatMul Add Relu Tanh")),
    "sequential_built_by_call": Case(
        build_sequential_built_by_call, _ops("MatMul Add Relu Softmax")
    ),
    "cnn_maxpool": Case(
        build_cnn_maxpool, _ops(f"Transpose Conv Relu MaxPool MatMul Add {_FLATTEN}")
    ),
    "depthwise_conv": Case(build_depthwise_conv, _ops("Transpose Conv Relu")),
    "conv_transpose": Case(build_conv_transpose, _ops("Transpose ConvTranspose")),
    "batchnorm": Case(build_batchnorm, _ops(f"Transpose Conv Relu MatMul Add Mul {_FLATTEN}")),
    "dropout": Case(build_dropout, _ops("MatMul Add Relu")),
    "embedding_pool": Case(
        build_embedding_pool, _ops("Gather Cast Less Not Mul ReduceMean MatMul Add")
    ),
    "embedding_mask_lstm": Case(
        build_embedding_mask_lstm,
        _ops(
            "Add And Cast Concat ConstantOfShape Equal Expand Gather Identity Less Loop "
            "MatMul Mul Not Shape Sigmoid Slice Split Squeeze Tanh Transpose Unsqueeze"
        ),
    ),
    "lstm": Case(
        build_lstm,
        _ops("LSTM Transpose Squeeze Unsqueeze Expand Shape Slice Concat Cast MatMul Add"),
    ),
    "gru": Case(
        build_gru,
        _ops(
            "Add And Cast Concat Expand Gather Identity Less Loop MatMul Mul Shape Sigmoid "
            "Slice Split Squeeze Sub Tanh Transpose"
        ),
    ),
    "upsampling_bilinear": Case(build_upsampling_bilinear, _ops("Transpose Resize")),
    "functional_residual": Case(
        build_functional_residual,
        _ops(f"Transpose Conv Relu Add Concat MatMul Softmax Sigmoid {_FLATTEN}"),
    ),
    "subclassed": Case(build_subclassed, _ops("MatMul Add Sigmoid Mul Sub Slice")),
    "tf_function": Case(build_tf_function, _ops("MatMul Add Tanh Mul Softmax")),
    "saved_model": Case(
        build_saved_model,
        _ops(f"Transpose Conv Relu Add Concat MatMul Softmax Sigmoid {_FLATTEN}"),
    ),
}


def _missing(case: Case) -> list[str]:
    return sorted(case.ops - RUNTIME_OPS)


def _wasm_params():
    params = []
    for name, case in CASES.items():
        missing = _missing(case)
        mark = pytest.mark.skipif(bool(missing), reason=f"runtime lacks {', '.join(missing)}")
        params.append(pytest.param(name, marks=mark, id=name))
    return params


@functools.cache
def _built(name: str) -> tuple[object, object]:
    return CASES[name].build()


@functools.cache
def _exported(name: str):
    model, sample = _built(name)
    return to_onnx(model, sample)


def _graph_ops(onnx_model: onnx.ModelProto) -> set[str]:
    """Op types of the graph the packager would lower (after folding), subgraphs included."""
    ops: set[str] = set()

    def walk(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            ops.add(node.op_type)
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.GRAPH:
                    walk(attribute.g)

    walk(_prepare(onnx_model).graph)
    return ops - {"Constant"}


def _other_batch(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The same rows at another batch size (reversed, plus one more)."""
    return [np.concatenate([a[::-1], a[:1]]) for a in arrays]


# --- the adapter alone, every model ----------------------------------------------------------


@pytest.mark.parametrize("name", list(CASES))
def test_tensorflow_to_onnx_matches_framework(name):
    exported = _exported(name)
    assert exported.framework == "tensorflow"
    session = ort.InferenceSession(
        exported.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for arrays in (exported.sample_inputs, _other_batch(exported.sample_inputs)):
        expected = exported.run_framework(arrays)
        got = session.run(
            exported.output_names, dict(zip(exported.input_names, arrays, strict=True))
        )
        assert len(got) == len(expected)
        for e, g in zip(expected, got, strict=True):
            assert g.shape == e.shape
            np.testing.assert_allclose(g, e, rtol=TOLERANCE, atol=TOLERANCE)

    # the ops the case declares (and the skip of its wasm test relies on) are all it needs
    undeclared = _graph_ops(exported.onnx_model) - CASES[name].ops
    assert not undeclared, f"{name} also needs {sorted(undeclared)}; add them to CASES"


# --- end to end through wasm ---------------------------------------------------------------


@pytest.mark.parametrize("name", _wasm_params())
def test_tensorflow_export_wasm(name, tmp_path):
    model, sample = _built(name)
    result = export_wasm(model, sample, tmp_path / f"{name}.wasm")
    report = result.report
    assert result.framework == "tensorflow"
    assert report is not None and report.passed, str(report)
    assert report.max_abs_err <= TOLERANCE
    assert len({c.batch for c in report.comparisons}) == 2
    pairs = {(c.reference, c.candidate) for c in report.comparisons}
    assert pairs == {("framework", "onnxruntime"), ("onnxruntime", "wasm")}


# --- names, layouts, dims ------------------------------------------------------------------


def _dims(value: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    return tuple(d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim)


def test_tensorflow_names_and_nhwc_layout():
    exported = _exported("functional_residual")
    graph = exported.onnx_model.graph
    assert exported.input_names == ["image"]
    assert exported.output_names == ["probs", "score"]
    assert [v.name for v in graph.output] == ["probs", "score"]
    assert _dims(graph.input[0]) == ("batch", 6, 6, 3)  # NHWC, as Keras takes it
    assert exported.dynamic_axes == {"image": {0: "batch"}}
    assert not any(":" in v.name for v in [*graph.input, *graph.output])


def test_tensorflow_names_without_keras_names():
    exported = _exported("subclassed")
    assert exported.input_names == ["input_0", "input_1"]
    assert exported.output_names == ["output"]
    # no declared dtypes: float64 samples take the model's compute dtype
    model, (a, b) = _built("subclassed")
    cast = to_onnx(model, [a.astype(np.float64), b.astype(np.float64)], dynamic_axes=False)
    assert [s.dtype for s in cast.sample_inputs] == [np.float32, np.float32]
    assert [v.type.tensor_type.elem_type for v in cast.onnx_model.graph.input] == [
        onnx.TensorProto.FLOAT
    ] * 2
    seq = _exported("sequential_built_by_call")
    assert seq.input_names == ["input"]
    assert seq.output_names == ["probs"]


def test_tensorflow_function_signature_names_and_dict_outputs():
    exported = _exported("tf_function")
    assert exported.input_names == ["x"]
    assert exported.output_names == ["y", "z"]
    assert exported.dynamic_axes == {"x": {0: "batch"}}


def test_tensorflow_saved_model_directory():
    path, x = _built("saved_model")
    assert is_tensorflow_model(path)
    exported = _exported("saved_model")
    assert exported.input_names == ["image"]
    # the same weights as the Keras model it was saved from
    model, _ = _built("functional_residual")
    outputs = model(x, training=False)
    by_name = dict(zip(exported.output_names, exported.run_framework([x]), strict=True))
    assert sorted(by_name) == ["output_0", "output_1"]
    np.testing.assert_allclose(by_name["output_0"], np.asarray(outputs[0]), atol=1e-6)
    np.testing.assert_allclose(by_name["output_1"], np.asarray(outputs[1]), atol=1e-6)


def test_tensorflow_loaded_saved_model_and_signature_key():
    path, x = _built("saved_model")
    loaded = tf.saved_model.load(path)
    exported = to_onnx(loaded, x)
    assert exported.input_names == ["image"]
    reference = _exported("saved_model").run_framework([x])
    for got, expected in zip(exported.run_framework([x]), reference, strict=True):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ConvertError, match=r"no signature 'predict'; it has serve, serving_d"):
        to_onnx(path, x, signature_key="predict")


def test_tensorflow_function_without_signature_and_concrete_function():
    rng = _rng(16)
    w = tf.constant(rng.standard_normal((4, 2)).astype(np.float32))

    @tf.function
    def project(features):
        return tf.nn.relu(tf.matmul(features, w))

    x = rng.standard_normal((3, 4)).astype(np.float32)
    exported = to_onnx(project, x)  # traced from the sample, batch dynamic
    assert exported.input_names == ["input"]
    assert exported.dynamic_axes == {"input": {0: "batch"}}
    concrete = project.get_concrete_function(tf.TensorSpec((None, 4), tf.float32, name="f"))
    exported = to_onnx(concrete, x)
    assert exported.input_names == ["f"]
    assert exported.output_names == ["output"]
    session = ort.InferenceSession(
        exported.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(
        session.run(None, {"f": x[:2]})[0], np.maximum(x[:2] @ w.numpy(), 0), atol=1e-6
    )


def test_tensorflow_sequential_avoids_from_keras_failure():
    """tf2onnx.convert.from_keras fails on Keras 3 Sequential models; the adapter does not."""
    model, x = _built("sequential_built_by_call")
    with pytest.raises(KeyError, match="keras_tensor"):
        tf2onnx.convert.from_keras(model)
    exported = _exported("sequential_built_by_call")
    np.testing.assert_allclose(
        exported.run_framework([x])[0], np.asarray(model(x, training=False)), atol=1e-6
    )


def test_tensorflow_static_export_and_cast_sample():
    model, x = _built("dense_mlp")
    exported = to_onnx(model, x.astype(np.float64), dynamic_axes=False, opset=15)
    assert exported.opset == 15
    assert exported.sample_inputs[0].dtype == np.float32
    assert _dims(exported.onnx_model.graph.input[0]) == (3, 12)
    assert exported.dynamic_axes == {}


def test_tensorflow_named_dynamic_axes_on_a_keras_model(tmp_path):
    model, x = _built("dense_mlp")
    exported = to_onnx(model, {"features": x}, dynamic_axes={"features": {0: "rows"}})
    assert _dims(exported.onnx_model.graph.input[0]) == ("rows", 12)
    assert _dims(exported.onnx_model.graph.output[0]) == ("rows", 4)


def test_tensorflow_run_framework_is_inference_mode():
    model, x = _built("dropout")
    exported = _exported("dropout")
    first, second = exported.run_framework([x])[0], exported.run_framework([x])[0]
    np.testing.assert_array_equal(first, second)  # Dropout off
    np.testing.assert_array_equal(first, np.asarray(model(x, training=False)))


def test_tensorflow_batchnorm_statistics_are_not_trivial():
    model, _ = _built("batchnorm")
    bn = model.get_layer("bn")
    assert np.abs(np.asarray(bn.moving_mean)).max() > 0.05
    assert np.abs(np.asarray(bn.moving_variance) - 1).max() > 0.05


def test_tensorflow_detect():
    model, _ = _built("dense_mlp")
    function, _ = _built("tf_function")
    assert is_tensorflow_model(model)
    assert is_tensorflow_model(function)
    assert is_tensorflow_model(function.get_concrete_function())
    assert not is_tensorflow_model(np.zeros(3))
    assert not is_tensorflow_model("model.onnx")
    assert find_adapter(model).name == "tensorflow"


# --- error paths ---------------------------------------------------------------------------


class LogGamma(L.Layer):
    def call(self, x):
        return tf.math.lgamma(x)


def test_tensorflow_unconverted_op_names_node_and_layer():
    _rng(20)
    model = keras.Sequential(
        [keras.Input((3,), name="x"), _dense(3, name="fc"), LogGamma(name="log_gamma")]
    )
    with pytest.raises(UnsupportedOpError) as info:
        to_onnx(model, np.ones((2, 3), np.float32))
    error = info.value
    assert error.op_type == "Lgamma"
    assert "log_gamma" in error.node and error.node.endswith("/Lgamma")
    assert f"node {error.node!r} (layer 'log_gamma')" in str(error)
    assert "TensorFlow op 'Lgamma'" in str(error)


def test_tensorflow_foreign_domain_node_refused():
    """A node tf2onnx mapped to a custom domain (e.g. ai.onnx.contrib) names its layer."""
    from wasmexport.exporters.tensorflow import check_converted_ops

    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("Relu", ["x"], ["h"], name="net/act/Relu"),
            onnx.helper.make_node(
                "StringLower",
                ["h"],
                ["y"],
                name="net/lower_1/StringLower",
                domain="ai.onnx.contrib",
            ),
        ],
        "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedOpError) as info:
        check_converted_ops(model, "Functional 'net'", frozenset({"act", "lower"}))
    assert info.value.node == "net/lower_1/StringLower"
    assert str(info.value).startswith(
        "Cannot convert node 'net/lower_1/StringLower' (layer 'lower') of Functional 'net' "
        "(opset 17): it became ai.onnx.contrib::StringLower, outside ai.onnx / ai.onnx.ml."
    )


def test_tensorflow_saved_tf_module(tmp_path):
    """A plain tf.Module saved with tf.saved_model.save and an explicit signature."""
    rng = _rng(17)

    class Scale(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(rng.standard_normal((3,)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec((None, 3), tf.float32, name="values")])
        def __call__(self, values):
            return {"scaled": tf.nn.sigmoid(values * self.w)}

    module = Scale()
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.__call__})
    x = rng.standard_normal((4, 3)).astype(np.float32)
    result = export_wasm(tmp_path, x, tmp_path / "scale.wasm")
    assert result.framework == "tensorflow"
    assert result.report.passed and result.report.max_abs_err <= TOLERANCE
    with load(result.path) as wasm:
        assert [s.name for s in wasm.inputs] == ["values"]
        assert [s.name for s in wasm.outputs] == ["scaled"]
        np.testing.assert_allclose(
            wasm.run(x), 1 / (1 + np.exp(-x * module.w.numpy())), rtol=1e-5, atol=1e-6
        )


def test_tensorflow_signature_fixes_requested_axis():
    @tf.function(input_signature=[tf.TensorSpec((2, 4), tf.float32, name="x")])
    def double(x):
        return x * 2.0

    with pytest.raises(ConvertError, match=r"axis 0 of input 'x' to be dynamic.*fixes it"):
        to_onnx(double, np.ones((2, 4), np.float32), dynamic_axes={"x": [0]})


def test_tensorflow_sample_dtype_refused():
    model, _ = _built("embedding_pool")
    with pytest.raises(ConvertError, match=r"'tokens' .* is int32, the sample is float32"):
        to_onnx(model, np.ones((2, 6), np.float32))


def test_tensorflow_model_failing_on_sample():
    model, _ = _built("dense_mlp")
    with pytest.raises(ConvertError, match=r"running Sequential 'mlp' on the sample inputs"):
        to_onnx(model, np.ones((2, 5), np.float32))


@pytest.mark.parametrize("module", ["tensorflow", "tf2onnx"])
def test_tensorflow_missing_framework_gives_install_hint(module, monkeypatch, tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` fail
    assert is_tensorflow_model(tmp_path)  # a SavedModel directory needs no import to detect
    with pytest.raises(ConvertError) as info:
        to_onnx(tmp_path, np.ones((1, 2), np.float32))
    assert TENSORFLOW_INSTALL_HINT == "pip install 'wasmexport[tensorflow]'"
    assert TENSORFLOW_INSTALL_HINT in str(info.value)


def test_tensorflow_wasm_matches_keras_at_other_batches(tmp_path):
    model, x = _built("dense_mlp")
    result = export_wasm(model, x, tmp_path / "mlp.wasm")
    rng = np.random.default_rng(30)
    with load(result.path) as module:
        assert [s.shape for s in module.inputs] == [("batch", 12)]
        for batch in (1, 5):
            xb = rng.standard_normal((batch, 12)).astype(np.float32)
            np.testing.assert_allclose(
                module.run(xb), np.asarray(model(xb, training=False)), rtol=1e-5, atol=1e-5
            )


# --- logging ------------------------------------------------------------------------------


def test_tensorflow_native_log_level_set_before_import_unless_the_user_set_it(monkeypatch):
    from wasmexport.exporters.tensorflow import quiet_native_logs

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    quiet_native_logs()  # tensorflow is imported: too late to matter, so left alone
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.delitem(sys.modules, "tensorflow")  # as before the first import
    quiet_native_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    quiet_native_logs()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


@pytest.mark.parametrize(
    ("ours", "during"),
    [(logging.ERROR, logging.ERROR), (logging.DEBUG, logging.WARNING)],
    ids=["quiet", "never-louder"],
)
def test_tensorflow_python_loggers_follow_our_level(ours, during):
    from wasmexport.exporters.tensorflow import _quiet_python_logs

    project, framework = logging.getLogger("wasmexport"), logging.getLogger("tensorflow")
    saved = project.level, framework.level
    project.setLevel(ours)
    framework.setLevel(logging.WARNING)
    try:
        with _quiet_python_logs():
            assert framework.getEffectiveLevel() == during
            assert logging.getLogger("tf2onnx").getEffectiveLevel() >= during
        assert framework.level == logging.WARNING
    finally:
        project.setLevel(saved[0])
        framework.setLevel(saved[1])


def test_tensorflow_cli_quiet_export_prints_no_framework_logs(tmp_path):
    """`wasmexport -q export` of a SavedModel in a fresh interpreter: no TensorFlow INFO
    lines from C++ nor deprecation warnings from Python (its oneDNN notice is printed
    before TensorFlow reads any setting, so it is not checked)."""
    path, x = _built("saved_model")
    np.save(tmp_path / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "wasmexport", "-q", "export", path, "--sample",
         str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.wasm")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for noise in ("Number of eligible GPUs", "cpu_feature_guard", "is deprecated"):
        assert noise not in result.stderr
