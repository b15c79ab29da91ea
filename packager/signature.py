"""A module's signature and metadata, stored in its "wasmexport" custom section."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx

__all__ = [
    "METADATA_SECTION",
    "Metadata",
    "TensorSpec",
    "cast_same_kind",
    "dtype_name",
    "is_map_type",
    "numpy_dtype",
    "type_name",
]

METADATA_SECTION = "wasmexport"
METADATA_FORMAT = 1


def dtype_name(onnx_dtype: int) -> str:
    """numpy-style name of an ONNX data type ("float32", "int64", ...)."""
    if onnx_dtype == onnx.TensorProto.STRING:
        return "string"
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(onnx_dtype)).name


def type_name(type_proto: onnx.TypeProto) -> str:
    """Name of a value type: a dtype name, "map(K,V)" or "seq(map(K,V))" (as the runtime
    writes them in raw responses)."""
    which = type_proto.WhichOneof("value")
    if which == "map_type":
        m = type_proto.map_type
        return f"map({dtype_name(m.key_type)},{type_name(m.value_type)})"
    if which == "sequence_type":
        return f"seq({type_name(type_proto.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({type_name(type_proto.optional_type.elem_type)})"
    return dtype_name(type_proto.tensor_type.elem_type)


def is_map_type(name: str) -> bool:
    """True for "map(...)" and "seq(map(...))" type names."""
    return name.startswith(("map(", "seq(map("))


def numpy_dtype(name: str) -> np.dtype:
    """numpy dtype of a signature dtype name (strings map to object).

    numpy has no bfloat16: "bfloat16" maps to ``ml_dtypes.bfloat16`` (onnx's own
    dependency, and the type ``onnx.numpy_helper`` uses for BFLOAT16 tensors).
    """
    if name == "string":
        return np.dtype(object)
    if name == "bfloat16":
        import ml_dtypes  # registers bfloat16 with numpy

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def cast_same_kind(array: np.ndarray, name: str) -> np.ndarray | None:
    """`array` as signature dtype `name` where numpy's same_kind rule allows the cast
    (float64 -> float32, int32 -> int64, bool or int -> float); None where it does not
    (float -> int, int -> bool): the one casting rule of run(), verify and the CLI."""
    want = numpy_dtype(name)
    if array.dtype == want:
        return array
    if not np.can_cast(array.dtype, want, casting="same_kind"):
        return None
    return array.astype(want)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, dtype name, dims (int, or str for a symbol)."""

    name: str
    dtype: str
    shape: tuple[int | str | None, ...] | None

    def shape_str(self) -> str:
        if self.shape is None:
            return "(any shape)"
        return "(" + ", ".join("?" if d is None else str(d) for d in self.shape) + ")"

    @classmethod
    def from_value_info(cls, vi: onnx.ValueInfoProto) -> TensorSpec:
        if vi.type.WhichOneof("value") != "tensor_type":
            return cls(vi.name, type_name(vi.type), None)
        t = vi.type.tensor_type
        shape = None
        if t.HasField("shape"):
            shape = tuple(
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in t.shape.dim
            )
        return cls(vi.name, dtype_name(t.elem_type), shape)


@dataclass
class Metadata:
    """What a packaged module says about itself."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    producer: str = "wasmexport"
    producer_version: str = ""
    framework: str = "onnx"
    opsets: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    plan_sha256: str = ""
    plan_bytes: int = 0
    # the prebuilt runtime the plan is embedded into: "core", "full", or "custom"
    runtime: str = ""
    format: int = METADATA_FORMAT

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Metadata:
        raw = json.loads(data)
        for key in ("inputs", "outputs"):
            raw[key] = [
                TensorSpec(
                    s["name"], s["dtype"], None if s["shape"] is None else tuple(s["shape"])
                )
                for s in raw[key]
            ]
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in known})
