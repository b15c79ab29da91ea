"""The browser host (abi_runtime/hosts/browser) in headless Chromium, against the Python host.

A small MLP is packaged, the page and the module are served from 127.0.0.1, and
playwright-core drives Chromium through drive.mjs. Every response text must be
byte-identical to the Python host's, and raw outputs bit-exact.

Needs: Debian's chromium (`apt-get install -y chromium`), node, and
`npm ci --prefix abi_runtime/hosts/browser` (playwright-core); skipped otherwise.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import helper, numpy_helper

HOST_DIR = Path(__file__).resolve().parents[2] / "abi_runtime" / "hosts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")
PAGE_FILES = ("index.html", "wasmexport.js", "abi_model.mjs", "wasi.js")

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} "
                       "(apt-get install -y chromium, or set CHROMIUM)"),
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(not (HOST_DIR / "node_modules" / "playwright-core").is_dir(),
                       reason="playwright-core is not installed "
                       "(npm ci --prefix abi_runtime/hosts/browser)"),
]  # fmt: skip

RNG = np.random.default_rng(21)
X1 = RNG.standard_normal((1, 4)).astype(np.float32)
X6 = (RNG.standard_normal((6, 4)) * 3).astype(np.float32)


def mlp_model() -> onnx.ModelProto:
    w1 = RNG.standard_normal((4, 16)).astype(np.float32)
    b1 = RNG.standard_normal(16).astype(np.float32)
    w2 = RNG.standard_normal((16, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("MatMul", ["r", "w2"], ["z"]),
        helper.make_node("Softmax", ["z"], ["y"], axis=1),
    ]
    return make_model(nodes, [("x", FLOAT, ["batch", 4])], [("y", FLOAT, ["batch", 3])],
                      {"w1": w1, "b1": b1, "w2": w2})  # fmt: skip


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


REQUESTS = [
    json.dumps({"input": X1.tolist()}),
    json.dumps({"input": X6.tolist(), "output_type": "raw"}),
    json.dumps({"input": b64(X6.tobytes()), "type": "raw", "shape": [6, 4]}),
    json.dumps({"input": b64(numpy_helper.from_array(X6).SerializeToString())}),
    json.dumps({"input": {"x": X1.tolist()}, "output_type": "pb"}),
    '{"input": [[1, 2, 3]]}',
    '{"input": [[1, 2',
    '{"input": [["NaN", "Infinity", 0, 1]], "note": "h\u00e9llo \u2603"}',
]
RUNS = [X1, X6, X6.reshape(4, 6)]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".js": "text/javascript",
                      ".mjs": "text/javascript"}  # fmt: skip

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The page, the library and the packaged model on http://127.0.0.1:<port>/."""
    from wasmexport.packager import package

    root = tmp_path_factory.mktemp("browser_host")
    for name in PAGE_FILES:
        shutil.copy(HOST_DIR / name, root / name)
    model = mlp_model()
    (root / "mlp.wasm").write_bytes(package(model).wasm)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield model, root / "mlp.wasm", f"http://127.0.0.1:{server.server_port}/index.html"
    server.shutdown()
    server.server_close()


def browser_job(url: str, start: bool, page_request: str | None) -> dict:
    job = {
        "model": "mlp.wasm",
        "start": start,
        "requests": REQUESTS,
        "runs": [{"b64": b64(x.tobytes()), "shape": list(x.shape)} for x in RUNS],
        "page_request": page_request,
    }
    proc = subprocess.run(
        [NODE, str(HOST_DIR / "drive.mjs"), url],
        input=json.dumps(job), capture_output=True, text=True, timeout=120, cwd=HOST_DIR,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def python_side(served):
    from wasmexport import load

    with load(served[1]) as m:
        requests = [m.request(text) for text in REQUESTS]
        runs = [m.run(x) for x in RUNS[:2]]
        metadata = m.metadata
    return requests, runs, metadata


@pytest.mark.parametrize("start", [True, False], ids=["start", "no_start"])
def test_browser_host_matches_python_host(served, python_side, start):
    model, _, url = served
    py_requests, py_runs, py_metadata = python_side
    out = browser_job(url, start, REQUESTS[0] if start else None)
    assert out["console"] == []

    # the ABI: identical bytes for every request, errors included
    assert [(r["rc"], r["text"]) for r in out["requests"]] == py_requests
    assert [rc for rc, _ in py_requests] == [0, 0, 0, 0, 0, 1, 1, 0]
    assert out["metadata"]["inputs"][0]["name"] == py_metadata.inputs[0].name == "x"

    # run(): raw tensors, bit-exact with the Python host, close to onnxruntime
    for run, py, x in zip(out["runs"][:2], py_runs, RUNS[:2], strict=True):
        assert run["type"] == "Float32Array" and run["dtype"] == "float32"
        y = np.frombuffer(base64.b64decode(run["b64"]), np.float32).reshape(run["shape"])
        assert y.tobytes() == py.tobytes()
        np.testing.assert_allclose(y, onnxruntime_run(model, [x])[0], rtol=1e-5, atol=1e-6)
    bad = out["runs"][2]
    assert bad["name"] == "WasmExportError" and bad["rc"] == 1
    assert "expects shape (batch, 4), got (4, 6)" in bad["error"]

    # the page itself, used as a person would
    if start:
        assert out["page"]["status"] == "loaded mlp.wasm"
        assert out["page"]["response"] == py_requests[0][1]
