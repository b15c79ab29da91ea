"""examples/sklearn_pipeline.py runs end to end: the module answers JSON like sklearn."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_pipeline.py"


def test_sklearn_pipeline_example(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("sklearn_pipeline", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    numbers = example.main(["--out", str(tmp_path / "wine.wasm"), "--rows", "1"])

    assert (tmp_path / "wine.wasm").stat().st_size > 0
    assert numbers["rows"] == 45  # a quarter of the 178 wines
    assert numbers["label_flips"] == 0
    assert numbers["max_abs_err"] <= 1e-5
    assert numbers["accuracy"] > 0.9  # a linear model separates the three cultivars
    out = capsys.readouterr().out
    assert 'request:  {"input": [[' in out and 'response: {"output":[[' in out
    assert "PASSED" in out
