"""The wasmexport command line: package, run, verify and inspect WASI modules.

    wasmexport export model.onnx -o model.wasm        # package, then verify
    wasmexport export net.py:model --sample x.npy     # a framework model from Python code
    wasmexport run model.wasm request.json            # one ABI request, response on stdout
    wasmexport run model.wasm --input x.npy           # numpy in, outputs as JSON
    wasmexport verify model.wasm model.onnx           # the module against onnxruntime
    wasmexport inspect model.wasm --json              # signature, ops, sizes
    wasmexport bench model.wasm --rounds 50           # load time, pred() raw and JSON

Errors become one ``error: <message>`` line on stderr and an exit code per error class
(`EXIT_CODES`); click's usage errors exit with 2. Logging goes to stderr: WARNING by
default, ``-v`` INFO, ``-vv`` DEBUG (and tracebacks), ``-q`` ERROR.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import math
import statistics
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import onnx
import wasmtime
from click.core import ParameterSource

from . import __version__
from .abi_runtime.host import WasmModel, read_checked_metadata
from .api import diagnose_mismatch, export_wasm
from .errors import (
    ConvertError,
    PackageError,
    RuntimeABIError,
    VerifyError,
    WasmExportError,
    first_line,
)
from .exporters.onnx import finalize_onnx_model
from .packager.package import package
from .packager.signature import TensorSpec, cast_same_kind
from .progress import stage, track
from .report import print_report
from .verifier import DEFAULT_ATOL, DEFAULT_RTOL, VerifyReport
from .verifier import verify as verify_module

__all__ = ["EXIT_CODES", "cli", "main"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # verification failed, or the module answered with an error
EXIT_USAGE = 2  # click's own code for usage errors
EXIT_CONVERT = 3
EXIT_PACKAGE = 4
EXIT_RUNTIME = 5

# First match wins: subclasses before their bases.
EXIT_CODES: tuple[tuple[type[WasmExportError], int], ...] = (
    (VerifyError, EXIT_FAILED),
    (ConvertError, EXIT_CONVERT),  # UnsupportedOpError and AdapterNotFoundError too
    (PackageError, EXIT_PACKAGE),
    (RuntimeABIError, EXIT_RUNTIME),
)

SAMPLE_SEED = 0  # random samples are reproducible
SYMBOLIC_DIM_SIZE = 1  # the size a symbolic dim gets in a random sample
_LOGGER_ROOT = "wasmexport"


# --------------------------------------------------------------------------- plumbing


@dataclass
class _State:
    """Per-invocation settings shared by the group and its commands."""

    verbosity: int = 0  # -v adds one, -q takes one away
    handler: logging.Handler | None = None

    @property
    def level(self) -> int:
        if self.verbosity < 0:
            return logging.ERROR
        return (logging.WARNING, logging.INFO, logging.DEBUG)[min(self.verbosity, 2)]

    def apply(self) -> None:
        """Set the log level, and name the logger in each line when debugging."""
        logging.getLogger(_LOGGER_ROOT).setLevel(self.level)
        if self.handler is not None:
            debug = self.level <= logging.DEBUG
            fmt = "%(levelname)s %(name)s: %(message)s" if debug else "%(message)s"
            self.handler.setFormatter(logging.Formatter(fmt))


def _louder(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        state = ctx.ensure_object(_State)
        state.verbosity += value
        state.apply()


def _quieter(ctx: click.Context, _param: click.Parameter, value: int) -> None:
    if value:
        state = ctx.ensure_object(_State)
        state.verbosity -= value
        state.apply()


def _verbosity_options(f):
    """-v/-q, accepted before and after the command name alike."""
    f = click.option(
        "-q",
        "--quiet",
        count=True,
        expose_value=False,
        callback=_quieter,
        help="Less output: log errors only, no report tables.",
    )(f)
    f = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_louder,
        help="More log output: -v info, -vv debug and tracebacks.",
    )(f)
    return f


def _install_log_handler(ctx: click.Context) -> None:
    """Log to the current stderr for this invocation; undo it when the command ends."""
    state = ctx.ensure_object(_State)
    log = logging.getLogger(_LOGGER_ROOT)
    previous_level = log.level
    state.handler = logging.StreamHandler(sys.stderr)
    log.addHandler(state.handler)
    state.apply()

    def restore() -> None:
        log.removeHandler(state.handler)
        log.setLevel(previous_level)

    ctx.call_on_close(restore)


def _quiet(ctx: click.Context) -> bool:
    state = ctx.find_object(_State)
    return state is not None and state.verbosity < 0


def _exit_code(error: WasmExportError) -> int | None:
    return next((code for cls, code in EXIT_CODES if isinstance(error, cls)), None)


class _Group(click.Group):
    """A group that suggests commands and maps wasmexport errors to exit codes."""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.list_commands(ctx))
            raise click.UsageError(f"No such command {name!r}.{hint} Commands: {known}.", ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except WasmExportError as e:
            code = _exit_code(e)
            if code is None:
                raise
            _print_error(ctx, str(e))
            raise click.exceptions.Exit(code) from e


def _print_error(ctx: click.Context, message: str) -> None:
    state = ctx.find_object(_State)
    if state is not None and state.verbosity >= 2 and sys.exc_info()[0] is not None:
        click.echo(traceback.format_exc().rstrip(), err=True)
    click.echo(f"error: {message}", err=True)


# ------------------------------------------------------------------------ the group

_CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}
_EPILOG = """\b
Exit codes:
  0  success
  1  verification failed, or the module answered with an error response
  2  usage error (bad option, missing file, mistyped command)
  3  the ONNX model cannot be converted (unsupported op, invalid model, bad sample)
  4  the model cannot be packaged
  5  the module cannot be read or loaded, or breaks the ABI

