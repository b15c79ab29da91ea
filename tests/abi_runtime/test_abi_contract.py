"""The error and memory contract of the ABI, and hosts written for the older ABI.

Every malformed request gets pred() == 1 and a one-line {"error": ...} naming what was
expected and what came; the next good request works; memory stays flat; a host that never
calls _start, frees the input before reading the output and reads to the NUL still works.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from abi_helpers import Raw
from model_helpers import FLOAT, INT64, make_model, onnxruntime_run
from onnx import helper, numpy_helper

from wasmexport.packager import package

R = np.random.default_rng(5)
W = R.standard_normal((4, 3)).astype(np.float32)
TABLE = R.standard_normal((5, 3)).astype(np.float32)
GOOD = '{"input": [[1, 2, 3, 4]]}'


def mlp_model():
    return make_model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Tanh", ["h"], ["y"]),
        ],
        [("x", FLOAT, ["batch", 4])],
        [("y", FLOAT, ["batch", 3])],
        {"w": W},
    )


def gather_model():
    """Two inputs (int64 indices, float table), two outputs (rows, the table's shape)."""
    return make_model(
        [helper.make_node("Gather", ["table", "idx"], ["rows"], axis=0),
         helper.make_node("Shape", ["table"], ["shape"])],
        [("idx", INT64, ["n"]), ("table", FLOAT, ["rows", 3])],
        [("rows", FLOAT, ["n", 3]), ("shape", INT64, [2])],
    )  # fmt: skip


@pytest.fixture(scope="module")
def mlp_wasm() -> bytes:
    return package(mlp_model()).wasm


@pytest.fixture(scope="module")
def gather_wasm() -> bytes:
    return package(gather_model()).wasm


def b64(a: np.ndarray) -> str:
    return base64.b64encode(a.tobytes()).decode()


def pb(a: np.ndarray) -> str:
    return base64.b64encode(numpy_helper.from_array(a).SerializeToString()).decode()


X = np.array([[1, 2, 3, 4]], np.float32)
IDX = np.array([4, 0, 4], np.int64)

# (request, substrings the error must contain): what was expected, what came
MLP_ERRORS = [
    ('{"input": null}', "expected a number"),
    ('{"input": true}', "expected a number"),
    ('{"input": [[1, 2, 3, 4]], "type": 3}', '"type" must be a short string'),
    ('{"input": [[1, 2, 3, 4]], "output_type": "xml"}', 'unknown "output_type": "xml"'),
    ('{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [1, -4]}', "non-negative"),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [1, 2.5]}',
        "non-negative",
    ),
    ('{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": "1,4"}', "a shape list"),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [2, 4]}',
        "shape (2, 4) of float32 needs 32 bytes, the base64 text holds 16",
    ),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [4, 1]}',
        "expects shape (batch, 4), got (4, 1)",
    ),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [1,1,1,1,1,1,1,1,4]}',
        "lists more than 8 dims",
    ),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [2147483648, 1]}',
        "has dim 2147483648 at position 0, above the largest supported",
    ),
    (
        '{"input": "AAAAAAAAAAAAAAAAAAAAAA==", "type": "raw", "shape": [1, -4]}',
        "has -4 at position 1; dims are non-negative integers",
    ),
    ('{"input": "!!!!", "type": "raw", "shape": [1, 4]}', "invalid base64 at character 0"),
    ('{"input": "AAAAAAAAAAAAAAAA\\nAAAAAA==", "type": "raw"}', "escape sequences"),
    ('{"input": "AAAA AAAAAAAAAAAAAAAAA==", "type": "raw"}', "invalid base64 at character 4"),
    ('{"input": [[1, 2, 3, 4]], "type": "raw"}', "expected a string"),
    ('{"input": [[1, 2, 3, 4]], "type": "pb"}', "expected a base64 string"),
    ('{"input": [[true, 2, 3, 4]]}', "element 0: expected a number"),
    (
        '{"input": [[1, 2, 3, 1e' + "9" * 70 + "]]}",
        "element 3: expected a number (float32 input)",
    ),
    ('{"input": ' + "[" * 70 + "]" * 70 + "}", "nested deeper than 64"),
    ('{"input": ' + "[" * 10 + "1" + "]" * 10 + "}", "deeper than the rank limit of 8"),
    ('{"x": ' + "[" * 70 + "]" * 70 + ', "input": 1}', "nested deeper than 64"),
    ('{"input": [[1, 2, 3, 4]]}}', "after the closing"),
    ('{"input": [[1, 2, 3, 4]], }', "invalid JSON"),
    ('{"input": [[1, 2, 3, 4]] "type": "json"}', "invalid JSON (expected ',' or '}'"),
    ('{"input": [[1, 2, 3, 4]], "type": "\\ud800"}', 'unknown "type": "\ufffd'),
    (
        b'{"input": [[1, 2, 3, 4]], "type": "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80"}',
        'unknown "type": "' + "\ufffd" * 9,
    ),
    ('{"input": {"x": [[1, 2, 3, 4]], "x": [[1, 2, 3, 4]]}}', "given twice"),
    ('{"input": {}}', "input 'x' is missing"),
    ('{"input": [[1, 2, 3, 4]], "input": [[1, 2]]}', "expects shape (batch, 4), got (1, 2)"),
    ("\0" + GOOD, "invalid JSON (expected a JSON object"),
]

