"""Super-resolution inside WebAssembly: the PyTorch ONNX Runtime tutorial, end to end.

Reproduces PyTorch's "super_resolution_with_onnxruntime" tutorial (SuperResolutionNet,
upscale factor 3, working on the Y channel of a YCbCr image), with a WebAssembly (WASI)
module built by wasmexport in place of onnxruntime:

    1. load two photos that scikit-learn ships and cut training patches from one;
    2. train the net briefly on CPU (the tutorial's pretrained weights need a download);
    3. export it to one .wasm file, verified against PyTorch and onnxruntime on the way out;
    4. run the tutorial's flow in the module: a 224x224 photo in, a 672x672 photo out,
       checked against onnxruntime on the same input;
    5. measure PSNR against plain bicubic upscaling on the photo held out from training.

Data: the net trains on flower.jpg and is evaluated on china.jpg, which it never sees.
Low-res images are the Y channel shrunk 3x with PIL's bicubic filter and stored in 8 bits;
the target is the original Y channel scaled to [0, 1].

Training: Adam with a short warm-up and a cosine decay over a wall-clock budget, on random
24x24 low-res patches (72x72 targets), flipped and rotated. The architecture and the
tutorial's orthogonal initialisation are kept; on top of it, 9 of the channels start as
the best linear 5x5 upscaler of the training photo (see init_linear_path), so the net
starts level with bicubic and spends its short budget on what a linear filter misses.
The seed fixes the initialisation and the order of the patches, but how many steps fit in
the time budget depends on the machine; --steps N trains exactly N steps instead, and such
runs repeat exactly.

Run it from the repository root (about a minute on two idle cores):

    python examples/super_resolution.py                  # writes out/
    python examples/super_resolution.py --train-seconds 20 --out /tmp/sr
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.init as init
from PIL import Image

from wasmexport import ExportResult, WasmExportError, export_wasm, load

UPSCALE = 3  # the tutorial's upscale factor
TRAIN_PHOTO = "flower.jpg"  # from sklearn.datasets.load_sample_image
HELD_OUT_PHOTO = "china.jpg"
TUTORIAL_SIZE = 224  # the tutorial resizes its input photo to 224x224
PATCH = 24  # training patch side, in low-res pixels
BATCH = 32
LEARNING_RATE = 1e-3
WARMUP_STEPS = 100  # linear learning-rate ramp: Adam's first steps would wreck the warm start
LINEAR_SUPPORT = 5  # conv1's kernel side: the warm-start filter's support
RELU_OFFSET = 0.5  # keeps the linear path positive through the ReLUs
MAX_ABS_DIFF = 1e-4  # WASM vs onnxruntime, on the tutorial's input
LOG_LINES = 5  # progress lines printed while training


class SuperResolutionNet(nn.Module):
    """The tutorial's ESPCN-style net: 4 convolutions and a pixel shuffle."""

    def __init__(self, upscale_factor: int = UPSCALE):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(64, 64, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(64, 32, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(32, upscale_factor**2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)
        self._initialize_weights()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        return self.pixel_shuffle(self.conv4(x))

    def _initialize_weights(self) -> None:
        init.orthogonal_(self.conv1.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv2.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv3.weight, init.calculate_gain("relu"))
        init.orthogonal_(self.conv4.weight)


# --- images: YCbCr planes as float32 in [0, 1] -------------------------------------------


def load_photo(name: str) -> np.ndarray:
    """Load one of scikit-learn's sample photos as an (h, w, 3) uint8 RGB array."""
    from sklearn.datasets import load_sample_image

    return load_sample_image(name)


def split_ycbcr(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split an (h, w, 3) uint8 RGB image into Y, Cb, Cr planes, float32 in [0, 1].

    Uses PIL's conversion (full-range BT.601, as in JPEG), like the tutorial.
    """
    planes = Image.fromarray(rgb, "RGB").convert("YCbCr").split()
    y, cb, cr = (np.asarray(p, dtype=np.float32) / 255.0 for p in planes)
    return y, cb, cr


def merge_ycbcr(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Merge Y, Cb, Cr planes (float, clipped to [0, 1]) into an (h, w, 3) uint8 RGB image."""
    planes = [Image.fromarray(to_uint8(p), "L") for p in (y, cb, cr)]
    return np.asarray(Image.merge("YCbCr", planes).convert("RGB"))


def to_uint8(plane: np.ndarray) -> np.ndarray:
    """Clip a [0, 1] float plane and round it to uint8 levels 0..255."""
    return np.round(np.clip(plane, 0.0, 1.0) * 255.0).astype(np.uint8)


def resize_bicubic(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a float32 plane with PIL's bicubic filter, in float (no rounding, no clip)."""
    image = Image.fromarray(np.asarray(plane, dtype=np.float32), "F")
    return np.asarray(image.resize((width, height), Image.Resampling.BICUBIC))


def make_low_res(y: np.ndarray, factor: int = UPSCALE) -> tuple[np.ndarray, np.ndarray]:
    """Make a (high-res, low-res) pair from a Y plane.

    The high-res plane is `y` cropped to a multiple of `factor`; the low-res plane is it
    shrunk `factor` times with PIL's bicubic filter and rounded to 8 bits, as a stored
    low-res image would be.
    """
    h, w = (y.shape[0] // factor) * factor, (y.shape[1] // factor) * factor
    hr = np.ascontiguousarray(y[:h, :w], dtype=np.float32)
    lr = resize_bicubic(hr, h // factor, w // factor)
    return hr, to_uint8(lr).astype(np.float32) / 255.0


def psnr(x: np.ndarray, reference: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio of `x` against `reference`, in dB (inf when equal)."""
    if x.shape != reference.shape:
        raise ValueError(f"psnr: shapes differ, {x.shape} vs {reference.shape}")
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


# --- training ----------------------------------------------------------------------------


def sample_patches(
    lr: np.ndarray,
    hr: np.ndarray,
    count: int,
    rng: np.random.Generator,
    size: int = PATCH,
    factor: int = UPSCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `count` aligned random patch pairs, each randomly flipped and rotated.

    Returns x (count, 1, size, size) from `lr` and y (count, 1, factor*size, factor*size)
    from `hr`, both float32; low-res pixel (i, j) covers high-res pixels
    [factor*i, factor*i + factor) x [factor*j, factor*j + factor).
    """
    big = size * factor
    xs = np.empty((count, 1, size, size), np.float32)
    ys = np.empty((count, 1, big, big), np.float32)
    for n in range(count):
        i = int(rng.integers(0, lr.shape[0] - size + 1))
        j = int(rng.integers(0, lr.shape[1] - size + 1))
        x = lr[i : i + size, j : j + size]
        y = hr[factor * i : factor * i + big, factor * j : factor * j + big]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        x, y = np.rot90(x, turns), np.rot90(y, turns)
        xs[n, 0], ys[n, 0] = (x[:, ::-1], y[:, ::-1]) if flip else (x, y)
    return xs, ys


def fit_linear_upscaler(
    lr: np.ndarray, hr: np.ndarray, support: int = LINEAR_SUPPORT, factor: int = UPSCALE
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares linear filters from a low-res neighbourhood to each sub-pixel.

    Returns weights (factor**2, support, support) and biases (factor**2,): filter k
    predicts high-res pixel (factor*i + k // factor, factor*j + k % factor) from the
    support x support low-res window centred on (i, j). Only windows inside the image count.
    """
    r = support // 2
    windows = np.lib.stride_tricks.sliding_window_view(lr, (support, support))
    rows, cols = windows.shape[:2]
    a = np.concatenate(
        [windows.reshape(rows * cols, -1), np.ones((rows * cols, 1), lr.dtype)], axis=1
    )
    # (h, w) high-res -> (rows, cols, factor**2) sub-pixel targets of the inner low-res pixels
    h, w = lr.shape
    phases = hr.reshape(h, factor, w, factor).transpose(0, 2, 1, 3).reshape(h, w, -1)
    b = phases[r : r + rows, r : r + cols].reshape(rows * cols, -1)
    coef, *_ = np.linalg.lstsq(a.astype(np.float64), b.astype(np.float64), rcond=None)
    weights = coef[:-1].T.reshape(-1, support, support).astype(np.float32)
    return weights, coef[-1].astype(np.float32)


@torch.no_grad()
def init_linear_path(net: SuperResolutionNet, lr: np.ndarray, hr: np.ndarray) -> None:
    """Make 9 of the net's channels compute the best linear upscaler of (lr, hr).

    conv1's first 9 filters become the least-squares 5x5 sub-pixel filters (plus an offset
    that keeps them positive through the ReLU), conv2 and conv3 pass those 9 channels
    through unchanged, and conv4 hands channel k to sub-pixel k, which pixel_shuffle puts in
    place. The other channels keep the orthogonal init; conv4 starts at zero on them, so
    they begin as a zero correction and learn what the linear filter cannot do.
    """
    weights, biases = fit_linear_upscaler(lr, hr)
    k = len(biases)
    net.conv1.weight[:k, 0] = torch.from_numpy(weights)
    net.conv1.bias[:k] = torch.from_numpy(biases) + RELU_OFFSET
    eye = torch.arange(k)
    for conv in (net.conv2, net.conv3):
        conv.weight[:k] = 0.0
        conv.weight[eye, eye, 1, 1] = 1.0
        conv.bias[:k] = 0.0
    net.conv4.weight.zero_()
    net.conv4.weight[eye, eye, 1, 1] = 1.0
    net.conv4.bias.fill_(-RELU_OFFSET)


@dataclass
class TrainStats:
    """What a training run did."""

    steps: int
    seconds: float
    loss: float  # mean training loss over the last logging interval


def train(
    net: nn.Module,
    lr: np.ndarray,
    hr: np.ndarray,
    *,
    seconds: float,
    seed: int,
    steps: int | None = None,
    batch: int = BATCH,
    patch: int = PATCH,
    warmup_steps: int = WARMUP_STEPS,
    log: Callable[[int, float, float], None] | None = None,
) -> TrainStats:
    """Train `net` on `batch` random `patch`-sized patches of (lr, hr) a step, Adam, MSE.

    The budget is `seconds` of wall-clock time, or exactly `steps` steps when given. The
    learning rate ramps up from 0 over `warmup_steps` steps, then follows a cosine from
    LEARNING_RATE down to 0 at the end of the budget.
    `log(step, elapsed, mean_loss)` is called LOG_LINES times, the last time at the end.
    """
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    net.train()
    losses: list[float] = []
    step, logged, start = 0, 0, time.perf_counter()
    while True:
        if steps is not None:
            done = step / steps
        else:
            done = (time.perf_counter() - start) / seconds if seconds > 0 else 1.0
        if done >= 1.0:
            break
        if log is not None and losses and done * LOG_LINES >= logged + 1:
            logged += 1
            log(step, time.perf_counter() - start, float(np.mean(losses)))
            losses.clear()
        warmup = min(1.0, (step + 1) / warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = LEARNING_RATE * warmup * 0.5 * (1.0 + math.cos(math.pi * done))

        x, y = sample_patches(lr, hr, batch, rng, patch)
        loss = nn.functional.mse_loss(net(torch.from_numpy(x)), torch.from_numpy(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
    net.eval()
    elapsed = time.perf_counter() - start
    last_loss = float(np.mean(losses)) if losses else math.nan
    if log is not None and losses:
        log(step, elapsed, last_loss)
    return TrainStats(step, elapsed, last_loss)


@torch.no_grad()
def mean_loss(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """MSE of `net` on a fixed batch of patches (for before/after comparisons)."""
    net.eval()
    return float(nn.functional.mse_loss(net(torch.from_numpy(x)), torch.from_numpy(y)))


# --- the example -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Train the PyTorch tutorial's super-resolution net, export it to "
        "WebAssembly and run the tutorial's flow inside the module."
    )
    add = parser.add_argument
    add("--out", type=Path, default=Path("out"), help="output directory (default: out/)")
    add("--train-seconds", type=float, default=45.0, help="training budget (default: 45)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--steps", type=int, help="train exactly this many steps instead (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the five steps; return the exit code (0 ok, 1 failed)."""
    args = parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    quiet_exporter_noise()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print("Super-resolution x3 (the PyTorch tutorial's SuperResolutionNet) in WebAssembly")
    try:
        train_hr, train_lr = step_load_photos()
        net = step_train(train_lr, train_hr, args)
        result = step_export(net, args.out)
        held_rgb = load_photo(HELD_OUT_PHOTO)
        with load(result.path) as module:
            step_tutorial_flow(module, result.onnx_model, held_rgb, args.out)
            step_psnr(module, held_rgb)
    except (WasmExportError, ExampleFailure) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


class ExampleFailure(Exception):
    """A check of the example failed (the message says which and by how much)."""


def step_load_photos() -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the training photo's Y plane as a (high-res, low-res) pair."""
    hr, lr = make_low_res(split_ycbcr(load_photo(TRAIN_PHOTO))[0])
    big = PATCH * UPSCALE
    print(f"[1/5] train on {TRAIN_PHOTO} (Y {hw(lr)} -> {hw(hr)}), hold out {HELD_OUT_PHOTO}")
    print(f"      {BATCH} random patches a step, {PATCH}x{PATCH} -> {big}x{big}")
    return hr, lr


def step_train(lr: np.ndarray, hr: np.ndarray, args: argparse.Namespace) -> nn.Module:
    """Step 2: build the net, start it as a linear upscaler, train it within the budget."""
    net = SuperResolutionNet()
    init_linear_path(net, lr, hr)
    budget = f"{args.train_seconds:g} s" if args.steps is None else f"{args.steps} steps"
    print(f"[2/5] train for {budget}, seed {args.seed}, from a linear 5x5 warm start")
    stats = train(
        net, lr, hr, seconds=args.train_seconds, seed=args.seed, steps=args.steps,
        log=print_progress,
    )  # fmt: skip
    print(f"      {stats.steps} steps in {stats.seconds:.1f} s")
    return net


def print_progress(step: int, elapsed: float, loss: float) -> None:
    """Print one training progress line."""
    print(f"      step {step:5d}  {elapsed:5.1f} s  loss {loss:.6f}", flush=True)


def step_export(net: nn.Module, out_dir: Path) -> ExportResult:
    """Step 3: export to WebAssembly; export_wasm verifies the module and raises on error."""
    start = time.perf_counter()
    sample = torch.rand(1, 1, TUTORIAL_SIZE, TUTORIAL_SIZE)  # shaped like the tutorial's
    result = export_wasm(
        net,
        sample,
        out_dir / "super_resolution.wasm",
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}},
        input_names=["input"],
        output_names=["output"],
    )
    size_kb = result.path.stat().st_size / 1e3
    elapsed = time.perf_counter() - start
    print(f"[3/5] exported {result.path} ({size_kb:.0f} kB) in {elapsed:.1f} s, verified:")
    print(textwrap.indent(str(result.report), "      "))
    return result


def step_tutorial_flow(module, onnx_model, rgb: np.ndarray, out_dir: Path) -> None:
    """Step 4: the tutorial's 224 -> 672 flow in the module, checked against onnxruntime."""
    size = (TUTORIAL_SIZE, TUTORIAL_SIZE)
    small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
    y, cb, cr = split_ycbcr(small)
    x = y[None, None]  # (1, 1, 224, 224)
    start = time.perf_counter()
    y_wasm = module.run(x)  # (1, 1, 672, 672)
    elapsed = time.perf_counter() - start
    diff = float(np.max(np.abs(y_wasm - run_onnxruntime(onnx_model, x))))
    print(f"[4/5] tutorial flow in WASM: {HELD_OUT_PHOTO} at {hw(y)} -> {hw(y_wasm[0, 0])}")
    print(f"      run {elapsed:.2f} s; max |WASM - onnxruntime| = {diff:.2g}")
    if not diff <= MAX_ABS_DIFF:  # NOTE: also fails on NaN
        raise ExampleFailure(
            f"the WASM output differs from onnxruntime's by {diff:.3g} on the tutorial's "
            f"input (allowed: {MAX_ABS_DIFF:g})"
        )

    height, width = y_wasm.shape[-2:]
    cb_big, cr_big = (resize_bicubic(p, height, width) for p in (cb, cr))
    outputs = {
        "super_resolution_672.png": y_wasm[0, 0],
        "bicubic_672.png": resize_bicubic(y, height, width),
    }
    for name, y_big in outputs.items():
        Image.fromarray(merge_ycbcr(y_big, cb_big, cr_big)).save(out_dir / name)
    print(f"      wrote {', '.join(str(out_dir / name) for name in outputs)}")


def step_psnr(module, rgb: np.ndarray) -> tuple[float, float]:
    """Step 5: PSNR of bicubic and of the net in WASM on the held-out photo's Y plane."""
    hr, lr = make_low_res(split_ycbcr(rgb)[0])
    start = time.perf_counter()
    up_net = np.clip(module.run(lr[None, None])[0, 0], 0.0, 1.0)
    elapsed = time.perf_counter() - start
    psnr_bicubic = psnr(resize_bicubic(lr, *hr.shape), hr)
    psnr_net = psnr(up_net, hr)
    print(
        f"[5/5] held-out PSNR on {HELD_OUT_PHOTO}, Y {hw(lr)} -> {hw(hr)}, run {elapsed:.2f} s"
    )
    print(f"      bicubic      {psnr_bicubic:6.2f} dB")
    print(f"      net in WASM  {psnr_net:6.2f} dB  ({psnr_net - psnr_bicubic:+.2f} dB)")
    return psnr_bicubic, psnr_net


def run_onnxruntime(onnx_model, x: np.ndarray) -> np.ndarray:
    """Run the exported ONNX model on one input with onnxruntime, as the tutorial does."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def quiet_exporter_noise() -> None:
    """Hide torch.onnx's start-up warnings (torchvision ops it skips) in this showcase."""
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")


def hw(plane: np.ndarray) -> str:
    """Format a plane's (height, width) as 'HxW'."""
    return f"{plane.shape[0]}x{plane.shape[1]}"


if __name__ == "__main__":
    sys.exit(main())
