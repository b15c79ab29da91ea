"""Tests of packager/embed.py: embed a blob into a runtime, then run the module."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import wasmtime

from wasmexport.errors import PackageError
from wasmexport.packager import embed
from wasmexport.packager.embed import embed_blob, read_custom_sections
from wasmexport.packager.wasm_binary import WasmBinary

# A stand-in for the runtime: the two placeholders (dummy bodies), and exports that use them
# the way the runtime does: read the whole blob once, then look at it.
RUNTIME_WAT = """
(module
  (memory (export "memory") 64)
  (global $loaded (mut i32) (i32.const 0))
  %(extra)s
  (func $size (export "wx_blob_size") (result i32) i32.const 0x5a5a5a5a)
  (func $read (export "wx_blob_read") (param i32 i32 i32)
    (i32.store8 (local.get 0) (local.get 1)))
  (func (export "size") (result i32) (call $size))
  (func (export "load") (param $dst i32) (result i32)
    (call $read (local.get $dst) (i32.const 0) (call $size))
    (call $size))
  (func (export "check") (param $off i32) (result i32)
    (if (i32.eqz (global.get $loaded))
      (then (call $read (i32.const 1024) (i32.const 0) (call $size))
            (global.set $loaded (i32.const 1))))
    (i32.load8_u (i32.add (i32.const 1024) (local.get $off)))))
