"""The Node host (abi_runtime/hosts/node) against the Python host and onnxruntime.

Same module, same inputs: Node's answers must be byte-identical to the Python host's.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

NODE = shutil.which("node")
HOST_DIR = Path(__file__).resolve().parents[2] / "abi_runtime" / "hosts" / "node"
HOST = HOST_DIR / "wasmexport.mjs"
CLI = HOST_DIR / "run.mjs"


def _node_major() -> int:
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().lstrip("v").split(".")[0])


pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH (the Node host needs >= 20)"),
    pytest.mark.skipif(
        NODE is not None and _node_major() < 20,
        reason="the Node host needs Node >= 20 (node:wasi preview1)",
    ),
]

# Reads a job {model, start, requests, runs} on stdin, answers {metadata, requests, runs,
# closed} on stdout: every request through m.request, every float32 tensor through m.run.
DRIVER = """
import { readFileSync } from "node:fs";
const { load } = await import(process.argv.at(-1));
const job = JSON.parse(readFileSync(0, "utf8"));
const m = await load(job.model, { start: job.start });
const requests = job.requests.map((text) => m.request(text));
const runs = job.runs.map(({ b64, shape }) => {
  const bytes = Buffer.from(b64, "base64");
  const data = new Float32Array(bytes.length / 4);
  new Uint8Array(data.buffer).set(bytes);
  try {
    const y = m.run({ data, shape });
    const b = Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength);
    const type = y.data.constructor.name;
    return { b64: b.toString("base64"), shape: y.shape, dtype: y.dtype, type };
  } catch (e) {
    return { error: e.message, name: e.name, rc: e.rc };
  }
});
const metadata = m.metadata;
m.close();
let closed = false;
try { m.request("{}"); } catch { closed = true; }
process.stdout.write(JSON.stringify({ metadata, requests, runs, closed }));
"""


def _mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    w1 = rng.standard_normal((4, 16)).astype(np.float32)
    b1 = rng.standard_normal(16).astype(np.float32)
    w2 = rng.standard_normal((16, 3)).astype(np.float32)
    b2 = rng.standard_normal(3).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("Gemm", ["r", "w2", "b2"], ["z"]),
            helper.make_node("Softmax", ["z"], ["y"], axis=1),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [
            numpy_helper.from_array(a, n)
            for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


RNG = np.random.default_rng(0)
X1 = RNG.standard_normal((1, 4)).astype(np.float32)
X5 = (RNG.standard_normal((5, 4)) * 3).astype(np.float32)


def _raw_request(x: np.ndarray) -> str:
    return json.dumps(
        {
            "input": base64.b64encode(x.tobytes()).decode(),
            "type": "raw",
            "shape": list(x.shape),
            "output_type": "raw",
        }
    )


REQUESTS = {
    "json1": json.dumps({"input": X1.tolist()}),
    "json5": json.dumps({"input": X5.tolist()}),
    "malformed": '{"input": [[1, 2',
    "json5_again": json.dumps({"input": X5.tolist()}),
    "wrong_shape": '{"input": [[1, 2, 3]]}',
    "raw5": _raw_request(X5),
    "utf8": '{"input": [[1, 2, 3, 4]], "note": "h\u00e9llo \u2603"}',
}
RUNS = {"x1": X1, "x5": X5, "bad": X5.reshape(4, 5)}


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    from wasmexport.packager import package

    model = _mlp()
    path = tmp_path_factory.mktemp("node_mlp") / "mlp.wasm"
    path.write_bytes(package(model).wasm)
    return model, path


@pytest.fixture(scope="module")
def python_side(mlp):
    """The Python host's answers to the same requests and runs."""
    from wasmexport import load

    with load(mlp[1]) as m:
        requests = {k: m.request(text) for k, text in REQUESTS.items()}
        runs = {k: m.run(x) for k, x in RUNS.items() if k != "bad"}
        metadata = m.metadata
    return requests, runs, metadata


