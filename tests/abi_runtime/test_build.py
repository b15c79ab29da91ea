"""The committed runtimes are exactly what their C sources build to."""

from __future__ import annotations

import importlib.util
import json

import pytest

from wasmexport.abi_runtime import build


@pytest.mark.skipif(
    importlib.util.find_spec("ziglang") is None,
    reason="the Zig toolchain is not installed (pip install 'wasmexport[build]')",
)
def test_build_reproduces_committed_runtimes(tmp_path):
    first = build.compile_runtime(tmp_path / "a.wasm")
    objects = tmp_path / "objects"
    objects.mkdir()
    second = build.compile_runtime(tmp_path / "b.wasm", object_dir=objects)
    assert first == second, "two builds of the same sources differ"
    for name, variant in build.VARIANTS.items():
        # variants with the same flags reuse the objects: the op subsets relink only
        data = second if name == "runtime.wasm" else build.compile_runtime(
            tmp_path / name, variant, object_dir=objects
        )  # fmt: skip
        assert data == (build.HERE / name).read_bytes(), (
            f"{name} is stale: run `python -m wasmexport.abi_runtime.build` and commit it"
        )


def test_build_op_list_matches_op_table():
    committed = json.loads(build.RUNTIME_OPS.read_text())
    assert committed["ops"] == build.supported_ops()
    assert committed["subsets"] == {k: sorted(v) for k, v in build.OP_SUBSETS.items()}
    names = [op["op_type"] for op in committed["ops"]]
    assert len(names) == len(set(names))
    assert {"Conv", "Gemm", "MatMul", "DepthToSpace", "Relu", "Softmax"} <= set(names)


def test_build_op_subset_header_keeps_only_its_ops():
    header = build.op_subset_header(frozenset({"Conv", "Relu"}))
    assert "#define KEEP_Conv(fn) fn\n" in header
    assert "#define KEEP_Relu(fn) fn\n" in header
    assert "#define KEEP_Gemm(fn) NULL\n" in header
    assert "#define KEEP_ZipMap(fn) NULL\n" in header  # other domains are left out
    with pytest.raises(RuntimeError, match="NoSuchOp"):
        build.op_subset_header(frozenset({"NoSuchOp"}))


def test_build_every_runtime_is_tracked_by_git():
    """A runtime the packager can pick must reach a clone: none may be git-ignored."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (build.HERE.parent / ".git").exists():
        pytest.skip("not a git checkout")
    for name in build.VARIANTS:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(build.HERE / name)],
                                 cwd=build.HERE, capture_output=True)  # fmt: skip
        assert ignored.returncode == 1, f"{name} is ignored by .gitignore: a clone lacks it"