"""
PUBLIC_EXPORTS = ["check", "load", "memory", "size"]
BLOB_DST = 1024


def runtime_wasm(extra: str = "") -> bytes:
    """Compile the stand-in runtime, with ``extra`` module fields."""
    return wasmtime.wat2wasm(RUNTIME_WAT % {"extra": extra})


def instantiate(wasm: bytes) -> tuple[wasmtime.Store, dict]:
    """Validate and instantiate a module without imports; return its store and exports."""
    store = wasmtime.Store()
    instance = wasmtime.Instance(store, wasmtime.Module(store.engine, wasm), [])
    return store, instance.exports(store)


def load_blob(wasm: bytes) -> bytes:
    """Run ``load`` in a fresh instance and return the bytes it wrote to memory."""
    store, exports = instantiate(wasm)
    size = exports["load"](store, BLOB_DST)
    return bytes(exports["memory"].read(store, BLOB_DST, BLOB_DST + size))


def placeholder_indices(wasm: bytes) -> tuple[int, int]:
    """Return the function indices of wx_blob_size and wx_blob_read in a runtime."""
    exports = WasmBinary.parse(wasm).exports()
    return exports["wx_blob_size"][1], exports["wx_blob_read"][1]


# ---------------------------------------------------------------------------------------------
# What the patched module does


@pytest.mark.parametrize("size", [0, 1, 63, 64, 127, 128, 8191, 8192, 65536 + 3])
def test_embed_blob_size_returns_blob_length(size):
    # 63/64 and 8191/8192 sit on the signed LEB128 one-/two-/three-byte boundaries.
    blob = bytes(i % 251 for i in range(size))
    wasm = embed_blob(runtime_wasm(), blob)
    store, exports = instantiate(wasm)
    assert exports["size"](store) == size
    assert load_blob(wasm) == blob


def test_embed_blob_read_copies_the_blob():
    blob = b"wasmexport blob \x00\xff\x80 end"
    store, exports = instantiate(embed_blob(runtime_wasm(), blob))
    for offset in [0, 1, 10, 16, len(blob) - 1]:
        assert exports["check"](store, offset) == blob[offset]


def test_embed_large_random_blob_round_trips():
    blob = np.random.default_rng(7).integers(0, 256, size=3 * 2**20, dtype=np.uint8).tobytes()
    wasm = embed_blob(runtime_wasm(), blob)
    assert load_blob(wasm) == blob
    store, exports = instantiate(wasm)
    for offset in [0, 12345, 2**20, len(blob) - 1]:
        assert exports["check"](store, offset) == blob[offset]


def test_embed_accepts_bytearray_and_memoryview_blobs():
    blob = bytes(range(200))
    runtime = runtime_wasm()
    assert load_blob(embed_blob(runtime, bytearray(blob))) == blob
    assert load_blob(embed_blob(runtime, memoryview(blob))) == blob


# ---------------------------------------------------------------------------------------------
# What the patched module looks like


def test_embed_removes_only_the_placeholder_exports():
    wasm = embed_blob(runtime_wasm(), b"abc")
    assert sorted(WasmBinary.parse(wasm).exports()) == PUBLIC_EXPORTS
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    assert sorted(e.name for e in module.exports) == PUBLIC_EXPORTS


def test_embed_patches_bodies_and_adds_datacount():
    runtime = runtime_wasm()
    size_func, read_func = placeholder_indices(runtime)
    wasm = embed_blob(runtime, bytes(64))
    module = WasmBinary.parse(wasm)
    # i32.const 64 is "41 c0 00": 64 needs two bytes as a signed LEB128.
    assert module.function_body(size_func) == bytes.fromhex("00 41 c0 00 0b")
    assert module.function_body(read_func) == bytes.fromhex(
        "00 20 00 20 01 20 02 fc 08 00 00 fc 09 00 0b"
    )
    ids = [s.id for s in module.sections]
    assert ids.index(12) == ids.index(10) - 1  # DataCount right before code
    assert module.data_segment_count() == 1


def test_embed_keeps_active_data_segments_and_uses_the_next_index():
    runtime = runtime_wasm('(data (i32.const 100) "abc") (data (i32.const 200) "xyz")')
    _, read_func = placeholder_indices(runtime)
    blob = b"the blob"
    wasm = embed_blob(runtime, blob)

    module = WasmBinary.parse(wasm)
    assert module.data_segment_count() == 3
    assert module.function_body(read_func) == bytes.fromhex(
        "00 20 00 20 01 20 02 fc 08 02 00 fc 09 02 0b"
    )
    store, exports = instantiate(wasm)
    memory = exports["memory"]
    assert memory.read(store, 100, 103) == b"abc"
    assert memory.read(store, 200, 203) == b"xyz"
    assert exports["check"](store, 4) == blob[4]
    assert load_blob(wasm) == blob


def test_embed_custom_sections_round_trip():
    sections = {"wx.plan": b"\x00plan\xff", "wx.meta": b'{"version": 1}'}
    wasm = embed_blob(runtime_wasm(), b"abc", sections)
    found = read_custom_sections(wasm)
    assert {name: found[name] for name in sections} == sections
    assert "name" in found  # the runtime's own custom section is kept


def test_embed_logs_one_info_line(caplog):
    with caplog.at_level(logging.INFO, logger="wasmexport.packager.embed"):
        wasm = embed_blob(runtime_wasm(), bytes(1000))
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"embedded a 1000-byte blob; the module is {len(wasm)} bytes"]


# ---------------------------------------------------------------------------------------------
# Runtimes that are not wasmexport runtimes


@pytest.mark.parametrize("missing", ["wx_blob_size", "wx_blob_read"])
def test_embed_rejects_runtime_without_placeholder(missing):
    text = RUNTIME_WAT.replace(f'(export "{missing}")', "") % {"extra": ""}
    with pytest.raises(PackageError, match=f"does not export '{missing}'.*not a wasmexport"):
        embed_blob(wasmtime.wat2wasm(text), b"abc")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "(result i32) i32.const 0x5a5a5a5a",
            "(result i64) i64.const 0",
            r"'wx_blob_size' has type \(\) -> \(i64\), expected \(\) -> \(i32\)",
        ),
        (
            "(param i32 i32 i32)\n    (i32.store8 (local.get 0) (local.get 1))",
            "(param i32 i32)\n    (i32.store8 (local.get 0) (local.get 1))",
            r"'wx_blob_read' has type \(i32, i32\) -> \(\), "
            r"expected \(i32, i32, i32\) -> \(\)",
        ),
    ],
    ids=["size-returns-i64", "read-takes-two"],
)
def test_embed_rejects_placeholder_with_wrong_type(old, new, message):
    text = RUNTIME_WAT.replace(old, new) % {"extra": ""}
    text = text.replace("(call $read (local.get $dst) (i32.const 0) (call $size))", "")
    text = text.replace("(call $read (i32.const 1024) (i32.const 0) (call $size))", "")
    text = text.replace("(call $size)", "(i32.const 0)")
    with pytest.raises(PackageError, match=message + ".*another version"):
        embed_blob(wasmtime.wat2wasm(text), b"abc")


def test_embed_rejects_placeholder_that_is_not_a_function():
    text = """(module (memory 1) (global (export "wx_blob_size") i32 (i32.const 0))
      (func (export "wx_blob_read") (param i32 i32 i32)))"""
    with pytest.raises(PackageError, match="'wx_blob_size' is not a function"):
        embed_blob(wasmtime.wat2wasm(text), b"abc")


def test_embed_rejects_imported_placeholder():
    text = """(module (import "env" "size" (func (result i32))) (memory 1)
      (export "wx_blob_size" (func 0))
      (func (export "wx_blob_read") (param i32 i32 i32)))"""
    with pytest.raises(PackageError, match="'wx_blob_size' is an imported function"):
        embed_blob(wasmtime.wat2wasm(text), b"abc")


def test_embed_rejects_runtime_without_memory():
    text = """(module (func (export "wx_blob_size") (result i32) i32.const 0)
      (func (export "wx_blob_read") (param i32 i32 i32)))"""
    with pytest.raises(PackageError, match="has no memory"):
        embed_blob(wasmtime.wat2wasm(text), b"abc")


def test_embed_rejects_module_with_a_blob_already():
    once = embed_blob(runtime_wasm(), b"abc")
    with pytest.raises(PackageError, match="a blob was embedded into it already"):
        embed_blob(once, b"abc")


@pytest.mark.parametrize("garbage", [b"", b"\x00asm", b"MZ\x90\x00" * 4])
def test_embed_rejects_garbage_runtime(garbage):
    with pytest.raises(PackageError, match="Invalid wasm module"):
        embed_blob(garbage, b"abc")


def test_embed_rejects_blob_over_the_limit(monkeypatch):
    monkeypatch.setattr(embed, "MAX_BLOB_BYTES", 16)
    assert load_blob(embed_blob(runtime_wasm(), bytes(16))) == bytes(16)
    with pytest.raises(PackageError, match="blob of 17 bytes: the runtime reads at most 16"):
        embed_blob(runtime_wasm(), bytes(17))


def test_embed_max_blob_bytes_is_the_i32_limit():
    assert embed.MAX_BLOB_BYTES == 2**31 - 1


def test_embed_rejects_non_bytes_blob():
    with pytest.raises(TypeError, match="expected bytes, got str"):
        embed_blob(runtime_wasm(), "abc")


# ---------------------------------------------------------------------------------------------
# A runtime built by clang (zig cc), as the real one is

CLANG_RUNTIME_C = r"""
#include <stdint.h>
#include <stdlib.h>

