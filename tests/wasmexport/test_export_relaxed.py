"""export_wasm(..., simd="relaxed"): the relaxed-SIMD runtime, verified against torch."""

from __future__ import annotations

import numpy as np
import torch

from wasmexport import export_wasm, load
from wasmexport.packager.runtime_info import runtime_bytes


def test_export_relaxed_simd_matches_torch(tmp_path):
    torch.manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Linear(16 * 6 * 6, 10),
    ).eval()  # fmt: skip
    x = torch.randn(2, 3, 6, 6)
    result = export_wasm(model, x, tmp_path / "m.wasm", exporter="legacy", simd="relaxed")
    assert result.report.passed
    # f32x4.relaxed_madd (0xfd 0x105) is in the relaxed runtime and the module only
    madd = b"\xfd\x85\x02"
    assert madd in result.path.read_bytes() and madd not in runtime_bytes("plain")
    with load(result.path) as module, torch.no_grad():
        np.testing.assert_allclose(module.run(x.numpy()), model(x).numpy(), rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
