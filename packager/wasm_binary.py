"""Read, patch and write WebAssembly binary modules at the level of sections.

A small reader/writer of the core binary format (version 1), enough for the packager to
embed a plan into the prebuilt runtime without a compiler: list and remove exports, look up
function types, replace function bodies, append a passive data segment (with its DataCount
section) and read or write custom sections.

A module is kept as its ordered list of sections. Sections that were not changed are written
back exactly as they were read, so ``WasmBinary.parse(data).to_bytes() == data``. Section
contents are decoded lazily, by the method that needs them; every read is bounds-checked and a
malformed module raises ``PackageError`` naming the offset and the reason, never
``IndexError``.

Vocabulary follows the spec: *function index space* (imported functions first, then the
functions the module defines), *type index*, *data segment*, *external kind*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import NoReturn, TypeVar

from wasmexport.errors import PackageError

__all__ = [
    "KIND_FUNC",
    "KIND_GLOBAL",
    "KIND_MEMORY",
    "KIND_TABLE",
    "KIND_TAG",
    "Section",
    "WasmBinary",
    "decode_sleb128",
    "decode_uleb128",
    "encode_sleb128",
    "encode_uleb128",
]

_T = TypeVar("_T")

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"
MAX_U32 = 2**32 - 1

# Section ids of the core spec (plus exception handling's tag section).
SECTION_CUSTOM = 0
SECTION_TYPE = 1
SECTION_IMPORT = 2
SECTION_FUNCTION = 3
SECTION_TABLE = 4
SECTION_MEMORY = 5
SECTION_GLOBAL = 6
SECTION_EXPORT = 7
SECTION_START = 8
SECTION_ELEMENT = 9
SECTION_CODE = 10
SECTION_DATA = 11
SECTION_DATACOUNT = 12
SECTION_TAG = 13

SECTION_NAMES = {
    SECTION_CUSTOM: "custom",
    SECTION_TYPE: "type",
    SECTION_IMPORT: "import",
    SECTION_FUNCTION: "function",
    SECTION_TABLE: "table",
    SECTION_MEMORY: "memory",
    SECTION_GLOBAL: "global",
    SECTION_EXPORT: "export",
    SECTION_START: "start",
    SECTION_ELEMENT: "element",
    SECTION_CODE: "code",
    SECTION_DATA: "data",
    SECTION_DATACOUNT: "datacount",
    SECTION_TAG: "tag",
}

# NOTE: the order non-custom sections must appear in; it is not the order of their ids.
SECTION_ORDER = (
    SECTION_TYPE,
    SECTION_IMPORT,
    SECTION_FUNCTION,
    SECTION_TABLE,
    SECTION_MEMORY,
    SECTION_TAG,
    SECTION_GLOBAL,
    SECTION_EXPORT,
    SECTION_START,
    SECTION_ELEMENT,
    SECTION_DATACOUNT,
    SECTION_CODE,
    SECTION_DATA,
)
_SECTION_RANK = {section_id: rank for rank, section_id in enumerate(SECTION_ORDER)}

# External kinds (imports and exports).
KIND_FUNC = 0x00  # function
KIND_TABLE = 0x01  # table
KIND_MEMORY = 0x02  # memory
KIND_GLOBAL = 0x03  # global
KIND_TAG = 0x04  # exception tag

FUNC_TYPE_FORM = 0x60  # prefix of a function type in the type section
PASSIVE_SEGMENT = 0x01  # data segment flag: passive, no memory index, no offset
END = 0x0B  # opcode ending every expression

# Value types that are one byte long: numbers, v128 and the shorthand reference types.
_ONE_BYTE_VALTYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x7B, *range(0x69, 0x75)})
_TYPED_REF_PREFIXES = frozenset({0x63, 0x64})  # (ref null ht), (ref ht): heap type follows
_LIMITS_HAS_MAX = 0x01
_LIMITS_64BIT = 0x04
_LIMITS_KNOWN_FLAGS = 0x07  # has-max, shared, 64-bit


# ---------------------------------------------------------------------------------------------
# LEB128


def encode_uleb128(value: int) -> bytes:
    """Encode a non-negative integer as unsigned LEB128 (minimal length)."""
    if value < 0:
        raise ValueError(f"unsigned LEB128 cannot encode {value}")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value == 0:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def encode_sleb128(value: int) -> bytes:
    """Encode an integer as signed (two's complement) LEB128 (minimal length)."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7  # Python's >> is arithmetic
        sign_bit = low & 0x40
        if (value == 0 and not sign_bit) or (value == -1 and sign_bit):
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def decode_uleb128(data: bytes, pos: int, bits: int = 32) -> tuple[int, int]:
    """Decode an unsigned LEB128 ``u<bits>`` at ``pos``; return ``(value, next_pos)``.

    Raises:
        ValueError: the encoding is truncated, longer than ``ceil(bits / 7)`` bytes, or its
            value does not fit in ``bits`` bits (the spec's rules for ``uN``).
    """
    result = shift = 0
    for _ in range((bits + 6) // 7):
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> bits:
                raise ValueError(f"LEB128 value too large for u{bits}")
            return result, pos
        shift += 7
    raise ValueError(f"LEB128 longer than {(bits + 6) // 7} bytes for u{bits}")


def decode_sleb128(data: bytes, pos: int, bits: int = 32) -> tuple[int, int]:
    """Decode a signed LEB128 ``s<bits>`` at ``pos``; return ``(value, next_pos)``.

    Raises:
        ValueError: the encoding is truncated, too long, or out of range for ``s<bits>``.
    """
    result = shift = 0
    for _ in range((bits + 6) // 7):
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if byte & 0x40:
                result -= 1 << shift
            if not -(1 << (bits - 1)) <= result < 1 << (bits - 1):
                raise ValueError(f"LEB128 value out of range for s{bits}")
            return result, pos
    raise ValueError(f"LEB128 longer than {(bits + 6) // 7} bytes for s{bits}")


# ---------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """A bounds-checked cursor over bytes; every failure raises ``PackageError``.

    ``base`` is the offset of ``data`` in the parsed module (for messages) and ``where``
    names the part being read, e.g. "export section".
    """

    def __init__(self, data: bytes, *, base: int = 0, where: str = "module") -> None:
        self.data = data
        self.pos = 0
        self.base = base
        self.where = where

    def error(self, reason: str, pos: int | None = None) -> PackageError:
        """Build the ``PackageError`` for ``reason`` at ``pos`` (default: the cursor)."""
        offset = self.base + (self.pos if pos is None else pos)
        return PackageError(f"Invalid wasm module: {reason} at offset {offset} ({self.where})")

    def fail(self, reason: str, pos: int | None = None) -> NoReturn:
        """Raise ``PackageError`` for ``reason`` at ``pos`` (default: the cursor)."""
        raise self.error(reason, pos)

    def at_end(self) -> bool:
        """Tell whether every byte has been read."""
        return self.pos >= len(self.data)

    def expect_end(self) -> None:
        """Fail unless every byte has been read."""
        if not self.at_end():
            self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")

    def byte(self) -> int:
        """Read one byte."""
        if self.pos >= len(self.data):
            self.fail("unexpected end of data")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int, what: str = "bytes") -> bytes:
        """Read ``n`` bytes."""
        if n > len(self.data) - self.pos:
            left = len(self.data) - self.pos
            self.fail(f"{what} of length {n} runs past the end ({left} bytes left)")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def _leb(self, decode: Callable[[bytes, int, int], tuple[int, int]], bits: int) -> int:
        """Read one LEB128 number with ``decode``; its ``ValueError`` becomes a failure."""
        try:
            value, self.pos = decode(self.data, self.pos, bits)
        except ValueError as e:
            raise self.error(str(e)) from e
        return value

    def u32(self) -> int:
        """Read an unsigned LEB128 u32."""
        return self._leb(decode_uleb128, 32)

    def u64(self) -> int:
        """Read an unsigned LEB128 u64."""
        return self._leb(decode_uleb128, 64)

    def s33(self) -> int:
        """Read a signed LEB128 s33 (a heap or block type)."""
        return self._leb(decode_sleb128, 33)

    def name(self) -> str:
        """Read a name: a u32 length and that many bytes of UTF-8."""
        start = self.pos
        raw = self.take(self.u32(), "name")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.error("name is not valid UTF-8", start) from e

    def vector(self, read_item: Callable[[_Reader], _T]) -> list[_T]:
        """Read a vector: a u32 count, then ``read_item`` that many times."""
        count = self.u32()
        if count > len(self.data) - self.pos:  # every item takes at least one byte
            self.fail(f"vector of {count} items is longer than the data left")
        return [read_item(self) for _ in range(count)]

    def valtype(self) -> int:
        """Read a value type; typed references keep their prefix byte, not their heap type."""
        start = self.pos
        code = self.byte()
        if code in _TYPED_REF_PREFIXES:
            self.s33()
        elif code not in _ONE_BYTE_VALTYPES:
            self.fail(f"unknown value type 0x{code:02x}", start)
        return code

    def limits(self) -> None:
        """Skip table or memory limits (flags, min, optional max; 32- or 64-bit)."""
        start = self.pos
        flags = self.byte()
        if flags & ~_LIMITS_KNOWN_FLAGS:
            self.fail(f"unknown limits flags 0x{flags:02x}", start)
        read = self.u64 if flags & _LIMITS_64BIT else self.u32
        read()
        if flags & _LIMITS_HAS_MAX:
            read()


def _read_import(r: _Reader) -> tuple[str, str, int, int | None]:
    """Read one import; return ``(module, name, kind, type index or None)``."""
    module, name = r.name(), r.name()
    start = r.pos
    kind = r.byte()
    type_index = None
    if kind == KIND_FUNC:
        type_index = r.u32()
    elif kind == KIND_TABLE:
        r.valtype()
        r.limits()
    elif kind == KIND_MEMORY:
        r.limits()
    elif kind == KIND_GLOBAL:
        r.valtype()
        if r.byte() > 1:
            r.fail("global mutability must be 0 or 1", r.pos - 1)
    elif kind == KIND_TAG:
        if r.byte() != 0:
            r.fail("tag attribute must be 0", r.pos - 1)
        r.u32()
    else:
        r.fail(f"unknown import kind 0x{kind:02x}", start)
    return module, name, kind, type_index


def _read_func_type(r: _Reader) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Read one function type; return ``(params, results)`` as value type codes."""
    start = r.pos
    form = r.byte()
    if form != FUNC_TYPE_FORM:
        r.fail(f"unsupported type form 0x{form:02x} (only function types 0x60)", start)
    params = tuple(r.vector(_Reader.valtype))
    results = tuple(r.vector(_Reader.valtype))
    return params, results


def _read_export(r: _Reader) -> tuple[str, int, int]:
    """Read one export; return ``(name, kind, index)``."""
    name = r.name()
    start = r.pos
    kind = r.byte()
    if kind > KIND_TAG:
        r.fail(f"unknown export kind 0x{kind:02x}", start)
    return name, kind, r.u32()


def _read_code_span(r: _Reader) -> tuple[int, int, int]:
    """Read one code entry; return ``(entry start, body start, body end)`` offsets."""
    entry_start = r.pos
    size = r.u32()
    body_start = r.pos
    r.take(size, "function body")
    return entry_start, body_start, r.pos


# ---------------------------------------------------------------------------------------------
# The module


@dataclass(frozen=True)
class Section:
    """One section: its id and payload (for custom sections the payload starts with the name).

    The payload is held as ``parts`` whose concatenation it is, so that a large appended
    data segment is copied only once, into the final module, and not into the section first.
    ``offset`` is where the payload sat in the parsed input (``None`` for a section built
    here) and ``size_leb`` the original encoding of its size, kept so that an unchanged
    section is written back byte for byte even if its size was not minimally encoded.
    """

    id: int
    parts: tuple[bytes, ...]
    offset: int | None = field(default=None, compare=False)
    size_leb: bytes | None = field(default=None, compare=False, repr=False)

    @cached_property
    def payload(self) -> bytes:
        """Return the payload as one byte string (joined on first use)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], bytes):
            return self.parts[0]
        return b"".join(self.parts)

    @property
    def size(self) -> int:
        """Return the payload size in bytes."""
        return sum(memoryview(part).nbytes for part in self.parts)

    @property
    def label(self) -> str:
        """Name the section for messages, e.g. "code section"."""
        return f"{SECTION_NAMES.get(self.id, f'unknown ({self.id})')} section"

    def reader(self) -> _Reader:
        """Return a reader over the payload that reports offsets in the parsed input."""
        where = self.label if self.offset is not None else f"rebuilt {self.label}"
        return _Reader(self.payload, base=self.offset or 0, where=where)

    def custom_name(self) -> str:
        """Read the name of a custom section."""
        return self.reader().name()

    def encode(self) -> list[bytes]:
        """Return the section as byte strings to join: id, size, payload parts."""
        size = self.size_leb
        if size is None:
            size = encode_uleb128(self.size)
        return [bytes((self.id,)), size, *self.parts]


class WasmBinary:
    """A wasm module as an ordered list of sections, with the few edits the packager needs.

    Build one with ``WasmBinary.parse(data)``; write it with ``to_bytes()``.
    """

    def __init__(self, sections: Iterable[Section] = ()) -> None:
        self.sections: list[Section] = list(sections)

    # -- whole module ---------------------------------------------------------------------

    @classmethod
    def parse(cls, data: bytes) -> WasmBinary:
        """Parse a module's header and section framing.

        Checks the magic number and version, every section id, size and position (known
        sections at most once, in the canonical order) and the names of custom sections.
        Section contents are decoded later, by the methods that read them.

        Raises:
            PackageError: the bytes are not a well-formed wasm module; the message names the
                offset and the reason.
            TypeError: ``data`` is not bytes-like.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes, got {type(data).__name__}")
        r = _Reader(bytes(data), where="module header")
        # step 1: header
        if r.take(4, "magic number") != MAGIC:
            r.fail("bad magic number (not a wasm module)", 0)
        version = r.take(4, "version")
        if version != VERSION:
            r.fail(f"unsupported version {version.hex(' ')} (expected 01 00 00 00)", 4)

        # step 2: sections
        r.where = "section headers"
        module = cls()
        last_rank = -1
        while not r.at_end():
            id_pos = r.pos
            section = cls._read_section(r)
            if section.id != SECTION_CUSTOM:
                rank = _SECTION_RANK[section.id]
                if rank <= last_rank:
                    r.fail(f"{section.label} is duplicated or out of order", id_pos)
                last_rank = rank
            else:
                section.custom_name()
            module.sections.append(section)
        return module

    @staticmethod
    def _read_section(r: _Reader) -> Section:
        """Read one section (id, size, payload) at the cursor."""
        id_pos = r.pos
        section_id = r.byte()
        if section_id not in SECTION_NAMES:
            r.fail(f"unknown section id {section_id}", id_pos)
        size_pos = r.pos
        size = r.u32()
        size_leb = r.data[size_pos : r.pos]
        offset = r.pos
        payload = r.take(size, f"{SECTION_NAMES[section_id]} section")
        return Section(section_id, (payload,), offset=offset, size_leb=size_leb)

    def to_bytes(self) -> bytes:
        """Serialise the module; unchanged input comes back byte for byte."""
        chunks = [MAGIC, VERSION]
        for section in self.sections:
            chunks.extend(section.encode())
        return b"".join(chunks)

    # -- sections -------------------------------------------------------------------------

    def _find(self, section_id: int) -> Section | None:
        """Return the (single) known section with this id, or ``None``."""
        for section in self.sections:
            if section.id == section_id:
                return section
        return None

    def _read_vector(self, section_id: int, read_item: Callable[[_Reader], _T]) -> list[_T]:
        """Decode a section that is one vector of items; an absent section is empty."""
        section = self._find(section_id)
        if section is None:
            return []
        r = section.reader()
        items = r.vector(read_item)
        r.expect_end()
        return items

    def _put_section(self, section_id: int, *parts: bytes) -> None:
        """Replace the known section with this id, or insert it at its canonical place."""
        new = Section(section_id, parts)
        for i, section in enumerate(self.sections):
            if section.id == section_id:
                self.sections[i] = new
                return
        # Right after the last known section that must come before it, so that custom
        # sections following that one (e.g. "name" at the end) stay after the new section.
        rank = _SECTION_RANK[section_id]
        position = 0
        for i, section in enumerate(self.sections):
            if section.id != SECTION_CUSTOM and _SECTION_RANK[section.id] < rank:
                position = i + 1
        self.sections.insert(position, new)

    # -- exports --------------------------------------------------------------------------

    def exports(self) -> dict[str, tuple[int, int]]:
        """Return the exports as ``{name: (kind, index)}``, in section order."""
        result: dict[str, tuple[int, int]] = {}
        for name, kind, index in self._read_vector(SECTION_EXPORT, _read_export):
            if name in result:
                raise PackageError(f"Invalid wasm module: export {name!r} is duplicated")
            result[name] = (kind, index)
        return result

    def remove_exports(self, names: Iterable[str]) -> None:
        """Remove the exports with these names.

        Raises:
            PackageError: one of the names is not exported; nothing is removed then.
            TypeError: ``names`` is a single string rather than a collection of names.
        """
        if isinstance(names, str):
            raise TypeError(f"expected a collection of export names, got the str {names!r}")
        exports = self.exports()
        names = set(names)
        missing = sorted(names - exports.keys())
        if missing:
            raise PackageError(
                f"Cannot remove exports {missing}: not exported (exports: {sorted(exports)})"
            )
        kept = [(n, k, i) for n, (k, i) in exports.items() if n not in names]
        chunks = [encode_uleb128(len(kept))]
        for name, kind, index in kept:
            raw_name = name.encode("utf-8")
            chunks += [encode_uleb128(len(raw_name)), raw_name, bytes((kind,))]
            chunks.append(encode_uleb128(index))
        self._put_section(SECTION_EXPORT, b"".join(chunks))

    # -- functions and types --------------------------------------------------------------

    def _imports(self) -> list[tuple[str, str, int, int | None]]:
        """Decode the import section: ``(module, name, kind, type index or None)``."""
        return self._read_vector(SECTION_IMPORT, _read_import)

    def num_imported_functions(self) -> int:
        """Count imported functions; they come first in the function index space."""
        return sum(1 for *_, kind, _ in self._imports() if kind == KIND_FUNC)

    def num_memories(self) -> int:
        """Count memories, imported and defined."""
        imported = sum(1 for *_, kind, _ in self._imports() if kind == KIND_MEMORY)
        defined = self._read_vector(SECTION_MEMORY, _Reader.limits)
        return imported + len(defined)

    def _function_type_indices(self) -> list[int]:
        """Return the type index of every function in the function index space."""
        imported = [t for *_, kind, t in self._imports() if kind == KIND_FUNC]
        return imported + self._read_vector(SECTION_FUNCTION, _Reader.u32)

    def num_functions(self) -> int:
        """Count functions, imported and defined."""
        return len(self._function_type_indices())

    def function_type(self, func_index: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Return ``(params, results)`` of a function, as value type codes (0x7f = i32).

        Raises:
            PackageError: no such function, or its type index is out of range.
        """
        type_indices = self._function_type_indices()
        if not 0 <= func_index < len(type_indices):
            raise PackageError(
                f"No function {func_index} in the module ({len(type_indices)} functions)"
            )
        types = self._read_vector(SECTION_TYPE, _read_func_type)
        type_index = type_indices[func_index]
        if type_index >= len(types):
            raise PackageError(
                f"Invalid wasm module: function {func_index} has type {type_index}, "
                f"but the type section has {len(types)} types"
            )
        return types[type_index]

    # -- function bodies ------------------------------------------------------------------

    def _code_spans(self) -> tuple[Section, list[tuple[int, int, int]]]:
        """Return the code section and its entries' spans, checked against the functions."""
        section = self._find(SECTION_CODE)
        if section is None:
            section = Section(SECTION_CODE, (encode_uleb128(0),))
        r = section.reader()
        spans = r.vector(_read_code_span)
        r.expect_end()
        defined = len(self._read_vector(SECTION_FUNCTION, _Reader.u32))
        if len(spans) != defined:
            raise PackageError(
                f"Invalid wasm module: the code section has {len(spans)} bodies, "
                f"the function section declares {defined} functions"
            )
        return section, spans

    def _defined_position(self, func_index: int, n_defined: int) -> int:
        """Map a function index to its position in the code section, or raise."""
        n_imported = self.num_imported_functions()
        if func_index < 0 or func_index >= n_imported + n_defined:
            raise PackageError(
                f"No function {func_index} in the module "
                f"({n_imported} imported + {n_defined} defined)"
            )
        if func_index < n_imported:
            raise PackageError(f"Function {func_index} is imported; it has no body")
        return func_index - n_imported

    def function_body(self, func_index: int) -> bytes:
        """Return a function's code entry without its size: locals, then the expression."""
        section, spans = self._code_spans()
        _, start, end = spans[self._defined_position(func_index, len(spans))]
        return section.payload[start:end]

    def replace_function_body(self, func_index: int, body: bytes) -> None:
        """Replace a function's code entry (locals vector and expression ending in 0x0b).

        Raises:
            PackageError: no such defined function, or ``body`` does not end with ``end``.
        """
        if not body or body[-1] != END:
            raise PackageError(
                f"Cannot replace the body of function {func_index}: "
                "the body must end with the end opcode 0x0b"
            )
        section, spans = self._code_spans()
        entry_start, _, end = spans[self._defined_position(func_index, len(spans))]
        payload = section.payload
        new_entry = encode_uleb128(len(body)) + bytes(body)
        self._put_section(SECTION_CODE, payload[:entry_start] + new_entry + payload[end:])

    # -- data segments --------------------------------------------------------------------

    def data_segment_count(self) -> int:
        """Count data segments, checking the DataCount section when there is one."""
        data = self._find(SECTION_DATA)
        count = data.reader().u32() if data is not None else 0
        data_count = self._find(SECTION_DATACOUNT)
        if data_count is not None:
            r = data_count.reader()
            declared = r.u32()
            r.expect_end()
            if declared != count:
                raise PackageError(
                    f"Invalid wasm module: the DataCount section says {declared} data "
                    f"segments, the data section has {count}"
                )
        return count

    def data_section_tail(self, n: int) -> bytes | None:
        """The last n bytes of the data section's payload (where append_passive_data_segment
        put its segment's bytes), or None when the section is missing or shorter."""
        data = self._find(SECTION_DATA)
        if data is None or n < 0 or data.size < n:
            return None
        return data.payload[data.size - n :]

    def append_passive_data_segment(self, payload: bytes) -> int:
        """Append a passive data segment; return its index (for memory.init, data.drop).

        Creates the data section if absent and creates or updates the DataCount section,
        which ``memory.init`` and ``data.drop`` need to validate. ``payload`` (bytes-like) is
        kept by reference, not copied, until ``to_bytes()``.

        Raises:
            PackageError: the segment or the data section would exceed the u32 limits.
        """
        count = self.data_segment_count()
        data = self._find(SECTION_DATA)
        rest = b""
        if data is not None:
            r = data.reader()
            r.u32()
            rest = data.payload[r.pos :]
        size = memoryview(payload).nbytes
        head = b"".join(
            [encode_uleb128(count + 1), rest, bytes((PASSIVE_SEGMENT,)), encode_uleb128(size)]
        )
        if len(head) + size > MAX_U32 or count + 1 > MAX_U32:
            raise PackageError(
                f"Cannot append a data segment of {size} bytes: the data section would "
                f"exceed the format's limit of {MAX_U32} bytes"
            )
        self._put_section(SECTION_DATA, head, payload)
        self._put_section(SECTION_DATACOUNT, encode_uleb128(count + 1))
        return count

    # -- custom sections ------------------------------------------------------------------

    def custom_sections(self) -> dict[str, bytes]:
        """Return custom sections as ``{name: content}``; the first of a repeated name wins."""
        result: dict[str, bytes] = {}
        for section in self.sections:
            if section.id == SECTION_CUSTOM:
                r = section.reader()
                name = r.name()
                result.setdefault(name, section.payload[r.pos :])
        return result

    def get_custom_section(self, name: str) -> bytes | None:
        """Return the content of the first custom section called ``name``, or ``None``."""
        return self.custom_sections().get(name)

    def set_custom_section(self, name: str, content: bytes) -> None:
        """Set a custom section: replace the first one called ``name`` (dropping any later
        ones of that name), or append it at the end of the module."""
        if not isinstance(name, str):
            raise TypeError(f"expected str section name, got {type(name).__name__}")
        raw_name = name.encode("utf-8")
        new = Section(SECTION_CUSTOM, (encode_uleb128(len(raw_name)), raw_name, content))
        if new.size > MAX_U32:
            raise PackageError(f"Custom section {name!r} exceeds {MAX_U32} bytes")
        kept: list[Section] = []
        placed = False
        for section in self.sections:
            if section.id == SECTION_CUSTOM and section.custom_name() == name:
                if not placed:
                    kept.append(new)
                    placed = True
                continue
            kept.append(section)
        if not placed:
            kept.append(new)
        self.sections = kept
