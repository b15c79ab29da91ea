"""The torch adapter: a ``torch.nn.Module`` to ONNX with ``torch.onnx.export``.

Two exporters:

    dynamo   (default) torch.export tracing, onnxscript translation and optimisation;
             default opset DYNAMO_DEFAULT_OPSET, the default of torch 2.13
    legacy   TorchScript tracing (``dynamo=False``); default opset LEGACY_DEFAULT_OPSET;
             the default for ``torch.jit.ScriptModule``, which dynamo cannot export

Either way the model is exported (and run on the samples) in eval mode, each submodule's
training flag restored afterwards; weights stay inline, graph inputs are named after the
``forward()`` parameters and graph outputs ``output`` (or ``output_0``, ``output_1``, ...
for several), and every axis asked to be dynamic must come out symbolic in the graph, with
the requested name.

torch is imported only when an export runs; `is_torch_module` never imports it.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import keyword
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import util as importlib_util
from typing import Any

import numpy as np
import onnx

from ..errors import ConvertError
from .onnx import (
    declared_dynamic_axes,
    default_opset,
    finalize_onnx_model,
    graph_inputs,
    rename_value,
)
from .registry import ExportedModel
from .sample_inputs import normalize_dynamic_axes, normalize_sample_inputs

__all__ = [
    "DYNAMO_DEFAULT_OPSET",
    "EXPORTERS",
    "LEGACY_DEFAULT_OPSET",
    "TorchAdapter",
    "is_torch_module",
]

logger = logging.getLogger(__name__)

# torch 2.13: torch.onnx._constants.ONNX_DEFAULT_OPSET (its torchlib is written for 18 and
# declares the requested opset >= 18; below 18 it runs the ONNX version converter).
DYNAMO_DEFAULT_OPSET = 20
LEGACY_DEFAULT_OPSET = 17
EXPORTERS = ("dynamo", "legacy")

TORCH_INSTALL_HINT = (
    "install torch==2.13.0 first (pip install torch==2.13.0, the CPU wheel), "
    "then pip install 'wasmexport[torch]'"
)

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def is_torch_module(model: object) -> bool:
    """Detect a ``torch.nn.Module`` (ScriptModules included) without importing torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(model, (torch.nn.Module, torch.jit.ScriptModule))


class TorchAdapter:
    """Export ``torch.nn.Module`` objects with the dynamo (default) or legacy exporter."""

    name = "torch"
    model_kind = "a torch.nn.Module"

    def export(
        self,
        model: Any,
        sample_inputs: object,
        *,
        dynamic_axes: object = None,
        opset: int | None = None,
        exporter: str | None = None,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        optimize: bool = True,
    ) -> ExportedModel:
        """Export a torch module to ONNX.

        Args:
            model: a ``torch.nn.Module`` or ``torch.jit.ScriptModule``.
            sample_inputs: a tensor/array, a tuple/list of them (forward() order), or a dict
                forward() parameter name -> tensor.
            dynamic_axes: see `wasmexport.exporters.to_onnx`; batch on axis 0 by default.
            opset: ai.onnx opset; DYNAMO_DEFAULT_OPSET or LEGACY_DEFAULT_OPSET when None.
            exporter: "dynamo" or "legacy"; dynamo, except legacy for ScriptModules.
            input_names: graph input names; the forward() parameter names by default.
            output_names: graph output names; "output" or "output_0", "output_1", ...
            optimize: run the dynamo exporter's onnxscript optimiser (dynamo only).

        Returns:
            The ExportedModel, with a ``run_framework`` that runs `model` in eval mode.

        Raises:
            ConvertError: torch or onnxscript missing, the model fails on the sample, the
                export fails, or a requested dynamic axis came out static.
            TypeError: `model` is not a torch module, or a sample has the wrong type.
        """
        torch = _import_torch()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"expected torch.nn.Module, got {type(model).__name__}")
        exporter = _choose_exporter(exporter, model, torch)
        if opset is None:
            opset = DYNAMO_DEFAULT_OPSET if exporter == "dynamo" else LEGACY_DEFAULT_OPSET
        model_name = type(model).__name__

        # step 1: samples, names and dynamic axes; one forward pass counts the outputs
        arrays, sample_names = normalize_sample_inputs(sample_inputs)
        arrays, param_names = _match_forward(model, arrays, sample_names)
        input_names = _check_names(input_names, param_names, "input_names")
        run_framework = _make_runner(model, torch)
        outputs = _run_sample(run_framework, arrays, model_name, _dtype_hint(model, arrays))
        default_outputs = (
            ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
        )
        output_names = _check_names(output_names, default_outputs, "output_names")
        axes = normalize_dynamic_axes(dynamic_axes, input_names, arrays)

        # step 2: export in eval mode
        args = tuple(torch.from_numpy(np.array(a, copy=True)) for a in arrays)
        logger.info(
            "torch: exporting %s with the %s exporter, opset %d", model_name, exporter, opset
        )
        try:
            with _eval_mode(model):
                if exporter == "dynamo":
                    onnx_model = _export_dynamo(
                        torch, model, args, input_names, output_names, axes, opset, optimize
                    )
                else:
                    onnx_model = _export_legacy(
                        torch, model, args, input_names, output_names, axes, opset
                    )
        except Exception as e:
            raise _export_error(exporter, model_name, e, bool(axes)) from e

        # step 3: names, dims and opset as requested, then the common checks
        _fix_input_names(onnx_model, input_names, arrays, axes)
        _fix_output_names(onnx_model, output_names, model_name)
        _check_dynamic_axes(onnx_model, axes, exporter, model_name)
        if default_opset(onnx_model) != opset:
            raise ConvertError(
                f"torch exporter ({exporter}): asked for opset {opset}, the exported model "
                f"of {model_name} has opset {default_opset(onnx_model)}; pick opset >= 18 "
                "for dynamo"
            )
        onnx_model = finalize_onnx_model(onnx_model, framework="torch")
        logger.info("torch: exported %s, %d nodes", model_name, len(onnx_model.graph.node))

        return ExportedModel(
            onnx_model=onnx_model,
            framework="torch",
            input_names=list(input_names),
            output_names=list(output_names),
            sample_inputs=arrays,
            dynamic_axes=declared_dynamic_axes(onnx_model),
            run_framework=run_framework,
        )


