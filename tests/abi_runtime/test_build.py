"""The committed runtime.wasm is exactly what its C sources build to."""

from __future__ import annotations

import importlib.util

import pytest

from wasmexport.abi_runtime import build


@pytest.mark.skipif(
    importlib.util.find_spec("ziglang") is None,
    reason="the Zig toolchain is not installed (pip install 'wasmexport[build]')",
)
def test_build_reproduces_committed_runtime(tmp_path):
    first = build.compile_runtime(tmp_path / "a.wasm")
    second = build.compile_runtime(tmp_path / "b.wasm")
    assert first == second, "two builds of the same sources differ"
    assert first == build.RUNTIME_WASM.read_bytes(), (
        "runtime.wasm is stale: run `python -m wasmexport.abi_runtime.build` and commit it"
    )
    relaxed = build.compile_runtime(
        tmp_path / "r.wasm", build.VARIANTS["runtime_relaxed.wasm"]
    )
    assert relaxed == (build.HERE / "runtime_relaxed.wasm").read_bytes(), (
        "runtime_relaxed.wasm is stale: run `python -m wasmexport.abi_runtime.build`"
    )


def test_build_op_list_matches_op_table():
    import json

    committed = json.loads(build.RUNTIME_OPS.read_text())["ops"]
    assert committed == build.supported_ops()
    names = [op["op_type"] for op in committed]
    assert len(names) == len(set(names))
    assert {"Conv", "Gemm", "MatMul", "DepthToSpace", "Relu", "Softmax"} <= set(names)
