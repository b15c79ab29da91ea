"""The adapter registry: from a framework model to an ``onnx.ModelProto``.

An adapter turns one framework's model plus sample inputs into an `ExportedModel`. Adapters
are registered by name with a `detect` predicate; `to_onnx` picks one by explicit name
(``framework="torch"``) or by asking each adapter's `detect`, in registration order.

Built-in adapters (``onnx``, ``torch``, ``tensorflow``, ``sklearn``) are registered in one
place, `_register_builtins`; each imports its framework lazily, so importing
``wasmexport.exporters`` imports no framework.

Third-party adapters
--------------------
A package adds an adapter through the entry-point group ``wasmexport.adapters``. The entry
point names the adapter class, decorated with `register_adapter`; loading the entry point
registers it. Entry points are loaded lazily, on the first `find_adapter`, `to_onnx` or
`list_adapters` call; one that fails to load gives a ``RuntimeWarning`` naming it, and the
other adapters keep working::

    # pyproject.toml of the plugin package
    [project.entry-points."wasmexport.adapters"]
    jax = "wasmexport_jax.adapter:JaxAdapter"

    # wasmexport_jax/adapter.py
    import sys

    from wasmexport.exporters import ExportedModel, register_adapter

    def is_jax_function(model) -> bool:
        return "jax" in sys.modules and callable(model) and hasattr(model, "lower")

    @register_adapter("jax", detect=is_jax_function)
    class JaxAdapter:
        def export(self, model, sample_inputs, *, dynamic_axes=None, opset=None, **options):
            ...
            return ExportedModel(...)

`detect` must not import its framework: check ``sys.modules`` first, since a model of a
framework that was never imported cannot exist.

Before exporting, `to_onnx` checks the call against the adapter: a model that another
adapter's `detect` claims is refused when the user named this adapter (``framework=``), and
so is an option that ``export()`` does not declare (an ``export`` with ``**options`` takes
any). An adapter class may set ``model_kind`` (e.g. ``"a JAX function"``) for these
messages; they say ``"a jax model"`` otherwise.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Protocol

import numpy as np
import onnx

from ..errors import AdapterNotFoundError, ConvertError, first_line

__all__ = [
    "ENTRY_POINT_GROUP",
    "Adapter",
    "ExportedModel",
    "find_adapter",
    "list_adapters",
    "register_adapter",
    "to_onnx",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "wasmexport.adapters"

# name, module (relative to this package), detect function, adapter class
_BUILTINS = (
    ("onnx", ".onnx", "is_onnx_model", "OnnxAdapter"),
    ("torch", ".torch", "is_torch_module", "TorchAdapter"),
    ("tensorflow", ".tensorflow", "is_tensorflow_model", "TensorflowAdapter"),
    ("sklearn", ".sklearn", "is_sklearn_estimator", "SklearnAdapter"),
)


@dataclass
class ExportedModel:
    """An ONNX model exported from a framework model, with what is needed to check it.

    Attributes:
        onnx_model: the model; weights inline (no external data), opset recorded.
        framework: name of the adapter that produced it ("torch", "onnx", ...).
        input_names: graph input names, in graph-input order.
        output_names: graph output names, in graph-output order.
        sample_inputs: the sample, as numpy arrays, in graph-input order.
        dynamic_axes: graph input name -> {axis: symbolic name}, as the graph declares them.
        run_framework: runs the original framework model on numpy inputs (graph-input order)
            and returns numpy outputs in graph-output order; None when there is no framework
            model (the ONNX pass-through).
    """

    onnx_model: onnx.ModelProto = field(repr=False)
    framework: str
    input_names: list[str]
    output_names: list[str]
    sample_inputs: list[np.ndarray] = field(repr=False)
    dynamic_axes: dict[str, dict[int, str]]
    run_framework: Callable[[list[np.ndarray]], list[np.ndarray]] | None = field(repr=False)

    @property
    def opset(self) -> int:
        """The ai.onnx opset version the model imports."""
        for opset_id in self.onnx_model.opset_import:
            if opset_id.domain in ("", "ai.onnx"):
                return opset_id.version
        return 0


class Adapter(Protocol):
    """What `register_adapter` accepts: a class with these members, instantiated once."""

    name: str

    def export(
        self,
        model: Any,
        sample_inputs: Any,
        *,
        dynamic_axes: Any = None,
        opset: int | None = None,
        **options: Any,
    ) -> ExportedModel: ...


@dataclass(frozen=True)
class _Registration:
    adapter: Adapter
    detect: Callable[[object], bool]


_ADAPTERS: dict[str, _Registration] = {}
_builtins_loaded = False
_plugins_loaded = False


def register_adapter(
    name: str, *, detect: Callable[[object], bool], overwrite: bool = False
) -> Callable[[type], type]:
    """Class decorator: register an adapter class under `name`.

    The class is instantiated once, with no arguments; its instance gets ``name``.

    Args:
        name: the framework name users pass as ``framework=``.
        detect: returns True for model objects this adapter handles; must not import a
            framework that is not already in ``sys.modules``.
        overwrite: replace an adapter already registered under `name`.

    Returns:
        The decorator, which returns the class unchanged.

    Raises:
        ValueError: `name` is taken and `overwrite` is False.
        TypeError: the class has no callable ``export(model, sample_inputs, *,
            dynamic_axes, opset, **options)``, or `name`/`detect` have the wrong type.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"expected a non-empty str adapter name, got {name!r}")
    if not callable(detect):
        raise TypeError(f"expected a callable detect for adapter {name!r}, got {detect!r}")

    def decorator(cls: type) -> type:
        adapter = _instantiate_checked(cls, name)
        _ensure_builtins()
        if name in _ADAPTERS and not overwrite:
            existing = type(_ADAPTERS[name].adapter).__qualname__
            raise ValueError(
                f"an adapter named {name!r} is already registered ({existing}); "
                "pass overwrite=True to replace it"
            )
        adapter.name = name
        _ADAPTERS[name] = _Registration(adapter, detect)
        logger.debug("registered adapter %r (%s)", name, cls.__qualname__)
        return cls

    return decorator


