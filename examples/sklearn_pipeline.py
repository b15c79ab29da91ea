"""Fit a scikit-learn Pipeline on the wine dataset, export it to WebAssembly, call it as JSON.

    python examples/sklearn_pipeline.py                   # writes out/wine_pipeline.wasm
    python examples/sklearn_pipeline.py --out /tmp/wine.wasm --rows 3

The wine measurements ship with scikit-learn, so nothing is downloaded. The Pipeline
(StandardScaler, then LogisticRegression) fits in a moment; ``export_wasm`` converts it with
skl2onnx and verifies scikit-learn, onnxruntime and the module against each other. The
held-out rows are then sent to the module through its JSON ABI, exactly as a host in another
language would: ``{"input": [[...13 features...], ...]}`` in, and out
``{"output": [labels, [{class: probability}, ...]]}``. The script prints a raw request and
response, the labels and probabilities, and how they compare with ``predict`` and
``predict_proba``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

SEED = 0


def fit_pipeline():
    """The wine data split 75/25, and a StandardScaler + LogisticRegression fitted on it."""
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_wine(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=SEED, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    return model, x_train, x_test, y_test


def ask(module, rows: list[list[float]]) -> tuple[str, str]:
    """One JSON request through the ABI; returns the request and response texts."""
    request = json.dumps({"input": rows})
    rc, response = module.request(request)
    if rc != 0:
        raise RuntimeError(f"the module refused the request: {response}")
    return request, response


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/wine_pipeline.wasm", help="the .wasm to write")
    parser.add_argument("--rows", type=int, default=2, help="rows in the printed request")
    args = parser.parse_args(argv)

    import wasmexport

    # step 1: fit, then export (export_wasm verifies on the training sample)
    model, x_train, x_test, y_test = fit_pipeline()
    start = time.perf_counter()
    # the module computes in float32: export, and later compare, on float32 features
    result = wasmexport.export_wasm(model, x_train.astype(np.float32), args.out)
    print(f"exported {result.path} ({result.wasm_bytes:,} bytes) in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    print(result.report)

    with wasmexport.load(args.out) as module:
        # step 2: one raw JSON exchange, shown as it travels
        request, response = ask(module, x_test[: args.rows].tolist())
        print(f"\nrequest:  {request}")
        print(f"response: {response}\n")

        # step 3: every held-out row, through JSON too
        _, response = ask(module, x_test.tolist())
    labels, maps = json.loads(response)["output"]
    # JSON object keys are strings: the classes are the ints 0, 1, 2
    proba = np.array([[row[str(c)] for c in model.classes_] for row in maps])

    expected_labels = model.predict(x_test.astype(np.float32))
    expected_proba = model.predict_proba(x_test.astype(np.float32))
    flips = int(np.count_nonzero(np.asarray(labels) != expected_labels))
    max_err = float(np.abs(proba - expected_proba).max())
    print("row  label  sklearn  probabilities (module)")
    for i in range(min(5, len(labels))):
        pairs = zip(model.classes_, proba[i], strict=True)
        shown = ", ".join(f"{c}: {p:.4f}" for c, p in pairs)
        print(f"{i:>3}  {labels[i]:>5}  {expected_labels[i]:>7}  {{{shown}}}")
    accuracy = float(np.mean(np.asarray(labels) == y_test))
    print(f"\n{len(labels)} held-out rows: accuracy {accuracy:.3f}, label flips vs "
          f"predict {flips}, max |p - predict_proba| {max_err:.2e}")  # fmt: skip
    return {"label_flips": flips, "max_abs_err": max_err, "accuracy": accuracy,
            "rows": len(labels)}  # fmt: skip


if __name__ == "__main__":
    sys.exit(0 if main()["label_flips"] == 0 else 1)
