"""Tests of packager/wasm_binary.py: LEB128, parsing, round trips and each edit."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wasmexport.errors import PackageError
from wasmexport.packager.wasm_binary import (
    KIND_FUNC,
    KIND_GLOBAL,
    KIND_MEMORY,
    KIND_TABLE,
    Section,
    WasmBinary,
    decode_sleb128,
    decode_uleb128,
    encode_sleb128,
    encode_uleb128,
)

I32, I64, F32, F64 = 0x7F, 0x7E, 0x7D, 0x7C

# One module with (almost) every section: type, import, function, table, memory, global,
# export, start, element, code, data, and a "name" custom section at the end.
FULL_WAT = """
(module
  (import "env" "log" (func $log (param i32)))
  (import "env" "mem_limit" (global $limit i32))
  (import "env" "table" (table 2 funcref))
  (export "table" (table 0))
  (import "env" "tick" (func $tick))
  (memory (export "memory") 1 4)
  (global $counter (export "counter") (mut i32) (i32.const 0))
  (func $seven (export "seven") (result i32) i32.const 7)
  (func $mix (export "mix") (param i32 i64) (result f32)
    (local i32 i32) (local f64)
    (f32.convert_i32_s (local.get 0)))
  (func $init (global.set $counter (i32.const 1)))
  (start $init)
  (elem (i32.const 0) $seven)
  (data (i32.const 16) "hello")
  (data (i32.const 32) "world"))
"""

# A module with no data section, to which a data segment is appended and read back.
READER_WAT = """
(module
  (memory (export "memory") 1)
  (func $copy (export "copy") (param i32 i32 i32) (drop (local.get 0)))
  (func $answer (export "answer") (result i32) i32.const 41))
"""


def wat(text: str) -> bytes:
    """Compile WAT text to a wasm binary."""
    return wasmtime.wat2wasm(text)


def instantiate(wasm: bytes) -> tuple[wasmtime.Store, wasmtime.Instance]:
    """Validate and instantiate a module that has no imports."""
    store = wasmtime.Store()
    module = wasmtime.Module(store.engine, wasm)
    return store, wasmtime.Instance(store, module, [])


def section_ids(module: WasmBinary) -> list[int]:
    """Return the ids of a module's sections, in order."""
    return [section.id for section in module.sections]


def section_payload(module: WasmBinary, section_id: int) -> bytes:
    """Return the payload of the (single) section with this id."""
    (payload,) = [s.payload for s in module.sections if s.id == section_id]
    return payload


# ---------------------------------------------------------------------------------------------
# LEB128


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (624485, "e58e26"),
        (2**32 - 1, "ffffffff0f"),
    ],
)
def test_uleb128_known_vectors(value, encoded):
    assert encode_uleb128(value) == bytes.fromhex(encoded)
    assert decode_uleb128(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"),
        (-1, "7f"),
        (63, "3f"),
        (64, "c000"),
        (-64, "40"),
        (-65, "bf7f"),
        (-123456, "c0bb78"),
        (2**31 - 1, "ffffffff07"),
        (-(2**31), "8080808078"),
    ],
)
def test_sleb128_known_vectors(value, encoded):
    assert encode_sleb128(value) == bytes.fromhex(encoded)
    assert decode_sleb128(bytes.fromhex(encoded), 0) == (value, len(encoded) // 2)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.binary(max_size=3))
def test_uleb128_round_trip(value, prefix):
    encoded = encode_uleb128(value)
    assert decode_uleb128(prefix + encoded + b"\xff", len(prefix), 64) == (
        value,
        len(prefix) + len(encoded),
    )


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_sleb128_round_trip(value):
    encoded = encode_sleb128(value)
    assert decode_sleb128(encoded, 0, 64) == (value, len(encoded))


def test_uleb128_accepts_padded_encoding():
    assert decode_uleb128(bytes.fromhex("8080808000"), 0) == (0, 5)


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("", "truncated"),
        ("80", "truncated"),
        ("808080808000", "longer than 5 bytes"),
        ("ffffffff1f", "too large for u32"),
        ("8080808010", "too large for u32"),
    ],
)
def test_decode_uleb128_rejects_bad_u32(encoded, reason):
    with pytest.raises(ValueError, match=reason):
        decode_uleb128(bytes.fromhex(encoded), 0)


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("ff", "truncated"),
        ("ffffffff4f", "out of range for s32"),  # unused bits are not the sign's extension
        ("8080808008", "out of range for s32"),  # 2**31
        ("808080808000", "longer than 5 bytes"),
    ],
)
def test_decode_sleb128_rejects_bad_s32(encoded, reason):
    with pytest.raises(ValueError, match=reason):
        decode_sleb128(bytes.fromhex(encoded), 0)