def _import_torch() -> Any:
    """Import torch, or fail with the exact install command."""
    try:
        import torch
    except ImportError as e:
        raise ConvertError(
            f"The torch adapter needs PyTorch, which is not installed: {TORCH_INSTALL_HINT}"
        ) from e
    return torch


def _choose_exporter(exporter: str | None, model: Any, torch: Any) -> str:
    """Resolve the exporter name; dynamo by default, legacy for ScriptModules."""
    if exporter is None:
        exporter = "legacy" if isinstance(model, torch.jit.ScriptModule) else "dynamo"
    if exporter not in EXPORTERS:
        raise ConvertError(
            f"torch: unknown exporter {exporter!r}; expected one of {', '.join(EXPORTERS)}"
        )
    if exporter == "dynamo" and importlib_util.find_spec("onnxscript") is None:
        raise ConvertError(
            "The dynamo torch exporter needs onnxscript, which is not installed: "
            f"{TORCH_INSTALL_HINT} (or pass exporter='legacy')"
        )
    return exporter


def _forward_params(model: Any) -> tuple[list[str], int, bool]:
    """forward()'s positional parameter names, how many are required, and whether *args."""
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return [], 0, True
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [p for p in signature.parameters.values() if p.kind in kinds]
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    var = any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()
    )
    return [p.name for p in params], required, var


def _match_forward(
    model: Any, arrays: list[np.ndarray], sample_names: list[str] | None
) -> tuple[list[np.ndarray], list[str]]:
    """Line the samples up with forward()'s parameters; return them and their names."""
    names, required, var = _forward_params(model)
    where = f"{type(model).__name__}.forward({', '.join(names)})"
    if sample_names is not None:
        if set(sample_names) != set(names[: len(sample_names)]):
            raise ConvertError(
                f"torch: sample input names {sample_names} must be the first parameters of "
                f"{where}"
            )
        by_name = dict(zip(sample_names, arrays, strict=True))
        arrays = [by_name[n] for n in names[: len(arrays)]]
    if len(arrays) < required or (len(arrays) > len(names) and not var):
        raise ConvertError(
            f"torch: {where} takes {required}..{len(names)} inputs, "
            f"got {len(arrays)} sample input(s)"
        )
    extra = [f"input_{i}" for i in range(len(names), len(arrays))]
    return arrays, names[: len(arrays)] + extra


def _check_names(names: Sequence[str] | None, default: list[str], what: str) -> list[str]:
    """User-given graph value names, checked; or the defaults."""
    if names is None:
        return default
    if isinstance(names, str) or not all(isinstance(n, str) and n for n in names):
        raise TypeError(f"expected {what} as a list of non-empty str, got {names!r}")
    names = list(names)
    if len(names) != len(default) or len(set(names)) != len(names):
        raise ConvertError(f"torch: {what} must be {len(default)} distinct names, got {names}")
    return names


