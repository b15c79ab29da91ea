"""Embed a blob (the serialised plan) into the prebuilt runtime, in pure Python.

The runtime exports two placeholder functions that the packager patches:

    wx_blob_size : () -> i32
        body: i32.const <len(blob)>
    wx_blob_read : (i32 dst, i32 src_offset, i32 len) -> ()
        body: memory.init <seg> 0 (dst, src_offset, len); data.drop <seg>

where ``<seg>`` is a passive data segment appended to hold the blob. The runtime calls
``wx_blob_read`` once, with the whole blob; the segment is dropped afterwards so that its
bytes are not kept twice. Both placeholder exports are removed from the final module, which
exports exactly the public ABI.
"""

from __future__ import annotations

import logging

from wasmexport.errors import PackageError

from .wasm_binary import KIND_FUNC, WasmBinary, encode_sleb128, encode_uleb128

__all__ = ["MAX_BLOB_BYTES", "embed_blob", "read_custom_sections"]

logger = logging.getLogger(__name__)

BLOB_SIZE_EXPORT = "wx_blob_size"
BLOB_READ_EXPORT = "wx_blob_read"
MAX_BLOB_BYTES = 2**31 - 1  # wx_blob_size returns an i32; the runtime reads it as signed

# Opcodes of the patched bodies.
_I32_CONST = 0x41
_LOCAL_GET = 0x20
_MISC_PREFIX = 0xFC  # followed by a u32 sub-opcode
_MEMORY_INIT = 0x08  # memory.init segidx memidx
_DATA_DROP = 0x09  # data.drop segidx
_END = 0x0B
_NO_LOCALS = 0x00  # an empty locals vector
_MEMORY_ZERO = 0x00

_I32 = 0x7F
_VALTYPE_NAMES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}
_PLACEHOLDER_TYPES = {
    BLOB_SIZE_EXPORT: ((), (_I32,)),
    BLOB_READ_EXPORT: ((_I32, _I32, _I32), ()),
}
_NOT_A_RUNTIME = "the runtime .wasm is not a wasmexport runtime or is of another version"


def embed_blob(
    runtime_wasm: bytes,
    blob: bytes,
    custom_sections: dict[str, bytes] | None = None,
) -> bytes:
    """Embed ``blob`` into the runtime module and return the final module.

    Args:
        runtime_wasm: the prebuilt runtime, exporting the two placeholders.
        blob: the bytes the runtime reads through ``wx_blob_read`` (bytes-like).
        custom_sections: custom sections to add (or replace), ``{name: content}``.

    Returns:
        The patched module: blob in a passive data segment, placeholder bodies replaced,
        placeholder exports removed, custom sections set.

    Raises:
        PackageError: the runtime is malformed or lacks the placeholders (or they have other
            types), or the blob is larger than ``MAX_BLOB_BYTES``.
        TypeError: ``blob`` is not bytes-like.
    """
    # step 1: check the inputs
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(blob).__name__}")
    blob_size = memoryview(blob).nbytes
    if blob_size > MAX_BLOB_BYTES:
        raise PackageError(
            f"Cannot embed a blob of {blob_size} bytes: the runtime reads at most "
            f"{MAX_BLOB_BYTES} bytes (2 GiB - 1); make the model smaller"
        )
    module = WasmBinary.parse(runtime_wasm)
    size_func = _find_placeholder(module, BLOB_SIZE_EXPORT)
    read_func = _find_placeholder(module, BLOB_READ_EXPORT)
    if module.num_memories() == 0:
        raise PackageError(f"The runtime .wasm has no memory; {_NOT_A_RUNTIME}")

    # step 2: store the blob and point the placeholders at it
    segment = module.append_passive_data_segment(blob)
    module.replace_function_body(size_func, _blob_size_body(blob_size))
    module.replace_function_body(read_func, _blob_read_body(segment))

    # step 3: hide the placeholders, add the custom sections
    module.remove_exports([BLOB_SIZE_EXPORT, BLOB_READ_EXPORT])
    for name, content in (custom_sections or {}).items():
        module.set_custom_section(name, content)

    wasm = module.to_bytes()
    logger.info("embedded a %s-byte blob; the module is %s bytes", blob_size, len(wasm))
    return wasm


def read_custom_sections(wasm: bytes) -> dict[str, bytes]:
    """Return the custom sections of a module as ``{name: content}``."""
    return WasmBinary.parse(wasm).custom_sections()


def _find_placeholder(module: WasmBinary, name: str) -> int:
    """Return the function index of an exported placeholder, checking its kind and type."""
    exports = module.exports()
    if name not in exports:
        raise PackageError(
            f"The runtime .wasm does not export {name!r} (exports: {sorted(exports)}); "
            f"{_NOT_A_RUNTIME}, or a blob was embedded into it already"
        )
    kind, func_index = exports[name]
    if kind != KIND_FUNC:
        raise PackageError(f"Runtime export {name!r} is not a function; {_NOT_A_RUNTIME}")
    if func_index < module.num_imported_functions():
        raise PackageError(
            f"Runtime export {name!r} is an imported function, which cannot be patched; "
            f"{_NOT_A_RUNTIME}"
        )
    found = module.function_type(func_index)
    expected = _PLACEHOLDER_TYPES[name]
    if found != expected:
        raise PackageError(
            f"Runtime export {name!r} has type {_format_type(found)}, expected "
            f"{_format_type(expected)}; {_NOT_A_RUNTIME}"
        )
    return func_index


def _format_type(func_type: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    """Format a function type as in "(i32, i32) -> (i32)"."""
    params, results = (
        ", ".join(_VALTYPE_NAMES.get(t, f"0x{t:02x}") for t in types) for types in func_type
    )
    return f"({params}) -> ({results})"


def _blob_size_body(blob_size: int) -> bytes:
    """Return the body of ``wx_blob_size``: ``i32.const blob_size``."""
    head = bytes((_NO_LOCALS, _I32_CONST))
    return b"".join([head, encode_sleb128(blob_size), bytes((_END,))])


def _blob_read_body(segment: int) -> bytes:
    """Return the body of ``wx_blob_read``: copy from ``segment``, then drop it."""
    seg = encode_uleb128(segment)
    return b"".join(
        [
            bytes((_NO_LOCALS, _LOCAL_GET, 0, _LOCAL_GET, 1, _LOCAL_GET, 2)),
            bytes((_MISC_PREFIX, _MEMORY_INIT)),
            seg,
            bytes((_MEMORY_ZERO, _MISC_PREFIX, _DATA_DROP)),
            seg,
            bytes((_END,)),
        ]
    )