GATHER_ERRORS = [
    ('{"input": [[0]]}', "entry per input"),
    ('{"input": [[0], [[1, 2, 3]], [1]]}', "more entries than the model's 2 inputs"),
    ('{"input": [[1.5], [[1, 2, 3]]]}', "element 0: expected an integer"),
    ('{"input": [[9223372036854775808], [[1, 2, 3]]]}', "expected an integer in range"),
    ('{"input": [[1], [[1, 2, 3]]]}', "Gather"),  # index 1 of a 1-row table
    ('{"input": [[0], [[1, 2]]]}', "input 'table' expects shape (rows, 3), got (1, 2)"),
    ('{"input": {"idx": [0]}}', "input 'table' is missing"),
    (
        '{"input": {"idx": [0], "tabel": [[1, 2, 3]]}}',
        "no input 'tabel' (its inputs: 'idx', 'table')",
    ),
    (
        '{"input": ["AAAAAAAAAAA=", "AAAA"], "type": "raw"}',
        "shape (0, 3) of float32 needs 0 bytes, the base64 text holds 3",
    ),
    (
        '{"input": ["AAAAAAAAAAA=", "AAAA"], "type": "raw", "shapes": [[1], [1, 3]]}',
        "needs 12 bytes, the base64 text holds 3",
    ),
]


