"""Tests of the torch adapter: both exporters, dynamic axes, names, errors.

Each reference model is exported once per exporter (module-scoped fixture), run in
onnxruntime and compared with the torch model at the sample batch and at another batch.
"""

from __future__ import annotations

import collections
import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from click.testing import CliRunner  # noqa: E402

from wasmexport import export_wasm  # noqa: E402
from wasmexport.cli import cli  # noqa: E402
from wasmexport.errors import ConvertError, UnsupportedOpError  # noqa: E402
from wasmexport.exporters import find_adapter, to_onnx  # noqa: E402
from wasmexport.exporters.torch import is_torch_module  # noqa: E402


def _load_report_ops():
    """The model definitions shared with report_ops.py (tests/ is not a package)."""
    path = Path(__file__).with_name("report_ops.py")
    spec = importlib.util.spec_from_file_location("wasmexport_tests_report_ops", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building
    spec.loader.exec_module(module)
    return module


report_ops = _load_report_ops()
CASES = {case.name: case for case in report_ops.CASES}
EXPORTERS = ("dynamo", "legacy")
ATOL = 1e-5

# what torch 2.13 emits for each case (see docs/torch_export_ops.md)
EXPECTED_OPS = {
    ("superres", "dynamo"): {"Conv": 4, "Relu": 3, "DepthToSpace": 1},
    ("superres", "legacy"): {"Conv": 4, "Relu": 3, "DepthToSpace": 1},
    ("superres_hw", "dynamo"): {"Conv": 4, "Relu": 3, "DepthToSpace": 1},
    ("superres_hw", "legacy"): {"Conv": 4, "Relu": 3, "DepthToSpace": 1},
    ("mlp", "dynamo"): {"Gemm": 3, "Relu": 1, "Tanh": 1, "Sigmoid": 1},
    ("mlp", "legacy"): {"Gemm": 3, "Relu": 1, "Tanh": 1, "Sigmoid": 1},
    ("mlp_softmax", "dynamo"): {"Reshape": 1, "Gemm": 2, "Relu": 1, "Softmax": 1},
    ("mlp_softmax", "legacy"): {"Flatten": 1, "Gemm": 2, "Relu": 1, "Softmax": 1},
}
EXPECTED_INPUTS = {
    "superres": ("x", ["batch", 1, 224, 224]),
    "superres_hw": ("x", ["batch", 1, "height", "width"]),
    "mlp": ("input", ["batch", 20]),
    "mlp_softmax": ("input", ["batch", 1, 4, 5]),
}
# another sample per case: a different batch (and height/width where dynamic)
OTHER_SHAPES = {
    "superres": (3, 1, 224, 224),
    "superres_hw": (2, 1, 40, 56),
    "mlp": (7, 20),
    "mlp_softmax": (1, 1, 4, 5),
}
EXPORT_KEYS = [(name, exporter) for name in CASES for exporter in EXPORTERS]


@pytest.fixture(scope="module")
def exports():
    """(case name, exporter) -> (torch model, ExportedModel); models start in train mode."""
    results = {}
    for name, exporter in EXPORT_KEYS:
        case = CASES[name]
        torch.manual_seed(0)
        model = case.build().train()
        sample = torch.from_numpy(report_ops.make_sample(case))
        exported = to_onnx(model, sample, dynamic_axes=case.dynamic_axes, exporter=exporter)
        results[name, exporter] = (model, exported)
    return results


def _session(exported):
    return ort.InferenceSession(
        exported.onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize(("name", "exporter"), EXPORT_KEYS)
def test_torch_export_matches_framework(exports, name, exporter):
    _, exported = exports[name, exporter]
    session = _session(exported)
    samples = [
        exported.sample_inputs[0],
        np.random.default_rng(5).standard_normal(OTHER_SHAPES[name], dtype=np.float32),
    ]
    for x in samples:
        (got,) = session.run(None, {exported.input_names[0]: x})
        (want,) = exported.run_framework([x])
        assert got.shape == want.shape
        assert got.shape[0] == x.shape[0]
        np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize(("name", "exporter"), EXPORT_KEYS)
def test_torch_export_graph(exports, name, exporter):
    _, exported = exports[name, exporter]
    onnx_model = exported.onnx_model
    graph = onnx_model.graph
    input_name, input_dims = EXPECTED_INPUTS[name]

    # names and symbolic dims as requested, in the graph and the ExportedModel alike
    assert exported.framework == "torch"
    assert exported.input_names == [v.name for v in graph.input] == [input_name]
    assert exported.output_names == [v.name for v in graph.output] == ["output"]
    assert _dims(graph.input[0]) == input_dims
    dynamic = {axis: d for axis, d in enumerate(input_dims) if isinstance(d, str)}
    assert exported.dynamic_axes == {input_name: dynamic}
    assert _dims(graph.output[0])[0] == "batch"

    # ops, opset, domains, weights inline
    assert (
        dict(collections.Counter(n.op_type for n in graph.node))
        == (EXPECTED_OPS[name, exporter])
    )
    assert exported.opset == (20 if exporter == "dynamo" else 17)
    assert {n.domain for n in graph.node} == {""}
    assert [o.domain for o in onnx_model.opset_import] == [""]
    assert len(onnx_model.functions) == 0
    assert graph.initializer and all(
        t.data_location == onnx.TensorProto.DEFAULT for t in graph.initializer
    )
    onnx.checker.check_model(onnx_model, full_check=True)

    sample = exported.sample_inputs
    assert len(sample) == 1 and sample[0].dtype == np.float32
    assert sample[0].shape == CASES[name].sample_shape


@pytest.mark.parametrize(("name", "exporter"), EXPORT_KEYS)
def test_torch_export_restores_training_mode(exports, name, exporter):
    model, exported = exports[name, exporter]
    assert model.training
    exported.run_framework(exported.sample_inputs)
    assert model.training


def test_torch_detect():
    assert is_torch_module(torch.nn.Linear(2, 2))
    assert is_torch_module(torch.jit.script(torch.nn.Linear(2, 2)))
    assert not is_torch_module(torch.ones(2))
    assert not is_torch_module("model.pt")
    assert find_adapter(torch.nn.ReLU()).name == "torch"


class _TwoInOut(torch.nn.Module):
    """Two inputs (one unused), a dict output that includes an input unchanged."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, x, unused):
        return {"fc": self.fc(x), "same": x}


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_torch_export_names_unused_input_and_dict_output(exporter):
    torch.manual_seed(0)
    model = _TwoInOut()
    x = np.random.default_rng(0).standard_normal((2, 3), dtype=np.float32)
    exported = to_onnx(
        model,
        {"unused": x, "x": x},  # by forward() parameter name, any order
        exporter=exporter,
        output_names=["fc", "same"],
        dynamic_axes={"x": {0: "n"}},
    )
    graph = exported.onnx_model.graph
    assert exported.input_names == [v.name for v in graph.input] == ["x", "unused"]
    assert exported.output_names == [v.name for v in graph.output] == ["fc", "same"]
    assert _dims(graph.input[0]) == ["n", 3]
    assert _dims(graph.input[1]) == [2, 3]

    x5 = np.random.default_rng(1).standard_normal((5, 3), dtype=np.float32)
    feeds = [x5, x]
    got = _session(exported).run(None, dict(zip(exported.input_names, feeds, strict=True)))
    want = exported.run_framework(feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(got[1], x5)


def test_torch_export_static():
    model = report_ops.make_mlp()
    exported = to_onnx(
        model, np.zeros((4, 20), np.float32), exporter="legacy", dynamic_axes=False
    )
    assert _dims(exported.onnx_model.graph.input[0]) == [4, 20]
    assert exported.dynamic_axes == {}


def test_torch_export_specialised_axis_is_error():
    class AddsFixed(torch.nn.Module):
        def forward(self, x):
            return x + torch.ones(3, 3)  # pins x.shape[0] to 3

    with pytest.raises(ConvertError) as info:
        to_onnx(AddsFixed(), np.zeros((3, 3), np.float32))
    assert str(info.value).startswith(
        "torch exporter (dynamo): axis 0 ('batch') of input 'x' was requested dynamic but "
        "came out static (3): AddsFixed specialises it"
    )


def test_torch_export_failure_names_exporter_model_and_hint():
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    with pytest.raises(ConvertError) as info:
        to_onnx(scripted, np.zeros((1, 2), np.float32), exporter="dynamo")
    message = str(info.value)
    assert message.startswith("torch exporter (dynamo) failed on RecursiveScriptModule: ")
    assert "Exporting a ScriptModule is not supported" in message
    assert "Hint: try exporter='legacy'" in message
    assert info.value.__cause__ is not None


def test_torch_export_script_module_defaults_to_legacy():
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU()))
    x = np.ones((4, 2), np.float32)
    exported = to_onnx(scripted, x)
    assert exported.opset == 17
    assert exported.input_names == ["input"]
    (got,) = _session(exported).run(None, {"input": x[:2]})
    np.testing.assert_allclose(got, exported.run_framework([x[:2]])[0], rtol=0, atol=ATOL)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"exporter": "onnxscript"}, ConvertError, "unknown exporter 'onnxscript'"),
        ({"input_names": ["a", "b"]}, ConvertError, "input_names must be 1 distinct names"),
        ({"output_names": "y"}, TypeError, "expected output_names as a list of non-empty str"),
        (
            {"exporterr": "legacy"},
            ConvertError,
            "torch: unknown option 'exporterr' (did you mean 'exporter'?); the torch adapter "
            "takes exporter, input_names, output_names, optimize",
        ),
    ],
)
def test_torch_export_bad_options(kwargs, error, message):
    with pytest.raises(error) as info:
        to_onnx(torch.nn.ReLU(), np.zeros((1, 2), np.float32), **kwargs)
    assert message in str(info.value)


def test_torch_export_model_failing_on_sample():
    with pytest.raises(ConvertError) as info:
        to_onnx(torch.nn.Linear(3, 2), np.zeros((1, 4), np.float32))
    message = str(info.value)
    assert message.startswith(
        "torch: running Linear on the sample inputs (float32(1, 4)) failed: RuntimeError:"
    )


def test_torch_export_wrong_sample_count():
    with pytest.raises(
        ConvertError, match=r"Linear.forward\(input\) takes 1..1 inputs, got 2"
    ):
        to_onnx(torch.nn.Linear(3, 2), (np.zeros((1, 3)), np.zeros((1, 3))))


# what a new user runs into


@pytest.mark.parametrize("framework", ["sklearn", "tensorflow", "onnx"])
def test_torch_model_with_another_framework_named_is_convert_error(framework, tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    x = np.ones((1, 4), np.float32)
    with pytest.raises(ConvertError) as info:
        export_wasm(model, x, tmp_path / "z.wasm", framework=framework)
    assert str(info.value) == (
        f"framework {framework!r} cannot export a torch.nn.Module (Sequential); use "
        "framework='torch' or leave framework unset to detect it"
    )
    assert not (tmp_path / "z.wasm").exists()


def test_torch_cli_wrong_framework_is_one_line_exit_3(tmp_path):
    (tmp_path / "net.py").write_text(
        "import torch\n\nmodel = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))\n"
    )
    np.save(tmp_path / "img.npy", np.zeros((1, 1, 8, 8), np.float32))
    result = CliRunner().invoke(
        cli,
        ["export", f"{tmp_path / 'net.py'}:model", "--sample", str(tmp_path / "img.npy"),
         "--framework", "sklearn", "-o", str(tmp_path / "net.wasm")],
    )  # fmt: skip
    assert result.exit_code == 3
    assert result.stderr == (
        "error: framework 'sklearn' cannot export a torch.nn.Module (Sequential); use "
        "framework='torch' or leave framework unset to detect it\n"
    )


def test_torch_float64_sample_for_float32_model_says_to_cast():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU())
    with pytest.raises(ConvertError) as info:
        to_onnx(model, np.zeros((1, 1, 32, 32)))  # numpy's default dtype: float64
    message = str(info.value)
    assert message.startswith(
        "torch: running Sequential on the sample inputs (float64(1, 1, 32, 32)) failed: "
        "RuntimeError: "
    )
    assert message.endswith(
        "; the sample is float64 while the model's parameters are float32: pass a float32 "
        "sample (x.astype(np.float32))"
    )


def test_torch_failure_of_a_float64_model_has_no_dtype_hint():
    with pytest.raises(ConvertError) as info:
        to_onnx(torch.nn.Linear(3, 2).double(), np.zeros((1, 4)))  # wrong width, not dtype
    assert "the sample is float64" not in str(info.value)


def test_torch_double_model_refused_with_a_float_hint(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU()).double()
    with pytest.raises(UnsupportedOpError) as info:
        export_wasm(model, np.zeros((1, 1, 8, 8)), tmp_path / "d.wasm", exporter="legacy")
    message = str(info.value)
    assert "(Conv, opset 17): input dtype DOUBLE is not supported" in message
    assert message.endswith(
        "The torch model computes in float64: convert the model with model.float() and "
        "pass a float32 sample"
    )
    assert (info.value.op_type, info.value.opset, info.value.dtype) == ("Conv", 17, "DOUBLE")
    assert isinstance(info.value.__cause__, UnsupportedOpError)


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_torch_export_in_eval_mode_restores_each_submodule(exporter):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.5),
        torch.nn.Linear(4, 2),
    ).train()  # fmt: skip
    model[1].eval()  # a BatchNorm the user froze while training the rest
    x = np.random.default_rng(3).standard_normal((8, 4), dtype=np.float32)
    exported = to_onnx(model, x, exporter=exporter)
    assert model.training and [m.training for m in model] == [True, False, True, True]
    exported.run_framework([x])
    assert model.training and [m.training for m in model] == [True, False, True, True]

    (got,) = _session(exported).run(None, {exported.input_names[0]: x})
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()  # no dropout, running statistics
    np.testing.assert_allclose(got, want, rtol=0, atol=ATOL)