def _make_runner(model: Any, torch: Any) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """run_framework: the model in eval mode, no grad, outputs flattened in graph order."""

    def run_framework(inputs: list[np.ndarray]) -> list[np.ndarray]:
        tensors = [torch.from_numpy(np.array(a, copy=True)) for a in inputs]
        with _eval_mode(model), torch.no_grad():
            outputs = model(*tensors)
        return [t.detach().cpu().numpy() for t in _flatten_outputs(outputs, torch)]

    return run_framework


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    """Put `model` in eval mode for the block, then give each submodule its own mode back.

    ``model.train(was_training)`` alone would set one flag on every submodule and turn a
    part the user had frozen in eval mode (a BatchNorm, say) back to training.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        model.train(modes[0][1])  # through train(), which a model may override
        for module, training in modes:
            if module.training != training:
                module.training = training


def _flatten_outputs(outputs: Any, torch: Any) -> list[Any]:
    """Tensors of a (nested) tuple/list/dict output, in torch's pytree order (None skipped)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if outputs is None:
        return []
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (list, tuple)):
        return [t for item in outputs for t in _flatten_outputs(item, torch)]
    raise ConvertError(
        f"torch: the model returned a {type(outputs).__name__}; only tensors (in tuples, "
        "lists or dicts) can be graph outputs"
    )


def _run_sample(
    run_framework: Callable[[list[np.ndarray]], list[np.ndarray]],
    arrays: list[np.ndarray],
    model_name: str,
    hint: str,
) -> list[np.ndarray]:
    """Run the model once on the samples; a failure names their dtypes and shapes (+ hint)."""
    try:
        outputs = run_framework(arrays)
    except ConvertError:
        raise
    except Exception as e:
        shapes = ", ".join(f"{a.dtype.name}{tuple(a.shape)}" for a in arrays)
        raise ConvertError(
            f"torch: running {model_name} on the sample inputs ({shapes}) failed: "
            f"{type(e).__name__}: {_cause_line(e)}{hint}"
        ) from e
    if not outputs:
        raise ConvertError(f"torch: {model_name} returned no tensors")
    return outputs


def _dtype_hint(model: Any, arrays: list[np.ndarray]) -> str:
    """The fix for the commonest failure on a sample: float64 data for a float32 model.

    numpy makes float64 arrays by default and torch does not promote them to the
    parameters' dtype, so the first Conv or Linear fails with a dtype mismatch.
    """
    if not any(a.dtype == np.float64 for a in arrays):
        return ""
    parameter_dtypes = {str(p.dtype) for p in model.parameters()}
    if parameter_dtypes != {"torch.float32"}:
        return ""
    return (
        "; the sample is float64 while the model's parameters are float32: pass a float32 "
        "sample (x.astype(np.float32))"
    )


def _export_dynamo(
    torch: Any,
    model: Any,
    args: tuple[Any, ...],
    input_names: list[str],
    output_names: list[str],
    axes: dict[str, dict[int, str]],
    opset: int,
    optimize: bool,
) -> onnx.ModelProto:
    """torch.onnx.export(dynamo=True) with one torch.export.Dim per dynamic axis name."""
    dims: dict[str, Any] = {}

    def dim(name: str) -> Any:
        # NOTE: torch.export.Dim needs an identifier; other names go in as strings, which
        # torch turns into Dim.DYNAMIC and renames in the graph afterwards.
        if not name.isidentifier() or keyword.iskeyword(name):
            return name
        return dims.setdefault(name, torch.export.Dim(name))

    dynamic_shapes = None
    if axes:
        dynamic_shapes = tuple(
            {axis: dim(name) for axis, name in axes[n].items()} if n in axes else None
            for n in input_names
        )
    with warnings.catch_warnings(), _quiet_registration_log():
        # inputs sharing a dim name share one Dim; torch warns that it names it once
        warnings.filterwarnings("ignore", message=r"# The axis name: .* will not be used")
        # torch's own pytree code trips over its own deprecation while exporting
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec")
        program = torch.onnx.export(
            model,
            args,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            input_names=input_names,
            output_names=output_names,
            opset_version=opset,
            optimize=optimize,
            external_data=False,
            verbose=False,
        )
    # TODO(exporters): a model over 2 GB cannot be held inline in one ModelProto; refuse it
    # with a clear ConvertError instead of protobuf's serialisation error.
    return program.model_proto


