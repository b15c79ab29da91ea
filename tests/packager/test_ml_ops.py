"""ai.onnx.ml operators against onnxruntime: hand-built models, the ONNX backend node
cases of the domain, and skl2onnx conversions of fitted scikit-learn estimators."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from wasmexport.abi_runtime import load
from wasmexport.errors import PackageError, RuntimeABIError
from wasmexport.packager import package
from wasmexport.packager.runtime_info import supported_op_types

F, D, I64, S = TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.INT64, TensorProto.STRING
R = np.random.default_rng(11)


def tensor(name, dtype, shape=None):
    return helper.make_tensor_value_info(name, dtype, shape)


def map_value(name, key, value):
    return helper.make_value_info(
        name, helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))
    )


def seq_map_value(name, key, value):
    m = helper.make_map_type_proto(key, helper.make_tensor_type_proto(value, None))
    return helper.make_value_info(name, helper.make_sequence_type_proto(m))


def ml_model(nodes, inputs, outputs, ml_opset=3, initializers=()):
    """A model of ai.onnx.ml nodes (opset 17 for ai.onnx)."""
    graph = helper.make_graph(
        nodes, "ml", inputs, outputs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(initializers).items()],
    )  # fmt: skip
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", 17),
            helper.make_opsetid("ai.onnx.ml", ml_opset),
        ],
    )
    model.ir_version = 8
    return model


def ml_node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op.lower()}0",
                            domain="ai.onnx.ml", **attrs)  # fmt: skip


def onnxruntime_outputs(model, feeds):
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, feeds, strict=True)))


def assert_same(got, expected, rtol=1e-5, atol=1e-5, where=""):
    """Arrays (strings exactly, numbers within tolerance), dicts and lists of dicts."""
    if isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for g, e in zip(got, expected, strict=True):
            assert_same(g, e, rtol, atol, where)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), (
            f"{where}: {got} vs {expected}"
        )
        np.testing.assert_allclose(list(got.values()), list(expected.values()), rtol, atol)
    else:
        expected = np.asarray(expected)
        assert got.shape == expected.shape, f"{where}: shape {got.shape} vs {expected.shape}"
        if expected.dtype == object:
            assert got.dtype == object and got.tolist() == expected.tolist(), where
        else:
            assert got.dtype == expected.dtype, f"{where}: {got.dtype} vs {expected.dtype}"
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=where)


def check_against_onnxruntime(model, feeds, rtol=1e-5, atol=1e-5):
    """Package model, run feeds through the raw and the JSON path, compare with onnxruntime."""
    expected = onnxruntime_outputs(model, feeds)
    with load(package(model).wasm) as module:
        for raw in (True, False):
            got = module.run(feeds if len(feeds) > 1 else feeds[0], raw=raw)
            got = got if len(expected) > 1 else [got]
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                assert_same(g, e, rtol, atol, f"output {i} (raw={raw})")


# ---- hand-built models, one or a few per op ---------------------------------------------

X34 = R.standard_normal((3, 4)).astype(np.float32)
STR23 = np.array([["a", "bb", "ccc"], ["é", 'x"y', "z"]], dtype=object)
LIN_COEF = R.standard_normal(3 * 4).round(3).tolist()


def _linear_classifier(pt, labels_strings=False, n_classes=3, dtype=F):
    k = max(n_classes, 2)
    if labels_strings:
        labels = {"classlabels_strings": ["neg", "mid", "pos"][:k]}
    else:
        labels = {"classlabels_ints": [4, 7, 9][:k]}
    node = ml_node(
        "LinearClassifier", ["x"], ["label", "scores"], coefficients=LIN_COEF[: 4 * n_classes],
        intercepts=[0.1, -0.2, 0.3][:n_classes], post_transform=pt, **labels,
    )  # fmt: skip
    lab = S if labels_strings else I64
    outputs = [tensor("label", lab, [None]), tensor("scores", F, [None, None])]
    return ml_model([node], [tensor("x", dtype, [None, 4])], outputs)


def _tree_regressor(agg, pt="NONE", targets=1, base=None):
    """Two small trees over 3 features; leaves carry one weight per target."""
    attrs = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 2, 0, 0],
        nodes_values=[0.0, 0.5, 0.0, 0.0, 0.0, -0.25, 0.0, 0.0],
        nodes_modes=["BRANCH_LEQ", "BRANCH_GT", "LEAF", "LEAF", "LEAF",
                     "BRANCH_LT", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 2, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[4, 3, 0, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0, 0],
        target_treeids=[0, 0, 0, 1, 1] * targets,
        target_nodeids=[2, 3, 4, 1, 2] * targets,
        target_ids=sum(([t] * 5 for t in range(targets)), []),
        target_weights=R.standard_normal(5 * targets).round(3).tolist(),
        n_targets=targets, aggregate_function=agg, post_transform=pt,
    )  # fmt: skip
    if base:
        attrs["base_values"] = base
    node = ml_node("TreeEnsembleRegressor", ["x"], **attrs)
    return ml_model([node], [tensor("x", F, [None, 3])], [tensor("y", F, [None, targets])])


def _tree_regressor_double():
    """Opset 3 with double thresholds and weights as tensor attributes, double input."""
    model = _tree_regressor("SUM", targets=1)
    node = model.graph.node[0]
    values = [a for a in node.attribute if a.name in ("nodes_values", "target_weights")]
    for a in values:
        node.attribute.remove(a)
        node.attribute.append(
            helper.make_attribute(
                f"{a.name}_as_tensor",
                numpy_helper.from_array(np.array(a.floats, np.float64) + 1e-9, f"{a.name}_t"),
            )
        )
    model.graph.input[0].type.tensor_type.elem_type = D
    return model


X_TREE = np.array([[-1, 0.7, 0], [-1, 0.2, -1], [1, 0, 0.5], [np.nan, 1, -0.3]], np.float32)

HAND_CASES = [
    (
        "array_feature_extractor",
        ml_model(
            [ml_node("ArrayFeatureExtractor", ["x", "i"])],
            [tensor("x", F, [3, 4])],
            [tensor("y", F, None)],
            initializers={"i": np.array([2, 0, 2], np.int64)},
        ),
        [X34],
    ),
    (
        "array_feature_extractor_strings",
        ml_model(
            [ml_node("ArrayFeatureExtractor", ["x", "i"])],
            [tensor("x", S, [2, 3])],
            [tensor("y", S, None)],
            initializers={"i": np.array([1], np.int64)},
        ),
        [STR23],
    ),
    (
        "binarizer",
        ml_model(
            [ml_node("Binarizer", ["x"], threshold=0.3)],
            [tensor("x", F, [3, 4])],
            [tensor("y", F, None)],
        ),
        [X34],
    ),
    (
        "category_mapper_to_int",
        ml_model(
            [
                ml_node(
                    "CategoryMapper",
                    ["x"],
                    cats_strings=["a", "z", "é"],
                    cats_int64s=[5, 6, 7],
                    default_int64=-9,
                )
            ],
            [tensor("x", S, [2, 3])],
            [tensor("y", I64, None)],
        ),
        [STR23],
    ),
    (
        "category_mapper_to_string",
        ml_model(
            [
                ml_node(
                    "CategoryMapper",
                    ["x"],
                    cats_strings=["a", "z"],
                    cats_int64s=[5, 6],
                    default_string="??",
                )
            ],
            [tensor("x", I64, [4])],
            [tensor("y", S, None)],
        ),
        [np.array([6, 5, 1, 6])],
    ),
    (
        "feature_vectorizer",
        ml_model(
            [ml_node("FeatureVectorizer", ["a", "b"], inputdimensions=[2, 5])],
            [tensor("a", F, [None, 2]), tensor("b", F, [None, 3])],
            [tensor("y", F, None)],
        ),
        [np.array([[1, 2], [3, 4]], np.float32), X34[:2, :3]],
    ),
    (
        "imputer_nan",
        ml_model(
            [
                ml_node(
                    "Imputer",
                    ["x"],
                    imputed_value_floats=[1.5, 2.5, 3.5, 4.5],
                    replaced_value_float=float("nan"),
                )
            ],
            [tensor("x", F, [None, 4])],
            [tensor("y", F, None)],
        ),
        [np.where(X34 > 0.5, np.nan, X34).astype(np.float32)],
    ),
    (
        "imputer_int64",
        ml_model(
            [ml_node("Imputer", ["x"], imputed_value_int64s=[99], replaced_value_int64=-1)],
            [tensor("x", I64, [None, 3])],
            [tensor("y", I64, None)],
        ),
        [np.array([[1, -1, 3], [-1, 5, -1]])],
    ),
    (
        "label_encoder_v1_string_to_int",
        ml_model(
            [
                ml_node(
                    "LabelEncoder", ["x"], classes_strings=["z", "a", "ccc"], default_int64=-5
                )
            ],
            [tensor("x", S, [2, 3])],
            [tensor("y", I64, None)],
            ml_opset=1,
        ),
        [STR23],
    ),
    (
        "label_encoder_v1_int_to_string",
        ml_model(
            [ml_node("LabelEncoder", ["x"], classes_strings=["z", "a", "ccc"])],
            [tensor("x", I64, [4])],
            [tensor("y", S, None)],
            ml_opset=1,
        ),
        [np.array([2, 0, 7, 1])],
    ),
    (
        "label_encoder_v2_string_to_float",
        ml_model(
            [
                ml_node(
                    "LabelEncoder",
                    ["x"],
                    keys_strings=["a", "z"],
                    values_floats=[0.5, -2.0],
                    default_float=7.0,
                )
            ],
            [tensor("x", S, [2, 3])],
            [tensor("y", F, None)],
            ml_opset=2,
        ),
        [STR23],
    ),
    (
        "label_encoder_v2_int_to_string",
        ml_model(
            [
                ml_node(
                    "LabelEncoder", ["x"], keys_int64s=[3, 1], values_strings=["three", "one"]
                )
            ],
            [tensor("x", I64, [3])],
            [tensor("y", S, None)],
            ml_opset=2,
        ),
        [np.array([1, 2, 3])],
    ),
    (
        "label_encoder_v2_float_to_int",
        ml_model(
            [ml_node("LabelEncoder", ["x"], keys_floats=[0.5, 1.5], values_int64s=[10, 20])],
            [tensor("x", F, [3])],
            [tensor("y", I64, None)],
            ml_opset=2,
        ),
        [np.array([1.5, 0.5, 2.5], np.float32)],
    ),
    (
        "label_encoder_v4_tensors",
        ml_model(
            [
                ml_node(
                    "LabelEncoder",
                    ["x"],
                    keys_tensor=numpy_helper.from_array(np.array([4, 8], np.int64), "k"),
                    values_tensor=numpy_helper.from_array(np.array([0.25, 0.75]), "v"),
                    default_tensor=numpy_helper.from_array(np.array([-1.0]), "d"),
                )
            ],
            [tensor("x", I64, [3])],
            [tensor("y", D, None)],
            ml_opset=4,
        ),
        [np.array([8, 4, 5])],
    ),
    (
        "label_encoder_v4_string_tensors",
        ml_model(
            [
                ml_node(
                    "LabelEncoder",
                    ["x"],
                    keys_tensor=numpy_helper.from_array(
                        np.array(["a", "z"], dtype=object), "k"
                    ),
                    values_tensor=numpy_helper.from_array(
                        np.array(["A", "Z"], dtype=object), "v"
                    ),
                    default_tensor=numpy_helper.from_array(np.array(["-"], dtype=object), "d"),
                )
            ],
            [tensor("x", S, [2, 3])],
            [tensor("y", S, None)],
            ml_opset=4,
        ),
        [STR23],
    ),
    *[
        (f"linear_classifier_{pt.lower()}", _linear_classifier(pt), [X34])
        for pt in ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO")
    ],
    ("linear_classifier_string_labels", _linear_classifier("SOFTMAX", True), [X34]),
    ("linear_classifier_binary", _linear_classifier("NONE", n_classes=1), [X34]),
    ("linear_classifier_binary_logistic", _linear_classifier("LOGISTIC", True, 1), [X34]),
    (
        "linear_classifier_double",
        _linear_classifier("SOFTMAX", dtype=D),
        [X34.astype(np.float64)],
    ),
    (
        "linear_classifier_int64",
        _linear_classifier("NONE", dtype=I64),
        [np.arange(12).reshape(3, 4)],
    ),
    (
        "linear_regressor",
        ml_model(
            [
                ml_node(
                    "LinearRegressor",
                    ["x"],
                    coefficients=LIN_COEF[:8],
                    intercepts=[0.5, -1.0],
                    targets=2,
                )
            ],
            [tensor("x", F, [None, 4])],
            [tensor("y", F, None)],
        ),
        [X34],
    ),
    (
        "linear_regressor_probit",
        ml_model(
            [
                ml_node(
                    "LinearRegressor",
                    ["x"],
                    coefficients=[0.05, 0.02, -0.03, 0.01],
                    intercepts=[0.5],
                    post_transform="PROBIT",
                )
            ],
            [tensor("x", F, [None, 4])],
            [tensor("y", F, None)],
        ),
        [X34],
    ),
    *[
        (
            f"normalizer_{norm.lower()}",
            ml_model(
                [ml_node("Normalizer", ["x"], norm=norm)],
                [tensor("x", F, [3, 4])],
                [tensor("y", F, None)],
            ),
            [X34],
        )
        for norm in ("MAX", "L1", "L2")
    ],
    (
        "one_hot_encoder_ints",
        ml_model(
            [ml_node("OneHotEncoder", ["x"], cats_int64s=[1, 3, 5], zeros=1)],
            [tensor("x", I64, [2, 2])],
            [tensor("y", F, None)],
        ),
        [np.array([[1, 5], [2, 3]])],
    ),
    (
        "one_hot_encoder_strings",
        ml_model(
            [ml_node("OneHotEncoder", ["x"], cats_strings=["z", "a", "bb"])],
            [tensor("x", S, [2, 3])],
            [tensor("y", F, None)],
        ),
        [STR23],
    ),
    (
        "scaler",
        ml_model(
            [
                ml_node(
                    "Scaler", ["x"], offset=[0.1, 0.2, 0.3, 0.4], scale=[2.0, -1.0, 0.5, 3.0]
                )
            ],
            [tensor("x", F, [3, 4])],
            [tensor("y", F, None)],
        ),
        [X34],
    ),
    (
        "scaler_double_one_value",
        ml_model(
            [ml_node("Scaler", ["x"], offset=[0.5], scale=[4.0])],
            [tensor("x", D, [3, 4])],
            [tensor("y", F, None)],
        ),
        [X34.astype(np.float64)],
    ),
    (
        "svm_classifier_linear_mode",
        ml_model(
            [
                ml_node(
                    "SVMClassifier",
                    ["x"],
                    ["label", "scores"],
                    coefficients=LIN_COEF,
                    rho=[0.2],
                    classlabels_ints=[0, 1, 2],
                    post_transform="SOFTMAX",
                    kernel_type="LINEAR",
                    kernel_params=[0.0, 0.0, 1.0],
                )
            ],
            [tensor("x", F, [None, 4])],
            [tensor("label", I64, None), tensor("scores", F, None)],
        ),
        [X34],
    ),
    (
        "svm_regressor_one_class",
        ml_model(
            [
                ml_node(
                    "SVMRegressor",
                    ["x"],
                    coefficients=LIN_COEF[:4],
                    rho=[0.1],
                    one_class=1,
                    kernel_type="LINEAR",
                    kernel_params=[0.0, 0.0, 1.0],
                )
            ],
            [tensor("x", F, [None, 4])],
            [tensor("y", F, None)],
        ),
        [X34],
    ),
    *[
        (
            f"tree_regressor_{agg.lower()}",
            _tree_regressor(agg, targets=2, base=[0.5, -0.5]),
            [X_TREE],
        )
        for agg in ("SUM", "AVERAGE", "MIN", "MAX")
    ],
    ("tree_regressor_softmax", _tree_regressor("SUM", "SOFTMAX", targets=3), [X_TREE]),
    ("tree_regressor_double_tensors", _tree_regressor_double(), [X_TREE.astype(np.float64)]),
    (
        "zip_map_ints",
        ml_model(
            [ml_node("ZipMap", ["x"], classlabels_int64s=[10, 20, 30, 40])],
            [tensor("x", F, [None, 4])],
            [seq_map_value("y", I64, F)],
        ),
        [X34],
    ),
    (
        "zip_map_strings",
        ml_model(
            [ml_node("ZipMap", ["x"], classlabels_strings=["a", 'b"', "é", "d"])],
            [tensor("x", F, [None, 4])],
            [seq_map_value("y", S, F)],
        ),
        [X34],
    ),
    (
        "dict_vectorizer_strings",
        ml_model(
            [ml_node("DictVectorizer", ["x"], string_vocabulary=["a", "b", "c", "d"])],
            [map_value("x", S, F)],
            [tensor("y", F, None)],
        ),
        [{"c": 2.5, "a": -1.0, "q": 9.0}],
    ),
    (
        "dict_vectorizer_int64",
        ml_model(
            [ml_node("DictVectorizer", ["x"], int64_vocabulary=[7, 3, 5])],
            [map_value("x", I64, F)],
            [tensor("y", F, None)],
        ),
        [{3: 0.5, 5: -2.0}],
    ),
    (
        "cast_map_to_float",
        ml_model(
            [ml_node("CastMap", ["x"], cast_to="TO_FLOAT", map_form="DENSE")],
            [map_value("x", I64, F)],
            [tensor("y", F, None)],
        ),
        [{4: 1.5, 1: -2.0, 9: 3e2}],
    ),
    (
        "cast_map_to_string",
        ml_model(
            [ml_node("CastMap", ["x"], cast_to="TO_STRING")],
            [map_value("x", I64, F)],
            [tensor("y", S, None)],
        ),
        [{4: 1.5, 1: -2.0}],
    ),
    (
        "cast_map_sparse",
        ml_model(
            [ml_node("CastMap", ["x"], cast_to="TO_FLOAT", map_form="SPARSE", max_map=6)],
            [map_value("x", I64, F)],
            [tensor("y", F, None)],
        ),
        [{4: 1.5, 1: -2.0, 9: 3.0}],
    ),
]


def test_ml_label_encoder_large_tables_match_onnxruntime():
    """Thousands of keys (the runtime sorts them once and searches)."""
    keys = [f"k{i * 7919 % 5000:05d}" for i in range(5000)]
    for opset, attrs, x in (
        (2, {"keys_strings": keys, "values_int64s": list(range(5000))},
         np.array(keys[::-37] + ["missing", ""], dtype=object)),
        (2, {"keys_int64s": [int(k[1:]) * 3 for k in keys], "values_floats": [0.5] * 5000},
         np.array([0, 3, 14997, 2, -3])),
    ):  # fmt: skip
        in_type = S if x.dtype == object else I64
        out_type = I64 if "values_int64s" in attrs else F
        model = ml_model(
            [ml_node("LabelEncoder", ["x"], **attrs)], [tensor("x", in_type, [None])],
            [tensor("y", out_type, None)], ml_opset=opset,
        )  # fmt: skip
        check_against_onnxruntime(model, [x])


@pytest.mark.parametrize("case", HAND_CASES, ids=[c[0] for c in HAND_CASES])
def test_ml_op_matches_onnxruntime(case):
    _, model, feeds = case
    check_against_onnxruntime(model, feeds)


def test_ml_op_table_lists_the_domain():
    ops = supported_op_types()
    for op in ("LinearClassifier", "TreeEnsemble", "ZipMap", "LabelEncoder", "SVMClassifier"):
        assert ("ai.onnx.ml", op) in ops
    # the ml rows do not leak into ai.onnx
    assert ("", "ZipMap") not in ops


def test_ml_op_runtime_errors_name_the_node():
    bad = ml_model(
        [ml_node("ArrayFeatureExtractor", ["x", "i"])], [tensor("x", F, [3, None])],
        [tensor("y", F, None)], initializers={"i": np.array([4], np.int64)},
    )  # fmt: skip
    with load(package(bad).wasm) as module:
        with pytest.raises(
            RuntimeABIError, match=r"arrayfeatureextractor0.*index 4 out of range"
        ):
            module.run(X34)
        # the module keeps working after the error: five columns have an index 4
        wide = np.hstack([X34, X34[:, :1] + 1])
        np.testing.assert_array_equal(module.run(wide), wide[:, 4:])


# ---- the ai.onnx.ml cases of the ONNX backend node suite --------------------------------

ML_CASE_MODULES = ("array_feature_extractor", "binarizer", "label_encoder", "tree_ensemble")


def _backend_cases():
    """The ai.onnx.ml node cases; importing their modules registers them (the whole suite
    through collect_testcases() takes ~25 s, these four ~3 s)."""
    import importlib

    import onnx.backend.test.case.node as node_cases

    start = len(node_cases._NodeTestCases)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ML_CASE_MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.ai_onnx_ml.{name}")
    cases = node_cases._NodeTestCases[start:]
    if not cases:  # already imported elsewhere in this process
        cases = node_cases.collect_testcases()
    return [c for c in cases if any(n.domain == "ai.onnx.ml" for n in c.model.graph.node)]


BACKEND = _backend_cases()


@pytest.mark.parametrize("case", BACKEND, ids=[c.name for c in BACKEND])
def test_ml_backend_node_case(case):
    model = case.model
    for inputs, expected in case.data_sets:
        with load(package(model).wasm) as module:
            got = module.run(list(inputs) if len(inputs) > 1 else inputs[0])
        got = got if len(expected) > 1 else [got]
        for g, e in zip(got, expected, strict=True):
            assert_same(g, e, 1e-5, 1e-6, case.name)


# ---- scikit-learn estimators through skl2onnx -------------------------------------------

sklearn = pytest.importorskip("sklearn")
skl2onnx = pytest.importorskip("skl2onnx")


def _data(name):
    from sklearn import datasets

    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer,
              "diabetes": datasets.load_diabetes}[name]  # fmt: skip
    x, y = loader(return_X_y=True)
    return x.astype(np.float32), y


def _estimators():
    """(id, estimator, dataset, kind, zipmap); kind is clf, reg or transform."""
    from sklearn import ensemble as E
    from sklearn import linear_model as L
    from sklearn import preprocessing as P
    from sklearn import svm, tree

    def proba_svc(**kw):
        return svm.SVC(probability=True, random_state=0, **kw)

    bc, dia = "breast_cancer", "diabetes"
    return [
        ("logreg_binary", L.LogisticRegression(max_iter=5000), bc, "clf", False),
        ("logreg_binary_zipmap", L.LogisticRegression(max_iter=5000), bc, "clf", True),
        ("logreg_multi", L.LogisticRegression(max_iter=5000), "wine", "clf", False),
        ("logreg_multi_zipmap", L.LogisticRegression(max_iter=5000), "iris", "clf", True),
        ("linear_regression", L.LinearRegression(), dia, "reg", False),
        ("svc_rbf_proba", proba_svc(), "iris", "clf", False),
        ("svc_poly_proba", proba_svc(kernel="poly"), "iris", "clf", False),
        ("svc_linear_proba", proba_svc(kernel="linear"), "iris", "clf", False),
        ("svc_rbf_proba_binary", proba_svc(), bc, "clf", True),
        ("svc_sigmoid_proba", proba_svc(kernel="sigmoid"), "iris", "clf", False),
        ("svc_binary", svm.SVC(), bc, "clf", False),
        ("svc_multi", svm.SVC(), "iris", "clf", False),
        ("svr_rbf", svm.SVR(), dia, "reg", False),
        ("svr_linear", svm.SVR(kernel="linear"), dia, "reg", False),
        ("decision_tree_classifier", tree.DecisionTreeClassifier(random_state=0), "iris",
         "clf", True),
        ("decision_tree_regressor", tree.DecisionTreeRegressor(max_depth=6, random_state=0),
         dia, "reg", False),
        ("random_forest_classifier", E.RandomForestClassifier(10, random_state=0), "wine",
         "clf", False),
        ("random_forest_classifier_binary", E.RandomForestClassifier(10, random_state=0), bc,
         "clf", False),
        ("random_forest_regressor",
         E.RandomForestRegressor(10, max_depth=6, random_state=0), dia, "reg", False),
        ("gradient_boosting_classifier",
         E.GradientBoostingClassifier(n_estimators=20, random_state=0), "iris", "clf", False),
        ("gradient_boosting_classifier_binary",
         E.GradientBoostingClassifier(n_estimators=20, random_state=0), bc, "clf", True),
        ("hist_gradient_boosting_classifier",
         E.HistGradientBoostingClassifier(max_iter=20, random_state=0), "wine", "clf", False),
        ("standard_scaler", P.StandardScaler(), "wine", "transform", False),
        ("normalizer", P.Normalizer(), "wine", "transform", False),
        ("binarizer", P.Binarizer(threshold=0.5), "iris", "transform", False),
    ]  # fmt: skip


ESTIMATORS = _estimators()


def _needs_missing_ops(onx):
    """ai.onnx ops of a converted graph that this runtime lacks (they belong to other op
    families; such graphs are skipped until the runtime has them)."""
    ops = supported_op_types()
    keys = {
        ("" if n.domain in ("", "ai.onnx") else n.domain, n.op_type) for n in onx.graph.node
    }
    return sorted(op for domain, op in keys if (domain, op) not in ops)


def _proba_of(out):
    """Probabilities as an (N, C) array from an array or a ZipMap list of dicts."""
    if isinstance(out, list):
        return np.array([list(d.values()) for d in out], dtype=np.float32)
    return out


@pytest.mark.parametrize("case", ESTIMATORS, ids=[c[0] for c in ESTIMATORS])
def test_ml_sklearn_estimator(case):
    from skl2onnx import to_onnx

    name, est, data, kind, zipmap = case
    x, y = _data(data)
    est.fit(x, y)
    options = {"zipmap": zipmap} if kind == "clf" else None
    onx = to_onnx(est, x[:1], options=options, target_opset={"": 17, "ai.onnx.ml": 3})
    missing = _needs_missing_ops(onx)
    if missing:
        pytest.skip(f"the converted graph needs ai.onnx ops this runtime lacks: {missing}")
    ref = onnxruntime_outputs(onx, [x])
    with load(package(onx).wasm) as module:
        got = module.run(x)
    got = got if isinstance(got, list) and len(ref) > 1 else [got]
    if kind == "clf":
        labels, proba = got
        # against onnxruntime: same labels, probabilities within 1e-5 (SVMs: 1e-4, since
        # onnxruntime couples SVC probabilities in float32, off scikit-learn by up to 3e-5)
        assert (labels == ref[0]).all()
        atol = 1e-4 if name.startswith("svc") else 1e-5
        np.testing.assert_allclose(_proba_of(proba), _proba_of(ref[1]), atol=atol)
        if zipmap:
            assert list(proba[0]) == list(ref[1][0])
        # against scikit-learn: no label flips
        flips = int((labels != est.predict(x)).sum())
        assert flips == 0, f"{flips} labels differ from {name}.predict"
        if hasattr(est, "predict_proba"):
            np.testing.assert_allclose(_proba_of(proba), est.predict_proba(x), atol=1e-5)
    elif kind == "reg":
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5 * np.abs(ref[0]).max())
        np.testing.assert_allclose(got[0].ravel(), est.predict(x), rtol=1e-5,
                                   atol=1e-5 * np.abs(est.predict(x)).max())  # fmt: skip
    else:
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[0], est.transform(x), rtol=1e-5, atol=1e-5)


def test_ml_sklearn_string_labels():
    """A classifier fitted on string class labels answers with string labels."""
    from skl2onnx import to_onnx
    from sklearn import linear_model, tree

    x, y = _data("iris")
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    for est in (linear_model.LogisticRegression(max_iter=2000),
                tree.DecisionTreeClassifier(max_depth=3, random_state=0)):  # fmt: skip
        est.fit(x, names)
        onx = to_onnx(est, x[:1], options={"zipmap": True})
        ref = onnxruntime_outputs(onx, [x])
        with load(package(onx).wasm) as module:
            labels, proba = module.run(x)
        assert labels.dtype == object and labels.tolist() == est.predict(x).tolist()
        assert labels.tolist() == ref[0].tolist()
        assert list(proba[0]) == ["setosa", "versicolor", "virginica"]
        np.testing.assert_allclose(_proba_of(proba), _proba_of(ref[1]), atol=1e-5)


def test_ml_sklearn_one_hot_encoder_on_strings():
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.preprocessing import OneHotEncoder

    x = np.array([["red", "s"], ["blue", "m"], ["green", "s"], ["red", "l"]], dtype=object)
    est = OneHotEncoder(handle_unknown="ignore").fit(x)
    onx = to_onnx(est, initial_types=[("x", StringTensorType([None, 2]))])
    missing = _needs_missing_ops(onx)
    if missing:
        pytest.skip(f"the converted graph needs ai.onnx ops this runtime lacks: {missing}")
    test = np.array([["green", "l"], ["purple", "m"]], dtype=object)
    with load(package(onx).wasm) as module:
        got = module.run(test)
    np.testing.assert_allclose(got, est.transform(test).toarray())
    np.testing.assert_allclose(got, onnxruntime_outputs(onx, [test])[0])


def test_ml_sklearn_float64_trees():
    """float64 inputs: skl2onnx keeps the input double (float thresholds)."""
    from skl2onnx import to_onnx
    from sklearn import ensemble

    x, y = _data("diabetes")
    x = x.astype(np.float64)
    est = ensemble.RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0).fit(x, y)
    onx = to_onnx(est, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    assert onx.graph.input[0].type.tensor_type.elem_type == D
    # onnxruntime refuses this graph (it declares a double output for an opset-1 tree)
    with load(package(onx).wasm) as module:
        got = module.run(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.ravel(), est.predict(x), rtol=1e-6)


def _tree_ensemble_v5(est, n_features, dtype=np.float32):
    """A TreeEnsemble (ai.onnx.ml opset 5) node built from a fitted sklearn forest."""
    feat, split, tid, fid, tleaf, fleaf, roots, lw = [], [], [], [], [], [], [], []
    for tree in est.estimators_:
        t = tree.tree_
        internal = [i for i in range(t.node_count) if t.children_left[i] != -1]
        leaves = [i for i in range(t.node_count) if t.children_left[i] == -1]
        ipos = {n: len(feat) + k for k, n in enumerate(internal)}
        lpos = {n: len(lw) + k for k, n in enumerate(leaves)}
        roots.append(ipos[0])
        for n in internal:
            feat.append(int(t.feature[n]))
            split.append(t.threshold[n])
            for child, ids, flags in ((t.children_left[n], tid, tleaf),
                                      (t.children_right[n], fid, fleaf)):  # fmt: skip
                flags.append(int(child in lpos))
                ids.append(lpos[child] - len(lw) + len(lw) if child in lpos else ipos[child])
        lw.extend(t.value[n][0][0] / len(est.estimators_) for n in leaves)
    node = ml_node(
        "TreeEnsemble", ["x"], aggregate_function=1, n_targets=1, post_transform=0,
        nodes_featureids=feat, nodes_truenodeids=tid, nodes_falsenodeids=fid,
        nodes_trueleafs=tleaf, nodes_falseleafs=fleaf, tree_roots=roots,
        leaf_targetids=[0] * len(lw),
        nodes_modes=numpy_helper.from_array(np.zeros(len(feat), np.uint8), "modes"),
        nodes_splits=numpy_helper.from_array(np.array(split, dtype), "splits"),
        leaf_weights=numpy_helper.from_array(np.array(lw, dtype), "weights"),
    )  # fmt: skip
    elem = F if dtype == np.float32 else D
    return ml_model([node], [tensor("x", elem, [None, n_features])], [tensor("y", elem, None)],
                    ml_opset=5)  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ml_tree_ensemble_opset5(dtype):
    from sklearn import ensemble

    x, y = _data("diabetes")
    x = x.astype(dtype)
    est = ensemble.RandomForestRegressor(n_estimators=4, max_depth=5, random_state=0).fit(x, y)
    onx = _tree_ensemble_v5(est, x.shape[1], dtype)
    ref = onnxruntime_outputs(onx, [x])[0]
    with load(package(onx).wasm) as module:
        got = module.run(x)
    assert got.dtype == ref.dtype == dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    if dtype == np.float64:
        np.testing.assert_allclose(got.ravel(), est.predict(x), rtol=1e-9)


def test_ml_unknown_map_key_type_is_refused():
    model = ml_model([ml_node("ZipMap", ["x"], classlabels_int64s=[1, 2])],
                     [tensor("x", F, [None, 2])], [seq_map_value("y", I64, F)])  # fmt: skip
    model.graph.output[0].type.sequence_type.elem_type.map_type.key_type = TensorProto.INT32
    with pytest.raises(PackageError, match="map keys must be int64 or string"):
        package(model)


@pytest.mark.parametrize(
    "model, message",
    [
        (_linear_classifier("NONE"), r"linearclassifier0.*expected 4 features, got 3"),
        (_tree_regressor("SUM"), r"treeensembleregressor0.*read feature 2, the input has 2"),
    ],
    ids=["linear_classifier", "tree_regressor"],
)
def test_ml_feature_count_mismatch_is_an_error(model, message):
    model.graph.input[0].type.tensor_type.shape.dim[1].ClearField("dim_value")
    with load(package(model).wasm) as module:
        width = 3 if "linear" in message else 2
        with pytest.raises(RuntimeABIError, match=message):
            module.run(np.ones((2, width), np.float32))
