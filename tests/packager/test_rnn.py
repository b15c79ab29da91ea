"""RNN, GRU and LSTM against onnxruntime on random weights, their ONNX conformance cases,
and torch's nn.LSTM / nn.GRU exported end to end.

onnxruntime runs GRU and LSTM only with layout 0, so layout 1 cases are checked against the
layout-0 model on transposed inputs and outputs (the two layouts differ only in that).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from node_cases import check_conformance_case, conformance_cases
from onnx import TensorProto, helper

from wasmexport.abi_runtime import load
from wasmexport.packager import package
from wasmexport.packager.runtime_info import supported_op_types

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
OUTPUTS = {"RNN": ("Y", "Y_h"), "GRU": ("Y", "Y_h"), "LSTM": ("Y", "Y_h", "Y_c")}


def rnn_case(op, *, direction="forward", layout=0, S=5, B=3, I=4, H=6, bias=True,  # noqa: E741
             lens=False, initial=True, peepholes=False, wanted=(1, 1, 1), opset=14,
             seed=0, **attrs):  # fmt: skip
    """One recurrent node with random weights; returns (model, input arrays).

    Inputs X, sequence_lens, initial_h and initial_c are graph inputs (in that order,
    where present); W, R, B and P are initializers.
    """
    rng = np.random.default_rng(seed)
    D, G = (2 if direction == "bidirectional" else 1), GATES[op]

    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    weights = {"W": randn(D, G * H, I, scale=0.5), "R": randn(D, G * H, H, scale=0.5)}
    x = randn(S, B, I) if layout == 0 else randn(B, S, I)
    names, inputs, arrays = ["x", "W", "R"], [("x", FLOAT, list(x.shape))], [x]
    if bias:
        weights["B"] = randn(D, 2 * G * H, scale=0.5)
    names.append("B" if bias else "")
    if lens:
        inputs.append(("lens", TensorProto.INT32, [B]))
        arrays.append(rng.integers(1, S + 1, B).astype(np.int32))
    names.append("lens" if lens else "")
    state_shape = (D, B, H) if layout == 0 else (B, D, H)
    for name in ("h0", "c0") if op == "LSTM" else ("h0",):
        if initial:
            inputs.append((name, FLOAT, list(state_shape)))
            arrays.append(randn(*state_shape))
        names.append(name if initial else "")
    if peepholes:
        weights["P"] = randn(D, 3 * H, scale=0.5)
        names.append("P")
    while names[-1] == "":
        names.pop()
    outputs = [o if w else "" for o, w in zip(OUTPUTS[op], wanted, strict=False)]
    while outputs[-1] == "":
        outputs.pop()
    if layout:
        attrs["layout"] = 1
    node = helper.make_node(
        op, names, outputs, name="rnn0", hidden_size=H, direction=direction, **attrs
    )
    model = make_model(
        [node], inputs, [(o, FLOAT, None) for o in outputs if o], weights, opset=opset
    )
    return model, arrays


def run_wasm(model, arrays):
    with load(package(model).wasm) as m:
        got = m.run(arrays)
    return [np.asarray(g) for g in (got if isinstance(got, list | tuple) else [got])]


def layout0_reference(op, kwargs, arrays):
    """onnxruntime's outputs for a layout-1 case: the layout-0 model on transposed data."""
    model0, _ = rnn_case(op, **{**kwargs, "layout": 0})
    # X (B, S, I) -> (S, B, I); initial states (B, D, H) -> (D, B, H); lens unchanged
    arrays0 = [a.transpose(1, 0, 2) if a.ndim == 3 else a for a in arrays]
    outputs = onnxruntime_run(model0, arrays0)
    names = [o.name for o in model0.graph.output]
    return [y.transpose(2, 0, 1, 3) if n == "Y" else y.transpose(1, 0, 2)
            for n, y in zip(names, outputs, strict=True)]  # fmt: skip


CASES = []
for _op in GATES:
    CASES += [
        (_op, {}),
        (_op, {"direction": "reverse"}),
        (_op, {"direction": "bidirectional", "lens": True}),
        (_op, {"direction": "reverse", "lens": True, "layout": 1}),
        (_op, {"direction": "bidirectional", "layout": 1}),
        (_op, {"bias": False, "initial": False}),
        (_op, {"clip": 0.7, "direction": "bidirectional"}),
        (_op, {"wanted": (0, 1, 1)}),
        (_op, {"wanted": (1, 0, 0), "S": 1, "B": 1}),
        (_op, {"opset": 7, "S": 7, "B": 5, "I": 19, "H": 37, "direction": "bidirectional"}),
    ]
