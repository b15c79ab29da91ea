"""Helpers for op tests: many small models packaged as one module, checked per output."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.compose
import onnxruntime as ort
from model_helpers import onnxruntime_run
from onnx import helper
from onnx.reference import ReferenceEvaluator

from wasmexport.abi_runtime import load
from wasmexport.packager import package

# the numpy dtypes of the runtime's stored types (bfloat16 aside: numpy has none)
RUNTIME_NUMPY_DTYPES = [np.dtype(t) for t in (
    "float32", "float64", "float16", "int8", "uint8", "int16", "uint16", "int32", "int64",
    "uint32", "uint64", "bool")]  # fmt: skip


def onnx_type(dtype) -> int:
    """The TensorProto element type of a numpy dtype (onnx's own mapping)."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def reference_run(model, arrays):
    """Outputs from onnxruntime, or from onnx's reference evaluator where ORT has no kernel."""
    try:
        return onnxruntime_run(model, arrays)
    except (ort.capi.onnxruntime_pybind11_state.NotImplemented,
            ort.capi.onnxruntime_pybind11_state.InvalidGraph,
            ort.capi.onnxruntime_pybind11_state.RuntimeException):  # fmt: skip
        names = [i.name for i in model.graph.input]
        return ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))


def merge_models(models: list[onnx.ModelProto]) -> onnx.ModelProto:
    """One model holding every given single-graph model side by side (names prefixed m<i>_).

    Loading a module costs about a second, so each test case packages one merged model
    for all of its dtypes instead of one model per dtype.
    """
    nodes, inputs, outputs, inits = [], [], [], []
    for i, m in enumerate(models):
        g = onnx.compose.add_prefix_graph(m.graph, f"m{i}_")
        nodes += g.node
        inputs += g.input
        outputs += g.output
        inits += g.initializer
    graph = helper.make_graph(nodes, "merged", inputs, outputs, inits)
    merged = helper.make_model(graph, opset_imports=models[0].opset_import)
    merged.ir_version = models[0].ir_version
    return merged


def check_all(cases, tol=1e-5):
    """Package cases [(model, arrays)] as one module; compare each with its reference."""
    expected = [reference_run(m, a) for m, a in cases]
    merged = merge_models([m for m, _ in cases])
    with load(package(merged).wasm) as module:
        got = module.run([x for _, a in cases for x in a])
    got = got if isinstance(got, list) else [got]
    flat = [np.asarray(e) for exp in expected for e in exp]
    assert len(got) == len(flat)
    for e, g in zip(flat, got, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape, (g.dtype, g.shape, e.dtype, e.shape)
        if e.dtype.kind == "f":
            t = 1e-3 if e.dtype == np.float16 else tol
            np.testing.assert_allclose(g.astype(np.float64), e.astype(np.float64), rtol=t,
                                       atol=t)  # fmt: skip
        else:
            np.testing.assert_array_equal(g, e)
