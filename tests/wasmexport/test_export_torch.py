"""export_wasm on torch models, end to end: framework -> ONNX -> wasm -> verified."""

from __future__ import annotations

import numpy as np
import pytest
import wasmtime

torch = pytest.importorskip("torch")
nn = torch.nn

from model_helpers import onnxruntime_run  # noqa: E402
from torch_models import SuperResolutionNet  # noqa: E402

from wasmexport import ConvertError, VerifyError, export_wasm, load, verify  # noqa: E402


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.Tanh(),
            nn.Linear(32, 16), nn.Sigmoid(), nn.Linear(16, 10), nn.Softmax(dim=-1),
        )  # fmt: skip

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def sr_model():
    torch.manual_seed(0)
    return SuperResolutionNet().eval()


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_export_super_resolution_matches_onnxruntime(sr_model, exporter, tmp_path):
    x = torch.rand(1, 1, 224, 224, generator=torch.Generator().manual_seed(1))
    result = export_wasm(sr_model, x, tmp_path / "sr.wasm", exporter=exporter)

    # verified on the way out, at batch 1 and a second batch size
    assert result.report is not None and result.report.passed
    batches = {c.batch for c in result.report.comparisons}
    assert batches == {1, 2}
    pairs = {(c.reference, c.candidate) for c in result.report.comparisons}
    assert pairs == {("framework", "onnxruntime"), ("onnxruntime", "wasm")}

    # the file is a valid module and computes what onnxruntime computes
    wasmtime.Module.validate(wasmtime.Engine(), result.path.read_bytes())
    with load(result.path) as module:
        assert [s.shape for s in module.inputs] == [("batch", 1, 224, 224)]
        y = module.run(x.numpy())
    expected = onnxruntime_run(result.onnx_model, [x.numpy()])[0]
    assert y.shape == (1, 1, 672, 672)
    assert np.abs(y - expected).max() <= 1e-4
    with torch.no_grad():
        np.testing.assert_allclose(y, sr_model(x).numpy(), atol=1e-4)


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_export_mlp_matches_torch(exporter, tmp_path):
    torch.manual_seed(1)
    model = MLP().eval()
    x = torch.randn(4, 1, 4, 5)
    result = export_wasm(model, x, tmp_path / "mlp.wasm", exporter=exporter)
    assert result.report.passed
    with load(result.path) as module:
        for batch in (1, 4, 9):
            xb = torch.randn(batch, 1, 4, 5)
            with torch.no_grad():
                np.testing.assert_allclose(module.run(xb.numpy()), model(xb).numpy(),
                                           rtol=1e-5, atol=1e-6)  # fmt: skip


def test_export_verify_error_reports_numbers(sr_model, tmp_path):
    x = torch.rand(1, 1, 24, 24)
    good = export_wasm(sr_model, x, tmp_path / "a.wasm", exporter="legacy",
                       dynamic_axes={0: {0: "batch", 2: "h", 3: "w"}})  # fmt: skip
    torch.manual_seed(5)
    other = export_wasm(SuperResolutionNet().eval(), x, tmp_path / "b.wasm",
                        exporter="legacy", verify=False)  # fmt: skip
    assert other.report is None
    with pytest.raises(VerifyError) as info:
        verify(good.path, other.onnx_model, x.numpy())
    report = info.value.report
    assert not report.passed and report.max_abs_err > 1e-3
    text = str(info.value)
    assert "max abs err" in text and "onnxruntime vs wasm" in text and "worst at index" in text
    # the plan hashes tell that the ONNX model is another model, not a runtime fault
    assert "not the one this module was packaged from" in report.diagnosis
    assert "suspect the wasm runtime" not in text


def test_export_verify_refuses_a_sample_of_the_wrong_shape(sr_model, tmp_path):
    x = torch.rand(1, 1, 24, 24)
    good = export_wasm(sr_model, x, tmp_path / "a.wasm", exporter="legacy", verify=False)
    with pytest.raises(
        ConvertError,
        match=r"sample input 'x' has shape \(1, 2, 24, 24\); "
        r"the module takes \(batch, 1, 24, 24\)",
    ):
        verify(good.path, good.onnx_model, np.zeros((1, 2, 24, 24), np.float32))
    # a float64 sample is cast, as WasmModel.run casts it
    assert verify(good.path, good.onnx_model, np.asarray(x, np.float64)).passed