-v and -q may also follow the command name.
"""


@click.group(cls=_Group, epilog=_EPILOG, context_settings=_CONTEXT_SETTINGS)
@_verbosity_options
@click.version_option(__version__, "-V", "--version", prog_name="wasmexport")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Turn trained models into one self-contained WASI module, run it and check it.

    \b
    Examples:
      wasmexport export model.onnx -o model.wasm
      wasmexport export net.py:build_model --sample x.npy -o net.wasm
      wasmexport run model.wasm request.json
      echo '{"input": [[1, 2, 3, 4]]}' | wasmexport run model.wasm
      wasmexport run model.wasm --input x.npy --output y.npz
      wasmexport verify model.wasm model.onnx --sample x.npy
      wasmexport run net.wasm --input photo.png --output out.png
      wasmexport verify model.wasm model.onnx --sample x.npy --report report.html
      wasmexport inspect model.wasm --json
      wasmexport bench model.wasm --rounds 50
    """
    _install_log_handler(ctx)


def main(argv: list[str] | None = None) -> int:
    """The console script: run the CLI and return its exit code."""
    try:
        cli.main(args=argv, prog_name="wasmexport")
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        click.echo(e.code, err=True)
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------------- sample inputs


def _input_specs(onnx_model: onnx.ModelProto):
    """The graph inputs as TensorSpecs; None for one whose type cannot be described."""
    initializers = {t.name for t in onnx_model.graph.initializer}
    specs = []
    for value in onnx_model.graph.input:
        if value.name in initializers:
            continue
        try:
            specs.append(TensorSpec.from_value_info(value))
        except (KeyError, TypeError, ValueError):
            specs.append(None)
    return specs


def _random_sample(specs) -> tuple[list[np.ndarray] | None, str]:
    """A random sample for the inputs: normal floats, zeros otherwise; symbolic dims -> 1.

    Returns:
        ``(arrays, why_not)``: the arrays, or None and the reason none can be made.
    """
    rng = np.random.default_rng(SAMPLE_SEED)
    arrays = []
    for i, spec in enumerate(specs):
        if spec is None:
            return None, f"graph input {i} is not a tensor of a known dtype"
        if spec.shape is None:
            return None, f"input {spec.name!r} has no declared shape"
        if spec.dtype == "string":
            return None, f"input {spec.name!r} is a string tensor"
        symbolic = [d for d in spec.shape if not isinstance(d, int)]
        shape = tuple(d if isinstance(d, int) else SYMBOLIC_DIM_SIZE for d in spec.shape)
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            array = rng.standard_normal(shape).astype(dtype)
        else:
            array = np.zeros(shape, dtype)
        if symbolic:
            logger.info(
                "no --sample: input %r %s gets shape %s (symbolic dims %s set to %d)",
                spec.name,
                spec.shape_str(),
                shape,
                ", ".join("?" if d is None else repr(d) for d in symbolic),
                SYMBOLIC_DIM_SIZE,
            )
        else:
            logger.info("no --sample: input %r gets a random %s %s", spec.name, dtype, shape)
        arrays.append(array)
    return arrays, ""


def _npz_arrays(ctx: click.Context, named: dict, path: Path) -> dict[str, np.ndarray]:
    """Outputs as arrays np.load reads without pickle: strings as unicode arrays; maps
    and sequences (object arrays of dicts or arrays) have no such form and are refused."""
    out = {}
    for name, y in named.items():
        if y.dtype == object:
            if not all(isinstance(v, str) for v in y.flat):
                raise click.UsageError(
                    f"output {name!r} holds maps or sequences, which .npz cannot store "
                    f"without pickle; write {path.with_suffix('.json').name} instead",
                    ctx,
                )
            y = y.astype(str)
        out[name] = y
    return out


def _load_sample(path: Path, specs, option: str = "--sample") -> list[np.ndarray]:
    """Read a .npy (one input) or .npz (by input name, or arr_0.. in order) sample file.

    Arrays are cast to the declared dtypes where numpy's same_kind rule allows it
    (float64 -> float32, int -> float); anything else is a usage error.
    """
    names = [s.name if s is not None else f"input {i}" for i, s in enumerate(specs)]
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint=option) from e

    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise click.BadParameter(
                f"{path} holds one array, but the model takes {len(specs)} inputs "
                f"({', '.join(names)}); save them by name: np.savez(path, name=array, ...)",
                param_hint=option,
            )
        arrays = [loaded]
    else:
        with loaded:
            arrays = _bind_npz(path, dict(loaded.items()), names, option)
    return [_cast(a, s, path, option) for a, s in zip(arrays, specs, strict=True)]


def _bind_npz(path: Path, found: dict, names: list[str], option: str) -> list[np.ndarray]:
    """Order the arrays of an .npz by input name, or by position for arr_0, arr_1, ..."""
    if set(found) == set(names):
        return [found[n] for n in names]
    if list(found) == [f"arr_{i}" for i in range(len(names))]:
        return [found[f"arr_{i}"] for i in range(len(names))]
    unknown = [k for k in found if k not in names]
    missing = [n for n in names if n not in found]
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, missing, n=1)
        if close:
            hints.append(f"{key!r} -> {close[0]!r}?")
    hint = f" (did you mean {', '.join(hints)})" if hints else ""
    raise click.BadParameter(
        f"{path} has arrays {sorted(found)}, but the model takes {names}: unknown "
        f"{unknown or 'none'}, missing {missing or 'none'}{hint}",
        param_hint=option,
    )


def _cast(array: np.ndarray, spec, path: Path, option: str) -> np.ndarray:
    if spec is None or spec.dtype == "string":
        return array
    cast = cast_same_kind(array, spec.dtype)
    if cast is None:
        raise click.BadParameter(
            f"{path}: input {spec.name!r} is {array.dtype}, the model takes {spec.dtype}",
            param_hint=option,
        )
    if cast is not array:
        logger.info("input %r: cast %s to %s", spec.name, array.dtype, cast.dtype)
    return cast


# ------------------------------------------------------------------------- modules