CASES += [
    ("LSTM", {"wanted": (0, 0, 1)}),
    # batches of GEMM_NR (16) and more take the packed GEMM path at every step
    ("LSTM", {"B": 17, "lens": True, "direction": "bidirectional", "peepholes": True}),
    ("GRU", {"B": 18, "lens": True, "direction": "bidirectional"}),
    ("GRU", {"B": 16, "linear_before_reset": 1}),
    ("RNN", {"B": 16, "layout": 1}),
    ("GRU", {"linear_before_reset": 1}),
    ("GRU", {"linear_before_reset": 1, "direction": "bidirectional", "lens": True,
             "clip": 1.5}),
    ("LSTM", {"peepholes": True, "lens": True}),
    ("LSTM", {"peepholes": True, "input_forget": 1, "direction": "bidirectional"}),
    ("LSTM", {"peepholes": True, "lens": True, "layout": 1}),
    ("RNN", {"activations": ["Relu"]}),
    ("RNN", {"activations": ["LeakyRelu", "Tanh"], "activation_alpha": [0.3],
             "direction": "bidirectional"}),
    ("RNN", {"activations": ["ThresholdedRelu"], "activation_alpha": [0.2]}),
    ("GRU", {"activations": ["HardSigmoid", "Softsign"], "activation_alpha": [0.3],
             "activation_beta": [0.4]}),
    ("LSTM", {"activations": ["Sigmoid", "ScaledTanh", "Affine"],
              "activation_alpha": [0.9, 1.1], "activation_beta": [1.2, 0.2]}),
    ("LSTM", {"activations": ["HardSigmoid", "Elu", "Softplus"],
              "activation_alpha": [0.25, 0.8], "activation_beta": [0.45]}),
]  # fmt: skip


@pytest.mark.parametrize(
    "op, kwargs", CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)]
)
def test_recurrent_op_against_onnxruntime(op, kwargs):
    model, arrays = rnn_case(op, **kwargs)
    if kwargs.get("layout"):
        expected = layout0_reference(op, kwargs, arrays)
    else:
        expected = onnxruntime_run(model, arrays)
    got = run_wasm(model, arrays)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        # onnxruntime's recurrent kernels use approximations of tanh and sigmoid
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5)


def test_recurrent_op_rejects_bad_sequence_lens():
    model, arrays = rnn_case("GRU", lens=True)
    arrays[1] = np.array([1, 9, 2], np.int32)  # 9 > sequence length 5
    with load(package(model).wasm) as m:
        status, answer = m.request(json.dumps({"input": [a.tolist() for a in arrays]}))
    assert status == 1 and "sequence_lens[1] = 9" in answer


CONFORMANCE = conformance_cases("rnn", "gru", "lstm")


@pytest.mark.parametrize("case", CONFORMANCE, ids=lambda c: c.name)
def test_conformance(case):
    check_conformance_case(case)


# ---- torch -----------------------------------------------------------------------------


def torch_recurrent(kind: str):
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
            self.rnn = cls(8, 16, num_layers=2, batch_first=True, bidirectional=True)
            self.fc = torch.nn.Linear(32, 3)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    torch.manual_seed(0)
    return Net().eval(), torch.randn(2, 5, 8)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_two_layer_bidirectional_legacy_export(kind, tmp_path):
    """nn.LSTM / nn.GRU (batch_first, 2 layers, bidirectional): the legacy exporter writes
    ONNX LSTM / GRU nodes; the verifier compares torch, onnxruntime and the module."""
    from wasmexport import export_wasm

    model, x = torch_recurrent(kind)
    result = export_wasm(model, x, tmp_path / "m.wasm", exporter="legacy")
    assert result.report.passed
    assert result.metadata.ops[kind.upper()] == 2


@pytest.mark.skipif(
    "Expand" not in {op for _, op in supported_op_types()},
    reason="the dynamo exporter's initial state is an Expand, which the runtime lacks",
)
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_torch_two_layer_bidirectional_dynamo_export(kind, tmp_path):
    from wasmexport import export_wasm

    model, x = torch_recurrent(kind)
    result = export_wasm(model, x, tmp_path / "m.wasm", exporter="dynamo")
    assert result.report.passed
    assert result.metadata.ops[kind.upper()] == 2
