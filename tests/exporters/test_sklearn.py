"""The sklearn adapter on scikit-learn's bundled datasets: export_wasm, then the module
against predict / predict_proba / transform (no label flips, probabilities within 1e-5,
regressions within 1e-5 relative)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from sklearn import (  # noqa: E402
    cluster,
    datasets,
    decomposition,
    ensemble,
    impute,
    naive_bayes,
    neighbors,
    neural_network,
    pipeline,
    svm,
    tree,
)
from sklearn import linear_model as lm  # noqa: E402
from sklearn import preprocessing as pp  # noqa: E402

from wasmexport import export_wasm, load  # noqa: E402
from wasmexport.errors import ConvertError, UnsupportedOpError  # noqa: E402

LOADERS = {"iris": datasets.load_iris, "wine": datasets.load_wine,
           "breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits,
           "diabetes": datasets.load_diabetes}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    """name -> (X float32, y), each bundled dataset loaded once."""
    return {name: load(return_X_y=True) for name, load in LOADERS.items()}


def _xy(data, name):
    x, y = data[name]
    return np.ascontiguousarray(x, dtype=np.float32), y


BC, DIA = "breast_cancer", "diabetes"
# id, estimator factory, dataset, kind (clf / reg / transform / cluster)
CASES = [
    ("linear_regression", lambda: lm.LinearRegression(), DIA, "reg"),
    ("ridge", lambda: lm.Ridge(alpha=0.5), DIA, "reg"),
    ("logreg_binary", lambda: lm.LogisticRegression(max_iter=5000), BC, "clf"),
    ("logreg_multiclass", lambda: lm.LogisticRegression(max_iter=5000), "wine", "clf"),
    ("svc", lambda: svm.SVC(), "iris", "clf"),
    ("svc_binary", lambda: svm.SVC(), BC, "clf"),
    ("svc_probability", lambda: svm.SVC(probability=True, random_state=0), "iris", "clf"),
    ("svr", lambda: svm.SVR(C=50.0), DIA, "reg"),
    ("linear_svc", lambda: svm.LinearSVC(), "iris", "clf"),
    ("decision_tree_classifier", lambda: tree.DecisionTreeClassifier(random_state=0),
     "wine", "clf"),
    ("decision_tree_regressor",
     lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0), DIA, "reg"),
    ("random_forest_classifier",
     lambda: ensemble.RandomForestClassifier(10, max_depth=6, random_state=0), "wine", "clf"),
    ("random_forest_regressor",
     lambda: ensemble.RandomForestRegressor(10, max_depth=6, random_state=0), DIA, "reg"),
    ("extra_trees_classifier",
     lambda: ensemble.ExtraTreesClassifier(10, max_depth=6, random_state=0), BC, "clf"),
    ("gradient_boosting_classifier",
     lambda: ensemble.GradientBoostingClassifier(n_estimators=15, random_state=0), "iris",
     "clf"),
    ("gradient_boosting_regressor",
     lambda: ensemble.GradientBoostingRegressor(n_estimators=15, random_state=0), DIA, "reg"),
    ("hist_gradient_boosting_classifier",
     lambda: ensemble.HistGradientBoostingClassifier(max_iter=15, random_state=0), "wine",
     "clf"),
    ("kneighbors_classifier", lambda: neighbors.KNeighborsClassifier(3), "iris", "clf"),
    ("gaussian_nb", lambda: naive_bayes.GaussianNB(), "wine", "clf"),
    ("mlp_classifier",
     lambda: neural_network.MLPClassifier((16,), max_iter=300, random_state=0), "digits",
     "clf"),
    ("kmeans", lambda: cluster.KMeans(3, n_init=2, random_state=0), "iris", "cluster"),
    ("pca", lambda: decomposition.PCA(4), "digits", "transform"),
    ("standard_scaler", lambda: pp.StandardScaler(), "wine", "transform"),
    ("min_max_scaler", lambda: pp.MinMaxScaler(), "wine", "transform"),
    ("normalizer", lambda: pp.Normalizer(), "wine", "transform"),
    ("simple_imputer", lambda: impute.SimpleImputer(), "wine", "transform"),
    ("pipeline_scaler_logreg",
     lambda: pipeline.make_pipeline(pp.StandardScaler(), lm.LogisticRegression(max_iter=2000)),
     "iris", "clf"),
]  # fmt: skip


def _export_or_skip(est, x, path, **options):
    """export_wasm; skip (naming them) when the graph needs ops the runtime lacks."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return export_wasm(est, x, path, **options)
    except UnsupportedOpError as e:
        pytest.skip(f"TODO: runtime op {e.op_type} (needed by {type(est).__name__})")


