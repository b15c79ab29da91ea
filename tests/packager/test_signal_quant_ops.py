"""DFT, STFT, MelWeightMatrix, BitCast, Det and the quantized ops against references.

The ONNX backend cases of these ops use one transform length (10 or 16) and tiny
matrices; these tests go further: non-power-of-two and prime DFT lengths (the direct sum
and Bluestein's algorithm), zero padding and truncation, larger and batched matrices,
per-column quantisation scales, grouped and strided integer convolutions. Each test
packages one module holding several small models (one load costs about a second).
References: numpy in float64 for the transforms and Det (exact enough to judge float64
output tightly), onnxruntime or onnx's reference evaluator for the rest. Malformed inputs
must give a clean error naming the node, never a trap or a wrong answer.
"""

from __future__ import annotations

import numpy as np
import pytest
from model_helpers import make_model
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from op_case_helpers import check_all, merge_models, onnx_type

from wasmexport.abi_runtime import load
from wasmexport.errors import RuntimeABIError, UnsupportedOpError
from wasmexport.packager import package

R = np.random.default_rng(11)


def one(op, feeds, consts=None, attrs=None, opset=20, out_type=None, n_out=1):
    """A one-node model: feeds [(name, array)] are graph inputs, consts initializers.

    An array of None in feeds or consts leaves that input out (an empty input name).
    """
    consts = consts or {}
    names = [("" if v is None else k) for k, v in [*feeds, *consts.items()]]
    feeds = [(n, a) for n, a in feeds if a is not None]
    node = helper.make_node(op, names, [f"y{i}" for i in range(n_out)], name=f"{op.lower()}0",
                            **(attrs or {}))  # fmt: skip
    out_type = out_type or onnx_type(feeds[0][1].dtype)
    model = make_model(
        [node],
        [(n, onnx_type(a.dtype), list(a.shape)) for n, a in feeds],
        [(f"y{i}", out_type if i == 0 else TensorProto.BOOL, None) for i in range(n_out)],
        {k: v for k, v in consts.items() if v is not None},
        opset=opset,
    )
    return model, [a for _, a in feeds]


def run_cases(cases):
    """Package cases [(model, arrays)] as one module and return each case's outputs."""
    merged = merge_models([m for m, _ in cases])
    with load(package(merged).wasm) as module:
        got = module.run([x for _, a in cases for x in a])
    return got if isinstance(got, list) else [got]


def evaluate(model, arrays):
    """The single output of onnx's reference evaluator."""
    names = [i.name for i in model.graph.input]
    return ReferenceEvaluator(model).run(None, dict(zip(names, arrays, strict=True)))[0]


def check_reference(cases):
    """Package cases as one module; each output must equal onnx's reference evaluator's.

    The quantized ops round float products to integers: the reference evaluator
    computes them in float64 as the runtime does (onnxruntime's float32 may differ by
    one at a rounding tie), so these are compared exactly.
    """
    got = run_cases(cases)
    for (model, arrays), g in zip(cases, got, strict=True):
        expected = evaluate(model, arrays)
        assert g.dtype == expected.dtype and g.shape == expected.shape
        np.testing.assert_array_equal(g, expected)