def _node_job(path: Path, start: bool) -> dict:
    job = {
        "model": str(path),
        "start": start,
        "requests": list(REQUESTS.values()),
        "runs": [
            {"b64": base64.b64encode(x.tobytes()).decode(), "shape": list(x.shape)}
            for x in RUNS.values()
        ],
    }
    proc = subprocess.run(
        [NODE, "--no-warnings", "--input-type=module", "-e", DRIVER, "--", HOST.as_uri()],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    out["requests"] = dict(
        zip(REQUESTS, ((r["rc"], r["text"]) for r in out["requests"]), strict=True)
    )
    out["runs"] = dict(zip(RUNS, out["runs"], strict=True))
    return out


@pytest.fixture(scope="module")
def node_side(mlp):
    return _node_job(mlp[1], start=True)


@pytest.fixture(scope="module")
def node_side_no_start(mlp):
    return _node_job(mlp[1], start=False)


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _decode(run: dict) -> np.ndarray:
    data = base64.b64decode(run["b64"])
    return np.frombuffer(data, dtype=run["dtype"]).reshape(run["shape"])


@pytest.mark.parametrize("key,x", [("json1", X1), ("json5", X5)])
def test_json_response_is_the_python_hosts(mlp, python_side, node_side, key, x):
    rc, text = node_side["requests"][key]
    assert (rc, text) == python_side[0][key]
    assert rc == 0
    got = np.asarray(json.loads(text)["output"], dtype=np.float32)
    np.testing.assert_allclose(got, _ort(mlp[0], x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("key,x", [("x1", X1), ("x5", X5)])
def test_run_raw_is_bit_exact_with_python_host(mlp, python_side, node_side, key, x):
    run = node_side["runs"][key]
    assert run["type"] == "Float32Array" and run["dtype"] == "float32"
    got, want = _decode(run), python_side[1][key]
    assert got.shape == want.shape == (x.shape[0], 3)
    assert got.tobytes() == want.tobytes()
    np.testing.assert_allclose(got, _ort(mlp[0], x), rtol=0, atol=1e-5)


def test_raw_request_text_is_the_python_hosts(python_side, node_side):
    rc, text = node_side["requests"]["raw5"]
    assert (rc, text) == python_side[0]["raw5"]
    response = json.loads(text)
    assert response["type"] == "raw" and response["dtype"] == "float32"
    assert response["shape"] == [5, 3]


def test_non_ascii_request_is_encoded_as_utf8(python_side, node_side):
    assert node_side["requests"]["utf8"] == python_side[0]["utf8"]
    assert node_side["requests"]["utf8"][0] == 0


@pytest.mark.parametrize("key", ["malformed", "wrong_shape"])
def test_bad_request_gives_rc1_and_an_error_object(python_side, node_side, key):
    rc, text = node_side["requests"][key]
    assert rc == 1
    response = json.loads(text)
    assert list(response) == ["error"]
    assert isinstance(response["error"], str) and response["error"]
    assert (rc, text) == python_side[0][key]


def test_good_request_after_an_error_still_works(python_side, node_side):
    assert node_side["requests"]["json5_again"] == python_side[0]["json5"]
    assert node_side["requests"]["json5_again"][0] == 0


def test_run_error_raises_wasmexport_error(node_side):
    err = node_side["runs"]["bad"]
    assert err["name"] == "WasmExportError" and err["rc"] == 1
    assert err["error"]


def test_host_that_never_calls_start(node_side, node_side_no_start):
    assert node_side_no_start["requests"] == node_side["requests"]
    assert node_side_no_start["runs"] == node_side["runs"]


def test_metadata_and_close(python_side, node_side):
    meta = node_side["metadata"]
    want = python_side[2]
    for got, spec in zip(
        meta["inputs"] + meta["outputs"], want.inputs + want.outputs, strict=True
    ):
        assert (got["name"], got["dtype"], tuple(got["shape"])) == (
            spec.name,
            spec.dtype,
            tuple(spec.shape),
        )
    assert len(meta["inputs"]) == 1 and len(meta["outputs"]) == 1
    assert node_side["closed"]


# ---- the CLI -------------------------------------------------------------------------------


def _cli(*args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NODE, str(CLI), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def test_cli_json_file_and_stdin(mlp, python_side, tmp_path):
    request = tmp_path / "req.json"
    request.write_text(REQUESTS["json5"])
    for args, stdin in (((request,), None), (("-",), REQUESTS["json5"])):
        proc = _cli(mlp[1], *args, stdin=stdin)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == python_side[0]["json5"][1] + "\n"
        assert proc.stderr == ""  # no ExperimentalWarning either


def test_cli_error_response_exits_1(mlp, python_side):
    proc = _cli(mlp[1], "-", stdin=REQUESTS["malformed"])
    assert proc.returncode == 1
    assert proc.stdout == python_side[0]["malformed"][1] + "\n"


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("{model}", "a.json", "b.json"),
        ("{model}", "{tmp}/missing.json"),
        ("{tmp}/missing.wasm", "-"),
        ("{tmp}/req.json", "-"),
        ("{model}", "--bogus"),
        ("{model}", "--raw-in", "{tmp}/x.bin", "--shape", "1,x"),
    ],
)
def test_cli_usage_and_load_errors_exit_2(mlp, tmp_path, args):
    (tmp_path / "req.json").write_text(REQUESTS["json1"])
    (tmp_path / "x.bin").write_bytes(X1.tobytes())
    proc = _cli(*(a.format(model=mlp[1], tmp=tmp_path) for a in args), stdin="{}")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.startswith("run.mjs: ")


def test_cli_raw_in_raw_out(mlp, python_side, tmp_path):
    (tmp_path / "x.bin").write_bytes(X5.tobytes())
    out = tmp_path / "y.bin"
    proc = _cli(mlp[1], "--raw-in", tmp_path / "x.bin", "--shape", "5,4", "--raw-out", out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary == {"output": str(out), "type": "raw", "shape": [5, 3], "dtype": "float32"}
    assert out.read_bytes() == python_side[1]["x5"].tobytes()


def test_cli_raw_out_of_a_json_request(mlp, python_side, tmp_path):
    out = tmp_path / "y.bin"
    proc = _cli(mlp[1], "-", "--raw-out", out, stdin=REQUESTS["json1"])
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == python_side[1]["x1"].tobytes()


# ---- the flagship: super-resolution through both hosts -------------------------------------


def _super_resolution_net():
    from torch_models import SuperResolutionNet

    return SuperResolutionNet().eval()


def test_super_resolution_node_equals_python_host(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from wasmexport import export_wasm, load

    tmp = tmp_path_factory.mktemp("node_superres")
    torch.manual_seed(0)
    net = _super_resolution_net()
    x = np.random.default_rng(0).random((1, 1, 224, 224), dtype=np.float32)
    result = export_wasm(net, torch.from_numpy(x), tmp / "sr.wasm", exporter="legacy")

    with load(result.path) as m:
        want = m.run(x)
    assert want.shape == (1, 1, 672, 672) and want.dtype == np.float32

    (tmp / "x.bin").write_bytes(x.astype("<f4").tobytes())
    proc = _cli(
        result.path,
        "--raw-in",
        tmp / "x.bin",
        "--shape",
        "1,1,224,224",
        "--raw-out",
        tmp / "y.bin",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["shape"] == [1, 1, 672, 672] and summary["dtype"] == "float32"
    got = np.fromfile(tmp / "y.bin", dtype="<f4").reshape(summary["shape"])
    assert np.array_equal(got, want)


def test_run_returns_maps_of_a_sklearn_classifier_as_the_python_host(tmp_path):
    """A default scikit-learn classifier ends in ZipMap: labels (int64) and a sequence of
    maps; Node's run() gives the labels as a typed array and the maps as JSON values."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from wasmexport import export_wasm, load

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    export_wasm(clf, x[:4], tmp_path / "clf.wasm")
    with load(tmp_path / "clf.wasm") as m:
        labels, probabilities = m.run(x[:4])
    script = (
        f'const {{ load }} = await import({json.dumps(str(HOST))});\n'
        f'const m = await load({json.dumps(str(tmp_path / "clf.wasm"))});\n'
        f"const x = new Float32Array({json.dumps(x[:4].ravel().tolist())});\n"
        "const [labels, probs] = m.run({ data: x, shape: [4, 4] });\n"
        "process.stdout.write(JSON.stringify({ labels: Array.from(labels.data, Number),\n"
        "  type: labels.data.constructor.name, probs: probs.data, dtype: probs.dtype }));\n"
    )
    out = subprocess.run([NODE, "--no-warnings", "--input-type=module", "-e", script],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["labels"] == labels.tolist() == clf.predict(x[:4]).tolist()
    assert got["type"] == "BigInt64Array" and got["dtype"] == "seq(map(int64,float32))"
    # the response's shortest float32 text reads back to the Python host's float32 values
    as_f32 = [{int(k): np.float32(v) for k, v in row.items()} for row in got["probs"]]
    assert as_f32 == [{k: np.float32(v) for k, v in row.items()} for row in probabilities]