def _read_metadata(path: Path):
    """The metadata of a packaged module, its plan checked, without instantiating it.

    Raises:
        RuntimeABIError: the file is not a wasm module, has no readable metadata, or its
            plan is not the one the packager wrote.
    """
    data = path.read_bytes()
    try:
        return data, read_checked_metadata(data)
    except RuntimeABIError as e:
        raise RuntimeABIError(f"cannot read {path}: {e}") from e


def _open_module(path: Path):
    """Instantiate a packaged module; any failure to do so is a RuntimeABIError."""
    _read_metadata(path)  # a clear error for files that are not packaged modules
    try:
        return WasmModel(path)
    except RuntimeABIError as e:
        raise RuntimeABIError(f"cannot load {path}: {e}") from e
    except (PackageError, wasmtime.WasmtimeError, KeyError) as e:
        raise RuntimeABIError(f"cannot load {path}: {first_line(e)}") from e


def _strict_json(value):
    """Nested lists with NaN and infinities spelt as the runtime spells them."""
    if isinstance(value, list):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _count(n: int, noun: str) -> str:
    """'1 node', '3 nodes'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _format_ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items()) or "no ops"


def _verdict(report: VerifyReport | None) -> str:
    if report is None:
        return "not verified"
    batches = sorted({c.batch for c in report.comparisons if c.batch is not None})
    where = f"batch {', '.join(map(str, batches))}; " if batches else ""
    state = "verified" if report.passed else "FAILED verification"
    return f"{state} ({where}max abs err {report.max_abs_err:.3g})"


# ---------------------------------------------------------------------------- export

_PATH_IN = click.Path(exists=True, dir_okay=False, path_type=Path)


def _check_options(f):
    """--sample, --rtol, --atol and --report, shared by export and verify."""
    f = click.option(
        "--report",
        "report_file",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE.html",
        help="Also write the verification report as a self-contained HTML page: the "
        "summary, error histograms per output and the worst elements (needs matplotlib).",
    )(f)
    f = click.option(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        show_default=True,
        help="Absolute tolerance.",
    )(f)
    f = click.option(
        "--rtol",
        type=float,
        default=DEFAULT_RTOL,
        show_default=True,
        help="Relative tolerance: |got - expected| <= atol + rtol * |expected|.",
    )(f)
    f = click.option(
        "--sample",
        type=_PATH_IN,
        metavar="FILE.npy|.npz",
        help="Sample inputs: .npy for one input, .npz by input name. export needs one for "
        "a framework model; otherwise the default is random (seed 0), symbolic dims set to 1.",
    )(f)
    return f


@cli.command("export")
@click.argument("model", metavar="MODEL")
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the module [default: MODEL.wasm, or OBJECT.wasm for an entry point].",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check the module against onnxruntime (and the framework) on the sample.",
)
@click.option(
    "--framework",
    help="The adapter for an entry point's model (torch, tensorflow, sklearn, onnx, ...); "
    "detected when left out.",
)
@click.option("--opset", type=int, help="The ai.onnx opset to export with.")
@click.option(
    "--dynamic-axes",
    "dynamic_axes",
    metavar="JSON",
    help='Dynamic axes as JSON: \'{"x": {"0": "batch", "2": "height"}}\', or false for '
    "static shapes [default: axis 0 of every input is a dynamic batch].",
)
@click.option(
    "--exporter",
    type=click.Choice(["dynamo", "legacy"]),
    help="torch only: the torch.onnx exporter [default: dynamo].",
)
@click.option(
    "--simd",
    type=click.Choice(["plain", "relaxed"]),
    default="plain",
    show_default=True,
    help="The runtime build to embed: plain SIMD128 runs on every host; relaxed "
    "(fused multiply-add in exp's polynomial; the GEMM is the same) needs a host with "
    "relaxed SIMD (wasmtime; Node with --experimental-wasm-relaxed-simd).",
)
@_check_options
@_verbosity_options
@click.pass_context
def export_command(
    ctx,
    model: str,
    out: Path | None,
    verify: bool,
    framework: str | None,
    opset: int | None,
    dynamic_axes: str | None,
    exporter: str | None,
    simd: str,
    sample: Path | None,
    rtol: float,
    atol: float,
    report_file: Path | None,
) -> None:
    """Export a model to one self-contained .wasm module, and verify it.

    MODEL is an ONNX file, a TensorFlow SavedModel directory, or a Python entry
    point MODULE:OBJECT naming a framework model (torch.nn.Module, Keras model,
    scikit-learn estimator, ...) or a function with no arguments that returns one.
    MODULE is a file (path/to/net.py) or an importable module (mypkg.models). A
    SavedModel or an entry point needs --sample.

    The module is checked against onnxruntime (and the framework, for an entry point)
    on the sample, at a second batch size too when the batch is dynamic. For an ONNX
    file without --sample, a random sample is made from the input shapes (seed 0;
    symbolic dims set to 1).

    \b
    Examples:
      wasmexport export mlp.onnx -o mlp.wasm
      wasmexport export mlp.onnx -o mlp.wasm --sample x.npy --atol 1e-5
      wasmexport export big.onnx -o big.wasm --no-verify
      wasmexport export net.py:model --sample x.npy -o net.wasm
      wasmexport export net.py:build --sample x.npy --exporter legacy --opset 17
      wasmexport export mypkg.models:classifier --sample x.npz --framework sklearn
      wasmexport export net.py:model --sample x.npy --dynamic-axes false
      wasmexport export saved_model_dir --sample x.npy -o model.wasm
      wasmexport export mlp.onnx --report report.html
      wasmexport export mlp.onnx --simd relaxed -o mlp_relaxed.wasm
    """
    onnx_path = Path(model)
    entry_point = _is_entry_point(model)
    saved_model = not entry_point and onnx_path.is_dir()
    if not entry_point and not saved_model:
        if not onnx_path.is_file():
            raise click.BadParameter(
                f"{model!r} is neither a file, a SavedModel directory nor an entry point "
                "MODULE:OBJECT (e.g. net.py:model or mypkg.models:build)",
                param_hint="MODEL",
            )
        if onnx_path.suffix == ".py":  # Python code, not an ONNX file
            raise click.BadParameter(
                f"{model} is Python code: name the model in it as MODULE:OBJECT, "
                f"e.g. {model}:model (a torch.nn.Module, Keras model, scikit-learn "
                "estimator, or a function returning one)",
                param_hint="MODEL",
            )
        for name, value in (("--framework", framework), ("--exporter", exporter),
                            ("--opset", opset), ("--dynamic-axes", dynamic_axes)):  # fmt: skip
            if value is not None and not (name == "--framework" and value == "onnx"):
                raise click.UsageError(
                    f"{name} is for exporting a framework model (MODULE:OBJECT); "
                    f"{model} is already ONNX",
                    ctx,
                )
        _export_onnx_file(ctx, onnx_path, out, verify, sample, rtol, atol, report_file, simd)
        return

    if sample is None:
        raise click.UsageError(
            f"{'a SavedModel' if saved_model else 'an entry point'} needs --sample "
            "FILE.npy|.npz: the sample inputs to trace and verify the model with",
            ctx,
        )
    options = {"exporter": exporter} if exporter is not None else {}
    if saved_model:  # a TensorFlow SavedModel directory
        out = out or onnx_path.with_suffix(".wasm")
        framework_model = str(onnx_path)
    else:
        module_part, _, object_part = model.rpartition(":")
        out = out or Path(object_part.split(".")[-1] + ".wasm")
        framework_model = _load_entry_point(module_part, object_part)
    inputs = _read_sample_file(sample)
    result = _export_and_report(
        ctx,
        lambda: export_wasm(
            framework_model,
            inputs,
            out,
            framework=framework,
            dynamic_axes=_parse_dynamic_axes(dynamic_axes),
            opset=opset,
            verify=verify,
            rtol=rtol,
            atol=atol,
            simd=simd,
            **options,
        ),
        out,
        model,
        report_file,
    )
    _summary(ctx, out, result.wasm_bytes, result.metadata, result.report, report_file)


def _export_onnx_file(ctx, model, out, verify, sample, rtol, atol, report_file, simd):
    """Package (and verify) an ONNX file, with a random sample when none is given."""
    out = out or model.with_suffix(".wasm")
    if out.resolve() == model.resolve():
        raise click.BadParameter("the output would overwrite the ONNX model", param_hint="-o")

    # step 1: the sample, from the file or the graph's input signature
    specs = _input_specs(_load_onnx(model, load_external_data=False))
    if sample is not None:
        arrays = _load_sample(sample, specs)
    else:
        arrays, why_not = _random_sample(specs)
        if arrays is None and verify:
            logger.warning(
                "cannot make a random sample (%s): packaging without "
                "verification; pass --sample to verify",
                why_not,
            )

    # step 2: package (and verify) through the public API
    if arrays is not None:
        result = _export_and_report(
            ctx,
            lambda: export_wasm(
                str(model),
                arrays,
                out,
                framework="onnx",
                verify=verify,
                rtol=rtol,
                atol=atol,
                simd=simd,
            ),  # fmt: skip
            out,
            str(model),
            report_file,
        )
        size, metadata, report = result.wasm_bytes, result.metadata, result.report
    else:
        size, metadata = _package_unverified(model, out, simd)
        report = None

    # step 3: one summary line, then the report
    _summary(ctx, out, size, metadata, report, report_file)


def _export_and_report(ctx, export, out: Path, source: str, report_file: Path | None):
    """Run `export`; on a verification failure print the report and exit 1."""
    try:
        return export()
    except VerifyError as e:
        if e.report is not None:
            print_report(e.report, file=sys.stdout)
            if report_file is not None:
                _write_html(e.report, report_file, f"{out} vs {source}")
        _print_error(
            ctx,
            f"{out} was written but does not match {source}: "
            f"{_verdict(e.report)}; see the report above",
        )
        ctx.exit(EXIT_FAILED)


def _summary(ctx, out: Path, size: int, metadata, report, report_file: Path | None) -> None:
    nodes = sum(metadata.ops.values())
    click.echo(
        f"{out}: {size:,} bytes, {_count(nodes, 'node')} ({_format_ops(metadata.ops)}), "
        f"{_verdict(report)}"
    )
    if report is not None and not _quiet(ctx):
        print_report(report, file=sys.stdout)
    if report is not None and report_file is not None:
        _write_html(report, report_file, f"{out}")
    elif report_file is not None:
        logger.warning("no report written to %s: the module was not verified", report_file)


def _write_html(report: VerifyReport, path: Path, title: str) -> None:
    from .report import write_html

    try:
        write_html(report, path, title=f"wasmexport verification: {title}")
    except ImportError as e:
        raise click.UsageError(str(e)) from e
    click.echo(f"report: {path}", err=True)


def _is_entry_point(model: str) -> bool:
    """MODULE:OBJECT rather than a file path (an existing file always wins)."""
    if Path(model).exists() or ":" not in model:
        return False
    module_part, _, object_part = model.rpartition(":")
    return bool(module_part) and object_part.replace(".", "").isidentifier()


def _load_entry_point(module_part: str, object_part: str):
    """Import MODULE and get OBJECT; call it when it is a function (a model factory)."""
    where = f"{module_part}:{object_part}"
    if not _ctx_verbose():
        # a user's module may import TensorFlow, whose C++ logging is set at that import
        from .exporters.tensorflow import quiet_native_logs

        quiet_native_logs()
    try:
        if module_part.endswith(".py") or Path(module_part).is_file():
            path = Path(module_part)
            if not path.is_file():
                raise click.BadParameter(f"no such file {module_part!r}", param_hint="MODEL")
            spec = importlib.util.spec_from_file_location(
                f"_wasmexport_entry_{path.stem}", path
            )
            module = importlib.util.module_from_spec(spec)
            # registered, so that classes defined in the file can be found by module name
            # (pickling, torch.export, dataclasses)
            sys.modules[spec.name] = module
            sys.path.insert(0, str(path.resolve().parent))
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(str(path.resolve().parent))
        else:
            module = importlib.import_module(module_part)
    except click.BadParameter:
        raise
    except Exception as e:
        if _ctx_verbose():
            logger.debug("importing %s failed:\n%s", module_part, traceback.format_exc())
        raise click.BadParameter(
            f"cannot import {module_part!r}: {type(e).__name__}: {first_line(e)}",
            param_hint="MODEL",
        ) from e
    obj = module
    for attr in object_part.split("."):
        if not hasattr(obj, attr):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(attr, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise click.BadParameter(
                f"{module_part!r} has no attribute {attr!r}{hint}", param_hint="MODEL"
            )
        obj = getattr(obj, attr)
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        try:
            params = inspect.signature(obj).parameters.values()
        except (TypeError, ValueError):
            params = []
        required = [p.name for p in params if p.default is p.empty
                    and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]  # fmt: skip
        if required:
            raise click.BadParameter(
                f"{where} is a function taking arguments ({', '.join(required)}); name a "
                "model or a function with no arguments that returns one",
                param_hint="MODEL",
            )
        logger.info("calling %s() for the model", where)
        with stage(f"Building the model ({where}())"):
            obj = obj()
    return obj


def _ctx_verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(_State) if ctx is not None else None
    return state is not None and state.verbosity >= 2


def _read_sample_file(path: Path):
    """A .npy as one array; an .npz as a list (arr_0, arr_1, ...) or a dict by name."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise click.BadParameter(f"cannot read {path}: {e}", param_hint="--sample") from e
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        found = dict(loaded.items())
    positional = [f"arr_{i}" for i in range(len(found))]
    return [found[k] for k in positional] if list(found) == positional else found