@contextlib.contextmanager
def _quiet_registration_log():
    """Silence torch.onnx's per-export notes that optional torchvision ops are absent.

    The dynamo exporter logs one warning per torchvision op it cannot register when
    torchvision is not installed; none of them concerns the model being exported.
    """
    log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _export_legacy(
    torch: Any,
    model: Any,
    args: tuple[Any, ...],
    input_names: list[str],
    output_names: list[str],
    axes: dict[str, dict[int, str]],
    opset: int,
) -> onnx.ModelProto:
    """torch.onnx.export(dynamo=False) into memory."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # the user chose legacy; torch's notices about it are not actionable here
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, message="You are using the legacy"
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(
            model,
            args,
            buffer,
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=axes or None,
            opset_version=opset,
            verbose=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def _export_error(
    exporter: str, model_name: str, error: Exception, dynamic: bool
) -> ConvertError:
    other = "legacy" if exporter == "dynamo" else "dynamo"
    hint = f"try exporter={other!r}"
    if dynamic:
        hint += ", or dynamic_axes=False for a static export"
    return ConvertError(
        f"torch exporter ({exporter}) failed on {model_name}: "
        f"{type(_root_cause(error)).__name__}: {_cause_line(error)}. Hint: {hint}"
    )


def _fix_input_names(
    onnx_model: onnx.ModelProto,
    input_names: list[str],
    arrays: list[np.ndarray],
    axes: dict[str, dict[int, str]],
) -> None:
    """Make the graph inputs exactly `input_names`, re-adding inputs the export dropped.

    The legacy exporter drops inputs the model never reads; ExportedModel promises one
    graph input per sample, so they come back as unused graph inputs.
    """
    graph = onnx_model.graph
    current = [value.name for value in graph_inputs(onnx_model)]
    if current == input_names:
        return
    if len(current) == len(input_names) and not set(current) <= set(input_names):
        for old, new in zip(current, input_names, strict=True):
            if old != new:
                rename_value(graph, old, new)
        return
    if not set(current) <= set(input_names):
        raise ConvertError(
            f"torch: the exported graph inputs {current} do not match the inputs {input_names}"
        )

    by_name = {value.name: value for value in graph.input}
    initializers = [v for v in graph.input if v.name not in input_names]
    values = []
    for name, array in zip(input_names, arrays, strict=True):
        if name in by_name:
            values.append(by_name[name])
            continue
        logger.warning("torch: input %r is unused by the model; kept as a graph input", name)
        shape = [axes.get(name, {}).get(axis, size) for axis, size in enumerate(array.shape)]
        elem_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
        values.append(onnx.helper.make_tensor_value_info(name, elem_type, shape))
    del graph.input[:]
    graph.input.extend(values + initializers)


def _fix_output_names(
    onnx_model: onnx.ModelProto, output_names: list[str], model_name: str
) -> None:
    """Make the graph outputs exactly `output_names` (rename, or Identity when shared)."""
    graph = onnx_model.graph
    current = [value.name for value in graph.output]
    if len(current) != len(output_names):
        raise ConvertError(
            f"torch: the exported graph of {model_name} has {len(current)} output(s), "
            f"the model returns {len(output_names)}"
        )
    produced = {name for node in graph.node for name in node.output}
    inputs = {value.name for value in graph.input}
    for i, (old, new) in enumerate(zip(current, output_names, strict=True)):
        if old == new:
            continue
        if old in produced and old not in inputs and current.count(old) == 1:
            rename_value(graph, old, new)
        else:
            graph.node.append(
                onnx.helper.make_node("Identity", [old], [new], name=f"{new}_identity")
            )
            graph.output[i].name = new
        current[i] = new


def _check_dynamic_axes(
    onnx_model: onnx.ModelProto,
    axes: dict[str, dict[int, str]],
    exporter: str,
    model_name: str,
) -> None:
    """Every requested dynamic axis must be symbolic in the graph; warn on a renamed one."""
    inputs = {value.name: value for value in graph_inputs(onnx_model)}
    for name, named_axes in axes.items():
        dims = inputs[name].type.tensor_type.shape.dim
        for axis, dim_name in named_axes.items():
            dim = dims[axis]
            if dim.HasField("dim_value"):
                raise ConvertError(
                    f"torch exporter ({exporter}): axis {axis} ({dim_name!r}) of input "
                    f"{name!r} was requested dynamic but came out static ({dim.dim_value}): "
                    f"{model_name} specialises it (e.g. a reshape or broadcast with a fixed "
                    "size). Fix the model, or leave the axis out of dynamic_axes"
                )
            if dim.dim_param != dim_name:
                logger.warning(
                    "torch: axis %d of input %r is named %r in the graph, not %r "
                    "(the exporter tied it to another dim)",
                    axis,
                    name,
                    dim.dim_param,
                    dim_name,
                )


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _cause_line(error: BaseException) -> str:
    """The first line of the root cause (two when the first ends with ':'), without ANSI."""
    root = _root_cause(error)
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", str(root)).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return type(root).__name__
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]
