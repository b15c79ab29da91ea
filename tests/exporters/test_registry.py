"""Tests of the adapter registry, the plugin hook, and sample/dynamic-axes normalisation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from wasmexport.errors import AdapterNotFoundError, ConvertError, UnsupportedOpError
from wasmexport.exporters import (
    ENTRY_POINT_GROUP,
    ExportedModel,
    find_adapter,
    list_adapters,
    normalize_dynamic_axes,
    normalize_sample_inputs,
    register_adapter,
    registry,
    to_onnx,
)


@pytest.fixture
def clean_registry(monkeypatch):
    """A private copy of the registry (built-ins only) and no real entry points."""
    registry._ensure_builtins()
    monkeypatch.setattr(registry, "_ADAPTERS", dict(registry._ADAPTERS))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(metadata, "entry_points", lambda **kwargs: [])
    return registry


def _identity_model(domain: str = "") -> onnx.ModelProto:
    node = helper.make_node("Identity", ["x"], ["y"], name="id0", domain=domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    opsets = [helper.make_opsetid("", 18)] + (
        [helper.make_opsetid(domain, 1)] if domain else []
    )
    return helper.make_model(graph, opset_imports=opsets)


class _Thing:
    """A model object of a made-up framework."""

    domain = ""


def _make_adapter_class(tag: str = "a"):
    class FakeAdapter:
        def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None, **options):
            arrays, _ = normalize_sample_inputs(sample_inputs)
            return ExportedModel(
                onnx_model=_identity_model(model.domain),
                framework=self.name,
                input_names=["x"],
                output_names=["y"],
                sample_inputs=arrays,
                dynamic_axes={"x": {0: "batch"}},
                run_framework=lambda inputs: [inputs[0]],
            )

    FakeAdapter.tag = tag
    return FakeAdapter


# registration


def test_register_adapter_builtins_listed(clean_registry):
    assert list_adapters() == ["onnx", "sklearn", "tensorflow", "torch"]


def test_register_adapter_duplicate_rejected(clean_registry):
    with pytest.raises(ValueError, match=r"'torch' is already registered \(TorchAdapter\)"):
        register_adapter("torch", detect=lambda m: False)(_make_adapter_class())


def test_register_adapter_overwrite_replaces(clean_registry):
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(_make_adapter_class("a"))
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing), overwrite=True)(
        _make_adapter_class("b")
    )
    adapter = find_adapter(_Thing())
    assert adapter.name == "fake"
    assert type(adapter).tag == "b"
    assert list_adapters() == ["fake", "onnx", "sklearn", "tensorflow", "torch"]


def test_register_adapter_returns_class_unchanged(clean_registry):
    cls = _make_adapter_class()
    assert register_adapter("fake", detect=bool)(cls) is cls


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pass", r"has no callable export"),
        ("export = 3", r"has no callable export"),
        (
            "def export(self, model, sample_inputs, *, dynamic_axes=None): ...",
            r"must define export\(self, model, sample_inputs, \*, dynamic_axes, opset.*"
            r"unexpected keyword argument 'opset'",
        ),
        (
            "def export(self, model): ...",
            r"its export\(model\) does not fit",
        ),
        (
            "def __init__(self, needed): ...\n"
            "def export(self, model, sample_inputs, *, dynamic_axes, opset): ...",
            r"constructible with no arguments",
        ),
    ],
)
def test_register_adapter_signature_checked(clean_registry, body, message):
    namespace: dict = {}
    exec(f"class Bad:\n{textwrap.indent(body, '    ')}\n", namespace)
    with pytest.raises(TypeError, match=message):
        register_adapter("bad", detect=bool)(namespace["Bad"])
    assert "bad" not in list_adapters()


def test_register_adapter_accepts_kwargs_only_export(clean_registry):
    class Loose:
        def export(self, model, sample_inputs, **options): ...

    register_adapter("loose", detect=lambda m: False)(Loose)
    assert "loose" in list_adapters()


def test_register_adapter_rejects_bad_arguments(clean_registry):
    with pytest.raises(TypeError, match="non-empty str adapter name"):
        register_adapter("", detect=bool)
    with pytest.raises(TypeError, match="callable detect"):
        register_adapter("x", detect=None)
    with pytest.raises(TypeError, match="decorates a class"):
        register_adapter("x", detect=bool)(lambda: None)


# lookup


def test_find_adapter_by_name_and_detect(clean_registry):
    assert find_adapter(object(), framework="onnx").name == "onnx"
    assert find_adapter(_identity_model()).name == "onnx"
    assert find_adapter("model.ONNX").name == "onnx"


def test_find_adapter_did_you_mean(clean_registry):
    with pytest.raises(AdapterNotFoundError) as info:
        find_adapter(object(), framework="troch")
    assert str(info.value) == (
        "No adapter named 'troch'; did you mean 'torch'? "
        "Known adapters: onnx, sklearn, tensorflow, torch."
    )
    with pytest.raises(AdapterNotFoundError, match="did you mean 'torch'"):
        find_adapter(object(), framework="pytorch")


def test_find_adapter_unknown_model_lists_adapters(clean_registry):
    with pytest.raises(AdapterNotFoundError) as info:
        find_adapter({"weights": 1})
    assert str(info.value).startswith(
        "No adapter recognises a dict object. "
        "Known adapters: onnx, sklearn, tensorflow, torch."
    )
    assert isinstance(info.value, ConvertError)


def test_find_adapter_broken_detect_warns_and_continues(clean_registry):
    def broken(model):
        raise RuntimeError("boom")

    register_adapter("aaa", detect=broken)(_make_adapter_class())
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(_make_adapter_class())
    with pytest.warns(
        RuntimeWarning, match=r"detect\(\) of adapter 'aaa' raised RuntimeError"
    ):
        assert find_adapter(_Thing()).name == "fake"


def test_import_does_not_import_a_framework():
    code = (
        "import sys, onnx\n"
        "import wasmexport.exporters as ex\n"
        "names = ['onnx', 'sklearn', 'tensorflow', 'torch']\n"
        "assert ex.list_adapters() == names, ex.list_adapters()\n"
        "assert ex.find_adapter(onnx.ModelProto()).name == 'onnx'\n"
        "try:\n"
        "    ex.find_adapter(object())\n"
        "except ex.registry.AdapterNotFoundError:\n"
        "    pass\n"
        "for name in ('torch', 'tensorflow', 'keras', 'tf2onnx', 'sklearn', 'skl2onnx'):\n"
        "    assert name not in sys.modules, name + ' was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# to_onnx


def test_to_onnx_uses_detected_adapter(clean_registry):
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(_make_adapter_class())
    sample = np.ones((3, 2), np.float32)
    exported = to_onnx(_Thing(), sample)
    assert exported.framework == "fake"
    assert exported.opset == 18
    np.testing.assert_array_equal(exported.run_framework([sample])[0], sample)


def test_to_onnx_rejects_foreign_domain(clean_registry):
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(_make_adapter_class())
    thing = _Thing()
    thing.domain = "com.example"
    with pytest.raises(
        UnsupportedOpError, match=r"node 'id0' \(com.example::Identity"
    ) as info:
        to_onnx(thing, np.ones((1, 2), np.float32))
    assert (info.value.node, info.value.op_type, info.value.opset) == ("id0", "Identity", 18)


def test_to_onnx_rejects_wrong_return_type(clean_registry):
    class Sloppy:
        def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None):
            return "not a model"

    register_adapter("sloppy", detect=lambda m: False)(Sloppy)
    with pytest.raises(
        TypeError, match="expected ExportedModel from adapter 'sloppy', got str"
    ):
        to_onnx(object(), [], framework="sloppy")


def test_to_onnx_missing_framework_names_install_command(clean_registry, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ConvertError) as info:
        to_onnx(object(), np.ones(2, np.float32), framework="torch")
    message = str(info.value)
    assert "PyTorch, which is not installed" in message
    assert "install torch==2.13.0 first" in message
    assert "pip install 'wasmexport[torch]'" in message
    assert isinstance(info.value.__cause__, ImportError)


def test_to_onnx_named_framework_refuses_a_model_another_adapter_claims(clean_registry):
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(_make_adapter_class())
    with pytest.raises(ConvertError) as info:
        to_onnx(_Thing(), np.ones((1, 2), np.float32), framework="onnx")
    assert str(info.value) == (
        "framework 'onnx' cannot export a fake model (_Thing); use framework='fake' or "
        "leave framework unset to detect it"
    )
    with pytest.raises(ConvertError, match=r"cannot export an ONNX model \('m.onnx'\); use "):
        to_onnx("m.onnx", np.ones((1, 2), np.float32), framework="fake")


def test_to_onnx_named_framework_names_the_declared_model_kind(clean_registry):
    adapter_class = _make_adapter_class()
    adapter_class.model_kind = "a made-up model"
    register_adapter("fake", detect=lambda m: isinstance(m, _Thing))(adapter_class)
    with pytest.raises(ConvertError, match=r"cannot export a made-up model \(_Thing\)"):
        to_onnx(_Thing(), np.ones((1, 2), np.float32), framework="sklearn")


def test_to_onnx_named_framework_exports_what_no_other_adapter_claims(clean_registry):
    """An adapter may export models its detect leaves to be named explicitly."""
    register_adapter("fake", detect=lambda m: False)(_make_adapter_class())
    exported = to_onnx(_Thing(), np.ones((1, 2), np.float32), framework="fake")
    assert exported.framework == "fake"


class _StrictAdapter(_make_adapter_class()):
    """An adapter whose export() declares its options (no **options)."""

    def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None,
               exporter="a", zipmap=True):  # fmt: skip
        return super().export(model, sample_inputs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"exportr": "b"},
            "strict: unknown option 'exportr' (did you mean 'exporter'?); the strict adapter "
            "takes exporter, zipmap",
        ),
        (
            {"zipmap": False, "verbose": True, "zip_map": 1},
            "strict: unknown options 'verbose', 'zip_map' (did you mean 'zipmap'?); the "
            "strict adapter takes exporter, zipmap",
        ),
    ],
)
def test_to_onnx_unknown_option_names_adapter_and_its_options(
    clean_registry, options, message
):
    register_adapter("strict", detect=lambda m: isinstance(m, _Thing))(_StrictAdapter)
    with pytest.raises(ConvertError) as info:
        to_onnx(_Thing(), np.ones((1, 2), np.float32), **options)
    assert str(info.value) == message


def test_to_onnx_known_options_and_open_adapters_pass(clean_registry):
    register_adapter("strict", detect=lambda m: isinstance(m, _Thing))(_StrictAdapter)
    assert to_onnx(_Thing(), np.ones((1, 2), np.float32), zipmap=False).framework == "strict"
    register_adapter("open", detect=lambda m: False)(_make_adapter_class())  # **options
    thing = type("Other", (), {"domain": ""})()  # a model no adapter claims
    assert to_onnx(thing, np.ones((1, 2)), framework="open", anything=1).framework == "open"


def test_to_onnx_builtin_adapter_refuses_an_option_it_lacks(clean_registry):
    with pytest.raises(ConvertError) as info:
        to_onnx(_identity_model(), np.ones((1, 2), np.float32), exporter="legacy")
    assert str(info.value) == (
        "onnx: unknown option 'exporter'; the onnx adapter takes external_data_dir"
    )


# entry-point plugins


def _fake_entry_points(*entry_points):
    def entry_points_(**kwargs):
        assert kwargs == {"group": ENTRY_POINT_GROUP}
        return list(entry_points)

    return entry_points_


def test_entry_point_plugin_loaded_lazily(clean_registry, monkeypatch, tmp_path):
    (tmp_path / "wasmexport_fake_plugin.py").write_text(
        textwrap.dedent(
            """
            from wasmexport.exporters import register_adapter

            def is_fake(model):
                return getattr(model, "fake_framework", False)

            @register_adapter("fakefw", detect=is_fake)
            class FakeFwAdapter:
                def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None):
                    raise NotImplementedError("fake")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "wasmexport_fake_plugin", raising=False)
    entry_point = metadata.EntryPoint(
        name="fakefw", value="wasmexport_fake_plugin:FakeFwAdapter", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(entry_point))

    assert "wasmexport_fake_plugin" not in sys.modules  # nothing loaded before a lookup
    model = type("M", (), {"fake_framework": True})()
    adapter = find_adapter(model)
    assert adapter.name == "fakefw"
    assert type(adapter).__name__ == "FakeFwAdapter"
    assert list_adapters() == ["fakefw", "onnx", "sklearn", "tensorflow", "torch"]