def _parse_dynamic_axes(text: str | None):
    """--dynamic-axes JSON -> None, False or {input: {axis: name} | [axes]}."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--dynamic-axes") from e
    if value is False or value is None:
        return value
    if not isinstance(value, dict):
        raise click.BadParameter(
            f'expected false or an object like {{"x": {{"0": "batch"}}}}, got {text}',
            param_hint="--dynamic-axes",
        )
    axes = {}
    for key, spec in value.items():
        name = int(key) if key.isdigit() else key
        try:
            if isinstance(spec, dict):
                axes[name] = {int(a): str(n) for a, n in spec.items()}
            elif isinstance(spec, list):
                axes[name] = [int(a) for a in spec]
            else:
                raise ValueError(f"input {key!r}: {spec!r}")
        except ValueError as e:
            raise click.BadParameter(
                f'axes must be integers ({e}); e.g. {{"x": {{"0": "batch"}}}}',
                param_hint="--dynamic-axes",
            ) from e
    return axes


def _load_onnx(path: Path, *, load_external_data: bool = True) -> onnx.ModelProto:
    try:
        return onnx.load(str(path), load_external_data=load_external_data)
    except Exception as e:  # DecodeError, OSError, ...: not an ONNX file
        raise ConvertError(f"onnx: cannot load {str(path)!r}: {first_line(e)}") from e


def _package_unverified(model: Path, out: Path, simd: str = "plain"):
    """Package without a sample: the same checks as the onnx adapter, no verification."""
    onnx_model = finalize_onnx_model(_load_onnx(model), framework="onnx")
    packaged = package(onnx_model, framework="onnx", simd=simd)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(packaged.wasm)
    logger.info("wrote %s (%d bytes)", out, len(packaged.wasm))
    return len(packaged.wasm), packaged.metadata


# ------------------------------------------------------------------------------- run


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@cli.command("run")
@click.argument("module", metavar="MODEL.wasm", type=_PATH_IN)
@click.argument("request", metavar="[REQUEST.json|-]", type=click.File("rb"), default="-")
@click.option(
    "--input",
    "input_file",
    type=_PATH_IN,
    metavar="X.npy|.npz|.png|.jpg",
    help="Build the request from arrays (.npy for one input, .npz by input name) or from "
    "an image, converted to the input's declared layout (NCHW or NHWC, 1 or 3 channels), "
    "size and dtype.",
)
@click.option(
    "--output",
    "output_file",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.json|.npz|.png",
    help="Write the response to a file instead of stdout: .json (the response, or the "
    "outputs by name with --input), .npz (outputs by name) or .png/.jpg (the first 4-D "
    "output with 1 or 3 channels, as an image; needs --input).",
)
@click.option(
    "--image-scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Image pixels become floats in [0, SCALE] (255 keeps 0-255); image outputs are "
    "mapped back from [0, SCALE] to 0-255.",
)
@_verbosity_options
@click.pass_context
def run_command(
    ctx,
    module: Path,
    request,
    input_file: Path | None,
    output_file: Path | None,
    image_scale: float,
) -> None:
    """Send one request through the module's ABI and print the response.

    REQUEST.json is the ABI's JSON request (read from stdin when it is '-' or left
    out); the response JSON goes to stdout as the module wrote it. With --input, the
    request is built from numpy arrays or an image, and the outputs are printed as a
    JSON object by output name (or saved with --output). Exit 1 when the module
    answers with an error.

    \b
    Examples:
      wasmexport run mlp.wasm request.json
      echo '{"input": [[0.5, 1, 2, 3]]}' | wasmexport run mlp.wasm
      wasmexport run mlp.wasm request.json --output response.json
      wasmexport run mlp.wasm --input x.npy
      wasmexport run two.wasm --input inputs.npz --output outputs.npz
      wasmexport run cnn.wasm --input digit.png
      wasmexport run upscale.wasm --input photo.jpg --output big.png
      wasmexport run uint8net.wasm --input photo.png --image-scale 255
    """
    from_stdin = ctx.get_parameter_source("request") is ParameterSource.DEFAULT
    if not from_stdin and input_file is not None:
        raise click.UsageError("give either REQUEST.json or --input, not both", ctx)
    out_kind = None if output_file is None else output_file.suffix.lower()
    if out_kind is not None and out_kind not in {".json", ".npz"} | _IMAGE_SUFFIXES:
        raise click.BadParameter(
            f"{output_file}: expected .json, .npz or an image (.png, .jpg)",
            param_hint="--output",
        )
    if input_file is None and out_kind not in (None, ".json"):
        raise click.UsageError(
            f"--output {out_kind} needs --input (a JSON request's answer is JSON: use "
            "--output FILE.json)",
            ctx,
        )
    if from_stdin and input_file is None and request.isatty():
        raise click.UsageError("give REQUEST.json, '-' to read stdin, or --input", ctx)
    if image_scale <= 0:
        raise click.BadParameter("must be > 0", param_hint="--image-scale")

    with _open_module(module) as wasm_model:
        if input_file is None:
            _run_request(ctx, wasm_model, request.read(), output_file)
        else:
            _run_arrays(ctx, wasm_model, input_file, output_file, image_scale)


def _run_request(ctx: click.Context, wasm_model, text: bytes, output_file: Path | None):
    rc, response = wasm_model.request(text)
    if output_file is None:
        click.echo(response)
    else:
        output_file.write_text(response + "\n", encoding="utf-8")
        logger.info("wrote %s", output_file)
    if rc != 0:
        try:
            message = json.loads(response).get("error", response)
        except (ValueError, AttributeError):
            message = response
        _print_error(ctx, f"the module answered with an error: {message}")
        ctx.exit(EXIT_FAILED)


def _run_arrays(
    ctx: click.Context,
    wasm_model,
    input_file: Path,
    output_file: Path | None,
    image_scale: float,
):
    if input_file.suffix.lower() in _IMAGE_SUFFIXES:
        arrays = [_image_input(input_file, wasm_model.inputs, image_scale)]
    else:
        arrays = _load_sample(input_file, wasm_model.inputs, option="--input")
    try:
        outputs = wasm_model.run(arrays)
    except RuntimeABIError as e:
        _print_error(ctx, f"the module answered with an error: {e}")
        ctx.exit(EXIT_FAILED)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    named = {
        spec.name: np.asarray(y) for spec, y in zip(wasm_model.outputs, outputs, strict=True)
    }
    kind = None if output_file is None else output_file.suffix.lower()
    if kind == ".npz":
        with open(output_file, "wb") as f:
            np.savez(f, **_npz_arrays(ctx, named, output_file))
        logger.info("wrote %s (%s)", output_file, ", ".join(named))
        return
    if kind in _IMAGE_SUFFIXES:
        _save_image_output(named, output_file, image_scale)
        return
    text = json.dumps({name: _strict_json(y.tolist()) for name, y in named.items()})
    if kind == ".json":
        output_file.write_text(text + "\n", encoding="utf-8")
        logger.info("wrote %s (%s)", output_file, ", ".join(named))
    else:
        click.echo(text)


def _image_layout(shape) -> tuple[str, int]:
    """("NCHW" or "NHWC", channels) for a declared 4-D image shape; ValueError otherwise."""
    if shape is None or len(shape) != 4:
        raise ValueError("not 4-D")
    c1, c3 = shape[1], shape[3]
    if c1 in (1, 3) and c3 not in (1, 3):
        return "NCHW", c1
    if c3 in (1, 3) and c1 not in (1, 3):
        return "NHWC", c3
    if c1 in (1, 3) and c3 in (1, 3):  # e.g. 1x3x3x3: the usual PyTorch layout
        return "NCHW", c1
    raise ValueError("no axis of 1 or 3 channels")


def _image_input(path: Path, specs, scale: float) -> np.ndarray:
    """An image file as the model's one 4-D input: layout, channels, size and dtype."""
    from PIL import Image

    def bad(why: str) -> click.BadParameter:
        return click.BadParameter(f"{path}: {why}", param_hint="--input")

    if len(specs) != 1:
        raise bad(f"an image can feed a model with one input; this one takes {len(specs)}")
    spec = specs[0]
    try:
        layout, channels = _image_layout(spec.shape)
    except ValueError as e:
        raise bad(
            f"input {spec.name!r} {spec.shape_str()} is not an image ({e}): expected "
            "(N, 1|3, H, W) or (N, H, W, 1|3)"
        ) from e
    try:
        image = Image.open(path)
        image = image.convert("L" if channels == 1 else "RGB")
    except OSError as e:
        raise bad(f"cannot read the image: {e}") from e
    h_axis, w_axis = (2, 3) if layout == "NCHW" else (1, 2)
    height, width = spec.shape[h_axis], spec.shape[w_axis]
    if isinstance(height, int) and isinstance(width, int) and image.size != (width, height):
        logger.warning(
            "resizing %s from %dx%d to the input's %dx%d", path, *image.size, width, height
        )
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)  # (H, W) or (H, W, 3), uint8
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    pixels = pixels.transpose(2, 0, 1) if layout == "NCHW" else pixels
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        array = pixels.astype(dtype) * dtype.type(scale / 255.0)
    elif dtype.kind in "iu":
        array = pixels.astype(dtype)
    else:
        raise bad(f"input {spec.name!r} is {dtype}: expected a float or integer tensor")
    logger.info("image %s -> %s %s %s", path, spec.name, layout, array.shape)
    return array[None]