def _proba_matrix(maps, classes):
    return np.array([[row[c] for c in classes] for row in maps])


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sklearn_estimator(case, data, tmp_path):
    name, make, dataset, kind = case
    x, y = _xy(data, dataset)
    if name == "simple_imputer":  # some holes to fill
        x = x.copy()
        x[::7, 3] = np.nan
    est = make().fit(x, y) if kind != "transform" else make().fit(x)
    path = tmp_path / f"{name}.wasm"
    result = _export_or_skip(est, x, path)
    assert result.report.passed and result.report.label_flips == 0

    with load(path) as module:
        got = module.run(x)
    if kind == "clf":
        labels, proba = got
        flips = int((labels != est.predict(x)).sum())
        assert flips == 0, f"{flips} label flips against {name}.predict"
        classes = [int(c) for c in est.classes_]
        if isinstance(proba, list):  # ZipMap, the default where the converter has it
            assert list(proba[0]) == classes
            proba = _proba_matrix(proba, classes)
        if hasattr(est, "predict_proba"):
            np.testing.assert_allclose(proba, est.predict_proba(x), atol=1e-5)
        else:  # decision scores (LinearSVC has no zipmap option in skl2onnx)
            scores = est.decision_function(x)
            if scores.ndim == 1 and proba.shape[1] == 2:  # binary SVC: skl2onnx's (d, -d)
                scores = np.stack([scores, -scores], axis=1)
            atol = 1e-5 * np.abs(scores).max()
            np.testing.assert_allclose(proba, scores, rtol=1e-5, atol=atol)
    elif kind == "reg":
        expected = est.predict(x)
        np.testing.assert_allclose(got.ravel(), expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())  # fmt: skip
    elif kind == "cluster":
        labels, distances = got
        assert (labels == est.predict(x)).all()
        np.testing.assert_allclose(distances, est.transform(x), rtol=1e-5, atol=1e-4)
    else:
        np.testing.assert_allclose(got, est.transform(x), rtol=1e-5, atol=1e-5)


def test_sklearn_zipmap_off_gives_a_matrix(data, tmp_path):
    x, y = _xy(data, "iris")
    est = lm.LogisticRegression(max_iter=2000).fit(x, y)
    _export_or_skip(est, x, tmp_path / "m.wasm", zipmap=False)
    with load(tmp_path / "m.wasm") as module:
        labels, proba = module.run(x[:20])
    assert proba.shape == (20, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba, est.predict_proba(x[:20]), atol=1e-5)
    assert (labels == est.predict(x[:20])).all()


def test_sklearn_string_class_labels(data, tmp_path):
    x, y = _xy(data, "iris")
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    est = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, names)
    result = _export_or_skip(est, x, tmp_path / "s.wasm")
    assert result.report.label_flips == 0
    with load(tmp_path / "s.wasm") as module:
        labels, proba = module.run(x)
    assert labels.tolist() == est.predict(x).tolist()
    assert list(proba[0]) == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose(_proba_matrix(proba, list(est.classes_)), est.predict_proba(x),
                               atol=1e-5)  # fmt: skip