def test_encode_uleb128_rejects_negative():
    with pytest.raises(ValueError, match="cannot encode -1"):
        encode_uleb128(-1)


# ---------------------------------------------------------------------------------------------
# Parsing and writing


@pytest.mark.parametrize(
    "text",
    [
        FULL_WAT,
        READER_WAT,
        "(module)",
        '(module (tag $t (param i32)) (global i32 (i32.const 0)) (func $f (export "f")))',
    ],
    ids=["full", "reader", "empty", "tag"],
)
def test_parse_to_bytes_round_trip_is_identical(text):
    wasm = wat(text)
    assert WasmBinary.parse(wasm).to_bytes() == wasm


def test_parse_keeps_non_minimal_section_sizes():
    # A type section whose size (4) is encoded on 5 bytes, as some linkers pad it.
    wasm = bytes.fromhex("0061736d01000000") + bytes.fromhex("01 8480808000 01 60 00 00")
    module = WasmBinary.parse(wasm)
    assert module.to_bytes() == wasm
    module.set_custom_section("x", b"")  # an edit elsewhere keeps the padded size too
    assert module.to_bytes().startswith(wasm)


def test_parse_reads_sections_in_order():
    module = WasmBinary.parse(wat(FULL_WAT))
    assert section_ids(module) == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 0]
    assert section_payload(module, 11).startswith(b"\x02")  # two data segments


def test_parse_accepts_bytearray_and_memoryview():
    wasm = wat(READER_WAT)
    assert WasmBinary.parse(bytearray(wasm)).to_bytes() == wasm
    assert WasmBinary.parse(memoryview(wasm)).to_bytes() == wasm


def test_parse_rejects_non_bytes():
    with pytest.raises(TypeError, match="expected bytes, got str"):
        WasmBinary.parse("\0asm")


HEADER = "0061736d01000000"


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("", "magic number of length 4 runs past the end .* at offset 0"),
        ("0061736d01", "version of length 4 runs past the end .* at offset 4"),
        ("7f454c4601000000", "bad magic number .* at offset 0"),
        ("0061736d0d000100", "unsupported version 0d 00 01 00 .* at offset 4"),
        (HEADER + "0e00", "unknown section id 14 at offset 8"),
        (HEADER + "01", "truncated LEB128 at offset 9"),
        (HEADER + "0105010203", "type section of length 5 runs past the end .* offset 10"),
        (
            HEADER + "0a0100" + "010100",
            "type section is duplicated or out of order at offset 11",
        ),
        (
            HEADER + "010100" + "010100",
            "type section is duplicated or out of order at offset 11",
        ),
        (HEADER + "0001ff", "name of length 127 runs past|truncated LEB128"),
        (HEADER + "000201ff", "name is not valid UTF-8 at offset 10"),
    ],
)
def test_parse_rejects_malformed_module(hex_bytes, message):
    with pytest.raises(PackageError, match=f"Invalid wasm module: {message}"):
        WasmBinary.parse(bytes.fromhex(hex_bytes))


def test_section_content_errors_name_the_section_and_offset():
    # An export section whose single export has a kind byte of 9.
    wasm = bytes.fromhex(HEADER + "07050101" + "61" + "0900")
    module = WasmBinary.parse(wasm)
    with pytest.raises(PackageError, match=r"unknown export kind 0x09 at offset 13 \(export"):
        module.exports()


# ---------------------------------------------------------------------------------------------
# Exports, imports, types


def test_exports_lists_kind_and_index():
    module = WasmBinary.parse(wat(FULL_WAT))
    assert module.exports() == {
        "table": (KIND_TABLE, 0),
        "memory": (KIND_MEMORY, 0),
        "counter": (KIND_GLOBAL, 1),  # after the imported global
        "seven": (KIND_FUNC, 2),  # after the two imported functions
        "mix": (KIND_FUNC, 3),
    }


def test_remove_exports_keeps_the_others():
    module = WasmBinary.parse(wat(READER_WAT))
    module.remove_exports(["copy"])
    assert list(module.exports()) == ["memory", "answer"]
    store, instance = instantiate(module.to_bytes())
    assert sorted(instance.exports(store)) == ["answer", "memory"]
    assert instance.exports(store)["answer"](store) == 41