def _save_image_output(named: dict, path: Path, scale: float) -> None:
    """Save the first 4-D output with 1 or 3 channels (batch item 0) as an image."""
    from PIL import Image

    for name, y in named.items():
        try:
            layout, channels = _image_layout(y.shape)
        except ValueError:
            continue
        image = y[0].transpose(1, 2, 0) if layout == "NCHW" else y[0]
        if y.dtype.kind == "f":
            image = np.clip(np.rint(image.astype(np.float64) * (255.0 / scale)), 0, 255)
        image = image.astype(np.uint8)
        Image.fromarray(np.ascontiguousarray(image[:, :, 0] if channels == 1 else image)).save(
            path
        )
        if y.shape[0] > 1:
            logger.warning("%s holds %d images; saved the first", name, y.shape[0])
        logger.info("wrote %s from output %r (%s)", path, name, layout)
        return
    shapes = ", ".join(f"{n} {tuple(y.shape)}" for n, y in named.items())
    raise click.BadParameter(
        f"no output is an image (4-D with 1 or 3 channels): {shapes}; use .npz or .json",
        param_hint="--output",
    )


# ---------------------------------------------------------------------------- verify


@cli.command("verify")
@click.argument("module", metavar="MODEL.wasm", type=_PATH_IN)
@click.argument("onnx_file", metavar="MODEL.onnx", type=_PATH_IN)
@_check_options
@_verbosity_options
@click.pass_context
def verify_command(
    ctx,
    module: Path,
    onnx_file: Path,
    sample: Path | None,
    rtol: float,
    atol: float,
    report_file: Path | None,
) -> None:
    """Check a packaged module against an ONNX model; exit 1 when they disagree.

    Runs the sample through onnxruntime and the module (a second batch size too when
    the batch is dynamic) and prints the per-output errors. Without --sample, a random
    sample is made from the module's input shapes (seed 0; symbolic dims set to 1).

    \b
    Examples:
      wasmexport verify mlp.wasm mlp.onnx
      wasmexport verify mlp.wasm mlp.onnx --sample x.npy --rtol 1e-3
      wasmexport verify mlp.wasm mlp.onnx --report report.html
    """
    onnx_model = _load_onnx(onnx_file)
    with _open_module(module) as wasm_model:
        # step 1: the same signature, or there is nothing to compare
        mismatch = _signature_mismatch(wasm_model, onnx_model)
        if mismatch:
            _print_error(ctx, f"{module} and {onnx_file} differ in signature: {mismatch}")
            ctx.exit(EXIT_FAILED)

        # step 2: the sample
        if sample is not None:
            arrays = _load_sample(sample, wasm_model.inputs)
        else:
            arrays, why_not = _random_sample(wasm_model.inputs)
            if arrays is None:
                raise click.UsageError(
                    f"cannot make a random sample ({why_not}); pass --sample FILE.npz", ctx
                )

        # step 3: compare
        with stage("Verifying"):
            report = verify_module(
                wasm_model, onnx_model, arrays, rtol=rtol, atol=atol, raise_on_failure=False
            )
            if not report.passed:
                report.diagnosis = diagnose_mismatch(wasm_model, onnx_model)
    click.echo(f"{module} vs {onnx_file}: {_verdict(report)}")
    if not _quiet(ctx):
        print_report(report, file=sys.stdout)
    if report_file is not None:
        _write_html(report, report_file, f"{module} vs {onnx_file}")
    if not report.passed:
        _print_error(ctx, f"{module} does not match {onnx_file}: {_verdict(report)}")
        ctx.exit(EXIT_FAILED)


