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
            got = got if isinstance(got, list | tuple) else [got]
            assert len(got) == len(outputs)
            for g, e in zip(got, outputs, strict=True):
                g = np.asarray(g)
                assert g.shape == e.shape, f"{case.name}: shape {g.shape}, expected {e.shape}"
                np.testing.assert_allclose(
                    g, e, rtol=case.rtol, atol=case.atol, err_msg=case.name
                )
