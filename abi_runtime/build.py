"""Build the runtime: C sources -> runtime.wasm (wasm32-wasi, SIMD128).

    python -m wasmexport.abi_runtime.build            # writes runtime.wasm beside this file
    python -m wasmexport.abi_runtime.build --check  # rebuild, compare with the committed file

Four variants come from the same sources: runtime.wasm (SIMD128, the default; runs on every
host) and runtime_relaxed.wasm (adds -mrelaxed-simd: fused multiply-add where it measured
faster, in exp's polynomial; the GEMM multiplies then adds in both, see src/gemm.c; hosts
must enable the relaxed-SIMD proposal), each with every op, and
runtime_core.wasm / runtime_core_relaxed.wasm with the kernels of CORE_OPS only (the ops
neural-network exports produce), a smaller module that the packager picks when a model
needs nothing else.

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
from dataclasses import dataclass
from pathlib import Path

from ..packager.wasm_binary import WasmBinary

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "src"
RUNTIME_WASM = HERE / "runtime.wasm"
RUNTIME_OPS = HERE / "runtime_ops.json"
# The ai.onnx ops of the core runtime: what torch.onnx and tf2onnx produce for CNNs, MLPs,
# RNNs and transformers, and the common elementwise, shape and reduction ops. The other
# kernels (ai.onnx.ml, text, sequences, signal, quantized, detection, preview, ...) are in the
# full runtime only; a model that needs one of them is packaged with the full runtime.
CORE_OPS = frozenset("""
    Abs Neg Relu Sigmoid Tanh Exp Log Sqrt Erf LeakyRelu Add Sub Mul Div Pow Identity Dropout
    MatMul Gemm Conv ConvTranspose Softmax LogSoftmax Hardmax Reshape Flatten Squeeze Unsqueeze
    Transpose DepthToSpace SpaceToDepth Shape Size Gather GatherElements GatherND
    ScatterElements ScatterND Concat Slice Cast CastLike ConstantOfShape Expand Tile Split Pad
    Range OneHot NonZero Trilu EyeLike Einsum MaxPool AveragePool GlobalMaxPool
    GlobalAveragePool Resize Upsample If Loop Scan RNN GRU LSTM Sign Floor Ceil Round
    Reciprocal Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh HardSigmoid HardSwish
    Elu Selu Celu Softplus Softsign ThresholdedRelu Gelu Mish Swish Shrink IsNaN IsInf Not
    BitwiseNot Mod PRelu Equal Less LessOrEqual Greater GreaterOrEqual And Or Xor BitwiseAnd
    BitwiseOr BitwiseXor BitShift Min Max Sum Mean Where Clip ReduceSum ReduceMean ReduceMax
    ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax
    ArgMin CumSum TopK BatchNormalization LayerNormalization RMSNormalization
    InstanceNormalization GroupNormalization LpNormalization MeanVarianceNormalization LRN
    Attention RotaryEmbedding
