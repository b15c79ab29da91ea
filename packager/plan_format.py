"""The plan: the binary form of a model that the runtime executes (format version 3).

The layout is documented in docs/plan-format.md; the C reader is abi_runtime/src/load.c.
All integers are little-endian; records are 4-byte aligned; constant data is 64-byte
aligned so that kernels can read weights in place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DATA_ALIGN",
    "DIM_UNKNOWN",
    "PLAN_MAGIC",
    "PLAN_VERSION",
    "Attribute",
    "PlanBuilder",
    "PlanGraph",
    "PlanNode",
    "PlanValue",
    "TypeKind",
    "ValueKind",
]

PLAN_MAGIC = b"WXPLAN\0\0"
PLAN_VERSION = 3
HEADER_SIZE = 56
DATA_ALIGN = 64
RANK_UNKNOWN = 255
DIM_UNKNOWN = -1
MAX_RANK = 8


class TypeKind:
    """What a value holds (the low 4 bits of a value record's flags; TypeKind in tensor.h)."""

    TENSOR = 0
    SEQ_TENSOR = 1  # a sequence of tensors; dtype is the tensors' dtype
    SEQ_MAP = 2  # a sequence of maps (ZipMap), one key list for all maps
    MAP = 3
    OPT_TENSOR = 4  # an optional tensor: the tensor, or empty
    OPT_SEQ_TENSOR = 5  # an optional sequence of tensors


class ValueKind:
    """How a value gets its tensor at run time (ValueKind in model.h)."""

    ACTIVATION = 0  # computed by a node
    CONSTANT = 1  # an initializer, stored in the data section
    INPUT = 2  # a graph input, from the request


# ONNX AttributeProto.AttributeType codes used by the plan.
ATTR_FLOAT, ATTR_INT, ATTR_STRING, ATTR_TENSOR, ATTR_GRAPH = 1, 2, 3, 4, 5
ATTR_FLOATS, ATTR_INTS, ATTR_STRINGS = 6, 7, 8


@dataclass
class PlanValue:
    """One edge of the graph. dims: int >= 0, DIM_UNKNOWN, or a symbol name (str)."""

    name: str
    dtype: int  # ONNX TensorProto.DataType
    kind: int
    dims: tuple[int | str, ...] | None  # None: rank unknown
    data: np.ndarray | None = None  # constants only
    type_kind: int = TypeKind.TENSOR
    key_dtype: int = 0  # maps: ONNX dtype of the keys (INT64 or STRING)


@dataclass
class Attribute:
    """One node attribute; value is float, int, str, value index (TENSOR) or a list."""

    name: str
    type: int
    value: object


@dataclass
class PlanNode:
    name: str
    op_type: str
    domain: str
    opset: int
    inputs: list[int]  # value indices, -1 for an absent optional input
    outputs: list[int]
    attributes: list[Attribute] = field(default_factory=list)


@dataclass
class PlanGraph:
    nodes: list[PlanNode] = field(default_factory=list)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)


