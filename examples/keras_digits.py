"""Train a small Keras CNN on scikit-learn's digits, export it to WebAssembly, classify in it.

    python examples/keras_digits.py                       # writes out/keras_digits.wasm
    python examples/keras_digits.py --epochs 5 --out /tmp/digits.wasm

The 8x8 digit images ship with scikit-learn, so nothing is downloaded. The CNN trains for a
few seconds, ``export_wasm`` turns it into one WebAssembly file (verifying Keras against
onnxruntime and the module at two batch sizes on the way out), and the held-out digits are
then classified inside the module through ``wasmexport.load``. The script prints both
accuracies, how many predictions differ, and the verifier's report.

The network downsamples with a stride-2 convolution rather than MaxPooling2D.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import numpy as np  # noqa: E402

SEED = 0
NUM_CLASSES = 10


def load_digits_split(test_fraction: float = 0.25) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits as NHWC float32 in [0, 1], split into train and test."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]  # (n, 8, 8, 1)
    labels = digits.target.astype(np.int64)
    return train_test_split(
        images, labels, test_size=test_fraction, random_state=SEED, stratify=labels
    )


def build_cnn():
    """Conv 3x3 -> stride-2 conv 3x3 -> dense -> softmax over the ten digits."""
    import keras

    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
            layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv2"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="fc"),
            layers.Dropout(0.2, name="dropout"),
            layers.Dense(NUM_CLASSES, activation="softmax", name="probs"),
        ],
        name="digits_cnn",
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, export, classify in WASM; print the comparison and return the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/keras_digits.wasm"))
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)

    import keras

    from wasmexport import export_wasm, load

    # step 1: train
    keras.utils.set_random_seed(SEED)
    x_train, x_test, y_train, y_test = load_digits_split()
    model = build_cnn()
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0)
    train_seconds = time.perf_counter() - start
    keras_labels = model.predict(x_test, verbose=0).argmax(axis=1)

    # step 2: export (verified on a few test digits, at two batch sizes)
    start = time.perf_counter()
    result = export_wasm(model, x_test[:32], args.out)
    export_seconds = time.perf_counter() - start

    # step 3: classify every test digit inside the module
    with load(result.path) as module:
        start = time.perf_counter()
        wasm_probs = module.run(x_test)
        wasm_seconds = time.perf_counter() - start
    wasm_labels = wasm_probs.argmax(axis=1)

    numbers = {
        "keras_accuracy": float((keras_labels == y_test).mean()),
        "wasm_accuracy": float((wasm_labels == y_test).mean()),
        "label_flips": int((wasm_labels != keras_labels).sum()),
        "max_abs_err": result.report.max_abs_err,
    }
    print(f"trained {args.epochs} epochs on {len(x_train)} digits in {train_seconds:.1f} s")
    print(f"exported {result.path} ({result.wasm_bytes:,} bytes) in {export_seconds:.1f} s")
    print(f"classified {len(x_test)} test digits inside WASM in {wasm_seconds * 1e3:.0f} ms")
    keras_accuracy, wasm_accuracy = numbers["keras_accuracy"], numbers["wasm_accuracy"]
    print(f"  accuracy  keras {keras_accuracy:.4f}   wasm {wasm_accuracy:.4f}")
    print(f"  predictions that differ: {numbers['label_flips']} of {len(x_test)}")
    print("verifier report:")
    print(result.report)
    return numbers


if __name__ == "__main__":
    main(sys.argv[1:])
