"""The distribution: one import package, wasmexport, with the runtime inside."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(ROOT)],
        check=True,
    )  # fmt: skip
    (path,) = out.glob("wasmexport-*.whl")
    return path


def test_packaging_wheel_has_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"wasmexport", next(t for t in tops if t.endswith(".dist-info"))}
    for required in (
        "wasmexport/exporters/torch.py",
        "wasmexport/packager/embed.py",
        "wasmexport/abi_runtime/runtime.wasm",
        "wasmexport/abi_runtime/runtime_core.wasm",
        "wasmexport/abi_runtime/runtime_ops.json",
        "wasmexport/abi_runtime/src/abi.c",
        "wasmexport/abi_runtime/hosts/node/wasmexport.mjs",
        "wasmexport/abi_runtime/hosts/browser/abi_model.mjs",
    ):
        assert required in names


def test_packaging_installed_wheel_imports_and_packages(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True,
    )  # fmt: skip
    assert not (site / "exporters").exists() and not (site / "packager").exists()
    script = "\n".join([
        "import wasmexport.abi_runtime, wasmexport.exporters, wasmexport.packager",
        "from wasmexport.packager.runtime_info import runtime_bytes",
        f"assert wasmexport.__file__.startswith({str(site)!r}), wasmexport.__file__",
        "print(len(runtime_bytes()))",
    ])  # fmt: skip
    # run outside the checkout so that only the installed copy can be found
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == (ROOT / "abi_runtime" / "runtime.wasm").stat().st_size
