"""examples/keras_digits.py runs end to end: Keras and the wasm module classify alike."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")
pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keras_digits.py"


def test_keras_digits_example(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("keras_digits", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    numbers = example.main(["--epochs", "2", "--out", str(tmp_path / "digits.wasm")])

    assert (tmp_path / "digits.wasm").stat().st_size > 0
    assert numbers["label_flips"] == 0
    assert numbers["wasm_accuracy"] == numbers["keras_accuracy"]
    assert numbers["keras_accuracy"] > 0.5  # 2 epochs already learn most digits
    assert numbers["max_abs_err"] <= 1e-4
    out = capsys.readouterr().out
    assert "accuracy  keras" in out and "PASSED" in out
