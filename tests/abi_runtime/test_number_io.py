"""JSON number parsing and float formatting: exact round trips, and text that stays short."""

from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import numpy as np
from model_helpers import FLOAT, make_model
from onnx import TensorProto, helper

from wasmexport.abi_runtime import load
from wasmexport.packager import package

R = np.random.default_rng(5)


def _identity_module(dtype=FLOAT):
    model = make_model([helper.make_node("Identity", ["x"], ["y"], name="id")],
                       [("x", dtype, ["n"])], [("y", dtype, None)])  # fmt: skip
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


def _nearest_float32(value: Fraction) -> np.float32:
    """The float32 nearest to an exact value, ties to even (no double rounding)."""
    guess = np.float32(float(value))
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess,
                  np.nextafter(guess, np.float32(np.inf))]  # fmt: skip
    return min(candidates, key=lambda c: (abs(Fraction(float(c)) - value),
                                          int(np.array(c).view(np.uint32)) & 1))  # fmt: skip


def _decimal_texts() -> list[str]:
    """Number texts of 15 to 40 significant digits, many within a hair of a float32
    rounding boundary (the midpoint of two floats), where parsing to double and then
    rounding to float would round twice."""
    texts = [repr(float(v)) for v in R.standard_normal(500).astype(np.float32)]
    texts += [f"{m}e{e}" for m, e in zip(R.integers(10**15, 10**19, 500, dtype=np.uint64),
                                         R.integers(-40, 18, 500), strict=True)]  # fmt: skip
    lows = (R.standard_normal(300) * 10.0 ** R.integers(-20, 20, 300)).astype(np.float32)
    for low in lows:
        high = np.nextafter(low, np.float32(np.inf))
        midpoint = (Fraction(float(low)) + Fraction(float(high))) / 2
        for digits in (16, 17, 19, 25, 40):
            texts.append(f"{float(midpoint):.{digits - 1}e}")  # rounded near the midpoint
        texts.append(str(Decimal(float(midpoint))))  # the midpoint itself, exactly
    return [t for t in texts if len(t) < 64]  # the runtime's longest number token


def test_json_float32_text_is_correctly_rounded():
    texts = _decimal_texts()
    with _identity_module() as m:
        rc, text = m.request('{"input": [' + ",".join(texts) + "]}")
    assert rc == 0, text
    got = np.array(json.loads(text)["output"], np.float64).astype(np.float32)
    want = np.array([_nearest_float32(Fraction(t)) for t in texts], np.float32)
    wrong = [(t, g, w) for t, g, w in zip(texts, got, want, strict=True)
             if g.view(np.uint32) != w.view(np.uint32)]  # fmt: skip
    assert not wrong, wrong[:5]


def test_json_float64_text_is_correctly_rounded():
    texts = _decimal_texts()
    with _identity_module(TensorProto.DOUBLE) as m:
        rc, text = m.request('{"input": [' + ",".join(texts) + "]}")
    assert rc == 0, text
    assert json.loads(text)["output"] == [float(t) for t in texts]