def test_remove_exports_rejects_unknown_names():
    module = WasmBinary.parse(wat(READER_WAT))
    before = module.to_bytes()
    with pytest.raises(PackageError, match=r"Cannot remove exports \['nope'\]: not exported"):
        module.remove_exports(["copy", "nope"])
    assert module.to_bytes() == before


def test_remove_exports_rejects_a_single_string():
    module = WasmBinary.parse(wat(READER_WAT))
    with pytest.raises(TypeError, match="collection of export names, got the str 'copy'"):
        module.remove_exports("copy")


def test_num_imported_functions_counts_functions_only():
    assert WasmBinary.parse(wat(FULL_WAT)).num_imported_functions() == 2
    assert WasmBinary.parse(wat(READER_WAT)).num_imported_functions() == 0


def test_function_type_follows_the_function_index_space():
    module = WasmBinary.parse(wat(FULL_WAT))
    assert module.function_type(0) == ((I32,), ())  # imported $log
    assert module.function_type(1) == ((), ())  # imported $tick
    assert module.function_type(2) == ((), (I32,))
    assert module.function_type(3) == ((I32, I64), (F32,))
    with pytest.raises(PackageError, match="No function 5 in the module"):
        module.function_type(5)


# ---------------------------------------------------------------------------------------------
# Function bodies


def test_function_body_returns_locals_and_expression():
    module = WasmBinary.parse(wat(FULL_WAT))
    assert module.function_body(2) == bytes.fromhex("00 41 07 0b")
    # locals: 2 groups (2 x i32, 1 x f64); local.get 0; f32.convert_i32_s; end
    assert module.function_body(3) == bytes.fromhex("02 02 7f 01 7c 20 00 b2 0b")


@pytest.mark.parametrize(
    ("func_index", "message"),
    [(0, "Function 0 is imported; it has no body"), (5, "No function 5"), (-1, "No function")],
)
def test_function_body_rejects_functions_without_body(func_index, message):
    module = WasmBinary.parse(wat(FULL_WAT))
    with pytest.raises(PackageError, match=message):
        module.function_body(func_index)


def test_replace_function_body_changes_only_that_function():
    module = WasmBinary.parse(wat(READER_WAT))
    copy_body = module.function_body(0)
    module.replace_function_body(1, bytes.fromhex("00 41 e4 00 0b"))  # i32.const 100
    assert module.function_body(0) == copy_body
    assert module.function_body(1) == bytes.fromhex("00 41 e4 00 0b")
    store, instance = instantiate(module.to_bytes())
    assert instance.exports(store)["answer"](store) == 100


def test_replace_function_body_rejects_body_without_end():
    module = WasmBinary.parse(wat(READER_WAT))
    with pytest.raises(PackageError, match="must end with the end opcode"):
        module.replace_function_body(1, bytes.fromhex("00 41 07"))


# ---------------------------------------------------------------------------------------------
# Data segments


def memory_init_body(segment: int) -> bytes:
    """Return a body copying (dst, src, len) from ``segment`` into memory 0."""
    return bytes.fromhex(f"00 20 00 20 01 20 02 fc 08 {segment:02x} 00 0b")


def test_append_passive_data_segment_creates_data_and_datacount():
    module = WasmBinary.parse(wat(READER_WAT))
    assert module.data_segment_count() == 0
    assert module.append_passive_data_segment(b"blob bytes") == 0
    module.replace_function_body(0, memory_init_body(0))
    # DataCount right before code, data after it; the "name" section stays last.
    assert section_ids(module) == [1, 3, 5, 7, 12, 10, 11, 0]
    assert section_payload(module, 12) == b"\x01"
    assert section_payload(module, 11) == b"\x01\x01\x0ablob bytes"

    store, instance = instantiate(module.to_bytes())
    instance.exports(store)["copy"](store, 100, 5, 5)
    assert instance.exports(store)["memory"].read(store, 100, 105) == b"bytes"


def test_append_passive_data_segment_after_active_segments():
    module = WasmBinary.parse(wat(FULL_WAT))
    assert module.append_passive_data_segment(b"third") == 2
    assert module.data_segment_count() == 3
    ids = section_ids(module)
    assert ids.index(12) == ids.index(10) - 1 and ids.index(12) == ids.index(9) + 1
    wasmtime.Module(wasmtime.Engine(), module.to_bytes())  # validates