class _Strings:
    """The string table: NUL-terminated UTF-8 strings, each stored once."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}
        self.data = bytearray()

    def __call__(self, text: str) -> int:
        if text not in self.offsets:
            encoded = text.encode("utf-8")
            if b"\0" in encoded:
                raise ValueError(f"name {text!r} contains a NUL character")
            self.offsets[text] = len(self.data)
            self.data += encoded + b"\0"
        return self.offsets[text]


STRING_DTYPE = 8  # onnx.TensorProto.STRING


def _as_text(x: object) -> str:
    """An element of a string constant as text (ONNX stores bytes)."""
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _pad(buf: bytearray, align: int) -> None:
    buf += b"\0" * (-len(buf) % align)


class PlanBuilder:
    """Collects values and graphs, then serialises them with to_bytes()."""

    def __init__(self) -> None:
        self.values: list[PlanValue] = []
        self.graphs: list[PlanGraph] = [PlanGraph()]
        self.symbols: list[str] = []

    @property
    def main(self) -> PlanGraph:
        return self.graphs[0]

    def add_value(self, value: PlanValue) -> int:
        """Append a value and return its index."""
        for d in value.dims or ():
            if isinstance(d, str) and d not in self.symbols:
                self.symbols.append(d)
        self.values.append(value)
        return len(self.values) - 1

    def to_bytes(self) -> bytes:
        """Serialise the plan (header, string table, records, data)."""
        strings = _Strings()
        strings("")  # offset 0 is the empty string
        records = bytearray()
        data = bytearray()

        # step 1: symbols and values (activations with their last use)
        from .lifetimes import last_uses

        last = last_uses(self)
        for s in self.symbols:
            records += struct.pack("<I", strings(s))
        for i, v in enumerate(self.values):
            records += self._value_record(v, strings, data)
            if v.kind == ValueKind.ACTIVATION:
                records += struct.pack("<i", last.get(i, 0))

        # step 2: graphs
        for g in self.graphs:
            records += struct.pack("<III", len(g.nodes), len(g.inputs), len(g.outputs))
            for n in g.nodes:
                records += self._node_record(n, strings)
            records += struct.pack(f"<{len(g.inputs)}i", *g.inputs)
            records += struct.pack(f"<{len(g.outputs)}i", *g.outputs)

        # step 3: layout: header, strings, records (4-aligned), data (64-aligned)
        out = bytearray(HEADER_SIZE)
        str_off = len(out)
        out += strings.data
        _pad(out, 4)
        rec_off = len(out)
        out += records
        _pad(out, DATA_ALIGN)
        data_off = len(out)
        out += data
        header = struct.pack(
            "<8s12I",
            PLAN_MAGIC,
            PLAN_VERSION,
            len(out),
            str_off,
            len(strings.data),
            rec_off,
            len(records),
            data_off,
            len(data),
            len(self.symbols),
            len(self.values),
            len(self.graphs),
            0,
        )
        out[:HEADER_SIZE] = header
        return bytes(out)

    def _encode_dim(self, d: int | str) -> int:
        if isinstance(d, str):
            return -(self.symbols.index(d) + 2)
        return d if d >= 0 else DIM_UNKNOWN

    def _value_record(self, v: PlanValue, strings: _Strings, data: bytearray) -> bytes:
        rank = RANK_UNKNOWN if v.dims is None else len(v.dims)
        if rank != RANK_UNKNOWN and rank > MAX_RANK:
            raise ValueError(f"value {v.name!r} has rank {rank}, above the limit {MAX_RANK}")
        flags = v.type_kind | v.key_dtype << 4
        rec = struct.pack("<IBBBB", strings(v.name), v.dtype, v.kind, rank, flags)
        dims = [self._encode_dim(d) for d in v.dims or ()]
        rec += struct.pack(f"<{len(dims)}i", *dims)
        if v.kind == ValueKind.CONSTANT:
            assert v.data is not None
            if v.dtype == STRING_DTYPE:
                # one u32 string-table offset per element, C order
                texts = [_as_text(x) for x in np.asarray(v.data, dtype=object).ravel()]
                raw = struct.pack(f"<{len(texts)}I", *(strings(t) for t in texts))
            else:
                array = np.ascontiguousarray(v.data)
                raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
            _pad(data, DATA_ALIGN)
            rec += struct.pack("<II", len(data), len(raw))
            data += raw
        return rec

    def _node_record(self, n: PlanNode, strings: _Strings) -> bytes:
        rec = struct.pack(
            "<6I",
            strings(n.name),
            strings(n.op_type),
            strings(n.domain),
            n.opset,
            len(n.inputs) | len(n.outputs) << 16,
            len(n.attributes),
        )
        rec += struct.pack(f"<{len(n.inputs)}i", *n.inputs)
        rec += struct.pack(f"<{len(n.outputs)}i", *n.outputs)
        for a in n.attributes:
            rec += self._attr_record(a, strings)
        return rec

    @staticmethod
    def _attr_record(a: Attribute, strings: _Strings) -> bytes:
        v = a.value
        if a.type == ATTR_FLOAT:
            payload, count = struct.pack("<f", v), 1
        elif a.type == ATTR_INT:
            payload, count = struct.pack("<q", v), 1
        elif a.type == ATTR_STRING:
            payload, count = struct.pack("<I", strings(v)), 1
        elif a.type in (ATTR_TENSOR, ATTR_GRAPH):
            payload, count = struct.pack("<I", v), 1
        elif a.type == ATTR_FLOATS:
            payload, count = struct.pack(f"<{len(v)}f", *v), len(v)
        elif a.type == ATTR_INTS:
            payload, count = struct.pack(f"<{len(v)}q", *v), len(v)
        elif a.type == ATTR_STRINGS:
            payload = struct.pack(f"<{len(v)}I", *(strings(s) for s in v))
            count = len(v)
        else:
            raise ValueError(f"attribute {a.name!r}: unknown type {a.type}")
        return struct.pack("<III", strings(a.name), a.type, count) + payload