__attribute__((noinline, used, weak, export_name("wx_blob_size")))
uint32_t wx_blob_size(void) { static volatile uint32_t s = 0x5a5a5a5a; return s; }

__attribute__((noinline, used, weak, export_name("wx_blob_read")))
void wx_blob_read(uint8_t *dst, uint32_t off, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) dst[i] = (uint8_t)(off + i);
}

/* FNV-1a of the embedded blob; 0xffffffff when it cannot be allocated. */
__attribute__((export_name("blob_checksum")))
uint32_t blob_checksum(void) {
    uint32_t n = wx_blob_size();
    uint8_t *p = malloc(n ? n : 1);
    if (!p) return 0xffffffffu;
    wx_blob_read(p, 0, n);
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    free(p);
    return h;
}
"""
ZIG_CC_FLAGS = ["-target", "wasm32-wasi", "-O3", "-msimd128", "-mexec-model=reactor", "-s"]
ZIG_TIMEOUT_S = 300  # a cold zig cache takes ~20 s to fill


def fnv1a(data: bytes) -> int:
    """Return the 32-bit FNV-1a hash of ``data``, as the C code computes it."""
    h = 2166136261
    for byte in data:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def test_embed_into_clang_built_runtime(tmp_path):
    pytest.importorskip("ziglang")
    source, output = tmp_path / "runtime.c", tmp_path / "runtime.wasm"
    source.write_text(CLANG_RUNTIME_C)
    command = [sys.executable, "-m", "ziglang", "cc", *ZIG_CC_FLAGS, "-o", output, source]
    subprocess.run(command, check=True, capture_output=True, timeout=ZIG_TIMEOUT_S)
    runtime = output.read_bytes()
    assert WasmBinary.parse(runtime).to_bytes() == runtime

    blob = np.random.default_rng(3).integers(0, 256, size=100_000, dtype=np.uint8).tobytes()
    wasm = embed_blob(runtime, blob, {"wx.meta": b"{}"})

    linker = wasmtime.Linker(wasmtime.Engine())
    linker.define_wasi()
    store = wasmtime.Store(linker.engine)
    store.set_wasi(wasmtime.WasiConfig())
    instance = linker.instantiate(store, wasmtime.Module(linker.engine, wasm))
    exports = instance.exports(store)
    assert sorted(WasmBinary.parse(wasm).exports()) == [
        "_initialize",
        "blob_checksum",
        "memory",
    ]
    exports["_initialize"](store)
    assert exports["blob_checksum"](store) & 0xFFFFFFFF == fnv1a(blob)  # i32 comes back signed
    assert read_custom_sections(wasm) == {"wx.meta": b"{}"}
