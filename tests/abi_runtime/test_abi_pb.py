"""ONNX TensorProto requests ("type": "pb") and responses ("output_type": "pb")."""

from __future__ import annotations

import base64
import json

import ml_dtypes
import numpy as np
import onnx
import pytest
from model_helpers import FLOAT, make_model, onnxruntime_run
from onnx import TensorProto, helper, numpy_helper

from wasmexport import load
from wasmexport.packager import package

R = np.random.default_rng(11)
W = R.standard_normal((4, 3)).astype(np.float32)

# every dtype the runtime holds, with the numpy type of its elements
DTYPES = {
    TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
    TensorProto.FLOAT16: np.float16, TensorProto.INT8: np.int8, TensorProto.INT16: np.int16,
    TensorProto.INT32: np.int32, TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8,
    TensorProto.UINT16: np.uint16, TensorProto.UINT32: np.uint32,
    TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_,
    TensorProto.BFLOAT16: ml_dtypes.bfloat16,
}  # fmt: skip


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pb(array: np.ndarray) -> str:
    """base64 of the TensorProto numpy_helper writes (dims + raw_data)."""
    return b64(numpy_helper.from_array(array).SerializeToString())


def varint(x: int) -> bytes:
    x &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((x & 0x7F) | (0x80 if x > 0x7F else 0))
        x >>= 7
        if not x:
            return bytes(out)


def field(number: int, wire: int, body: bytes | int) -> bytes:
    """One protobuf field: key then a varint, fixed or length-delimited body."""
    key = varint(number << 3 | wire)
    if wire == 0:
        return key + varint(body)
    if wire == 2:
        return key + varint(len(body)) + body
    return key + body


@pytest.fixture(scope="module")
def mlp():
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         helper.make_node("Tanh", ["h"], ["y"], name="act")],
        [("x", FLOAT, ["batch", 4])], [("y", FLOAT, ["batch", 3])], {"w": W},
    )  # fmt: skip
    with load(package(model).wasm) as m:
        yield model, m


def ask(m, request) -> tuple[int, dict]:
    rc, text = m.request(request if isinstance(request, str) else json.dumps(request))
    return rc, json.loads(text)


@pytest.mark.parametrize("form", ["pb", "default", "list"])
def test_pb_request_matches_onnxruntime(mlp, form):
    model, m = mlp
    x = R.standard_normal((5, 4)).astype(np.float32)
    request = {"input": pb(x), "type": "pb", "output_type": "raw"}
    if form == "default":  # a bare base64 string without "type" is a TensorProto
        del request["type"]
    if form == "list":  # one-element list for a single input, as some hosts send
        request["input"] = [request["input"]]
    rc, response = ask(m, request)
    assert rc == 0, response
    y = np.frombuffer(base64.b64decode(response["output"]), np.float32).reshape(5, 3)
    np.testing.assert_allclose(y, onnxruntime_run(model, [x])[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y, m.run(x))  # the same bits as the raw form


def test_pb_typed_fields_packed_and_unpacked(mlp):
    model, m = mlp
    x = R.standard_normal((2, 4)).astype(np.float32)
    want = onnxruntime_run(model, [x])[0]
    # float_data, as helper.make_tensor writes it (packed floats, unpacked dims)
    typed = helper.make_tensor("x", TensorProto.FLOAT, [2, 4], x.ravel().tolist())
    # dims packed, float_data one field per element, chunks in any order
    floats = b"".join(field(4, 5, v.tobytes()) for v in x.ravel())
    manual = (
        field(1, 2, varint(2) + varint(4)) + field(2, 0, 1) + floats + field(12, 2, b"doc")
    )
    for data in (typed.SerializeToString(), manual):
        rc, response = ask(m, {"input": b64(data), "type": "pb"})
        assert rc == 0, response
        np.testing.assert_allclose(response["output"], want, rtol=1e-6)


@pytest.mark.parametrize("dtype", sorted(DTYPES), ids=[helper.tensor_dtype_to_np_dtype(d).name
                                                        for d in sorted(DTYPES)])  # fmt: skip
def test_pb_every_dtype_roundtrips_raw_and_typed(dtype):
    np_type = DTYPES[dtype]
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], [("x", dtype, [2, 3])],
                       [("y", dtype, [2, 3])])  # fmt: skip
    info = np.iinfo(np_type) if np.issubdtype(np_type, np.integer) else None
    if info is not None:
        x = np.array([[info.min, info.max, 0], [1, 2, 3]], np_type)
    elif np_type is np.bool_:
        x = np.array([[True, False, True], [False, False, True]])
    else:
        x = np.array([[np.inf, -0.0, np.nan], [1.5, -2.25, 1e-3]], np_type)
    typed = helper.make_tensor("x", dtype, [2, 3], x.ravel().tolist())
    assert not typed.raw_data
    with load(package(model).wasm) as m:
        for data in (pb(x), b64(typed.SerializeToString())):
            for out_type in ("raw", "pb"):
                rc, response = ask(m, {"input": data, "type": "pb", "output_type": out_type})
                assert rc == 0, response
                if out_type == "pb":
                    assert response["type"] == "pb"
                    proto = onnx.TensorProto.FromString(base64.b64decode(response["output"]))
                    assert proto.name == "y" and list(proto.dims) == [2, 3]
                    y = numpy_helper.to_array(proto)
                else:
                    y = np.frombuffer(base64.b64decode(response["output"]), np_type)
                assert y.reshape(2, 3).tobytes() == x.tobytes()