def close(got, expected, tol):
    """got matches expected within tol relative to the largest expected magnitude."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=tol, atol=tol * scale)


# ---- DFT and STFT ----------------------------------------------------------------------


def _complex(x):
    return x[..., 0] + 1j * x[..., 1] if x.shape[-1] == 2 else x[..., 0].astype(complex)


def _pack(y):
    return np.stack([y.real, y.imag], axis=-1)


def numpy_dft(x, axis, length=None, inverse=False, onesided=False):
    """The DFT op's result in float64 from numpy's FFT (X (..., 1 or 2))."""
    z = _complex(x.astype(np.float64))
    n_in = x.shape[axis]
    if inverse and onesided:
        return np.fft.irfft(z, n=length or 2 * (n_in - 1), axis=axis)[..., None]
    length = length or n_in
    y = np.fft.ifft(z, n=length, axis=axis) if inverse else np.fft.fft(z, n=length, axis=axis)
    if onesided:
        y = np.take(y, np.arange(length // 2 + 1), axis=axis)
    return _pack(y)


DFT_CASES = [
    # (input shape, axis, dft_length, inverse, onesided)
    ((2, 7, 3, 1), 1, None, 0, 0),  # short odd length: direct sum
    ((1, 97, 2), 1, None, 0, 0),  # prime: Bluestein
    ((3, 100, 1), 1, None, 0, 1),  # Bluestein, one-sided
    ((2, 5, 128, 2), 2, None, 1, 0),  # power of two, inverse
    ((1, 50, 2), 1, 81, 0, 0),  # zero-padded to 81
    ((1, 90, 1), 1, 64, 0, 0),  # truncated to 64
    ((2, 12, 2), -2, None, 1, 0),  # negative axis
    ((1, 6, 4, 2), 1, 11, 1, 1),  # real inverse of odd length from 6 bins
    ((1, 33, 2), 1, None, 1, 1),  # real inverse, default length 64
    ((4, 1, 1), 1, None, 0, 0),  # length 1
]


def _dft_model(shape, axis, length, inverse, onesided, dtype, opset):
    x = R.standard_normal(shape).astype(dtype)
    attrs = {"inverse": inverse, "onesided": onesided}
    consts = {"dft_length": None if length is None else np.array(length, np.int64)}
    if opset < 20:
        attrs["axis"] = axis
    else:
        consts["axis"] = np.array(axis, np.int64)
    return one("DFT", [("x", x)], consts, attrs, opset=opset), x


@pytest.mark.parametrize("opset", [17, 20])
def test_dft_lengths_and_modes_float64(opset):
    made = [_dft_model(*c, "float64", opset) for c in DFT_CASES]
    got = run_cases([m for m, _ in made])
    for (shape, axis, length, inverse, onesided), (_, x), g in zip(DFT_CASES, made, got,
                                                                   strict=True):  # fmt: skip
        close(g, numpy_dft(x, axis % len(shape), length, inverse, onesided), 1e-11)


def test_dft_float32_and_float16_match_the_reference_evaluator():
    cases = [_dft_model((2, 100, 2), 1, None, 0, 0, "float32", 20)[0],
             _dft_model((1, 24, 3, 1), 1, None, 0, 1, "float32", 20)[0],
             _dft_model((1, 16, 2), 1, None, 1, 0, "float16", 20)[0]]  # fmt: skip
    got = run_cases(cases)
    for (model, arrays), g in zip(cases, got, strict=True):
        expected = evaluate(model, arrays)
        assert g.dtype == expected.dtype
        close(g, expected, 2e-3 if g.dtype == np.float16 else 1e-5)


def test_stft_frames_windows_and_lengths():
    sig = R.standard_normal((2, 300, 1)).astype(np.float32)
    csig = R.standard_normal((1, 200, 2)).astype(np.float32)
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(100) / 100)).astype(np.float32)
    step = np.array(37, np.int64)
    cases = [
        one("STFT", [("x", sig)], {"step": step, "w": None, "len": np.array(25, np.int64)},
            opset=17),
        one("STFT", [("x", sig)], {"step": step, "w": hann}, opset=17),
        one("STFT", [("x", csig)], {"step": np.array(16, np.int64), "w": hann[:64]},
            {"onesided": 0}, opset=17),
    ]  # fmt: skip
    got = run_cases(cases)
    specs = [(sig, 37, np.ones(25), True), (sig, 37, hann, True), (csig, 16, hann[:64], False)]
    for (x, hop, w, onesided), g in zip(specs, got, strict=True):
        z = _complex(x.astype(np.float64))
        frames = (z.shape[1] - len(w)) // hop + 1
        spec = np.stack([np.fft.fft(z[:, f * hop : f * hop + len(w)] * w, axis=1)
                         for f in range(frames)], axis=1)  # fmt: skip
        if onesided:
            spec = spec[:, :, : len(w) // 2 + 1]
        close(g, _pack(spec), 1e-5)


def test_mel_weight_matrix_against_the_reference_evaluator():
    params = [(8, 16, 8192, 0.0, 4096.0), (40, 512, 16000, 20.0, 8000.0),
              (13, 400, 22050, 300.0, 7000.0)]  # fmt: skip
    cases = []
    for mels, dft, rate, lo, hi in params:
        feeds = [("mels", np.array(mels, np.int64)), ("dft", np.array(dft, np.int64)),
                 ("rate", np.array(rate, np.int64)), ("lo", np.array(lo, np.float32)),
                 ("hi", np.array(hi, np.float32))]  # fmt: skip
        cases.append(one("MelWeightMatrix", feeds, opset=17, out_type=TensorProto.FLOAT))
    check_all(cases, tol=1e-6)


# ---- BitCast and Det -------------------------------------------------------------------

BITCASTS = [("float32", "int32"), ("float64", "uint64"), ("float16", "int16"),
            ("int16", "float16"), ("uint8", "int8"), ("bool", "uint8"), ("int64", "float64"),
            ("uint32", "float32")]  # fmt: skip


def test_bitcast_reinterprets_bytes_like_numpy_view():
    cases = []
    for src, dst in BITCASTS:
        # any bytes, NaN patterns included: raw I/O carries bits unchanged
        raw = R.integers(0, 256, 32, dtype=np.uint8)
        x = (raw % 2 if src == "bool" else raw).view(src).reshape(2, -1)
        to = onnx_type(dst)
        cases.append(one("BitCast", [("x", x)], attrs={"to": to}, opset=26, out_type=to))
    got = run_cases(cases)
    for (_, dst), (_, (x,)), g in zip(BITCASTS, cases, got, strict=True):
        assert g.dtype == np.dtype(dst)
        np.testing.assert_array_equal(g.view(np.uint8), x.view(dst).view(np.uint8))


def test_bitcast_of_different_widths_is_refused_at_export():
    x = np.zeros(3, np.float32)
    model, _ = one("BitCast", [("x", x)], attrs={"to": TensorProto.INT64}, opset=26,
                   out_type=TensorProto.INT64)  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"bitcast0.*same width"):
        package(model)


def test_det_sizes_batches_and_singular():
    singular = np.array([[1, 2, 3], [2, 4, 6], [0, 1, 5]], np.float64)
    pivot = np.array([[0, 1, 2], [3, 0, 4], [5, 6, 0]], np.float32)  # zero leading pivot
    xs = [R.standard_normal((1, 1)).astype(np.float32), R.standard_normal((5, 5)),
          R.standard_normal((2, 3, 8, 8)).astype(np.float32), singular, pivot,
          R.standard_normal((3, 4, 4)).astype(np.float16),
          R.standard_normal((20, 20))]  # fmt: skip
    cases = [one("Det", [("x", x)], opset=22) for x in xs]
    got = run_cases(cases)
    for x, g in zip(xs, got, strict=True):
        expected = np.linalg.det(x.astype(np.float64))
        assert g.dtype == x.dtype and g.shape == expected.shape
        tol = 5e-3 if x.dtype == np.float16 else 1e-5 if x.dtype == np.float32 else 1e-10
        np.testing.assert_allclose(g.astype(np.float64), expected, rtol=tol, atol=tol)


# ---- quantized products ----------------------------------------------------------------


def _q(shape, dtype):
    info = np.iinfo(dtype)
    return R.integers(info.min, info.max + 1, shape).astype(dtype)


def test_qlinear_matmul_larger_batched_and_per_column():
    cases = []
    kinds = [("uint8", "uint8", "float32"), ("int8", "int8", "float32"),
             ("uint8", "int8", "float32"), ("int8", "uint8", "float16")]  # fmt: skip
    for ta, tb, ts in kinds:
        a, b = _q((3, 17, 33), ta), _q((33, 9), tb)
        consts = {"as": np.array(0.02, ts), "az": _q((), ta), "b": b,
                  "bs": (R.random(9) * 0.02 + 0.001).astype(ts), "bz": _q((9,), tb),
                  "ys": np.array(0.7, ts), "yz": _q((), ta)}  # fmt: skip
        model, arrays = one("QLinearMatMul", [("a", a)], consts, opset=21)
        # b is an initializer here; the node's input order is a, as, az, b, bs, bz, ys, yz
        model.graph.node[0].input[:] = ["a", "as", "az", "b", "bs", "bz", "ys", "yz"]
        cases.append((model, arrays))
    batched = one("QLinearMatMul", [("a", _q((2, 1, 5, 7), "uint8"))],
                  {"as": np.array(0.05, np.float32), "az": np.array(3, np.uint8),
                   "b": _q((3, 7, 4), "uint8"), "bs": np.array(0.04, np.float32),
                   "bz": np.array(100, np.uint8), "ys": np.array(0.9, np.float32),
                   "yz": np.array(128, np.uint8)}, opset=21)  # fmt: skip
    cases.append(batched)
    check_reference(cases)


def test_conv_integer_and_qlinear_conv_strides_pads_groups():
    x8 = _q((2, 4, 9, 8), "uint8")
    cases = [
        one("ConvInteger", [("x", x8)], {"w": _q((6, 2, 3, 3), "uint8"),
            "xz": np.array(7, np.uint8), "wz": _q((6,), "uint8")},
            {"group": 2, "strides": [2, 1], "pads": [1, 2, 0, 1]}, opset=10,
            out_type=TensorProto.INT32),
        one("ConvInteger", [("x", x8)], {"w": _q((3, 4, 2, 3), "uint8")},
            {"dilations": [2, 1], "auto_pad": "SAME_UPPER"}, opset=10,
            out_type=TensorProto.INT32),
        one("ConvInteger", [("x", _q((1, 2, 15), "int8"))], {"w": _q((4, 2, 4), "int8"),
            "xz": np.array(-3, np.int8)}, {"strides": [3], "pads": [2, 1]}, opset=10,
            out_type=TensorProto.INT32),
        one("QLinearConv", [("x", x8)], {"xs": np.array(0.02, np.float32),
            "xz": np.array(120, np.uint8), "w": _q((5, 4, 3, 3), "int8"),
            "ws": (R.random(5) * 0.01).astype(np.float32), "wz": np.zeros(5, np.int8),
            "ys": np.array(0.3, np.float32), "yz": np.array(10, np.uint8),
            "B": R.integers(-2000, 2000, 5).astype(np.int32)},
            {"strides": [1, 2], "pads": [1, 1, 1, 1]}, opset=10, out_type=TensorProto.UINT8),
        one("QLinearConv", [("x", _q((1, 4, 6, 6), "int8"))],
            {"xs": np.array(0.05, np.float32), "xz": np.array(2, np.int8),
             "w": _q((4, 2, 2, 2), "int8"),
            "ws": np.array(0.01, np.float32), "wz": np.array(0, np.int8),
            "ys": np.array(0.2, np.float32), "yz": np.array(-5, np.int8)},
            {"group": 2}, opset=10, out_type=TensorProto.INT8),
    ]  # fmt: skip
    check_reference(cases)


# ---- Dropout and Bernoulli: deterministic cases pass, random ones are refused ------------


def test_dropout_training_with_ratio_zero_is_identity_and_random_ratio_is_refused():
    x = R.standard_normal((3, 4)).astype(np.float32)
    model, _ = one("Dropout", [("x", x), ("r", np.array(0.0, np.float32)),
                               ("t", np.array(True))], opset=13, n_out=2)  # fmt: skip
    with load(package(model).wasm) as module:
        y, mask = module.run([x, np.array(0.0, np.float32), np.array(True)])
        np.testing.assert_array_equal(y, x)
        assert mask.dtype == np.bool_ and mask.all()
        with pytest.raises(RuntimeABIError, match=r"dropout0.*ratio 0.3.*not supported"):
            module.run([x, np.array(0.3, np.float32), np.array(True)])
    const_true, _ = one("Dropout", [("x", x)], {"r": np.array(0.5, np.float32),
                                                "t": np.array(True)}, opset=13)  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"dropout0.*ratio 0.5"):
        package(const_true)


def test_bernoulli_certain_probabilities_pass_and_others_are_refused():
    p = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    model, _ = one("Bernoulli", [("x", p)], attrs={"dtype": TensorProto.INT32}, opset=22,
                   out_type=TensorProto.INT32)  # fmt: skip
    with load(package(model).wasm) as module:
        np.testing.assert_array_equal(module.run(p), p.astype(np.int32))
        with pytest.raises(RuntimeABIError, match=r"bernoulli0.*probability 0.25.*random"):
            module.run(np.full((2, 3), 0.25))


# ---- malformed inputs: clean errors --------------------------------------------------------

MALFORMED = [
    # (op, feeds at package time, feeds at run time, attrs, opset, error pattern)
    ("DFT", [("x", np.zeros((1, 4, 3), np.float32))], {}, 20,
     r"last dimension of 1 \(real\) or 2"),
    ("DFT", [("x", np.zeros((1, 4, 2), np.float32)), ("len", None),
             ("axis", np.array(2, np.int64))], {}, 20, r"axis 2 is out of range"),
    ("STFT", [("x", np.zeros((1, 10, 1), np.float32)), ("step", np.array(1, np.int64)),
              ("w", np.ones(16, np.float32))], {}, 17, r"frame_length <= signal length 10"),
    ("Det", [("x", np.zeros((2, 3), np.float32))], {}, 22, r"square matrices"),
    ("MelWeightMatrix", [("m", np.array(4, np.int64)), ("d", np.array(16, np.int64)),
                         ("r", np.array(8000, np.int64)), ("lo", np.array(0, np.float32)),
                         ("hi", np.array(20000, np.float32))], {}, 17, r"upper_edge_hertz"),
]  # fmt: skip


@pytest.mark.parametrize("op, feeds, attrs, opset, pattern", MALFORMED,
                         ids=[m[0] + str(i) for i, m in enumerate(MALFORMED)])  # fmt: skip
def test_malformed_input_gives_a_clean_error(op, feeds, attrs, opset, pattern):
    model, arrays = one(op, feeds, attrs=attrs, opset=opset,
                        out_type=TensorProto.FLOAT)  # fmt: skip
    # declare dynamic shapes so that shape inference leaves the check to the runtime
    for i, vi in enumerate(model.graph.input):
        for j, d in enumerate(vi.type.tensor_type.shape.dim):
            d.dim_param = f"d{i}_{j}"
    with load(package(model).wasm) as module:
        with pytest.raises(RuntimeABIError, match=rf"{op.lower()}0.*{pattern}"):
            module.run(arrays)
        # the module keeps working after the error
        with pytest.raises(RuntimeABIError):
            module.run(arrays)
