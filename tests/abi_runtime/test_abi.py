"""The ABI driven with plain wasmtime calls, independent of wasmexport's own host."""

from __future__ import annotations

import json

import numpy as np
import pytest
import wasmtime
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from onnx import TensorProto, helper

from wasmexport.errors import RuntimeABIError
from wasmexport.packager import package
from wasmexport.packager.runtime_info import runtime_bytes

ABI_EXPORTS = {"memory", "_start", "malloc_buffer", "free_buffer", "pred", "get_out_loc",
               "get_out_len"}  # fmt: skip
R = np.random.default_rng(3)
W = R.standard_normal((4, 3)).astype(np.float32)


class Raw:
    """The module through bare wasmtime calls, the way any WASI host speaks the ABI."""

    def __init__(self, wasm: bytes, call_start: bool = True):
        engine = wasmtime.Engine()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.module = wasmtime.Module(engine, wasm)
        self.exports = linker.instantiate(self.store, self.module).exports(self.store)
        if call_start:
            self.call("_start")

    def call(self, name, *args):
        return self.exports[name](self.store, *args)

    def write(self, data: bytes) -> int:
        ptr = self.call("malloc_buffer", len(data) + 1)
        assert ptr != 0
        self.exports["memory"].write(self.store, data + b"\0", ptr)
        return ptr

    def output(self) -> bytes:
        loc, n = self.call("get_out_loc"), self.call("get_out_len")
        return self.exports["memory"].read(self.store, loc, loc + n)

    def output_to_nul(self) -> bytes:
        mem = self.exports["memory"]
        loc = self.call("get_out_loc")
        out = bytearray()
        while (b := mem.read(self.store, loc + len(out), loc + len(out) + 1)) != b"\0":
            out += b
        return bytes(out)

    def ask(self, text: str | bytes, free: bool = True) -> tuple[int, dict]:
        data = text.encode() if isinstance(text, str) else text
        ptr = self.write(data)
        rc = self.call("pred")
        response = json.loads(self.output())  # strict JSON, or this raises
        if free:
            self.call("free_buffer", ptr)
        return rc, response

    def pages(self) -> int:
        return self.exports["memory"].size(self.store)


@pytest.fixture(scope="module")
def mlp_wasm() -> bytes:
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Tanh", ["h"], ["y"], name="act")],
        [("x", FLOAT, ["batch", 4])], [("y", FLOAT, ["batch", 3])], {"w": W},
    )  # fmt: skip
    return package(model).wasm


def expected(x) -> np.ndarray:
    return np.tanh(np.asarray(x, np.float32) @ W)


def test_abi_exports_exactly_the_contract(mlp_wasm):
    module = wasmtime.Module(wasmtime.Engine(), mlp_wasm)
    assert {e.name for e in module.exports} == ABI_EXPORTS
    assert {i.module for i in module.imports} <= {"wasi_snapshot_preview1"}


@pytest.mark.parametrize("call_start", [True, False])
def test_abi_nested_lists_roundtrip(mlp_wasm, call_start):
    m = Raw(mlp_wasm, call_start=call_start)
    x = [[0.5, -1, 2, 0.25], [1e-3, 3, -2, 4]]
    rc, response = m.ask(json.dumps({"input": x}))
    assert rc == 0
    np.testing.assert_allclose(response["output"], expected(x), rtol=1e-6, atol=1e-6)


def test_abi_start_twice_is_harmless(mlp_wasm):
    m = Raw(mlp_wasm)
    m.call("_start")
    assert m.ask('{"input": [[1, 2, 3, 4]]}')[0] == 0


def test_abi_raw_request_and_response(mlp_wasm):
    import base64

    m = Raw(mlp_wasm)
    x = R.standard_normal((3, 4)).astype(np.float32)
    request = {"input": base64.b64encode(x.tobytes()).decode(), "type": "raw",
               "shape": [3, 4], "output_type": "raw"}  # fmt: skip
    rc, response = m.ask(json.dumps(request))
    assert rc == 0 and response["dtype"] == "float32" and response["shape"] == [3, 4][:1] + [3]
    y = np.frombuffer(base64.b64decode(response["output"]), np.float32).reshape(3, 3)
    np.testing.assert_allclose(y, expected(x), rtol=1e-6, atol=1e-6)
    # a single dynamic dim is inferred from the byte count when "shape" is left out
    del request["shape"]
    rc, response = m.ask(json.dumps(request))
    assert rc == 0 and response["shape"] == [3, 3]


