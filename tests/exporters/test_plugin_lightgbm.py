"""The adapter plugin hook end to end: examples/plugin_lightgbm, pip-installed into a
temporary directory, registers the "lightgbm" adapter through its entry point, and
export_wasm exports (and verifies) a LightGBM Booster with it like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lightgbm")
pytest.importorskip("onnxmltools")
pytest.importorskip("sklearn")

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "examples" / "plugin_lightgbm"

SCRIPT = """
import json, sys
import numpy as np
import lightgbm
from sklearn.datasets import load_breast_cancer, load_wine
import wasmexport
from wasmexport import exporters

x, y = load_breast_cancer(return_X_y=True)
x = x.astype(np.float32)
booster = lightgbm.train({"objective": "binary", "num_leaves": 8, "verbose": -1},
                         lightgbm.Dataset(x, y), num_boost_round=10)
result = wasmexport.export_wasm(booster, x, sys.argv[1])
with wasmexport.load(sys.argv[1]) as module:
    labels, proba = module.run(x)
p = booster.predict(x)

xw, yw = load_wine(return_X_y=True)
xw = xw.astype(np.float32)
clf = lightgbm.LGBMClassifier(n_estimators=10, num_leaves=8, verbose=-1).fit(xw, yw)
clf_result = wasmexport.export_wasm(clf, xw, sys.argv[1] + ".clf", zipmap=False)
print(json.dumps({
    "adapters": exporters.list_adapters(),
    "framework": result.framework,
    "passed": result.report.passed and clf_result.report.passed,
    "label_flips": result.report.label_flips + clf_result.report.label_flips,
    "module_flips": int((labels != (p > 0.5)).sum()),
    "max_abs_err": float(np.abs(np.array([d[1] for d in proba]) - p).max()),
}))
"""


def test_plugin_registers_through_the_entry_point_and_exports(tmp_path):
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(PLUGIN)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert list(target.glob("wasmexport_lightgbm-*.dist-info/entry_points.txt"))

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(target), str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "booster.wasm")],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    numbers = json.loads(run.stdout.strip().splitlines()[-1])
    assert "lightgbm" in numbers["adapters"] and "sklearn" in numbers["adapters"]
    assert numbers["framework"] == "lightgbm"
    assert numbers["passed"] and numbers["label_flips"] == 0
    assert numbers["module_flips"] == 0
    assert numbers["max_abs_err"] <= 1e-5


def test_plugin_is_not_loaded_without_its_distribution():
    from wasmexport.exporters import list_adapters

    assert "lightgbm" not in list_adapters()  # the plugin was installed in a temp dir only
