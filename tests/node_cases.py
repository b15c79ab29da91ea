"""Selected ONNX operator conformance cases (onnx.backend.test.case.node), built quickly."""

from __future__ import annotations

import importlib
import warnings

import numpy as np

from wasmexport.abi_runtime import load
from wasmexport.packager import package


def conformance_cases(*modules: str) -> list:
    """The conformance cases written by the given modules of onnx's node test suite.

    Importing one module runs only its exports (collect_testcases() would build all ~1,900
    cases, ~25 s); the cases land in the suite's shared list, which is then filtered by the
    op of each case's node. Module names are op names in lower case ("if_" for If).
    """
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    with warnings.catch_warnings():  # the suite's own numpy warnings while building cases
        warnings.simplefilter("ignore")
        for name in modules:
            importlib.import_module(f"onnx.backend.test.case.node.{name}")
    ops = {name.rstrip("_").lower() for name in modules}
    return [
        c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type.lower() in ops
    ]


def check_conformance_case(case) -> None:
    """Package a case's model, run every data set, compare with its rtol and atol."""
    with load(package(case.model).wasm) as m:
        for inputs, outputs in case.data_sets:
            got = m.run(list(inputs))
            got = [got] if len(m.outputs) == 1 else got
            assert len(got) == len(outputs)
            for g, e in zip(got, outputs, strict=True):
                _assert_value_close(g, e, case)


def _assert_value_close(got, expected, case) -> None:
    """Compare one output: a tensor, a sequence (list) item by item, or None (an empty
    optional)."""
    if expected is None or isinstance(expected, list):
        assert type(got) is type(expected), f"{case.name}: got {got!r}, expected {expected!r}"
        assert expected is None or len(got) == len(expected), case.name
        for g, e in zip(got or [], expected or [], strict=True):
            _assert_value_close(g, e, case)
        return
    g = np.asarray(got)
    assert g.shape == expected.shape, f"{case.name}: shape {g.shape}, not {expected.shape}"
    np.testing.assert_allclose(g, expected, rtol=case.rtol, atol=case.atol, err_msg=case.name)