MALFORMED = [
    ("", "invalid JSON"),
    ("{", "invalid JSON"),
    ('{"input": [[1, 2, 3, 4]]', "invalid JSON"),
    ('{"input": [[1, 2, 3, 4]]} trailing', "after the closing"),
    ("[1, 2]", "JSON object"),
    ('{"inputs": [[1, 2, 3, 4]]}', 'missing key \\"input\\"'),
    ('{"input": [[1, 2, 3]]}', "expects shape (batch, 4), got (1, 3)"),
    ('{"input": [[1, 2, 3, 4], [1, 2]]}', "ragged"),
    ('{"input": [[1, 2, 3, [4]]]}', "deeper"),
    ('{"input": [[1, 2, "x", 4]]}', "element 2"),
    ('{"input": [[1, 2, 3, 4e]]}', "element 3: expected a number"),
    ('{"input": [[1, 2, 3, 01]]}', "invalid JSON"),
    ('{"input": "AAAA", "type": "raw", "shape": [1, 4]}', "needs 16 bytes"),
    ('{"input": "!!!!AAAAAAAAAAAAAAAAAAAA", "type": "raw", "shape": [1, 4]}', "base64"),
    ('{"input": [[1, 2, 3, 4]], "type": "xml"}', 'unknown \\"type\\"'),
    ('{"input": {"nope": [[1, 2, 3, 4]]}}', "no input 'nope'"),
    ('{"input": [[1, 2, 3, 4]], "output_type": 7}', "output_type"),
    ("\xff\xfe{}", "invalid JSON"),
]


@pytest.mark.parametrize(
    "text,message", MALFORMED, ids=[f"case{i}" for i in range(len(MALFORMED))]
)
def test_abi_malformed_request_gives_error_then_recovers(mlp_wasm, text, message):
    m = Raw(mlp_wasm)
    rc, response = m.ask(text.encode("latin-1"))
    assert rc == 1
    assert set(response) == {"error"} and "\n" not in response["error"]
    assert message.replace("\\", "") in response["error"]
    rc, response = m.ask('{"input": [[1, 2, 3, 4]]}')
    assert rc == 0
    np.testing.assert_allclose(response["output"], expected([[1, 2, 3, 4]]), rtol=1e-6)


def test_abi_pred_without_buffer_is_an_error(mlp_wasm):
    m = Raw(mlp_wasm)
    assert m.call("pred") == 1
    assert "malloc_buffer" in json.loads(m.output())["error"]


def test_abi_free_buffer_tolerates_anything(mlp_wasm):
    m = Raw(mlp_wasm)
    rc, _ = m.ask('{"input": [[1, 2, 3, 4]]}', free=False)
    m.call("free_buffer", 0)
    m.call("free_buffer", m.call("get_out_loc"))  # older hosts free the output
    m.call("free_buffer", 12345)
    ptr = m.write(b'{"input": [[1, 2, 3, 4]]}')
    m.call("free_buffer", ptr)
    m.call("free_buffer", ptr)  # double free
    rc, response = m.ask('{"input": [[4, 3, 2, 1]]}')
    assert rc == 0
    np.testing.assert_allclose(response["output"], expected([[4, 3, 2, 1]]), rtol=1e-6)


def test_abi_output_is_nul_terminated(mlp_wasm):
    m = Raw(mlp_wasm)
    m.write(b'{"input": [[1, 2, 3, 4]]}')
    assert m.call("pred") == 0
    assert m.output_to_nul() == m.output()


def test_abi_memory_flat_over_many_calls(mlp_wasm):
    m = Raw(mlp_wasm)
    for _ in range(50):
        m.ask('{"input": [[1, 2, 3, 4], [5, 6, 7, 8]]}')
        m.ask('{"input": [[1, 2, 3]]}')
    pages = m.pages()
    for _ in range(2000):
        assert m.ask('{"input": [[1, 2, 3, 4], [5, 6, 7, 8]]}')[0] == 0
        assert m.ask('{"input": [[1, 2, 3]]}')[0] == 1
    assert m.pages() == pages


def test_abi_small_model_takes_few_pages(mlp_wasm):
    """A tiny model's load, request and run fit in three 64 KiB pages above the runtime's
    own memory (plan, small blocks of every size in shared pages, response); a libc
    allocator that gives each size class its own page took six or more."""
    m = Raw(mlp_wasm, call_start=False)
    base = m.pages()
    for _ in range(3):
        assert m.ask('{"input": [[1, 2, 3, 4], [5, 6, 7, 8]]}')[0] == 0
        assert m.ask('{"input": [[1, 2, 3]]}')[0] == 1  # an error response too
    assert m.pages() - base <= 3


