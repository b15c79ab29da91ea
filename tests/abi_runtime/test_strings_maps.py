"""String tensors, maps and sequences of maps through the plan, the runtime, the JSON ABI
and the Python host, against onnxruntime."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError
from wasmexport.packager import package

F, I64, S = TensorProto.FLOAT, TensorProto.INT64, TensorProto.STRING


def model_of(nodes, inputs, outputs, initializers=(), ml=False):
    graph = helper.make_graph(
        nodes, "strings", inputs, outputs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", 3))
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model


def ort_run(model, feeds):
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(
        None, dict(zip([i.name for i in session.get_inputs()], feeds, strict=True))
    )


def vi(name, dtype, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


WORDS = np.array([["alpha", "β-beta", "gamma\n"], ['δ"quoted"', "e\\f", "😀"]], dtype=object)


# ---- moving ops on strings --------------------------------------------------------------


def _moving_chain():
    """Every data-moving op, chained on a (2, 3) string input plus a string constant."""
    nodes = [
        helper.make_node("Identity", ["x"], ["i"]),
        helper.make_node("Transpose", ["i"], ["t"], perm=[1, 0]),             # (3, 2)
        helper.make_node("Reshape", ["t", "shape"], ["r"]),                   # (6,)
        helper.make_node("Gather", ["r", "idx"], ["g"], axis=0),              # (4,)
        helper.make_node("Concat", ["g", "const"], ["c"], axis=0),            # (6,)
        helper.make_node("Slice", ["c", "starts", "ends"], ["s"]),            # (4,)
        helper.make_node("Unsqueeze", ["s", "axes"], ["u"]),                  # (1, 4)
        helper.make_node("Flatten", ["u"], ["f"], axis=1),                    # (1, 4)
        helper.make_node("Squeeze", ["f", "axes"], ["y"]),                    # (4,)
    ]  # fmt: skip
    init = {
        "shape": np.array([6], np.int64), "idx": np.array([5, 0, 2, 2], np.int64),
        "const": np.array(["ünï", ""], dtype=object), "starts": np.array([1], np.int64),
        "ends": np.array([5], np.int64), "axes": np.array([0], np.int64),
    }  # fmt: skip
    return model_of(nodes, [vi("x", S, [2, 3])], [vi("y", S, None), vi("t", S, None)], init)


def test_strings_moving_ops_match_onnxruntime():
    model = _moving_chain()
    expected = ort_run(model, [WORDS])
    with load(package(model).wasm) as module:
        for raw in (True, False):
            got = module.run(WORDS, raw=raw)
            for g, e in zip(got, expected, strict=True):
                assert g.dtype == object and g.shape == e.shape
                assert g.tolist() == e.tolist()


def test_strings_numpy_str_arrays_are_accepted():
    model = model_of([helper.make_node("Identity", ["x"], ["y"])], [vi("x", S, [None])],
                     [vi("y", S, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        got = module.run(np.array(["a", "bc", "é"]))  # dtype <U2, not object
        assert got.dtype == object and got.tolist() == ["a", "bc", "é"]
        assert module.run(np.array([], dtype=object)).shape == (0,)


@pytest.mark.parametrize("to_string", [True, False])
@pytest.mark.parametrize("dtype", [F, TensorProto.DOUBLE, I64, TensorProto.INT32])
def test_strings_cast_matches_onnxruntime(dtype, to_string):
    np_type = helper.tensor_dtype_to_np_dtype(dtype)
    numbers = np.array([0, 1.5, -2.25, 1e10, 3.0e-5, 123456789, 1 / 3, -7], np.float64)
    numbers = numbers.astype(np_type)
    if np_type in (np.float32, np.float64):
        numbers[-2:] = [np.nan, -np.inf]
    if to_string:
        model = model_of([helper.make_node("Cast", ["x"], ["y"], to=S)], [vi("x", dtype, [8])],
                         [vi("y", S, None)])  # fmt: skip
        feed = numbers
    else:
        model = model_of([helper.make_node("Cast", ["x"], ["y"], to=dtype)], [vi("x", S, [8])],
                         [vi("y", dtype, None)])  # fmt: skip
        feed = np.array([str(v) for v in numbers.tolist()], dtype=object)
    expected = ort_run(model, [feed])[0]
    with load(package(model).wasm) as module:
        got = module.run(feed)
    assert got.dtype == expected.dtype
    if to_string:
        assert got.tolist() == expected.tolist()  # the same text, digit for digit
    else:
        np.testing.assert_array_equal(got, expected)


def test_strings_cast_bad_text_is_an_error_naming_the_node():
    model = model_of([helper.make_node("Cast", ["x"], ["y"], name="c0", to=F)],
                     [vi("x", S, [2])], [vi("y", F, None)])  # fmt: skip
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=r"node 'c0' \(Cast\).*\"1\.5x\".*float32"):
            module.run(np.array(["2", "1.5x"], dtype=object))
        np.testing.assert_array_equal(module.run(np.array(["2", "-1e3"], dtype=object)),
                                      [2, -1000])  # fmt: skip


# ---- the JSON ABI -----------------------------------------------------------------------


def _identity_strings():
    return model_of([helper.make_node("Identity", ["x"], ["y"])], [vi("x", S, [None, None])],
                    [vi("y", S, None)])  # fmt: skip


def test_strings_json_request_escapes_and_utf8():
    with load(package(_identity_strings()).wasm) as module:
        text = r'{"input": [["\u00e9t\u00e9", "tab\there", "\ud83d\ude00", "q\"\\/"]]}'
        rc, out = module.request(text)
        assert rc == 0
        assert out.encode("utf-8").decode("utf-8") == out  # valid UTF-8
        assert json.loads(out) == {"output": [["été", "tab\there", "😀", 'q"\\/']]}
        # control characters come back escaped, the response stays strict JSON
        rc, out = module.request(json.dumps({"input": [["a\u0001b", "\n"]]}))
        assert (
            rc == 0 and "\\u0001" in out and json.loads(out)["output"] == [["a\u0001b", "\n"]]
        )


def test_strings_invalid_utf8_and_lone_surrogates_come_back_as_valid_utf8():
    with load(package(_identity_strings()).wasm) as module:
        rc, out = module.request(r'{"input": [["a\ud800b", "\udc00"]]}')
        assert rc == 0 and json.loads(out)["output"] == [["a\ufffdb", "\ufffd"]]
        # raw bytes that are not UTF-8 (overlong, surrogate, truncated) are replaced
        body = b'{"input": [["\xc0\xaf", "\xed\xa0\x80", "ok\xe2\x82"]]}'
        rc, out = module.request(body)
        assert rc == 0
        got = json.loads(out)["output"][0]
        assert all("\ufffd" in g for g in got) and got[2].startswith("ok")


@pytest.mark.parametrize(
    "request_text, message",
    [
        ('{"input": [[1, "a"]]}', "expected a string"),
        ('{"input": [["a\\u0000b"]]}', "NUL"),
        ('{"input": [["a", ["b"]]]}', "nests lists deeper"),
        ('{"input": "YWJj", "type": "raw", "shape": [1, 3]}', "raw requests do not support"),
    ],
)
def test_strings_json_request_errors(request_text, message):
    with load(package(_identity_strings()).wasm) as module:
        rc, out = module.request(request_text)
        assert rc == 1 and message in json.loads(out)["error"]
        # the module keeps answering
        assert module.request('{"input": [["ok"]]}') == (0, '{"output":[["ok"]]}')


def test_strings_raw_output_writes_strings_as_json():
    with load(package(_identity_strings()).wasm) as module:
        rc, out = module.request('{"input": [["x", "y"]], "output_type": "raw"}')
        assert rc == 0
        assert json.loads(out) == {"output": [["x", "y"]], "type": "raw", "shape": [1, 2],
                                   "dtype": "string"}  # fmt: skip


# ---- maps and sequences of maps ---------------------------------------------------------


def _zipmap(labels_strings):
    labels = {"classlabels_strings": ["b", "a", "é"]} if labels_strings \
        else {"classlabels_int64s": [3, 1, 2]}  # fmt: skip
    key = S if labels_strings else I64
    seq = helper.make_sequence_type_proto(
        helper.make_map_type_proto(key, helper.make_tensor_type_proto(F, None))
    )
    nodes = [
        helper.make_node("Identity", ["x"], ["p"]),
        helper.make_node("ZipMap", ["x"], ["z"], domain="ai.onnx.ml", **labels),
    ]
    return model_of(nodes, [vi("x", F, [None, 3])],
                    [vi("p", F, None), helper.make_value_info("z", seq)], ml=True)  # fmt: skip


@pytest.mark.parametrize("labels_strings", [False, True])
def test_maps_zipmap_is_a_list_of_dicts_like_onnxruntime(labels_strings):
    model = _zipmap(labels_strings)
    x = np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]], np.float32)
    expected = ort_run(model, [x])
    with load(package(model).wasm) as module:
        for raw in (True, False):
            p, z = module.run(x, raw=raw)
            np.testing.assert_array_equal(p, expected[0])
            assert z == expected[1]
            assert [list(d) for d in z] == [list(d) for d in expected[1]]  # same key order
            assert all(type(k) is type(next(iter(expected[1][0]))) for d in z for k in d)


def test_maps_zipmap_json_response_form():
    with load(package(_zipmap(False)).wasm) as module:
        rc, out = module.request('{"input": [[0.5, 0.25, 0.25]]}')
        assert rc == 0
        # label order of the model; keys as JSON strings
        assert out == '{"output":[[[0.5,0.25,0.25]],[{"3":0.5,"1":0.25,"2":0.25}]]}'
        rc, out = module.request('{"input": [[0.5, 0.25, 0.25]], "output_type": "raw"}')
        body = json.loads(out)
        assert body["dtypes"] == ["float32", "seq(map(int64,float32))"]
        assert body["output"][1] == [{"3": 0.5, "1": 0.25, "2": 0.25}]


def _dict_vectorizer(key):
    vocab = {"string_vocabulary": ["a", "b", "c"]} if key == S else \
        {"int64_vocabulary": [10, 20, 30]}  # fmt: skip
    node = helper.make_node("DictVectorizer", ["m"], ["y"], domain="ai.onnx.ml", **vocab)
    m = helper.make_value_info(
        "m", helper.make_map_type_proto(key, helper.make_tensor_type_proto(F, None))
    )
    return model_of([node], [m], [vi("y", F, None)], ml=True)


@pytest.mark.parametrize("key", [S, I64])
def test_maps_dict_input_like_onnxruntime(key):
    model = _dict_vectorizer(key)
    value = {"c": 1.5, "a": -2.0, "zz": 9.0} if key == S else {30: 1.5, 10: -2.0, 99: 9.0}
    expected = ort_run(model, [value])[0]
    with load(package(model).wasm) as module:
        np.testing.assert_array_equal(module.run(value), expected)
        np.testing.assert_array_equal(module.run({"m": value}), expected)  # by input name
        np.testing.assert_array_equal(module.run({}), np.zeros((1, 3), np.float32))


def test_maps_json_object_request_forms():
    with load(package(_dict_vectorizer(I64)).wasm) as module:
        want = '{"output":[[-2,0,1.5]]}'
        assert module.request('{"input": {"30": 1.5, "10": -2}}') == (0, want)
        assert module.request('{"input": {"m": {"30": 1.5, "10": -2}}}') == (0, want)
        assert module.request('{"input": [{"30": 1.5, "10": -2}]}')[0] == 1
        rc, out = module.request('{"input": {"x3": 1.5}}')
        assert rc == 1 and "int64 keys" in json.loads(out)["error"]
        rc, out = module.request('{"input": {"3": "a"}}')
        assert rc == 1 and "expected a number" in json.loads(out)["error"]
        rc, out = module.request('{"input": {"3": 1}, "type": "raw"}')
        assert rc == 1


def test_maps_wrong_python_value_is_a_type_error():
    with load(package(_dict_vectorizer(S)).wasm) as module:
        with pytest.raises(TypeError, match="expected a dict"):
            module.run([np.array([1.0])])


def test_strings_and_maps_in_the_signature():
    with load(package(_zipmap(True)).wasm) as module:
        assert [s.dtype for s in module.outputs] == ["float32", "seq(map(string,float32))"]
    with load(package(_dict_vectorizer(S)).wasm) as module:
        assert module.inputs[0].dtype == "map(string,float32)"
        assert module.inputs[0].shape is None


def _zipmap_then(op):
    seq = helper.make_sequence_type_proto(
        helper.make_map_type_proto(I64, helper.make_tensor_type_proto(F, None))
    )
    nodes = [
        helper.make_node(
            "ZipMap", ["x"], ["z"], domain="ai.onnx.ml", classlabels_int64s=[0, 1]
        ),
        helper.make_node(op, ["z"], ["y"], name="after0"),
    ]
    return model_of(
        nodes, [vi("x", F, [None, 2])], [helper.make_value_info("y", seq)], ml=True
    )


def test_maps_identity_keeps_the_keys():
    model = _zipmap_then("Identity")
    x = np.array([[0.75, 0.25]], np.float32)
    # onnxruntime refuses Identity on seq(map(...)); the runtime passes the maps through
    with load(package(model).wasm) as module:
        assert module.run(x) == [{0: float(x[0, 0]), 1: float(x[0, 1])}]


def test_maps_into_a_tensor_op_is_an_error():
    model = _zipmap_then("Relu")  # not a valid graph: the runtime refuses it all the same
    with load(package(model).wasm) as module:
        rc, out = module.request('{"input": [[0.5, 0.5]]}')
        assert rc == 1 and "after0" in out and "map" in out
