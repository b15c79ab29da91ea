"""Build the runtime: C sources -> runtime.wasm (wasm32-wasi, SIMD128).

    python -m wasmexport.abi_runtime.build            # writes runtime.wasm beside this file
    python -m wasmexport.abi_runtime.build --check  # rebuild, compare with the committed file

Two variants come from the same sources: runtime.wasm (SIMD128, the default; runs on every
host) and runtime_relaxed.wasm (adds -mrelaxed-simd: fused multiply-add in the GEMM
micro-kernels; hosts must enable the relaxed-SIMD proposal).

Compiles with the Zig toolchain from PyPI (`pip install 'wasmexport[build]'`) so that every
machine produces the same bytes: fixed flags, relative source paths, no debug information.
Users never run this; the packaged runtime.wasm ships with the wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..packager.wasm_binary import WasmBinary

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "src"
RUNTIME_WASM = HERE / "runtime.wasm"
RUNTIME_OPS = HERE / "runtime_ops.json"
# output file -> compiler flags added to CFLAGS
VARIANTS = {
    "runtime.wasm": [],
    "runtime_relaxed.wasm": ["-mrelaxed-simd"],
}

ZIG_VERSION = "0.17.0"
STACK_BYTES = 1 << 20
# Each source compiles to an object with COMPILE_FLAGS and its optimisation level, then the
# objects link with LINK_FLAGS. The loops that carry the inference time are compiled for
# speed; everything else (parsing, loading, the ~100 less common ops) for size, so that the
# runtime stays small as ops are added: a new op file is compiled for size unless listed.
OPT_SPEED = "-O3"
OPT_SIZE = "-Oz"
SPEED_SOURCES = frozenset({"gemm.c", "ops_conv.c", "ops_elementwise.c"})
COMPILE_FLAGS = [
    "-target", "wasm32-wasi",
    "-std=c11",
    "-msimd128",
    # A reactor has no main(); the runtime exports its own _start and initialises lazily.
    "-mexec-model=reactor",
    "-Wall", "-Wextra", "-Wno-unused-parameter",
    "-fno-ident",
    # malloc, calloc, realloc and free of every source go through src/bigalloc.c
    "-include", "bigalloc.h",
]  # fmt: skip
LINK_FLAGS = [
    "-target", "wasm32-wasi",
    "-mexec-model=reactor",
    # libc and compiler-rt are built for size too (memcpy and memset are bulk-memory ops)
    OPT_SIZE,
    "-s",
    f"-Wl,-z,stack-size={STACK_BYTES}",
]  # fmt: skip
COMPILE_JOBS = 2

# The reactor start-up routine; our exports initialise on first use instead.
DROPPED_EXPORTS = ("_initialize",)
ABI_EXPORTS = (
    "memory", "_start", "malloc_buffer", "free_buffer", "pred", "get_out_loc", "get_out_len",
    "wx_blob_size", "wx_blob_read",
)  # fmt: skip


def source_files() -> list[str]:
    """The C sources, sorted, relative to src/ (fixed order keeps the output stable)."""
    return sorted(p.name for p in SRC_DIR.glob("*.c"))


def supported_ops() -> list[dict[str, object]]:
    """Read the op tables of ops.h: domain, op_type and input/output counts.

    Rows of OP_LIST are written OP(...) (domain ai.onnx, ""); rows of ML_OP_LIST are
    written ML(...) (domain "ai.onnx.ml"), rows of PREVIEW_OP_LIST PV(...) (domain
    "ai.onnx.preview").
    """
    text = (SRC_DIR / "ops.h").read_text()
    cols = r"\((\w+),\s*\w+,\s*\w+,\s*(\w+),\s*(\w+),\s*(\w+),\s*(\w+)\)"
    rows = [("", *r) for r in re.findall(r"\bOP" + cols, text)]
    rows += [("ai.onnx.ml", *r) for r in re.findall(r"\bML" + cols, text)]
    rows += [("ai.onnx.preview", *r) for r in re.findall(r"\bPV" + cols, text)]
    if not rows:
        raise RuntimeError("no OP(...) rows found in ops.h")
    return [
        {"domain": domain, "op_type": name, "inputs": [lo, hi], "outputs": [olo, ohi]}
        for domain, name, lo, hi, olo, ohi in rows
    ]


# Exports of a benchmark build (-DWX_BENCH), never of a shipped runtime.
BENCH_EXPORTS = ("wx_bench_repeat",)


def compile_runtime(
    out_path: Path, extra_flags: list[str] | None = None, bench: bool = False
) -> bytes:
    """Compile and link the runtime into out_path; returns the final bytes.

    With bench, adds -DWX_BENCH: pred() can repeat the graph (export wx_bench_repeat) so that
    benchmarks time the inference alone.
    """
    extra_flags = [*(extra_flags or []), *(["-DWX_BENCH"] if bench else [])]
    allowed = set(ABI_EXPORTS) | (set(BENCH_EXPORTS) if bench else set())
    logger.info("compiling %d sources with zig %s", len(source_files()), ZIG_VERSION)
    with tempfile.TemporaryDirectory() as tmp:
        # step 1: one object per source, at its optimisation level
        def compile_one(src: str) -> str:
            obj = str(Path(tmp) / (src + ".o"))
            opt = OPT_SPEED if src in SPEED_SOURCES else OPT_SIZE
            _zig(["-c", *COMPILE_FLAGS, opt, *extra_flags, src, "-o", obj])
            return obj

        with ThreadPoolExecutor(COMPILE_JOBS) as pool:
            objects = list(pool.map(compile_one, source_files()))
        # step 2: link, in the sorted order of the sources
        _zig([*LINK_FLAGS, *extra_flags, *objects, "-o", str(out_path), "-lm"])
    wasm = WasmBinary.parse(out_path.read_bytes())
    wasm.remove_exports([n for n in DROPPED_EXPORTS if n in wasm.exports()])
    missing = allowed - set(wasm.exports())
    extra = set(wasm.exports()) - allowed
    if missing or extra:
        raise RuntimeError(f"runtime exports wrong: missing {missing}, unexpected {extra}")
    data = wasm.to_bytes()
    out_path.write_bytes(data)
    return data


def _zig(args: list[str]) -> None:
    """Run `zig cc args` in src/ (relative source paths keep the output stable)."""
    proc = subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", *args], cwd=SRC_DIR, capture_output=True,
        text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"runtime build failed:\n{proc.stderr}")
    if proc.stderr.strip():
        logger.warning("compiler warnings:\n%s", proc.stderr)


def build(check: bool = False) -> int:
    """Build every runtime variant and runtime_ops.json; with check, compare instead."""
    built = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in VARIANTS.items():
            built[name] = compile_runtime(Path(tmp) / name, flags)
    ops = json.dumps({"ops": supported_ops()}, indent=1) + "\n"
    if check:
        ok = True
        for name, data in built.items():
            path = HERE / name
            same = path.exists() and path.read_bytes() == data
            ok = ok and same
            print(f"{name} {len(data)} bytes sha256 {hashlib.sha256(data).hexdigest()[:16]}: "
                  f"{'matches' if same else 'DIFFERS from'} the committed file")  # fmt: skip
        if not (RUNTIME_OPS.exists() and RUNTIME_OPS.read_text() == ops):
            print("runtime_ops.json differs from ops.h; rebuild")
            ok = False
        return 0 if ok else 1
    for name, data in built.items():
        (HERE / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()[:16]
        print(f"wrote {HERE / name} ({len(data)} bytes, sha256 {digest})")
    RUNTIME_OPS.write_text(ops)
    print(f"wrote {RUNTIME_OPS}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed build"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return build(check=args.check)


if __name__ == "__main__":
    sys.exit(main())
