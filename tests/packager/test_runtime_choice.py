"""The packager embeds a model into the smallest prebuilt runtime that executes its plan.

Neural networks go into the core runtime (the op subset of abi_runtime/build.py's
CORE_OPS); a model with any other op, in any graph of its plan, goes into the runtime with
every op. Both compute what onnxruntime computes. A plan put into a runtime that lacks one
of its kernels is refused at load, naming the op, never run.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from onnx import helper

from wasmexport.abi_runtime import build, load
from wasmexport.errors import RuntimeABIError
from wasmexport.packager import package
from wasmexport.packager.runtime_info import runtime_bytes, runtime_subset_for

R = np.random.default_rng(5)


def conv_relu():
    w = R.standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]  # fmt: skip
    return make_model(nodes, [("x", FLOAT, [1, 3, 8, 8])], [("y", FLOAT, None)], {"w": w})


def det_model():
    """Det is in the full runtime only."""
    nodes = [helper.make_node("Det", ["x"], ["y"])]
    return make_model(nodes, [("x", FLOAT, [2, 3, 3])], [("y", FLOAT, None)], opset=20)


def loop_with_det():
    """A Loop whose body holds the only non-core op: the choice looks into subgraphs."""
    body = helper.make_graph(
        [helper.make_node("Det", ["m_in"], ["d"]),
         helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Identity", ["m_in"], ["m_out"])],
        "body",
        [helper.make_tensor_value_info("i", INT64, []),
         helper.make_tensor_value_info("cond", 9, []),
         helper.make_tensor_value_info("m_in", FLOAT, [3, 3])],
        [helper.make_tensor_value_info("cond_out", 9, []),
         helper.make_tensor_value_info("m_out", FLOAT, [3, 3]),
         helper.make_tensor_value_info("d", FLOAT, [])],
    )  # fmt: skip
    node = helper.make_node("Loop", ["n", "", "m"], ["m_final", "dets"], body=body)
    return make_model(
        [node], [("m", FLOAT, [3, 3])], [("m_final", FLOAT, None), ("dets", FLOAT, None)],
        {"n": np.array(2, dtype=np.int64)}, opset=20,
    )  # fmt: skip


def test_runtime_choice_neural_network_goes_into_the_core_runtime():
    model = conv_relu()
    packaged = package(model)
    assert packaged.runtime == packaged.metadata.runtime == "core"
    # the module is the core runtime plus the plan and a small metadata section
    core = len(runtime_bytes("plain", "core"))
    assert core <= packaged.runtime_bytes < core + 4096
    assert packaged.runtime_bytes < len(runtime_bytes("plain")), "core is not smaller"
    x = R.standard_normal((1, 3, 8, 8)).astype(np.float32)
    with load(packaged.wasm) as m:
        np.testing.assert_allclose(m.run([x]), onnxruntime_run(model, [x])[0],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("make", [det_model, loop_with_det], ids=["main", "subgraph"])
def test_runtime_choice_other_ops_go_into_the_full_runtime(make):
    model = make()
    packaged = package(model)
    assert packaged.runtime == packaged.metadata.runtime == "full"
    arrays = [R.standard_normal(tuple(d.dim_value for d in i.type.tensor_type.shape.dim))
              .astype(np.float32) for i in model.graph.input]  # fmt: skip
    with load(packaged.wasm) as m:
        got = m.run(arrays)
    got = got if isinstance(got, list) else [got]
    for g, e in zip(got, onnxruntime_run(model, arrays), strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_runtime_choice_relaxed_simd_has_a_core_runtime_too():
    assert package(conv_relu(), simd="relaxed").runtime == "core"
    assert package(det_model(), simd="relaxed").runtime == "full"


def test_runtime_choice_core_runtime_refuses_a_kernel_it_lacks():
    packaged = package(det_model(), runtime=runtime_bytes("plain", "core"))
    assert packaged.runtime == "custom"
    with pytest.raises(RuntimeABIError, match=r"Det is not built into this runtime"):
        with load(packaged.wasm) as m:
            m.run([np.eye(3, dtype=np.float32)[None].repeat(2, 0)])


def test_runtime_choice_subset_rules():
    assert runtime_subset_for({("", "Conv"), ("ai.onnx", "Relu")}) == "core"
    assert runtime_subset_for({("", "Conv"), ("ai.onnx.ml", "Scaler")}) is None
    assert runtime_subset_for({("", "DFT")}) is None
    assert runtime_subset_for(set()) == "core"
    # every op of the core subset is an op of the full runtime
    assert build.CORE_OPS <= {op["op_type"] for op in build.supported_ops()}
