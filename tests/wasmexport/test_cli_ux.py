"""The CLI's entry-point export, image I/O, bench and HTML report; progress stages."""

from __future__ import annotations

import base64
import io
import json
import re
import sys

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from wasmexport import load, progress
from wasmexport.cli import _parse_dynamic_axes, cli
from wasmexport.verifier import MAX_KEPT_ERRORS, TOP_ELEMENTS, compare_outputs


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


def image_model(shape: list, scale: float = 2.0) -> onnx.ModelProto:
    """y = x * scale, for an image-shaped float input of `shape` (batch symbolic)."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])],
        "img",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", *shape])],
        [numpy_helper.from_array(np.array(scale, np.float32), "k")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def rgb_module(tmp_path_factory):
    """An NCHW 3x8x6 image model (y = 2x) packaged through the CLI."""
    d = tmp_path_factory.mktemp("img")
    onnx.save(image_model([3, 8, 6]), d / "m.onnx")
    result = invoke("export", d / "m.onnx", "-o", d / "m.wasm")
    assert result.exit_code == 0, result.output
    return d


def save_png(path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels).save(path)


# --------------------------------------------------------------------- entry points


def test_export_entry_point_file_with_factory_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "net.py").write_text(  # a dataclass needs the file's module registered
        "from __future__ import annotations\n\nfrom dataclasses import dataclass\n\n"
        "import torch\n\n"
        "@dataclass\nclass Config:\n    width: int = 7\n\n"
        "def build():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Linear(5, Config().width), torch.nn.Tanh())\n"
    )
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke(
        "export", f"{tmp_path / 'net.py'}:build", "--sample", tmp_path / "x.npy",
        "-o", tmp_path / "net.wasm", "--exporter", "legacy", "--opset", "17",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "framework vs onnxruntime" in result.stdout and "verified" in result.stdout
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh())
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    with load(tmp_path / "net.wasm") as module:
        np.testing.assert_allclose(module.run(x), expected, rtol=1e-5, atol=1e-6)


def test_export_entry_point_importable_module_object(tmp_path, monkeypatch):
    pkg = tmp_path / "zoo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    onnx.save(image_model([2, 3, 3], scale=3.0), tmp_path / "m.onnx")
    (pkg / "models.py").write_text(
        f"import onnx\nMODEL = onnx.load({str(tmp_path / 'm.onnx')!r})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 3)).astype(np.float32)
    np.savez(tmp_path / "s.npz", x=x)
    result = invoke(
        "export", "zoo.models:MODEL", "--sample", tmp_path / "s.npz", "--framework", "onnx",
        "-o", tmp_path / "m.wasm",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with load(tmp_path / "m.wasm") as module:
        assert module.inputs[0].shape == ("n", 2, 3, 3)
        np.testing.assert_allclose(module.run(x), x * 3.0, rtol=1e-6)
    sys.modules.pop("zoo.models", None)
    sys.modules.pop("zoo", None)


def test_entry_point_errors_are_usage_errors(tmp_path):
    (tmp_path / "net.py").write_text("model = None\n\ndef needs(a):\n    return a\n")
    np.save(tmp_path / "x.npy", np.zeros((1, 2), np.float32))
    no_sample = invoke("export", f"{tmp_path / 'net.py'}:model")
    assert no_sample.exit_code == 2 and "--sample" in no_sample.output
    typo = invoke("export", f"{tmp_path / 'net.py'}:modle", "--sample", tmp_path / "x.npy")
    assert typo.exit_code == 2 and "did you mean 'model'" in typo.output
    args = invoke("export", f"{tmp_path / 'net.py'}:needs", "--sample", tmp_path / "x.npy")
    assert args.exit_code == 2 and "taking arguments (a)" in args.output
    missing = invoke("export", "no_such_module_xyz:model", "--sample", tmp_path / "x.npy")
    assert missing.exit_code == 2 and "cannot import 'no_such_module_xyz'" in missing.output
    onnx.save(image_model([1, 2, 2]), tmp_path / "m.onnx")
    onnx_opts = invoke("export", tmp_path / "m.onnx", "--opset", "13")
    assert onnx_opts.exit_code == 2 and "already ONNX" in onnx_opts.output


def test_parse_dynamic_axes():
    assert _parse_dynamic_axes(None) is None
    assert _parse_dynamic_axes("false") is False
    assert _parse_dynamic_axes('{"x": {"0": "b", "2": "h"}, "1": [0]}') == {
        "x": {0: "b", 2: "h"},
        1: [0],
    }
    for bad in ("{x", "[1]", '{"x": {"a": "b"}}'):
        with pytest.raises(Exception, match="dynamic-axes|JSON|integers|expected"):
            _parse_dynamic_axes(bad)


# -------------------------------------------------------------------------- images


def test_run_rgb_image_nchw_scaled_to_unit_range(rgb_module, tmp_path):
    pixels = np.random.default_rng(2).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    save_png(tmp_path / "in.png", pixels)
    result = invoke("run", rgb_module / "m.wasm", "--input", tmp_path / "in.png")
    assert result.exit_code == 0, result.output
    got = np.array(json.loads(result.stdout)["y"], np.float32)
    expected = 2.0 * pixels.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_run_image_scale_255_and_png_output_round_trip(rgb_module, tmp_path):
    onnx.save(image_model([3, 8, 6], scale=1.0), tmp_path / "id.onnx")
    assert invoke("export", tmp_path / "id.onnx", "-o", tmp_path / "id.wasm").exit_code == 0
    pixels = np.random.default_rng(3).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    save_png(tmp_path / "in.png", pixels)
    for scale in ("1", "255"):
        out = tmp_path / f"out{scale}.png"
        result = invoke("run", tmp_path / "id.wasm", "--input", tmp_path / "in.png",
                        "--output", out, "--image-scale", scale)  # fmt: skip
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(np.asarray(Image.open(out)), pixels)
    raw = invoke("run", rgb_module / "m.wasm", "--input", tmp_path / "in.png",
                 "--image-scale", "255")  # fmt: skip
    got = np.array(json.loads(raw.stdout)["y"], np.float32)
    np.testing.assert_allclose(got, 2.0 * pixels.transpose(2, 0, 1)[None], rtol=1e-6)


def test_run_grayscale_nhwc_image_is_resized(tmp_path):
    onnx.save(image_model([5, 4, 1]), tmp_path / "g.onnx")
    assert invoke("export", tmp_path / "g.onnx", "-o", tmp_path / "g.wasm").exit_code == 0
    color = np.random.default_rng(4).integers(0, 256, (10, 8, 3), dtype=np.uint8)
    save_png(tmp_path / "c.png", color)
    result = invoke("run", tmp_path / "g.wasm", "--input", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    gray = (
        Image.open(tmp_path / "c.png").convert("L").resize((4, 5), Image.Resampling.BILINEAR)
    )
    expected = 2.0 * np.asarray(gray, np.float32)[None, :, :, None] / 255.0
    got = np.array(json.loads(result.stdout)["y"], np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert "resizing" in result.stderr


def test_run_image_into_a_non_image_model_is_a_usage_error(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 7])],
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              tmp_path / "v.onnx")  # fmt: skip
    assert invoke("export", tmp_path / "v.onnx", "-o", tmp_path / "v.wasm").exit_code == 0
    save_png(tmp_path / "i.png", np.zeros((4, 4, 3), np.uint8))
    result = invoke("run", tmp_path / "v.wasm", "--input", tmp_path / "i.png")
    assert result.exit_code == 2 and "not an image" in result.output
    np.save(tmp_path / "x.npy", np.ones((1, 7), np.float32))
    png_out = invoke("run", tmp_path / "v.wasm", "--input", tmp_path / "x.npy",
                     "--output", tmp_path / "o.png")  # fmt: skip
    assert png_out.exit_code == 2 and "no output is an image" in png_out.output


def test_run_request_output_json_file(rgb_module, tmp_path):
    request = json.dumps({"input": np.ones((1, 3, 8, 6)).tolist()})
    out = tmp_path / "r.json"
    result = invoke("run", rgb_module / "m.wasm", "-", "--output", out, input=request)
    assert result.exit_code == 0 and result.stdout == ""
    assert np.allclose(json.loads(out.read_text())["output"], 2.0)
    npz = invoke("run", rgb_module / "m.wasm", "-", "--output", tmp_path / "r.npz",
                 input=request)  # fmt: skip
    assert npz.exit_code == 2 and "needs --input" in npz.output


# --------------------------------------------------------------------------- bench


def test_bench_json_times_every_mode(rgb_module):
    result = invoke("bench", rgb_module / "m.wasm", "--rounds", "4", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["inputs"] == {"x": [1, 3, 8, 6]}
    for key, rounds in (("load_ms", 3), ("pred_raw_ms", 4), ("pred_json_ms", 4)):
        s = stats[key]
        assert s["rounds"] == rounds and 0 < s["min"] <= s["median"] <= s["max"]
    table = invoke("bench", rgb_module / "m.wasm", "--rounds", "2")
    assert table.exit_code == 0
    assert re.search(r"pred\(\) raw\s+2\s+[\d.]+", table.stdout), table.stdout


# -------------------------------------------------------------------------- report


def test_verify_report_html_explains_a_mismatch(rgb_module, tmp_path):
    onnx.save(image_model([3, 8, 6], scale=2.001), tmp_path / "other.onnx")
    x = np.random.default_rng(5).random((1, 3, 8, 6), dtype=np.float32) + 1
    x[0, 1, 2, 3] = 50.0  # the worst element
    np.save(tmp_path / "x.npy", x)
    html = tmp_path / "r.html"
    result = invoke("verify", rgb_module / "m.wasm", tmp_path / "other.onnx",
                    "--sample", tmp_path / "x.npy", "--report", html)  # fmt: skip
    assert result.exit_code == 1
    page = html.read_text()
    assert "FAILED" in page and "suspect the wasm runtime" in page
    png = base64.b64decode(re.search(r"base64,([A-Za-z0-9+/=]+)", page).group(1))
    assert Image.open(io.BytesIO(png)).format == "PNG"
    # the first row of the first worst-elements table is the planted element
    row = r"<tr><td>\((\d+), (\d+), (\d+), (\d+)\)</td><td class='num'>([^<]+)</td>"
    first = re.search(row + r"<td class='num'>([^<]+)", page)
    assert tuple(map(int, first.groups()[:4])) == (0, 1, 2, 3)
    assert float(first.group(5)) == pytest.approx(50 * 2.001, rel=1e-6)
    assert float(first.group(6)) == pytest.approx(100.0, rel=1e-6)


def test_compare_outputs_keeps_worst_and_a_capped_sample():
    rng = np.random.default_rng(6)
    e = rng.standard_normal((MAX_KEPT_ERRORS + 7, 2))
    g = e + rng.standard_normal(e.shape) * 1e-3
    c = compare_outputs("y", e, g, reference="a", candidate="b", batch=None,
                        rtol=0.0, atol=0.0)  # fmt: skip
    assert c.errors.size <= MAX_KEPT_ERRORS
    diff = np.abs(g - e).reshape(-1)
    top = np.sort(diff)[::-1][:TOP_ELEMENTS]
    np.testing.assert_allclose([w[3] for w in c.worst], top)
    index, expected, got, _ = c.worst[0]
    assert (expected, got) == (e[index], g[index])
    assert "errors" not in repr(c)


# ------------------------------------------------------------------------ progress


def test_stage_is_silent_off_a_tty_and_shows_when_forced(capsys):
    with progress.stage("Quiet step"):
        pass
    assert capsys.readouterr().err == ""
    progress.set_enabled(True)
    try:
        with progress.stage("Loud step"):
            with progress.stage("Inner step"):  # nested: no second spinner
                pass
        assert list(progress.track(range(3), "Rounds", total=3)) == [0, 1, 2]
        with progress.disabled(), progress.stage("Disabled step"):
            pass
    finally:
        progress.set_enabled(None)
    err = capsys.readouterr().err
    assert "Loud step" in err and "Rounds" in err
    assert "Inner step" not in err and "Disabled step" not in err


def test_print_report_rich_table_on_wide_terminals_plain_otherwise(monkeypatch):
    from wasmexport.report import print_report
    from wasmexport.verifier import VerifyReport

    e = np.linspace(1, 2, 12).reshape(3, 4)
    g = e.copy()
    g[2, 1] += 0.5
    c = compare_outputs("y", e, g, reference="onnxruntime", candidate="wasm", batch=3,
                        rtol=1e-4, atol=1e-4)  # fmt: skip
    report = VerifyReport(1e-4, 1e-4, [c])
    monkeypatch.setenv("COLUMNS", "120")
    wide = io.StringIO()
    print_report(report, file=wide, rich=True)
    assert "┃ output" in wide.getvalue() and "FAILED" in wide.getvalue()
    assert f"worst at index (2, 1): expected {e[2, 1]:.9g}" in wide.getvalue()
    monkeypatch.setenv("COLUMNS", "60")
    narrow = io.StringIO()
    print_report(report, file=narrow, rich=True)
    assert narrow.getvalue() == str(report) + "\n"
    plain = io.StringIO()
    print_report(report, file=plain)  # not a terminal
    assert plain.getvalue() == str(report) + "\n"


def test_export_simd_relaxed_embeds_the_relaxed_runtime(tmp_path):
    from wasmexport.exporters.onnx import finalize_onnx_model
    from wasmexport.packager import package

    onnx.save(image_model([2, 2, 2], scale=1.5), tmp_path / "m.onnx")
    for simd in ("plain", "relaxed"):
        out = tmp_path / f"{simd}.wasm"
        result = invoke("export", tmp_path / "m.onnx", "-o", out, "--simd", simd)
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        model = finalize_onnx_model(onnx.load(tmp_path / "m.onnx"), framework="onnx")
        assert data == package(model, framework="onnx", simd=simd).wasm
        x = np.random.default_rng(7).standard_normal((2, 2, 2, 2)).astype(np.float32)
        with load(out) as module:
            np.testing.assert_allclose(module.run(x), x * 1.5, rtol=1e-6)
    assert (tmp_path / "plain.wasm").read_bytes() != (tmp_path / "relaxed.wasm").read_bytes()
