"""JSON number parsing and float formatting: exact round trips, and text that stays short."""

from __future__ import annotations

import json

import numpy as np
from model_helpers import FLOAT, make_model
from onnx import helper

from wasmexport.abi_runtime import load
from wasmexport.packager import package

R = np.random.default_rng(5)


def _identity_module():
    model = make_model([helper.make_node("Identity", ["x"], ["y"], name="id")],
                       [("x", FLOAT, ["n"])], [("y", FLOAT, None)])  # fmt: skip
    return load(package(model).wasm)


def _samples() -> np.ndarray:
    bits = R.integers(0, 2**32, 4000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    special = np.array([0.0, -0.0, 0.1, 1 / 3, 1e-38, 1e-45, 3.4028235e38, -2.5, 16777216.0,
                        123456789.0, 1e-5, 9.999999e-5, 0.5, 100.0, 1e7, 1.5e-7],
                       np.float32)  # fmt: skip
    normal = R.standard_normal(4000).astype(np.float32) * 10.0 ** R.integers(-12, 12, 4000)
    x = np.concatenate([special, bits, normal.astype(np.float32)])
    return x[np.isfinite(x)]


def test_json_floats_round_trip_exactly():
    x = _samples()
    with _identity_module() as m:
        rc, text = m.request(json.dumps({"input": [float(v) for v in x]}))
    assert rc == 0, text
    y = np.array(json.loads(text)["output"], np.float64).astype(np.float32)
    np.testing.assert_array_equal(y.view(np.uint32), x.view(np.uint32))


def test_json_float_text_is_shortest_up_to_nine_digits():
    x = _samples()
    with _identity_module() as m:
        rc, text = m.request(json.dumps({"input": [float(v) for v in x]}))
    body = text[text.index("[") + 1 : text.rindex("]")].split(",")
    for value, token in zip(x, body, strict=True):
        for digits in range(6, 10):
            if np.float32(float(f"{value:.{digits}g}")) == value:
                break
        mantissa = token.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
        assert len(mantissa) <= digits, (token, value, digits)


def test_json_input_numbers_parse_correctly():
    texts = [
        "0.1",
        "-3.25e-3",
        "1e22",
        "12345678901234567890",
        "7e-30",
        "-0",
        "5E+3",
        "0.000001",
        "1.17549435e-38",
        "340282346638528859811704183484516925440",
    ]
    with _identity_module() as m:
        rc, text = m.request('{"input": [' + ",".join(texts) + "]}")
    assert rc == 0, text
    got = np.array(json.loads(text)["output"], np.float32)
    np.testing.assert_array_equal(got, np.array([float(t) for t in texts], np.float32))