def _signature_mismatch(wasm_model, onnx_model: onnx.ModelProto) -> str:
    """What differs between the module's and the ONNX graph's input/output names and dtypes."""
    ours = (
        [(s.name, s.dtype) for s in wasm_model.inputs],
        [(s.name, s.dtype) for s in wasm_model.outputs],
    )
    try:
        theirs = (
            [(s.name, s.dtype) for s in _input_specs(onnx_model)],
            [
                (s.name, s.dtype)
                for s in map(TensorSpec.from_value_info, onnx_model.graph.output)
            ],
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return "the ONNX graph has inputs or outputs that are not tensors"
    for what, a, b in zip(("inputs", "outputs"), ours, theirs, strict=True):
        if a != b:
            return f"{what} {_pairs(a)} in the module, {_pairs(b)} in the ONNX model"
    return ""


def _pairs(pairs: list[tuple[str, str]]) -> str:
    return "(" + ", ".join(f"{n}: {d}" for n, d in pairs) + ")"


# ----------------------------------------------------------------------------- bench


@cli.command("bench")
@click.argument("module", metavar="MODEL.wasm", type=_PATH_IN)
@click.option(
    "--input",
    "input_file",
    type=_PATH_IN,
    metavar="X.npy|.npz",
    help="The inputs to time: .npy for one input, .npz by input name. "
    "Default: random (seed 0), symbolic dims set to 1.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Timed calls per mode (after one warm-up call).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@_verbosity_options
@click.pass_context
def bench_command(ctx, module: Path, input_file: Path | None, rounds: int, as_json: bool):
    """Time a module: loading it, and pred() end to end with raw and with JSON I/O.

    Loading is compiling and instantiating the module (timed min(3, ROUNDS) times).
    Each pred() round is one whole request from the host's side: encoding the inputs,
    the module's work and decoding the outputs; "raw" sends base64 little-endian
    tensors, "json" nested JSON lists. Prints min / median / max in milliseconds.

    \b
    Examples:
      wasmexport bench mlp.wasm
      wasmexport bench cnn.wasm --input x.npy --rounds 100
      wasmexport bench mlp.wasm --json | jq .pred_raw_ms.median
    """
    _read_metadata(module)
    loads = []
    for _ in track(range(min(3, rounds)), "Loading", total=min(3, rounds)):
        start = time.perf_counter()
        wasm_model = _open_module(module)
        loads.append(time.perf_counter() - start)
        wasm_model.close()

    with _open_module(module) as wasm_model:
        if input_file is not None:
            arrays = _load_sample(input_file, wasm_model.inputs, option="--input")
        else:
            arrays, why_not = _random_sample(wasm_model.inputs)
            if arrays is None:
                raise click.UsageError(
                    f"cannot make a random input ({why_not}); pass --input FILE.npz", ctx
                )
        timings = {"load_ms": loads}
        for mode, raw in (("raw", True), ("json", False)):
            try:
                wasm_model.run(arrays, raw=raw)  # warm-up, and a clear error early
            except RuntimeABIError as e:
                _print_error(ctx, f"the module answered with an error: {e}")
                ctx.exit(EXIT_FAILED)
            times = []
            for _ in track(range(rounds), f"pred() {mode}", total=rounds):
                start = time.perf_counter()
                wasm_model.run(arrays, raw=raw)
                times.append(time.perf_counter() - start)
            timings[f"pred_{mode}_ms"] = times

    stats = {
        key: {
            "min": min(v) * 1e3,
            "median": statistics.median(v) * 1e3,
            "max": max(v) * 1e3,
            "rounds": len(v),
        }
        for key, v in timings.items()
    }
    if as_json:
        shapes = {
            s.name: list(a.shape) for s, a in zip(wasm_model.inputs, arrays, strict=True)
        }
        click.echo(json.dumps({"module": str(module), "inputs": shapes, **stats}, indent=2))
        return
    labels = {"load_ms": "load", "pred_raw_ms": "pred() raw", "pred_json_ms": "pred() json"}
    click.echo(f"{module}: {module.stat().st_size:,} bytes, inputs "
               + ", ".join(f"{s.name} {a.shape}" for s, a in
                           zip(wasm_model.inputs, arrays, strict=True)))  # fmt: skip
    head = ("", "rounds", "min ms", "median ms", "max ms")
    rows = [
        (
            labels[k],
            str(v["rounds"]),
            f"{v['min']:.3f}",
            f"{v['median']:.3f}",
            f"{v['max']:.3f}",
        )  # fmt: skip
        for k, v in stats.items()
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    for r in (head, *rows):
        cells = zip(r, widths, strict=True)
        click.echo(
            "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(cells))
        )


# --------------------------------------------------------------------------- inspect


@cli.command("inspect")
@click.argument("module", metavar="MODEL.wasm", type=_PATH_IN)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@_verbosity_options
def inspect_command(module: Path, as_json: bool) -> None:
    """Show what a packaged module computes and what it is made of.

    Inputs and outputs (name, dtype, shape with symbolic dims), ops with their counts,
    opsets, the framework it came from, the producer and its version, and sizes: the
    whole module, the plan (weights included) and the runtime (core: the neural-network
    ops; full: every op), with the plan's sha256, checked against the plan. Reads the
    module; nothing is run.

    \b
    Examples:
      wasmexport inspect mlp.wasm
      wasmexport inspect mlp.wasm --json | jq .inputs
    """
    data, metadata = _read_metadata(module)
    info = _describe(module, data, metadata)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for line in _describe_text(info):
        click.echo(line)


def _describe(path: Path, data: bytes, metadata) -> dict:
    def tensors(specs) -> list[dict]:
        return [
            {
                "name": s.name,
                "dtype": s.dtype,
                "shape": None if s.shape is None else list(s.shape),
            }
            for s in specs
        ]

    return {
        "path": str(path),
        "inputs": tensors(metadata.inputs),
        "outputs": tensors(metadata.outputs),
        "ops": dict(metadata.ops),
        "nodes": sum(metadata.ops.values()),
        "opsets": dict(metadata.opsets),
        "framework": metadata.framework,
        "producer": metadata.producer,
        "producer_version": metadata.producer_version,
        "metadata_format": metadata.format,
        "sizes": {
            "total": len(data),
            "plan": metadata.plan_bytes,
            "runtime": len(data) - metadata.plan_bytes,
        },
        "runtime": metadata.runtime or "unknown",
        "plan_sha256": metadata.plan_sha256,
        "module_sha256": hashlib.sha256(data).hexdigest(),
    }


def _describe_text(info: dict) -> list[str]:
    def tensor(t: dict) -> str:
        if t["shape"] is None:
            return f"{t['name']}: {t['dtype']} (any shape)"
        dims = ", ".join("?" if d is None else str(d) for d in t["shape"])
        return f"{t['name']}: {t['dtype']} ({dims})"

    sizes = info["sizes"]
    rows = [
        ("inputs", ", ".join(map(tensor, info["inputs"])) or "none"),
        ("outputs", ", ".join(map(tensor, info["outputs"])) or "none"),
        ("ops", f"{_count(info['nodes'], 'node')}: {_format_ops(info['ops'])}"),
        ("opsets", ", ".join(f"{d} {v}" for d, v in info["opsets"].items()) or "none"),
        ("framework", info["framework"]),
        ("producer", f"{info['producer']} {info['producer_version']}".strip()),
        (
            "size",
            f"{sizes['total']:,} bytes (plan {sizes['plan']:,}, {info['runtime']} runtime "
            f"{sizes['runtime']:,})",
        ),
        ("plan sha256", info["plan_sha256"]),
    ]
    width = max(len(k) for k, _ in rows)
    return [info["path"], *(f"  {k.ljust(width)}  {v}" for k, v in rows)]


@cli.command("ops")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@_verbosity_options
def ops_command(as_json: bool) -> None:
    """List the ops the runtime executes, by domain.

    Ops marked * are in the core runtime, the smaller module that neural networks are
    packaged into; a model with any other op gets the runtime with every op.

    \b
    Examples:
      wasmexport ops
      wasmexport ops --json | jq '."ai.onnx" | length'
    """
    from .packager.runtime_info import core_op_types, supported_op_types

    core = core_op_types()
    by_domain: dict[str, list[str]] = {}
    for domain, op in sorted(supported_op_types()):
        by_domain.setdefault(domain or "ai.onnx", []).append(op)
    if as_json:
        click.echo(json.dumps({"ops": by_domain, "core": sorted(core)}, indent=2))
        return
    for domain, ops in by_domain.items():
        click.echo(f"{domain} ({len(ops)} ops)")
        marked = [f"{op}*" if domain == "ai.onnx" and op in core else op for op in ops]
        for line in textwrap.wrap(", ".join(marked), width=88):
            click.echo(f"  {line}")
    click.echo("* in the core runtime")
