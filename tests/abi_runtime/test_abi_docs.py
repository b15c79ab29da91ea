"""docs/abi.md stays true: its worked examples and its minimal hosts run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_helpers import FLOAT, make_model
from onnx import helper

from wasmexport import load
from wasmexport.packager import package

DOC = Path(__file__).resolve().parents[2] / "docs" / "abi.md"
REQUEST = '{"input": [[1, 2, 3, 4]]}'


def blocks(language: str) -> list[str]:
    """The fenced code blocks of the page with this info string ("" for plain blocks)."""
    return re.findall(rf"^ *```{language}\n(.*?)^ *```", DOC.read_text(), flags=re.S | re.M)


@pytest.fixture(scope="module")
def doc_model(tmp_path_factory) -> Path:
    """The page's model: y = x @ w, w = [[1,0,0], [0,1,0], [0,0,1], [1,1,1]]."""
    w = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"])]
    model = make_model(
        nodes, [("x", FLOAT, ["batch", 4])], [("y", FLOAT, ["batch", 3])], {"w": w}
    )
    path = tmp_path_factory.mktemp("abi_doc") / "model.wasm"
    path.write_bytes(package(model).wasm)
    return path


def examples() -> list[tuple[str, str]]:
    """`request -> response` pairs of the plain blocks (on one line or two)."""
    text = "\n".join(blocks(""))
    pairs = re.findall(r"^ *(\{.*?\})\s*(?:\n\s*)?-> (\{.*\})$", text, flags=re.M)
    return [(req, resp) for req, resp in pairs if "<" not in req]


def test_abi_doc_worked_examples_are_the_modules_answers(doc_model):
    pairs = examples()
    assert len(pairs) >= 9
    with load(doc_model) as m:
        for request, response in pairs:
            assert m.request(request)[1] == response, request


def test_abi_doc_python_host_runs(doc_model, tmp_path):
    (code,) = [b for b in blocks("python") if b.startswith("# host.py")]
    (tmp_path / "host.py").write_text(code)
    proc = subprocess.run([sys.executable, str(tmp_path / "host.py"), str(doc_model), REQUEST],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '0 {"output":[[5,6,7]]}\n'


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")
def test_abi_doc_node_host_runs(doc_model, tmp_path):
    (code,) = [b for b in blocks("js") if b.startswith("// host.mjs")]
    (tmp_path / "host.mjs").write_text(code)
    proc = subprocess.run(["node", "--no-warnings", str(tmp_path / "host.mjs"), str(doc_model),
                           REQUEST], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '0 {"output":[[5,6,7]]}\n'