def encode(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")


def assert_error(m: Raw, text: str | bytes, message: str) -> dict:
    rc, response = m.ask(encode(text))
    assert rc == 1, response
    assert set(response) == {"error"} and isinstance(response["error"], str)
    assert "\n" not in m.output().decode() and response["error"]
    assert message in response["error"], response["error"]
    return response


@pytest.mark.parametrize(
    "text,message", MLP_ERRORS, ids=[f"mlp{i}" for i in range(len(MLP_ERRORS))]
)
def test_contract_mlp_error_names_expected_and_got(mlp_wasm, text, message):
    m = Raw(mlp_wasm)
    assert_error(m, text, message)
    rc, response = m.ask(GOOD)
    assert rc == 0
    np.testing.assert_allclose(response["output"], np.tanh(X @ W), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "text,message", GATHER_ERRORS, ids=[f"gather{i}" for i in range(len(GATHER_ERRORS))]
)
def test_contract_several_inputs_error_then_recovers(gather_wasm, text, message):
    m = Raw(gather_wasm, call_start=False)
    assert_error(m, text, message)
    rc, response = m.ask(json.dumps({"input": {"table": TABLE.tolist(), "idx": IDX.tolist()}}))
    assert rc == 0
    want = onnxruntime_run(gather_model(), [IDX, TABLE])
    np.testing.assert_array_equal(np.array(response["output"][0], np.float32), want[0])
    assert response["output"][1] == want[1].tolist()


def test_contract_raw_several_outputs_and_inputs(gather_wasm):
    m = Raw(gather_wasm)
    request = {"input": [b64(IDX), b64(TABLE)], "type": "raw", "shapes": [[3], [5, 3]],
               "output_type": "raw"}  # fmt: skip
    rc, response = m.ask(json.dumps(request))
    assert rc == 0 and response["dtypes"] == ["float32", "int64"]
    assert response["shapes"] == [[3, 3], [2]] and response["type"] == "raw"
    rows = np.frombuffer(base64.b64decode(response["output"][0]), np.float32).reshape(3, 3)
    np.testing.assert_array_equal(rows, TABLE[IDX])
    assert np.frombuffer(base64.b64decode(response["output"][1]), np.int64).tolist() == [5, 3]


class OlderHost:
    """A host written for the older ABI (an embedded C host on wasm3, say): never calls
    _start; per request malloc_buffer(strlen + 1), strcpy, pred, free_buffer(input) BEFORE
    reading the output, reads the output as a C string, then frees the output pointer."""

    def __init__(self, wasm: bytes):
        self.m = Raw(wasm, call_start=False)

    def infer(self, text: bytes) -> tuple[int, bytes]:
        m = self.m
        ptr = m.write(text)  # malloc_buffer(len + 1) and the bytes with their NUL
        rc = m.call("pred")
        m.call("free_buffer", ptr)
        # the freed input is reused at once, and scribbled over
        scratch = m.write(b"\xee" * (len(text) + 64))
        out = m.output_to_nul()
        m.call("free_buffer", scratch)
        m.call("free_buffer", m.call("get_out_loc"))
        return rc, out


def test_contract_older_abi_host(mlp_wasm):
    host = OlderHost(mlp_wasm)
    x = R.standard_normal((2, 4)).astype(np.float32)
    good = json.dumps({"input": x.tolist()}).encode()
    raw = json.dumps({"input": b64(x), "type": "raw"}).encode()
    old_pb = json.dumps({"input": pb(x)}).encode()  # no "type": a TensorProto
    want = onnxruntime_run(mlp_model(), [x])[0]
    for _ in range(50):
        host.infer(good)
    pages = host.m.pages()
    for i in range(1500):
        text = (good, raw, old_pb, b'{"input": [[1, 2]]}', b"{")[i % 5]
        rc, out = host.infer(text)
        response = json.loads(out)
        if i % 5 < 3:
            assert rc == 0
            np.testing.assert_allclose(response["output"], want, rtol=1e-6, atol=1e-6)
        else:
            assert rc == 1 and set(response) == {"error"}
    assert host.m.pages() == pages


def test_contract_buffer_without_nul_and_pred_twice(mlp_wasm):
    m = Raw(mlp_wasm, call_start=False)
    data = GOOD.encode()
    ptr = m.call("malloc_buffer", len(data))  # no room for a NUL: the length bounds it
    m.exports["memory"].write(m.store, data, ptr)
    assert m.call("pred") == 0
    first = m.output()
    assert m.call("pred") == 0 and m.output() == first  # the request is not consumed
    m.call("free_buffer", ptr)
    m.call("free_buffer", 0)  # a JS host of the older ABI calls free_buffer() twice
    m.call("free_buffer", 0)
    assert m.call("pred") == 1  # the buffer is gone
    assert "malloc_buffer" in json.loads(m.output_to_nul())["error"]


def test_contract_memory_flat_over_10000_calls(mlp_wasm, gather_wasm):
    mlp, gather = Raw(mlp_wasm), Raw(gather_wasm)
    x = R.standard_normal((3, 4)).astype(np.float32)
    mlp_requests = [
        GOOD,
        json.dumps({"input": b64(x), "type": "raw", "output_type": "raw"}),
        json.dumps({"input": pb(x), "output_type": "pb"}),
        json.dumps({"input": {"x": x.tolist()}, "output_type": "raw"}),
        *(text for text, _ in MLP_ERRORS),
    ]
    gather_requests = [
        json.dumps({"input": [IDX.tolist(), TABLE.tolist()]}),
        json.dumps({"input": {"idx": pb(IDX), "table": pb(TABLE)}, "output_type": "pb"}),
        *(text for text, _ in GATHER_ERRORS),
    ]
    for m, requests in ((mlp, mlp_requests), (gather, gather_requests)):
        encoded = [encode(t) for t in requests]
        for _ in range(10):
            for text in encoded:
                m.ask(text)
        pages, rcs = m.pages(), []
        for i in range(5000):
            rcs.append(m.ask(encoded[i % len(encoded)])[0])
        assert m.pages() == pages, f"memory grew from {pages} to {m.pages()} pages"
        assert rcs.count(0) >= 5000 // len(encoded) * 2


def test_contract_older_type_keys_are_aliases(mlp_wasm):
    """inputType / outputType, documented for the older ABI, mean type / output_type; the
    current keys win whatever the order."""
    m = Raw(mlp_wasm)
    want = np.tanh(X @ W)
    rc, response = m.ask(
        json.dumps({"input": b64(X), "inputType": "raw", "outputType": "raw"})
    )
    assert rc == 0 and response["shape"] == [1, 3]
    y = np.frombuffer(base64.b64decode(response["output"]), np.float32).reshape(1, 3)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    for text in ('{"type": "json", "input": [[1, 2, 3, 4]], "inputType": "raw"}',
                 '{"inputType": "raw", "outputType": "pb", "input": [[1, 2, 3, 4]], '
                 '"type": "json", "output_type": "json"}'):  # fmt: skip
        rc, response = m.ask(text)
        assert rc == 0
        np.testing.assert_allclose(response["output"], want, rtol=1e-6, atol=1e-6)