def test_entry_point_broken_plugin_warns(clean_registry, monkeypatch):
    broken = metadata.EntryPoint(
        name="broken", value="wasmexport_no_such_module:Adapter", group=ENTRY_POINT_GROUP
    )
    empty = metadata.EntryPoint(name="empty", value="json:dumps", group=ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points", _fake_entry_points(broken, empty))

    with pytest.warns(RuntimeWarning) as record:
        assert list_adapters() == ["onnx", "sklearn", "tensorflow", "torch"]
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "skipped adapter plugin 'broken = wasmexport_no_such_module:Adapter'" in messages[0]
    assert "ModuleNotFoundError" in messages[0]
    assert "'empty = json:dumps'" in messages[1]
    assert "registered no adapter" in messages[1]
    assert find_adapter(_identity_model()).name == "onnx"  # the rest keeps working


# sample inputs


def test_normalize_sample_inputs_forms():
    a = np.zeros((2, 3), np.float32)
    b = np.ones(4, np.int64)
    assert normalize_sample_inputs(a)[0][0] is a
    arrays, names = normalize_sample_inputs((a, b))
    assert [x.shape for x in arrays] == [(2, 3), (4,)] and names is None
    arrays, names = normalize_sample_inputs({"ids": b, "x": a})
    assert names == ["ids", "x"] and arrays[0] is b
    assert normalize_sample_inputs(np.float32(2.5))[0][0].shape == ()


def test_normalize_sample_inputs_torch_tensor():
    torch = pytest.importorskip("torch")
    t = torch.ones(2, 3, requires_grad=True)
    arrays, _ = normalize_sample_inputs([t])
    assert isinstance(arrays[0], np.ndarray)
    assert arrays[0].dtype == np.float32 and arrays[0].shape == (2, 3)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (
            {1, 2},
            "expected a numpy array, a tensor, a tuple/list of them or a dict "
            "name -> array, got set",
        ),
        ("x.npy", "got str"),
        (
            [np.zeros(2), {"a": 1}],
            "expected a numpy array or a tensor for sample input 1, got dict",
        ),
        ({"x": [1.0, 2.0]}, "for sample input 'x', got list"),
        ({0: np.zeros(2)}, "expected str keys in sample_inputs, got int"),
    ],
)
def test_normalize_sample_inputs_wrong_types(sample, message):
    with pytest.raises(TypeError) as info:
        normalize_sample_inputs(sample)
    assert message in str(info.value)