def test_abi_strict_json_for_non_finite_floats():
    model = make_model(
        [helper.make_node("Div", ["a", "b"], ["y"], name="div")],
        [("a", FLOAT, [3]), ("b", FLOAT, [3])],
        [("y", FLOAT, [3])],
    )
    m = Raw(package(model).wasm)
    rc, response = m.ask('{"input": [[1, -1, 0], [0, 0, 0]]}')
    assert rc == 0 and response["output"] == ["Infinity", "-Infinity", "NaN"]
    rc, response = m.ask('{"input": [["NaN", "Infinity", 2], [1, 1, 4]]}')
    assert rc == 0 and response["output"][1:] == ["Infinity", 0.5]


def test_abi_shortest_float_text_reads_back_exactly():
    model = make_model([helper.make_node("Identity", ["x"], ["y"], name="id")],
                       [("x", FLOAT, [6])], [("y", FLOAT, [6])])  # fmt: skip
    m = Raw(package(model).wasm)
    x = np.array([0.1, 1 / 3, 1e-38, 3.4028235e38, -2.5, 16777216.0], np.float32)
    rc, response = m.ask(json.dumps({"input": [float(v) for v in x]}))
    assert rc == 0
    np.testing.assert_array_equal(np.array(response["output"], np.float32), x)
    text = m.output().decode()
    assert "0.1," in text and "0.33333334" in text and "-2.5" in text


def test_abi_int64_beyond_2_53_is_exact():
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        [("a", INT64, [2]), ("b", INT64, [2])],
        [("y", INT64, [2])],
    )
    m = Raw(package(model).wasm)
    big = 2**62 + 12345
    rc, response = m.ask(json.dumps({"input": [[big, -big], [1, -1]]}))
    assert rc == 0 and response["output"] == [big + 1, -big - 1]
    rc, response = m.ask(json.dumps({"input": [[2**63, 0], [1, 1]]}))
    assert rc == 1 and "in range" in response["error"]


def test_abi_several_inputs_positional_and_named():
    model = make_model([helper.make_node("Sub", ["a", "b"], ["y"], name="sub")],
                       [("a", FLOAT, ["n", 2]), ("b", FLOAT, ["n", 2])],
                       [("y", FLOAT, ["n", 2])])  # fmt: skip
    m = Raw(package(model).wasm)
    a, b = [[1, 2], [3, 4]], [[0.5, 0.5], [1, 1]]
    expected_y = onnxruntime_run(model, [np.array(a, np.float32), np.array(b, np.float32)])[0]
    for request in ({"input": [a, b]}, {"input": {"b": b, "a": a}}):
        rc, response = m.ask(json.dumps(request))
        assert rc == 0
        np.testing.assert_array_equal(response["output"], expected_y)
    rc, response = m.ask(json.dumps({"input": [a, b[:1]]}))
    assert rc == 1 and "dimension 'n'" in response["error"]


def test_abi_bare_runtime_reports_missing_plan():
    m = Raw(runtime_bytes(), call_start=False)
    rc, response = m.ask('{"input": 1}')
    assert rc == 1 and "no plan embedded" in response["error"]


def test_abi_float16_json_roundtrip_matches_onnxruntime():
    model = make_model(
        [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
        [("a", TensorProto.FLOAT16, [4]), ("b", TensorProto.FLOAT16, [4])],
        [("y", TensorProto.FLOAT16, [4])],
    )
    a = np.array([0.1, 1e-5, 65504, -2.5], np.float16)
    b = np.array([0.2, 3, -1, np.inf], np.float16)
    expected = onnxruntime_run(model, [a, b])[0]
    m = Raw(package(model).wasm)
    rc, response = m.ask(json.dumps({"input": [[0.1, 1e-5, 65504, -2.5], [0.2, 3, -1, 1e9]]}))
    assert rc == 0
    np.testing.assert_array_equal(np.array(response["output"], np.float32).astype(np.float16),
                                  expected)  # fmt: skip


def test_python_host_reads_a_plain_nested_list_by_the_inputs_rank(mlp_wasm):
    """For a one-input model, [[...]] is that input's value when its rank is the input's,
    and a list of inputs when its first item has the input's rank."""
    from wasmexport import load

    rows = [[0.5, -1.0, 2.0, 0.25]]
    with load(mlp_wasm) as m:
        np.testing.assert_allclose(m.run(rows), expected(rows), rtol=1e-6)
        np.testing.assert_allclose(m.run([rows]), expected(rows), rtol=1e-6)
        np.testing.assert_allclose(m.run([np.array(rows * 2)]), expected(rows * 2), rtol=1e-6)
        with pytest.raises(RuntimeABIError, match="shape"):
            m.run([[1.0, 2.0]])  # rank 2 as given, but 2 columns where 4 are declared