def find_adapter(model: object, framework: str | None = None) -> Adapter:
    """Return the adapter named `framework`, or the first one whose `detect` accepts `model`.

    Raises:
        AdapterNotFoundError: no adapter has that name (with a "did you mean"), or none
            recognises the model; the message lists the known adapters.
        TypeError: `framework` is not a str.
    """
    _ensure_loaded()
    known = ", ".join(sorted(_ADAPTERS)) or "none"
    if framework is not None:
        if not isinstance(framework, str):
            raise TypeError(f"expected a str framework name, got {type(framework).__name__}")
        registration = _ADAPTERS.get(framework) or _ADAPTERS.get(framework.lower())
        if registration is not None:
            return registration.adapter
        close = difflib.get_close_matches(framework.lower(), list(_ADAPTERS), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise AdapterNotFoundError(
            f"No adapter named {framework!r}{hint} Known adapters: {known}."
        )

    for name, registration in _ADAPTERS.items():
        if _detects(name, registration, model):
            logger.debug("adapter %r detected a %s", name, _type_name(model))
            return registration.adapter
    raise AdapterNotFoundError(
        f"No adapter recognises a {_type_name(model)} object. Known adapters: {known}. "
        "Pass framework='<name>' to pick one, or install the adapter for this framework."
    )


def list_adapters() -> list[str]:
    """Names of the registered adapters (built-ins and loaded plugins), sorted."""
    _ensure_loaded()
    return sorted(_ADAPTERS)


def to_onnx(
    model: object,
    sample_inputs: object,
    *,
    framework: str | None = None,
    dynamic_axes: object = None,
    opset: int | None = None,
    **options: Any,
) -> ExportedModel:
    """Export a framework model to ONNX with the adapter that handles it.

    Args:
        model: the framework model (torch.nn.Module, onnx.ModelProto or .onnx path, ...).
        sample_inputs: an array/tensor, a tuple/list of them, or a dict name -> array.
        framework: adapter name; detected from `model` when None.
        dynamic_axes: None (batch on axis 0 of every input), False (static), or
            ``{input name or index: {axis: name} or [axes]}``.
        opset: ai.onnx opset; the adapter's default when None.
        **options: adapter options (e.g. ``exporter="legacy"`` for torch).

    Returns:
        The `ExportedModel`; its graph uses only the ai.onnx and ai.onnx.ml domains.

    Raises:
        AdapterNotFoundError: no adapter for the model or the framework name.
        ConvertError: the export failed (the message names the framework and the cause);
            `framework` names an adapter but another one recognises the model; or an
            option the adapter does not take.
        UnsupportedOpError: the model uses a node outside ai.onnx / ai.onnx.ml.
    """
    from .onnx import check_domains

    adapter = find_adapter(model, framework)
    if framework is not None:
        _check_model_kind(adapter, model)
    _check_options(adapter, options)
    logger.info("exporting a %s with the %r adapter", _type_name(model), adapter.name)
    exported = adapter.export(
        model, sample_inputs, dynamic_axes=dynamic_axes, opset=opset, **options
    )
    if not isinstance(exported, ExportedModel):
        raise TypeError(
            f"expected ExportedModel from adapter {adapter.name!r}, "
            f"got {type(exported).__name__}"
        )
    check_domains(exported.onnx_model, framework=exported.framework)
    return exported


def _register_builtins() -> None:
    """Register the built-in adapters; each module imports its framework only when used."""
    for name, module_name, detect_name, class_name in _BUILTINS:
        module = importlib.import_module(module_name, __package__)
        detect = getattr(module, detect_name)
        register_adapter(name, detect=detect)(getattr(module, class_name))


def _ensure_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True  # NOTE: set first; _register_builtins re-enters here
        _register_builtins()


def _ensure_loaded() -> None:
    """Register the built-ins, then load the entry-point plugins, once each."""
    global _plugins_loaded
    _ensure_builtins()
    if not _plugins_loaded:
        _plugins_loaded = True
        _load_plugins()


def _load_plugins() -> None:
    """Load every entry point of ENTRY_POINT_GROUP; warn about (and skip) broken ones."""
    try:
        entry_points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    except Exception as e:  # a distribution with broken metadata must not break exports
        warnings.warn(
            f"wasmexport: could not list the {ENTRY_POINT_GROUP!r} entry points "
            f"({type(e).__name__}: {e}); no adapter plugins loaded",
            RuntimeWarning,
            stacklevel=3,
        )
        return

    for entry_point in entry_points:
        where = f"{entry_point.name} = {entry_point.value}"
        try:
            loaded = entry_point.load()
        except Exception as e:
            _warn_plugin(where, f"{type(e).__name__}: {first_line(e)}")
            continue
        registered = entry_point.name in _ADAPTERS or any(
            type(r.adapter) is loaded for r in _ADAPTERS.values()
        )
        if not registered:
            _warn_plugin(
                where, "it registered no adapter (decorate it with @register_adapter)"
            )
        else:
            logger.debug("loaded adapter plugin %s", where)


def _warn_plugin(where: str, reason: str) -> None:
    warnings.warn(
        f"wasmexport: skipped adapter plugin {where!r} "
        f"(entry-point group {ENTRY_POINT_GROUP!r}): {reason}",
        RuntimeWarning,
        stacklevel=4,
    )


def _instantiate_checked(cls: type, name: str) -> Adapter:
    """Instantiate an adapter class and check that its export() has the expected signature."""
    wanted = "export(self, model, sample_inputs, *, dynamic_axes, opset, **options)"
    if not inspect.isclass(cls):
        raise TypeError(f"register_adapter({name!r}) decorates a class, got {cls!r}")
    if not callable(getattr(cls, "export", None)):
        raise TypeError(
            f"adapter class {cls.__qualname__} ({name!r}) has no callable {wanted}"
        )
    try:
        adapter = cls()
    except TypeError as e:
        raise TypeError(
            f"adapter class {cls.__qualname__} ({name!r}) must be constructible "
            f"with no arguments: {e}"
        ) from e
    try:
        signature = inspect.signature(adapter.export)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"adapter class {cls.__qualname__} ({name!r}): cannot inspect export(): {e}"
        ) from e
    try:
        signature.bind(None, None, dynamic_axes=None, opset=None)
    except TypeError as e:
        raise TypeError(
            f"adapter class {cls.__qualname__} ({name!r}) must define {wanted}; "
            f"its export{signature} does not fit: {e}"
        ) from e
    return adapter