# dynamic axes


_SAMPLES = [np.zeros((4, 3, 8, 8), np.float32), np.zeros((4, 7), np.int64), np.zeros(())]
_NAMES = ["image", "ids", "scale"]


@pytest.mark.parametrize(
    ("dynamic_axes", "expected"),
    [
        (None, {"image": {0: "batch"}, "ids": {0: "batch"}}),
        (True, {"image": {0: "batch"}, "ids": {0: "batch"}}),
        (False, {}),
        ({}, {}),
        ({"image": {0: "n", 2: "h", -1: "w"}}, {"image": {0: "n", 2: "h", 3: "w"}}),
        ({0: {3: "w", 0: "n"}}, {"image": {0: "n", 3: "w"}}),
        ({"ids": [1, 0]}, {"ids": {0: "ids_dim0", 1: "ids_dim1"}}),
        ({1: (-1,), "image": None}, {"ids": {1: "ids_dim1"}}),
    ],
)
def test_normalize_dynamic_axes_forms(dynamic_axes, expected):
    assert normalize_dynamic_axes(dynamic_axes, _NAMES, _SAMPLES) == expected


@pytest.mark.parametrize(
    ("dynamic_axes", "error", "message"),
    [
        (
            {"image": {4: "w"}},
            ConvertError,
            "input 'image' has rank 4 (sample shape (4, 3, 8, 8)), so axis 4 is out of range",
        ),
        ({"scale": [0]}, ConvertError, "input 'scale' has rank 0 (sample shape ())"),
        ({"imgae": [0]}, ConvertError, "did you mean 'image'?"),
        ({5: [0]}, ConvertError, "input index 5, but the model has 3 input(s)"),
        ({"image": [0], 0: [1]}, ConvertError, "names input 'image' twice"),
        ([0], TypeError, "expected dynamic_axes as None, False or a dict"),
        ({"image": "batch"}, TypeError, "as a dict axis -> name or a list of axes, got str"),
        ({"image": {"0": "batch"}}, TypeError, "expected int axes"),
        ({"image": {0: ""}}, TypeError, "non-empty str name for axis 0 of input 'image'"),
    ],
)
def test_normalize_dynamic_axes_errors(dynamic_axes, error, message):
    with pytest.raises(error) as info:
        normalize_dynamic_axes(dynamic_axes, _NAMES, _SAMPLES)
    assert message in str(info.value)