def test_sklearn_column_transformer_on_a_dataframe(data, tmp_path):
    """StandardScaler on numeric columns + OneHotEncoder on a string column, one graph
    input per DataFrame column."""
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer

    x, y = _xy(data, "wine")
    frame = pd.DataFrame({"alcohol": x[:, 0], "ash": x[:, 2], "hue": x[:, 10],
                          "colour": np.where(x[:, 9] > 5.0, "dark", "light").astype(object),
                          "batch": (np.arange(len(x)) % 3).astype(np.int64)})  # fmt: skip
    model = pipeline.Pipeline([
        ("prep", ColumnTransformer([
            ("num", pp.StandardScaler(), ["alcohol", "ash", "hue"]),
            ("cat", pp.OneHotEncoder(handle_unknown="ignore"), ["colour"]),
        ])),
        ("clf", lm.LogisticRegression(max_iter=2000)),
    ]).fit(frame, y)  # fmt: skip
    result = _export_or_skip(model, frame, tmp_path / "ct.wasm", zipmap=False)
    assert result.onnx_model.graph.input[3].type.tensor_type.elem_type == 8  # string
    with load(tmp_path / "ct.wasm") as module:
        feeds = [frame[c].to_numpy().reshape(-1, 1) for c in frame.columns]
        feeds = [f.astype(np.float32) if f.dtype == np.float64 else f for f in feeds]
        labels, proba = module.run(feeds)
    assert (labels == model.predict(frame)).all()
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-5)


def test_sklearn_float64_keeps_doubles_and_falls_back_for_trees(data, tmp_path):
    x, y = data[DIA]
    svr = svm.SVR(C=50.0).fit(x, y)
    result = _export_or_skip(svr, x, tmp_path / "r.wasm", dtype="float64")
    assert result.onnx_model.graph.input[0].type.tensor_type.elem_type == 11  # double
    with load(tmp_path / "r.wasm") as module:
        got = module.run(x)
    # double inputs and output; the SVMRegressor attributes (support vectors,
    # coefficients) are float32 in ai.onnx.ml, hence float32-level agreement
    assert got.dtype == np.float64
    np.testing.assert_allclose(got.ravel(), svr.predict(x), rtol=1e-6)

    forest = ensemble.RandomForestRegressor(4, max_depth=4, random_state=0).fit(x, y)
    with pytest.warns(UserWarning, match="tree ensemble"):
        result = export_wasm(forest, x, tmp_path / "f.wasm", dtype="float64")
    assert result.onnx_model.graph.input[0].type.tensor_type.elem_type == 1  # float


def test_sklearn_adapter_errors(data, tmp_path):
    x, y = _xy(data, "iris")
    with pytest.raises(ConvertError, match="not fitted"):
        export_wasm(lm.LogisticRegression(), x, tmp_path / "u.wasm")
    est = lm.LogisticRegression(max_iter=2000).fit(x, y)
    with pytest.raises(ConvertError, match="dtype must be one of"):
        export_wasm(est, x, tmp_path / "d.wasm", dtype="float16")
    with pytest.raises(ConvertError, match="2-D sample"):
        export_wasm(est, x[0], tmp_path / "r.wasm")


@pytest.mark.parametrize("verify", [True, False])
def test_sklearn_sample_feature_count_checked_before_converting(data, tmp_path, verify):
    x, y = _xy(data, "iris")
    est = lm.LogisticRegression(max_iter=2000).fit(x, y)
    with pytest.raises(ConvertError) as info:
        export_wasm(est, x[:3, :3], tmp_path / "m.wasm", verify=verify)
    assert str(info.value) == (
        "sklearn: the sample has 3 feature(s) (shape (3, 3)), but the LogisticRegression was "
        "fitted on 4 (n_features_in_); pass a sample of shape (n_samples, 4)"
    )
    assert not (tmp_path / "m.wasm").exists()


def test_sklearn_dataframe_feature_count_checked(tmp_path):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    est = pipeline.make_pipeline(pp.StandardScaler(), lm.LinearRegression())
    est.fit(frame, [0.0, 1.0, 2.0, 3.0])
    with pytest.raises(ConvertError) as info:
        export_wasm(est, frame[["a"]], tmp_path / "m.wasm")
    assert str(info.value) == (
        "sklearn: the sample has 1 feature(s) (DataFrame columns a), but the Pipeline was "
        "fitted on 2 (n_features_in_); pass a DataFrame with the columns it was fitted on"
    )


def test_sklearn_option_of_another_adapter_is_convert_error(data, tmp_path):
    x, y = _xy(data, "iris")
    est = lm.LogisticRegression(max_iter=2000).fit(x, y)
    with pytest.raises(ConvertError) as info:
        export_wasm(est, x, tmp_path / "m.wasm", exporter="legacy")
    assert str(info.value) == (
        "sklearn: unknown option 'exporter'; the sklearn adapter takes zipmap, dtype, "
        "options, ml_opset"
    )