""".split())


# subset name -> the ai.onnx ops whose kernels a runtime of that subset keeps
OP_SUBSETS = {"core": CORE_OPS}


@dataclass(frozen=True)
class Variant:
    """A runtime build: compiler flags added to COMPILE_FLAGS, and the op subset whose
    kernels it keeps (None: every op of every domain)."""

    flags: tuple[str, ...] = ()
    subset: str | None = None

    @property
    def ops(self) -> frozenset[str] | None:
        return None if self.subset is None else OP_SUBSETS[self.subset]


RELAXED_SIMD = ("-mrelaxed-simd",)
# The packager picks the file by the model's ops and the simd option (runtime_info.py).
VARIANTS = {
    "runtime.wasm": Variant(),
    "runtime_relaxed.wasm": Variant(RELAXED_SIMD),
    "runtime_core.wasm": Variant((), "core"),
    "runtime_core_relaxed.wasm": Variant(RELAXED_SIMD, "core"),
}
# the file that holds the op table; a variant with an op subset compiles it with op_subset.h
OP_TABLE_SOURCE = "op_table.c"

ZIG_VERSION = "0.17.0"
STACK_BYTES = 1 << 20
# Each source compiles to an object with COMPILE_FLAGS and its optimisation level, then the
# objects link with LINK_FLAGS. The loops that carry the inference time are compiled for
# speed; everything else (parsing, loading, the ~100 less common ops) for size, so that the
# runtime stays small as ops are added: a new op file is compiled for size unless listed.
OPT_SPEED = "-O3"
OPT_SIZE = "-Oz"
SPEED_SOURCES = frozenset(
    {"depthwise.c", "gemm.c", "ops_conv.c", "ops_elementwise.c", "winograd.c"}
)
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
    out_path: Path,
    variant: Variant = Variant(),
    bench: bool = False,
    object_dir: Path | None = None,
) -> bytes:
    """Compile and link the runtime variant into out_path; returns the final bytes.

    With bench, adds -DWX_BENCH: pred() can repeat the graph (export wx_bench_repeat) so that
    benchmarks time the inference alone. Objects are kept in object_dir when given, so that
    variants with the same flags compile each source once.
    """
    flags = [*variant.flags, *(["-DWX_BENCH"] if bench else [])]
    allowed = set(ABI_EXPORTS) | (set(BENCH_EXPORTS) if bench else set())
    logger.info("compiling %d sources with zig %s%s", len(source_files()), ZIG_VERSION,
                f" ({' '.join(flags)})" if flags else "")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        objects_at = object_dir or Path(tmp)
        # an object is reused only for the same flags, level, source and headers
        headers = b"".join(h.read_bytes() for h in sorted(SRC_DIR.glob("*.h")))
        base = hashlib.sha256(" ".join(flags).encode() + b"\0" + headers)

        # step 1: one object per source, at its optimisation level
        def compile_one(src: str) -> str:
            opt = OPT_SPEED if src in SPEED_SOURCES else OPT_SIZE
            extra: list[str] = []
            digest = base.copy()
            digest.update(opt.encode() + b"\0" + (SRC_DIR / src).read_bytes())
            obj = objects_at / f"{src}.{digest.hexdigest()[:16]}.o"
            if src == OP_TABLE_SOURCE and variant.ops is not None:
                subset_dir = Path(tmp) / "subset"
                subset_dir.mkdir(exist_ok=True)
                (subset_dir / "op_subset.h").write_text(op_subset_header(variant.ops))
                extra = ["-DWX_OP_SUBSET", f"-I{subset_dir}"]
                obj = Path(tmp) / f"{src}.subset.o"
            elif obj.exists():
                return str(obj)
            _zig(["-c", *COMPILE_FLAGS, opt, *flags, *extra, src, "-o", str(obj)])
            return str(obj)

        with ThreadPoolExecutor(COMPILE_JOBS) as pool:
            objects = list(pool.map(compile_one, source_files()))
        # step 2: link, in the sorted order of the sources
        _zig([*LINK_FLAGS, *flags, *objects, "-o", str(out_path), "-lm"])
    wasm = WasmBinary.parse(out_path.read_bytes())
    wasm.remove_exports([n for n in DROPPED_EXPORTS if n in wasm.exports()])
    missing = allowed - set(wasm.exports())
    extra = set(wasm.exports()) - allowed
    if missing or extra:
        raise RuntimeError(f"runtime exports wrong: missing {missing}, unexpected {extra}")
    data = wasm.to_bytes()
    out_path.write_bytes(data)
    return data


def op_subset_header(keep: frozenset[str]) -> str:
    """op_subset.h for op_table.c: KEEP_<op>(fn) is fn for the ai.onnx ops in keep, NULL for
    every other row of the table (other domains included)."""
    table = supported_ops()
    onnx_ops = {op["op_type"] for op in table if op["domain"] == ""}
    unknown = sorted(keep - onnx_ops)
    if unknown:
        raise RuntimeError(f"op subset names ops that ops.h does not list: {unknown}")
    names = [op["op_type"] for op in table]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise RuntimeError(f"op names in two domains cannot be kept apart: {clashes}")
    lines = ["/* generated by build.py for one runtime variant: kept ops pass their "
             "kernels */"]  # fmt: skip
    for op in table:
        kept = op["domain"] == "" and op["op_type"] in keep
        lines.append(f"#define KEEP_{op['op_type']}(fn) {'fn' if kept else 'NULL'}")
    return "\n".join(lines) + "\n"


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
        for name, variant in VARIANTS.items():
            built[name] = compile_runtime(Path(tmp) / name, variant, object_dir=Path(tmp))
    ops = runtime_ops_json()
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


def runtime_ops_json() -> str:
    """runtime_ops.json: every op (the full runtime's), and the ai.onnx ops of each subset."""
    subsets = {name: sorted(ops) for name, ops in OP_SUBSETS.items()}
    return json.dumps({"ops": supported_ops(), "subsets": subsets}, indent=1) + "\n"


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
