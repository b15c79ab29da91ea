"""The public API: export_wasm, load, verify."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .abi_runtime.host import WasmModel, load
from .errors import UnsupportedOpError, VerifyError
from .packager.package import PackagedModel, package
from .packager.signature import Metadata
from .progress import stage
from .verifier import DEFAULT_ATOL, DEFAULT_RTOL, VerifyReport
from .verifier import verify as _verify_module

__all__ = ["ExportResult", "diagnose_mismatch", "export_wasm", "load", "verify"]

logger = logging.getLogger(__name__)


@dataclass
class ExportResult:
    """What export_wasm wrote and how it checked out."""

    path: Path
    onnx_model: onnx.ModelProto = field(repr=False)
    metadata: Metadata = field(repr=False)
    report: VerifyReport | None
    framework: str
    wasm_bytes: int

    def __str__(self) -> str:
        head = f"{self.path} ({self.wasm_bytes:,} bytes, from {self.framework})"
        return head if self.report is None else f"{head}\n{self.report}"


def export_wasm(
    model,
    sample_inputs,
    path: str | os.PathLike,
    *,
    framework: str | None = None,
    dynamic_axes=None,
    opset: int | None = None,
    verify: bool = True,
    simd: str = "plain",
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    **options,
) -> ExportResult:
    """Export a trained model to one self-contained, verified WebAssembly (WASI) file.

    Args:
        model: a torch.nn.Module, a Keras model, a tf.function, a SavedModel directory, a
            fitted scikit-learn estimator, an onnx.ModelProto or a path to a .onnx file
            (more frameworks through adapters; see wasmexport.exporters).
        sample_inputs: example inputs: an array/tensor, a list of them, or a dict by name.
        path: where to write the .wasm file.
        framework: the adapter to use ("torch", "onnx", ...); detected when None.
        dynamic_axes: None (axis 0 of every input is a dynamic batch), False (all static),
            or ``{input name or index: {axis: name}}``.
        opset: the ai.onnx opset to export with; the adapter's default when None.
        verify: run the sample through the framework, onnxruntime and the module and
            raise VerifyError on a mismatch.
        rtol, atol: the verifier's tolerance, |wasm - ref| <= atol + rtol * |ref|.
        simd: "plain" (SIMD128, every host) or "relaxed" (fused multiply-add in exp's
            polynomial; the GEMM is the same in both; the host must enable the
            relaxed-SIMD proposal: wasmtime does by default, Node 20 needs
            --experimental-wasm-relaxed-simd).
        **options: adapter options, e.g. ``exporter="legacy"`` for torch, ``zipmap=False``
            or ``dtype="float64"`` for sklearn.

    Returns:
        An ExportResult with the path, the ONNX model, the metadata and the report.

    Raises:
        ConvertError: the framework model could not be exported to ONNX.
        UnsupportedOpError: a node the runtime cannot execute.
        PackageError: the ONNX model could not be packaged.
        VerifyError: the module's outputs differ from the framework's or onnxruntime's.
    """
    from .exporters import to_onnx

    # step 1: framework -> ONNX
    with stage("Exporting to ONNX"):
        exported = to_onnx(model, sample_inputs, framework=framework,
                           dynamic_axes=dynamic_axes, opset=opset, **options)  # fmt: skip

    # step 2: ONNX -> wasm
    with stage("Lowering and packaging"):
        packaged = _package(exported, simd)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(packaged.wasm)
    logger.info("wrote %s (%d bytes)", out, len(packaged.wasm))

    # step 3: verify
    report = None
    if verify:
        with stage("Verifying"), WasmModel(packaged.wasm) as module:
            report = _verify_module(
                module,
                exported.onnx_model,
                exported.sample_inputs,
                run_framework=exported.run_framework,
                rtol=rtol,
                atol=atol,
            )
    return ExportResult(out, exported.onnx_model, packaged.metadata, report,
                        exported.framework, len(packaged.wasm))  # fmt: skip


def _package(exported, simd: str) -> PackagedModel:
    """Package an ExportedModel; a refused float64 input of a torch model says how to fix it.

    The packager refuses float64 inputs of ops the runtime computes in float32 only (Conv,
    for one). In a torch model they come from ``model.double()``, which ``model.float()``
    undoes; the packager knows no framework, so the hint is added here.
    """
    try:
        return package(exported.onnx_model, framework=exported.framework, simd=simd)
    except UnsupportedOpError as e:
        if exported.framework != "torch" or e.dtype != "DOUBLE":
            raise
        raise UnsupportedOpError(
            f"{e} The torch model computes in float64: convert the model with model.float() "
            "and pass a float32 sample",
            node=e.node,
            op_type=e.op_type,
            opset=e.opset,
            dtype=e.dtype,
        ) from e


def verify(
    wasm: str | os.PathLike | bytes,
    onnx_model: onnx.ModelProto | str | os.PathLike,
    sample_inputs,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    raise_on_failure: bool = True,
) -> VerifyReport:
    """Check a packaged module against an ONNX model on sample inputs.

    Args:
        wasm: the .wasm file (path or bytes).
        onnx_model: the ONNX model (ModelProto or path) it should compute.
        sample_inputs: an array, a list in graph-input order, or a dict by input name.

    Raises:
        VerifyError: when an output is out of tolerance and raise_on_failure is True.
    """
    if not isinstance(onnx_model, onnx.ModelProto):
        onnx_model = onnx.load(os.fspath(onnx_model))
    with load(wasm) as module:
        names = [s.name for s in module.inputs]
        if isinstance(sample_inputs, dict):
            arrays = [np.asarray(sample_inputs[n]) for n in names]
        elif isinstance(sample_inputs, (list, tuple)):
            arrays = [np.asarray(a) for a in sample_inputs]
        else:
            arrays = [np.asarray(sample_inputs)]
        report = _verify_module(module, onnx_model, arrays, rtol=rtol, atol=atol,
                                raise_on_failure=False)  # fmt: skip
        if not report.passed:
            report.diagnosis = diagnose_mismatch(module, onnx_model)
    if raise_on_failure and not report.passed:
        raise VerifyError(f"verification failed:\n{report}", report)
    return report


def diagnose_mismatch(module: WasmModel, onnx_model: onnx.ModelProto) -> str:
    """Tell whether onnx_model is the model the module was packaged from, by plan hash."""
    try:
        plan_sha256 = package(onnx_model).metadata.plan_sha256
    except Exception as e:  # noqa: BLE001 - a model that cannot be packaged is a diagnosis too
        return f"the ONNX model cannot be packaged ({e}), so it is not this module's model"
    if plan_sha256 != module.metadata.plan_sha256:
        return (
            "the ONNX model is not the one this module was packaged from (their plans "
            "differ: other weights, ops or opset); compare the module with its own model"
        )
    return ("the module is packaged from this very model, so the difference is the wasm "
            "runtime's: at float rounding level (a few units in the last place) it is "
            "summation order, and atol/rtol are too tight; above that the runtime computes "
            "it wrong")