def test_append_passive_data_segment_updates_existing_datacount():
    text = """
    (module
      (memory (export "memory") 1)
      (data $first "abc")
      (func $first_copy (export "first") (param i32 i32 i32)
        (memory.init $first (local.get 0) (local.get 1) (local.get 2)))
      (func $second_copy (export "second") (param i32 i32 i32) nop))
    """
    module = WasmBinary.parse(wat(text))
    assert section_payload(module, 12) == b"\x01"
    assert module.append_passive_data_segment(b"xyz") == 1
    assert section_payload(module, 12) == b"\x02"
    assert section_ids(module).count(12) == 1
    module.replace_function_body(1, memory_init_body(1))

    store, instance = instantiate(module.to_bytes())
    exports = instance.exports(store)
    exports["first"](store, 0, 0, 3)
    exports["second"](store, 3, 0, 3)
    assert exports["memory"].read(store, 0, 6) == b"abcxyz"


def test_data_segment_count_rejects_disagreeing_datacount():
    # DataCount says 2 segments, the data section holds 1 (passive, empty).
    wasm = bytes.fromhex(HEADER + "0c0102" + "0b03010100")
    with pytest.raises(PackageError, match="DataCount section says 2 .* data section has 1"):
        WasmBinary.parse(wasm).data_segment_count()


# ---------------------------------------------------------------------------------------------
# Custom sections


def test_custom_sections_set_get_and_round_trip():
    module = WasmBinary.parse(wat(READER_WAT))
    assert module.get_custom_section("wx.plan") is None
    module.set_custom_section("wx.plan", b"\x00\x01plan")
    module.set_custom_section("wx.meta", b"{}")
    assert section_ids(module)[-3:] == [0, 0, 0]  # "name", then the two appended

    reparsed = WasmBinary.parse(module.to_bytes())
    assert reparsed.get_custom_section("wx.plan") == b"\x00\x01plan"
    assert reparsed.custom_sections()["wx.meta"] == b"{}"
    assert "name" in reparsed.custom_sections()


def test_set_custom_section_replaces_in_place_and_drops_repeats():
    module = WasmBinary.parse(wat(READER_WAT))
    module.set_custom_section("a", b"1")
    module.set_custom_section("b", b"2")
    module.sections.append(module.sections[-2])  # a second "a"
    module.set_custom_section("a", b"new")
    names = [s.custom_name() for s in module.sections if s.id == 0]
    assert names == ["name", "a", "b"]
    assert module.custom_sections() == {
        "name": module.get_custom_section("name"),
        "a": b"new",
        "b": b"2",
    }


# ---------------------------------------------------------------------------------------------
# Robustness: corrupted modules raise PackageError and nothing else


def read_everything(module: WasmBinary) -> None:
    """Call every reading method, so that each decoder meets the corrupted bytes."""
    module.exports()
    module.custom_sections()
    module.data_segment_count()
    module.num_memories()
    for func_index in range(module.num_imported_functions(), module.num_functions()):
        module.function_type(func_index)
        module.function_body(func_index)


FULL_WASM = wat(FULL_WAT)
# Where a prefix of FULL_WASM is a whole module: after the header and after each section.
SECTION_ENDS = [8] + [s.offset + s.size for s in WasmBinary.parse(FULL_WASM).sections]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(FULL_WASM)))
def test_truncated_module_parses_only_at_section_ends(length):
    if length in SECTION_ENDS:
        module = WasmBinary.parse(FULL_WASM[:length])
        assert len(module.sections) == SECTION_ENDS.index(length)
    else:
        with pytest.raises(PackageError, match="Invalid wasm module"):
            WasmBinary.parse(FULL_WASM[:length])


DECODED_SECTIONS = {
    1: "type",
    2: "import",
    3: "function",
    5: "memory",
    7: "export",
    10: "code",
}


@pytest.mark.parametrize("section_id", sorted(DECODED_SECTIONS), ids=DECODED_SECTIONS.get)
def test_truncated_section_content_raises_package_error(section_id):
    module = WasmBinary.parse(FULL_WASM)
    (position,) = [i for i, s in enumerate(module.sections) if s.id == section_id]
    payload = module.sections[position].payload
    for cut in range(len(payload)):
        module.sections[position] = Section(section_id, (payload[:cut],))
        with pytest.raises(PackageError, match="Invalid wasm module"):
            read_everything(module)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=len(FULL_WASM) - 1),
            st.integers(min_value=0, max_value=255),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_corrupted_module_raises_only_package_error(flips):
    data = bytearray(FULL_WASM)
    for pos, value in flips:
        data[pos] = value
    try:
        module = WasmBinary.parse(bytes(data))
    except PackageError:
        return
    assert module.to_bytes() == bytes(data)
    try:
        read_everything(module)
    except PackageError:
        pass
