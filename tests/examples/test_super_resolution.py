"""Tests of the pure helpers of examples/super_resolution.py, against independent results.

The example is a script, not a package: it is loaded from its path. None of these tests
exports or runs a wasm module; the example itself does that end to end.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "super_resolution.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("super_resolution_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building
    spec.loader.exec_module(module)
    return module


sr = _load_example()


@pytest.fixture
def rgb() -> np.ndarray:
    """A small (20, 31, 3) uint8 image covering the whole colour range."""
    return np.random.default_rng(1).integers(0, 256, (20, 31, 3), dtype=np.uint8)


def test_psnr_known_values():
    ref = np.zeros((4, 5), np.float32)
    assert sr.psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-5)  # mse 0.01
    assert sr.psnr(ref + 0.01, ref) == pytest.approx(40.0, abs=1e-4)  # mse 1e-4
    assert sr.psnr(ref + 25.5, ref, peak=255.0) == pytest.approx(20.0, abs=1e-5)
    half = ref.copy()
    half[:2] = 1.0  # half the pixels off by 1: mse 0.5
    assert sr.psnr(half, ref) == pytest.approx(10 * math.log10(2), abs=1e-9)
    assert sr.psnr(ref, ref) == math.inf


def test_psnr_shape_mismatch():
    with pytest.raises(ValueError, match="shapes differ"):
        sr.psnr(np.zeros((2, 3)), np.zeros((3, 2)))


def test_split_ycbcr_bt601(rgb):
    y, cb, cr = sr.split_ycbcr(rgb)
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    # full-range BT.601 (JFIF), computed here independently of PIL
    y_ref = 0.299 * r + 0.587 * g + 0.114 * b
    cb_ref = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr_ref = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    for got, want in ((y, y_ref), (cb, cb_ref), (cr, cr_ref)):
        assert got.dtype == np.float32 and got.shape == rgb.shape[:2]
        assert np.max(np.abs(got * 255 - want)) <= 1.0


def test_merge_ycbcr_round_trip_matches_pil(rgb):
    expected = np.asarray(Image.fromarray(rgb).convert("YCbCr").convert("RGB"))
    got = sr.merge_ycbcr(*sr.split_ycbcr(rgb))
    assert got.dtype == np.uint8 and got.shape == rgb.shape
    np.testing.assert_array_equal(got, expected)
    # and the round trip loses at most a few levels per channel
    assert np.max(np.abs(got.astype(int) - rgb.astype(int))) <= 3


def test_merge_ycbcr_clips_out_of_range():
    grey = np.full((2, 2), 0.5, np.float32)
    white = sr.merge_ycbcr(grey + 2.0, grey, grey)  # y clipped to 1.0
    black = sr.merge_ycbcr(grey - 2.0, grey, grey)  # y clipped to 0.0
    assert np.all(white == 255) and np.all(black == 0)


def test_resize_bicubic_keeps_constants_and_shape():
    plane = np.full((7, 11), 0.25, np.float32)
    big = sr.resize_bicubic(plane, 21, 33)
    assert big.shape == (21, 33) and big.dtype == np.float32
    np.testing.assert_allclose(big, 0.25, atol=1e-6)


def test_make_low_res_crops_and_quantizes():
    y = np.random.default_rng(2).random((20, 32), dtype=np.float32)
    hr, lr = sr.make_low_res(y)
    assert hr.shape == (18, 30) and lr.shape == (6, 10)
    np.testing.assert_array_equal(hr, y[:18, :30])
    np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-4)  # 8-bit levels
    # away from the borders, shrinking a linear ramp gives its 3x3 block means (to 8 bits)
    ramp = np.add.outer(np.linspace(0, 0.5, 18), np.linspace(0, 0.4, 30)).astype(np.float32)
    _, lr_ramp = sr.make_low_res(ramp)
    blocks = ramp.reshape(6, 3, 10, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(lr_ramp[2:-2, 2:-2], blocks[2:-2, 2:-2], atol=0.5 / 255 + 1e-6)


def test_sample_patches_are_aligned_under_flips_and_rotations():
    rng = np.random.default_rng(3)
    lr = rng.random((15, 19), dtype=np.float32)
    hr = np.kron(lr, np.ones((3, 3), np.float32))  # each low-res pixel as a 3x3 block
    x, y = sr.sample_patches(lr, hr, 64, np.random.default_rng(0), size=5)
    assert x.shape == (64, 1, 5, 5) and y.shape == (64, 1, 15, 15)
    for n in range(64):
        np.testing.assert_array_equal(y[n, 0], np.kron(x[n, 0], np.ones((3, 3))))
    # the augmentation happened: some patches are not plain crops of lr
    crops = {lr[i : i + 5, j : j + 5].tobytes() for i in range(11) for j in range(15)}
    assert sum(x[n, 0].tobytes() not in crops for n in range(64)) > 32


def test_net_output_is_three_times_larger():
    net = sr.SuperResolutionNet().eval()
    with torch.no_grad():
        y = net(torch.rand(2, 1, 10, 13))
    assert y.shape == (2, 1, 30, 39)


def test_fit_linear_upscaler_recovers_nearest_neighbour():
    lr = np.random.default_rng(4).random((12, 14), dtype=np.float32)
    weights, biases = sr.fit_linear_upscaler(lr, np.kron(lr, np.ones((3, 3), np.float32)))
    delta = np.zeros((5, 5), np.float32)
    delta[2, 2] = 1.0
    assert weights.shape == (9, 5, 5) and biases.shape == (9,)
    np.testing.assert_allclose(weights, np.broadcast_to(delta, (9, 5, 5)), atol=1e-4)
    np.testing.assert_allclose(biases, 0.0, atol=1e-4)


def test_init_linear_path_makes_the_net_that_linear_filter():
    rng = np.random.default_rng(5)
    lr = rng.random((12, 14), dtype=np.float32)
    net = sr.SuperResolutionNet()
    sr.init_linear_path(net, lr, np.kron(lr, np.ones((3, 3), np.float32)))
    test = rng.random((9, 10), dtype=np.float32)
    with torch.no_grad():
        out = net.eval()(torch.from_numpy(test)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(out, np.kron(test, np.ones((3, 3))), atol=1e-4)


def _photo_crop():
    y = sr.split_ycbcr(sr.load_photo(sr.TRAIN_PHOTO))[0]
    return sr.make_low_res(y[150:270, 250:370])  # the flower's centre: (120, 120) -> (40, 40)


def test_train_reduces_loss():
    torch.manual_seed(0)
    hr, lr = _photo_crop()
    net = sr.SuperResolutionNet()
    x, y = sr.sample_patches(lr, hr, 8, np.random.default_rng(99), size=12)
    before = sr.mean_loss(net, x, y)
    stats = sr.train(
        net, lr, hr, seconds=60, seed=0, steps=10, batch=4, patch=12, warmup_steps=1
    )
    after = sr.mean_loss(net, x, y)
    assert stats.steps == 10 and math.isfinite(stats.loss)
    assert after < 0.5 * before  # from the orthogonal init: about 0.19 -> 0.05


def test_train_warm_up_keeps_the_linear_start():
    torch.manual_seed(0)
    hr, lr = _photo_crop()
    net = sr.SuperResolutionNet()
    sr.init_linear_path(net, lr, hr)
    x, y = sr.sample_patches(lr, hr, 8, np.random.default_rng(99), size=12)
    before = sr.mean_loss(net, x, y)
    sr.train(net, lr, hr, seconds=60, seed=0, steps=5, batch=4, patch=12)
    assert sr.mean_loss(net, x, y) < 1.1 * before


def test_train_repeats_with_the_same_seed():
    hr, lr = _photo_crop()
    weights = []
    for _ in range(2):
        torch.manual_seed(7)
        net = sr.SuperResolutionNet()
        sr.train(net, lr, hr, seconds=60, seed=7, steps=3, batch=2, patch=8)
        weights.append(net.conv1.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)