def test_pb_several_inputs_list_and_by_name():
    model = make_model(
        [helper.make_node("Sub", ["a", "b"], ["y"])],
        [("a", FLOAT, ["n", 2]), ("b", TensorProto.FLOAT, ["n", 2])],
        [("y", FLOAT, ["n", 2])],
    )
    a, b = R.standard_normal((3, 2)).astype(np.float32), R.standard_normal((3, 2))
    b = b.astype(np.float32)
    want = onnxruntime_run(model, [a, b])[0]
    with load(package(model).wasm) as m:
        for request in (
            {"input": [pb(a), pb(b)]},
            {"input": {"b": pb(b), "a": pb(a)}},
            {"input": [pb(a), pb(b)], "type": "pb", "output_type": "pb"},
        ):
            rc, response = ask(m, request)
            assert rc == 0, response
            y = response["output"]
            if request.get("output_type") == "pb":
                y = numpy_helper.to_array(onnx.TensorProto.FromString(base64.b64decode(y)))
            np.testing.assert_array_equal(np.asarray(y, np.float32), want)


def test_pb_several_outputs_as_pb_list():
    model = make_model(
        [helper.make_node("Neg", ["x"], ["n"]), helper.make_node("Abs", ["x"], ["a"])],
        [("x", FLOAT, [3])],
        [("n", FLOAT, [3]), ("a", FLOAT, [3])],
    )
    x = np.array([1.5, -2, 0], np.float32)
    with load(package(model).wasm) as m:
        rc, response = ask(m, {"input": pb(x), "output_type": "pb"})
    assert rc == 0 and response["type"] == "pb" and len(response["output"]) == 2
    protos = [onnx.TensorProto.FromString(base64.b64decode(s)) for s in response["output"]]
    assert [p.name for p in protos] == ["n", "a"]
    np.testing.assert_array_equal(numpy_helper.to_array(protos[0]), -x)
    np.testing.assert_array_equal(numpy_helper.to_array(protos[1]), np.abs(x))


X24 = np.arange(8, dtype=np.float32).reshape(2, 4)
GOOD = numpy_helper.from_array(X24).SerializeToString()
BAD_PB = [
    (
        numpy_helper.from_array(X24.astype(np.int64)).SerializeToString(),
        "TensorProto holds int64, the input takes float32",
    ),
    (field(1, 0, 2) + field(1, 0, 4) + field(9, 2, X24.tobytes()), "no data_type"),
    (
        field(1, 0, 2) + field(1, 0, 3) + field(2, 0, 1) + field(9, 2, X24.tobytes()),
        "dims (2, 3) of float32 need 24 bytes, its raw_data holds 32",
    ),
    (
        numpy_helper.from_array(X24.reshape(8)).SerializeToString(),
        "expects shape (batch, 4), got (8,)",
    ),
    (GOOD[:-3], "length past the end"),
    (GOOD + b"\x08", "truncated varint"),
    (b"\x08" + b"\xff" * 10 + b"\x01", "truncated varint"),
    (b"\x0b\x00", "unsupported wire type"),
    (field(1, 0, -1) + field(2, 0, 1), "negative dimension"),
    (b"".join(field(1, 0, 1) for _ in range(9)) + field(2, 0, 1), "more than 8 dims"),
    (field(1, 0, 1 << 40) + field(1, 0, 1 << 40) + field(2, 0, 1), "too large"),
    (field(1, 0, 2) + field(1, 0, 4) + field(2, 0, 1) + field(6, 2, b"abc"), "string_data"),
    (field(1, 0, 1) + field(2, 0, 1) + field(14, 0, 1), "data_location"),
    (
        field(1, 0, 2)
        + field(1, 0, 4)
        + field(2, 0, 1)
        + field(9, 2, X24.tobytes())
        + field(4, 5, b"\0\0\0\0"),
        "float_data and raw_data",
    ),
    (field(1, 0, 2) + field(1, 0, 4) + field(2, 0, 1) + field(7, 0, 5), "data in int64_data"),
    (field(2, 2, b"\x01"), "bad value in data_type"),
    (field(8, 0, 1), "wrong wire type in name"),
]


@pytest.mark.parametrize("data,message", BAD_PB, ids=[f"case{i}" for i in range(len(BAD_PB))])
def test_pb_malformed_tensorproto_is_a_clear_error(mlp, data, message):
    model, m = mlp
    pages = m._memory.size(m._store)
    rc, response = ask(m, {"input": b64(data), "type": "pb"})
    assert rc == 1 and set(response) == {"error"}
    assert message in response["error"] and response["error"].startswith("request: input 'x'")
    assert m._memory.size(m._store) == pages  # hostile dims allocate nothing
    rc, response = ask(m, {"input": b64(GOOD)})
    assert rc == 0
    np.testing.assert_allclose(response["output"], onnxruntime_run(model, [X24])[0], rtol=1e-6)


def test_pb_int32_data_out_of_range_for_int8():
    model = make_model(
        [helper.make_node("Identity", ["x"], ["y"])],
        [("x", TensorProto.INT8, [2])],
        [("y", TensorProto.INT8, [2])],
    )
    data = (
        field(1, 0, 2) + field(2, 0, TensorProto.INT8) + field(5, 2, varint(5) + varint(300))
    )
    with load(package(model).wasm) as m:
        rc, response = ask(m, {"input": b64(data), "type": "pb"})
    assert rc == 1 and "element 1 (300) is out of range for int8" in response["error"]


def test_pb_bad_base64_and_wrong_json_type(mlp):
    _, m = mlp
    rc, response = ask(m, {"input": "AAA*", "type": "pb"})
    assert rc == 1 and "invalid base64 at character 3" in response["error"]
    rc, response = ask(m, {"input": 12, "type": "pb"})
    assert rc == 1 and "expected a base64 string" in response["error"]
    # a list of floats written as words stays a nested-list request
    rc, response = ask(m, {"input": [["NaN", 1, 2, 3]]})
    assert rc == 0 and response["output"][0][0] == "NaN"
