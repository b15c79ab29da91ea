"""The command line, end to end: export, run, verify and inspect a small ONNX MLP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import wasmtime
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import wasmexport
from wasmexport import PackageError
from wasmexport import cli as cli_module
from wasmexport.cli import cli, main

ABI_EXPORTS = {
    "memory",
    "_start",
    "malloc_buffer",
    "free_buffer",
    "pred",
    "get_out_loc",
    "get_out_len",
}
N_IN, N_HIDDEN, N_OUT = 4, 8, 3


def make_mlp(seed: int = 0, extra: onnx.NodeProto | None = None) -> onnx.ModelProto:
    """x (batch, 4) -> Gemm -> Relu -> Gemm -> y (batch, 3); `extra` maps y to z."""
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.standard_normal((N_IN, N_HIDDEN)),
        "b1": rng.standard_normal(N_HIDDEN),
        "w2": rng.standard_normal((N_HIDDEN, N_OUT)),
        "b2": rng.standard_normal(N_OUT),
    }
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2"),
    ]
    opsets = [helper.make_opsetid("", 17)]
    if extra is not None:
        nodes.append(extra)
        if extra.domain:
            opsets.append(helper.make_opsetid(extra.domain, 1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", N_IN])],
        [
            helper.make_tensor_value_info(
                nodes[-1].output[0], TensorProto.FLOAT, ["batch", N_OUT]
            )
        ],
        [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()],
    )
    return helper.make_model(graph, opset_imports=opsets, producer_name="test_cli")


def onnxruntime_run(path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def invoke(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """mlp.onnx, exported once through the CLI to mlp.wasm."""
    d = tmp_path_factory.mktemp("cli")
    onnx.save(make_mlp(), d / "mlp.onnx")
    result = invoke("export", d / "mlp.onnx", "-o", d / "mlp.wasm")
    assert result.exit_code == 0, result.output + result.stderr
    return d, result


# ---------------------------------------------------------------------------- export


def test_export_writes_a_valid_module_and_reports(exported):
    d, result = exported
    data = (d / "mlp.wasm").read_bytes()
    wasmtime.Module.validate(wasmtime.Engine(), data)  # raises if invalid
    exports = {e.name for e in wasmtime.Module(wasmtime.Engine(), data).exports}
    assert exports == ABI_EXPORTS

    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{d / 'mlp.wasm'}: {len(data):,} bytes, 3 nodes")
    assert "Gemm x2, Relu x1" in first and "verified" in first
    assert "PASSED" in result.stdout


def test_export_verbose_says_symbolic_dims_are_set_to_one(tmp_path):
    onnx.save(make_mlp(), tmp_path / "m.onnx")
    result = invoke("export", tmp_path / "m.onnx", "-o", tmp_path / "m.wasm", "-v")
    assert result.exit_code == 0, result.stderr
    assert "'batch' set to 1" in result.stderr
    quiet = invoke("-q", "export", tmp_path / "m.onnx", "-o", tmp_path / "m.wasm")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert len(quiet.stdout.splitlines()) == 1  # the summary line only


def test_export_with_sample_file_casts_float64(tmp_path):
    onnx.save(make_mlp(), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.ones((3, N_IN)))  # float64: cast to float32
    result = invoke("export", tmp_path / "m.onnx", "--sample", tmp_path / "x.npy")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "m.wasm").is_file()  # default output: MODEL.wasm
    assert "batch 3, 4" in result.stdout


def test_export_sample_with_wrong_names_is_a_usage_error(tmp_path):
    onnx.save(make_mlp(), tmp_path / "m.onnx")
    np.savez(tmp_path / "s.npz", xx=np.ones((2, N_IN), np.float32))
    result = invoke("export", tmp_path / "m.onnx", "--sample", tmp_path / "s.npz")
    assert result.exit_code == 2
    assert "'xx' -> 'x'" in result.stderr


@pytest.mark.parametrize(
    "node, named",
    [
        (helper.make_node("RandomNormalLike", ["y"], ["z"], name="odd_random"), "RandomNormalLike"),
        (
            helper.make_node("Frob", ["y"], ["z"], name="odd_custom", domain="com.example"),
            "com.example",
        ),
    ],
    ids=["random-normal-like", "custom-domain"],
)
def test_export_unsupported_op_exits_3_naming_the_node(tmp_path, node, named):
    onnx.save(make_mlp(extra=node), tmp_path / "odd.onnx")
    result = invoke("export", tmp_path / "odd.onnx", "-o", tmp_path / "odd.wasm")
    assert result.exit_code == 3
    assert result.stderr.startswith("error: ")
    assert f"'{node.name}'" in result.stderr and named in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "odd.wasm").exists()


def test_export_traceback_only_with_vv(tmp_path):
    node = helper.make_node("RandomNormalLike", ["y"], ["z"], name="odd")
    onnx.save(make_mlp(extra=node), tmp_path / "odd.onnx")
    result = invoke("-vv", "export", tmp_path / "odd.onnx")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr and "UnsupportedOpError" in result.stderr


def test_export_package_error_exits_4(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise PackageError("cannot serialise the plan: too big")

    monkeypatch.setattr(cli_module, "export_wasm", broken)
    onnx.save(make_mlp(), tmp_path / "m.onnx")
    result = invoke("export", tmp_path / "m.onnx")
    assert result.exit_code == 4
    assert result.stderr == "error: cannot serialise the plan: too big\n"


def test_export_not_an_onnx_file_exits_3(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\xff\xfe not protobuf")
    result = invoke("export", tmp_path / "junk.onnx")
    assert result.exit_code == 3
    assert "cannot load" in result.stderr


def test_export_no_verify(tmp_path):
    onnx.save(make_mlp(), tmp_path / "m.onnx")
    result = invoke("export", tmp_path / "m.onnx", "--no-verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith("not verified")


def test_two_inputs_by_name_through_export_run_and_verify(tmp_path):
    add = helper.make_node("Add", ["a", "b"], ["y"], name="add")
    graph = helper.make_graph(
        [add],
        "two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 2]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "two.onnx")
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    b = np.array([[10, 20]], np.float32)
    np.savez(tmp_path / "in.npz", b=b, a=a)  # by name, in any order

    exported = invoke("export", tmp_path / "two.onnx", "--sample", tmp_path / "in.npz")
    assert exported.exit_code == 0, exported.stderr
    ran = invoke("run", tmp_path / "two.wasm", "--input", tmp_path / "in.npz")
    assert ran.exit_code == 0, ran.stderr
    np.testing.assert_array_equal(json.loads(ran.stdout)["y"], a + b)
    checked = invoke(
        "verify", tmp_path / "two.wasm", tmp_path / "two.onnx", "--sample", tmp_path / "in.npz"
    )
    assert checked.exit_code == 0, checked.stderr
    one = invoke("run", tmp_path / "two.wasm", "--input", tmp_path / "in.npz", "--output")
    assert one.exit_code == 2  # --output needs a value


# ------------------------------------------------------------------------------- run


def test_run_request_file_matches_onnxruntime(exported, tmp_path):
    d, _ = exported
    x = np.random.default_rng(1).standard_normal((5, N_IN)).astype(np.float32)
    (tmp_path / "req.json").write_text(json.dumps({"input": x.tolist()}))
    result = invoke("run", d / "mlp.wasm", tmp_path / "req.json")
    assert result.exit_code == 0, result.stderr
    got = np.asarray(json.loads(result.stdout)["output"], dtype=np.float32)
    (want,) = onnxruntime_run(d / "mlp.onnx", {"x": x})
    assert got.shape == (5, N_OUT)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_run_stdin_request(exported):
    d, _ = exported
    result = invoke("run", d / "mlp.wasm", "-", input='{"input": [[1, 2, 3, 4]]}')
    assert result.exit_code == 0
    (want,) = onnxruntime_run(d / "mlp.onnx", {"x": np.array([[1, 2, 3, 4]], np.float32)})
    np.testing.assert_allclose(json.loads(result.stdout)["output"], want, rtol=1e-5)


def test_run_input_npy_prints_outputs_by_name(exported, tmp_path):
    d, _ = exported
    x = np.random.default_rng(2).standard_normal((2, N_IN)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke("run", d / "mlp.wasm", "--input", tmp_path / "x.npy")
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)
    (want,) = onnxruntime_run(d / "mlp.onnx", {"x": x})
    assert list(out) == ["y"]
    np.testing.assert_allclose(np.asarray(out["y"], np.float32), want, rtol=1e-5, atol=1e-6)


def test_run_input_npz_saves_output_npz(exported, tmp_path):
    d, _ = exported
    x = np.random.default_rng(3).standard_normal((4, N_IN)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    result = invoke(
        "run", d / "mlp.wasm", "--input", tmp_path / "in.npz", "--output", tmp_path / "out.npz"
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    with np.load(tmp_path / "out.npz") as saved:
        (want,) = onnxruntime_run(d / "mlp.onnx", {"x": x})
        np.testing.assert_allclose(saved["y"], want, rtol=1e-5, atol=1e-6)


def test_run_malformed_request_exits_1_with_error_on_stderr(exported):
    d, _ = exported
    result = invoke("run", d / "mlp.wasm", input='{"input": [[1, 2, 3, 4]]')
    assert result.exit_code == 1
    assert "error" in json.loads(result.stdout)  # the module's response, as it wrote it
    assert result.stderr.startswith("error: ") and "invalid JSON" in result.stderr


def test_run_wrong_shape_exits_1(exported):
    d, _ = exported
    result = invoke("run", d / "mlp.wasm", input='{"input": [[1, 2, 3]]}')
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the module answered with an error: ")


def test_run_request_and_input_together_is_a_usage_error(exported, tmp_path):
    d, _ = exported
    np.save(tmp_path / "x.npy", np.ones((1, N_IN), np.float32))
    (tmp_path / "r.json").write_text("{}")
    result = invoke("run", d / "mlp.wasm", tmp_path / "r.json", "--input", tmp_path / "x.npy")
    assert result.exit_code == 2


# ---------------------------------------------------------------------------- verify


def test_verify_passes_on_the_right_model(exported):
    d, _ = exported
    result = invoke("verify", d / "mlp.wasm", d / "mlp.onnx")
    assert result.exit_code == 0, result.stderr
    assert "PASSED" in result.stdout and "verified" in result.stdout.splitlines()[0]


def test_verify_fails_on_other_weights(exported, tmp_path):
    d, _ = exported
    onnx.save(make_mlp(seed=1), tmp_path / "other.onnx")  # same signature, other weights
    result = invoke("verify", d / "mlp.wasm", tmp_path / "other.onnx")
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
    assert result.stderr.startswith("error: ") and "does not match" in result.stderr


def test_verify_signature_mismatch_exits_1(exported, tmp_path):
    d, _ = exported
    node = helper.make_node("Relu", ["y"], ["z"], name="extra")
    onnx.save(make_mlp(extra=node), tmp_path / "renamed.onnx")  # output 'z', not 'y'
    result = invoke("verify", d / "mlp.wasm", tmp_path / "renamed.onnx")
    assert result.exit_code == 1
    assert "outputs (y: float32) in the module, (z: float32)" in result.stderr


# --------------------------------------------------------------------------- inspect


def test_inspect_json_matches_the_model(exported):
    d, _ = exported
    result = invoke("inspect", d / "mlp.wasm", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", N_IN]}]
    assert info["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["batch", N_OUT]}]
    assert info["ops"] == {"Gemm": 2, "Relu": 1} and info["nodes"] == 3
    assert info["opsets"] == {"ai.onnx": 17}
    assert info["framework"] == "onnx" and info["producer"] == "wasmexport"
    assert info["producer_version"] == wasmexport.__version__
    size = (d / "mlp.wasm").stat().st_size
    weights = 4 * (N_IN * N_HIDDEN + N_HIDDEN + N_HIDDEN * N_OUT + N_OUT)
    assert info["sizes"]["total"] == size
    assert weights <= info["sizes"]["plan"] < size
    assert info["sizes"]["runtime"] == size - info["sizes"]["plan"]
    assert len(info["plan_sha256"]) == 64


def test_inspect_text(exported):
    d, _ = exported
    result = invoke("inspect", d / "mlp.wasm")
    assert result.exit_code == 0
    assert "x: float32 (batch, 4)" in result.stdout
    assert "3 nodes: Gemm x2, Relu x1" in result.stdout


def test_inspect_not_a_module_exits_5(tmp_path):
    (tmp_path / "junk.wasm").write_bytes(b"not wasm at all")
    result = invoke("inspect", tmp_path / "junk.wasm")
    assert result.exit_code == 5
    assert result.stderr.startswith("error: cannot read") and "magic" in result.stderr


def test_inspect_damaged_plan_exits_5_and_load_refuses(exported, tmp_path):
    """A module whose plan bytes changed after packaging is refused, never run."""
    from wasmexport import load
    from wasmexport.errors import RuntimeABIError
    from wasmexport.packager.wasm_binary import WasmBinary

    d, _ = exported
    data = bytearray((d / "mlp.wasm").read_bytes())
    with load(bytes(data)) as module:
        plan_bytes = module.metadata.plan_bytes
    # flip one byte in the middle of the weights (the plan is the data section's tail)
    tail = WasmBinary.parse(bytes(data)).data_section_tail(plan_bytes)
    middle = bytes(data).find(tail) + plan_bytes // 2
    data[middle] ^= 0x01
    (tmp_path / "damaged.wasm").write_bytes(bytes(data))
    result = invoke("inspect", tmp_path / "damaged.wasm")
    assert result.exit_code == 5
    assert "damaged" in result.stderr and "sha256" in result.stderr
    with pytest.raises(RuntimeABIError, match="damaged"):
        load(tmp_path / "damaged.wasm")


def test_ops_lists_the_runtime_ops_and_the_core():
    from wasmexport.packager.runtime_info import supported_op_types

    result = invoke("ops", "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    listed = {(d, op) for d, ops in info["ops"].items() for op in ops}
    assert listed == {(d or "ai.onnx", op) for d, op in supported_op_types()}
    assert {"Conv", "Gemm", "Relu"} <= set(info["core"]) <= set(info["ops"]["ai.onnx"])
    assert "ZipMap" in info["ops"]["ai.onnx.ml"] and "ZipMap" not in info["core"]
    text = invoke("ops")
    assert text.exit_code == 0 and "Conv*" in text.stdout and "ZipMap\n" in text.stdout


# ----------------------------------------------------------------------- the group


@pytest.mark.parametrize(
    "typo, command",
    [("exprt", "export"), ("inspec", "inspect"), ("verfy", "verify"), ("rnu", "run")],
)
def test_mistyped_command_suggests_the_right_one(typo, command):
    result = invoke(typo)
    assert result.exit_code == 2
    assert f"Did you mean '{command}'?" in result.stderr


def test_help_documents_exit_codes_and_examples():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout and "5  the module cannot be read" in result.stdout
    for command in ("export", "run", "verify", "inspect"):
        sub = invoke(command, "-h")
        assert sub.exit_code == 0 and "Examples:" in sub.stdout


def test_missing_file_is_a_usage_error(tmp_path):
    assert invoke("inspect", tmp_path / "nope.wasm").exit_code == 2


def test_main_returns_exit_codes(tmp_path, capsys):
    assert main(["--help"]) == 0
    assert main(["inspect", str(tmp_path / "nope.wasm")]) == 2
    (tmp_path / "junk.wasm").write_bytes(b"junk")
    assert main(["inspect", str(tmp_path / "junk.wasm")]) == 5


def test_console_script_end_to_end(tmp_path):
    exe = shutil.which("wasmexport", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("console script not installed (pip install --no-deps -e .)")
    onnx.save(make_mlp(), tmp_path / "m.onnx")

    def run(*args, **kwargs) -> subprocess.CompletedProcess:
        command = [exe, *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)

    exported = run("export", tmp_path / "m.onnx", "-o", tmp_path / "m.wasm", "-q")
    assert exported.returncode == 0, exported.stderr
    answered = run("run", tmp_path / "m.wasm", input='{"input": [[1, 2, 3, 4], [0, 0, 0, 0]]}')
    assert answered.returncode == 0, answered.stderr
    x = np.array([[1, 2, 3, 4], [0, 0, 0, 0]], np.float32)
    (want,) = onnxruntime_run(tmp_path / "m.onnx", {"x": x})
    np.testing.assert_allclose(json.loads(answered.stdout)["output"], want, rtol=1e-5)


def test_run_output_npz_keeps_string_labels_readable_and_refuses_maps(tmp_path):
    """String labels are saved as unicode arrays (np.load reads them without pickle); a
    ZipMap output (a list of dicts) has no such form and is refused with a pointer to JSON."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from wasmexport import export_wasm

    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = LogisticRegression(max_iter=500).fit(x, names)
    sample = x[:5].astype(np.float32)
    np.save(tmp_path / "x.npy", sample)
    export_wasm(clf, sample, tmp_path / "plain.wasm", zipmap=False)
    ok = invoke("run", tmp_path / "plain.wasm", "--input", tmp_path / "x.npy",
                "--output", tmp_path / "out.npz")  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    with np.load(tmp_path / "out.npz") as saved:  # allow_pickle=False
        assert saved["label"].tolist() == clf.predict(sample).tolist()
    export_wasm(clf, sample, tmp_path / "zipmap.wasm")
    refused = invoke("run", tmp_path / "zipmap.wasm", "--input", tmp_path / "x.npy",
                     "--output", tmp_path / "maps.npz")  # fmt: skip
    assert refused.exit_code == 2
    assert "cannot store without pickle; write maps.json instead" in refused.stderr