def _detects(name: str, registration: _Registration, model: object) -> bool:
    """Ask one adapter's detect; a detect that raises counts as False, with a warning."""
    try:
        return bool(registration.detect(model))
    except Exception as e:
        warnings.warn(
            f"wasmexport: detect() of adapter {name!r} raised {type(e).__name__}: "
            f"{first_line(e)}; treating it as 'not this framework'",
            RuntimeWarning,
            stacklevel=4,
        )
        return False


def _check_model_kind(adapter: Adapter, model: object) -> None:
    """Refuse a model that another adapter recognises, when the user named `adapter`.

    Only a claim by another adapter counts: the named adapter's own `detect` may turn
    down models it still exports (the sklearn adapter does so for estimators of other
    packages that have a skl2onnx converter), so its "no" alone is not a refusal.
    """
    if _detects(adapter.name, _ADAPTERS[adapter.name], model):
        return
    for name, registration in _ADAPTERS.items():
        if name != adapter.name and _detects(name, registration, model):
            raise ConvertError(
                f"framework {adapter.name!r} cannot export {_describe(model, name)}; use "
                f"framework={name!r} or leave framework unset to detect it"
            )


def _check_options(adapter: Adapter, options: dict[str, Any]) -> None:
    """Refuse options that the adapter's export() does not declare, naming those it does."""
    parameters = list(inspect.signature(adapter.export).parameters.values())
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return  # it takes any option and checks them itself
    by_keyword = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    # NOTE: the first two parameters are the model and the sample; to_onnx passes
    # dynamic_axes and opset itself, so none of the four is an option
    declared = [
        p.name
        for p in parameters[2:]
        if p.kind in by_keyword and p.name not in ("dynamic_axes", "opset")
    ]
    unknown = [name for name in options if name not in declared]
    if not unknown:
        return
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
        described.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    what = "option" if len(unknown) == 1 else "options"
    takes = ", ".join(declared) if declared else "no options"
    raise ConvertError(
        f"{adapter.name}: unknown {what} {', '.join(described)}; the {adapter.name} "
        f"adapter takes {takes}"
    )


def _describe(model: object, adapter_name: str) -> str:
    """How refusals name a model: the kind its adapter declares, and its type or path."""
    adapter = _ADAPTERS[adapter_name].adapter
    kind = getattr(adapter, "model_kind", None) or f"a {adapter_name} model"
    if isinstance(model, (str, os.PathLike)):
        return f"{kind} ({os.fspath(model)!r})"
    return f"{kind} ({type(model).__name__})"


def _type_name(obj: object) -> str:
    cls = type(obj)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


