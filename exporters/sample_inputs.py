"""Normalise sample inputs and dynamic axes into the one form every adapter uses.

Users hand `to_onnx` samples in whatever form is at hand: one array or tensor, a tuple or list
of them, or a dict ``name -> array``. Adapters see a list of numpy arrays in graph-input order.

Dynamic axes come as:

    None / True              axis 0 of every input of rank >= 1 is named "batch"
    False / {}               fully static
    {"x": {0: "batch"}}      input (by name or by index) -> {axis: symbolic name}
    {0: [0, 2]}              input -> list of axes, auto-named "<input>_dim<axis>"

and leave here as ``{input_name: {axis: name}}`` with non-negative axes checked against the
sample ranks.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ConvertError

__all__ = [
    "DEFAULT_BATCH_NAME",
    "format_shape",
    "normalize_dynamic_axes",
    "normalize_sample_inputs",
]

DEFAULT_BATCH_NAME = "batch"

_EXPECTED_SAMPLES = "a numpy array, a tensor, a tuple/list of them or a dict name -> array"


def normalize_sample_inputs(
    sample_inputs: object,
) -> tuple[list[np.ndarray], list[str] | None]:
    """Turn a sample (array, tensor, sequence or dict of them) into a list of numpy arrays.

    Args:
        sample_inputs: one array or tensor, a tuple/list of them, or a dict name -> array.

    Returns:
        ``(arrays, names)``: the arrays in the order given, and the dict keys when a dict was
        given (``None`` otherwise).

    Raises:
        TypeError: a sample or a dict key has the wrong type.
        ConvertError: a tensor has no numpy equivalent (e.g. bfloat16).
    """
    if isinstance(sample_inputs, Mapping):
        names = []
        for key in sample_inputs:
            if not isinstance(key, str):
                raise TypeError(
                    f"expected str keys in sample_inputs, got {type(key).__name__}"
                )
            names.append(key)
        arrays = [_to_numpy(value, repr(key)) for key, value in sample_inputs.items()]
        return arrays, names
    if isinstance(sample_inputs, (list, tuple)):
        return [_to_numpy(value, str(i)) for i, value in enumerate(sample_inputs)], None
    if not _is_array_like(sample_inputs):
        raise TypeError(f"expected {_EXPECTED_SAMPLES}, got {type(sample_inputs).__name__}")
    return [_to_numpy(sample_inputs, "0")], None


def normalize_dynamic_axes(
    dynamic_axes: object, input_names: Sequence[str], sample_inputs: Sequence[np.ndarray]
) -> dict[str, dict[int, str]]:
    """Resolve a user's `dynamic_axes` against the graph inputs and their samples.

    Args:
        dynamic_axes: None/True (batch on axis 0), False/{} (static), or a dict
            ``{input_name_or_index: {axis: name} | [axes]}``.
        input_names: graph input names, in graph-input order.
        sample_inputs: one sample array per input, same order.

    Returns:
        ``{input_name: {axis: name}}`` in graph-input order, axes non-negative and sorted;
        inputs without dynamic axes are left out.

    Raises:
        TypeError: `dynamic_axes` or one of its parts has the wrong type.
        ConvertError: an unknown input, an input given twice, or an axis out of range.
    """
    shapes = {name: tuple(a.shape) for name, a in zip(input_names, sample_inputs, strict=True)}
    if dynamic_axes is None or dynamic_axes is True:
        return {name: {0: DEFAULT_BATCH_NAME} for name, shape in shapes.items() if shape}
    if dynamic_axes is False:
        return {}
    if not isinstance(dynamic_axes, Mapping):
        raise TypeError(
            "expected dynamic_axes as None, False or a dict input -> {axis: name} or [axes], "
            f"got {type(dynamic_axes).__name__}"
        )

    resolved: dict[str, dict[int, str]] = {}
    for key, axes in dynamic_axes.items():
        name = _resolve_input(key, list(input_names))
        if name in resolved:
            raise ConvertError(f"dynamic_axes names input {name!r} twice (by name and index)")
        named_axes = _normalize_axes(name, axes, shapes[name])
        if named_axes:
            resolved[name] = named_axes
    return {name: resolved[name] for name in input_names if name in resolved}


def format_shape(shape: Sequence[int | str | None]) -> str:
    """Format a shape as ``(batch, 3, 224, 224)``; unknown dims print as ``?``."""
    dims = ["?" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _is_array_like(value: object) -> bool:
    """Whether `value` can stand for one tensor (numpy, torch, or anything with __array__)."""
    if isinstance(value, (str, bytes, Mapping, list, tuple)):
        return False
    return isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array__")


def _to_numpy(value: object, where: str) -> np.ndarray:
    """Convert one sample to a numpy array; `where` names it in errors."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        try:
            return value.detach().cpu().numpy()
        except TypeError as e:
            raise ConvertError(
                f"sample input {where}: a {value.dtype} tensor has no numpy dtype; "
                "cast the sample (e.g. .float()) before exporting"
            ) from e
    if isinstance(value, np.ndarray):
        return value
    if _is_array_like(value):
        return np.asarray(value)
    raise TypeError(
        f"expected a numpy array or a tensor for sample input {where}, "
        f"got {type(value).__name__}"
    )


def _resolve_input(key: object, input_names: list[str]) -> str:
    """Map a dynamic_axes key (input name or index) to an input name."""
    if isinstance(key, str):
        if key in input_names:
            return key
        close = difflib.get_close_matches(key, input_names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConvertError(
            f"dynamic_axes names input {key!r}, which the model does not have{hint} "
            f"(inputs: {', '.join(input_names) or 'none'})"
        )
    if isinstance(key, int) and not isinstance(key, bool):
        if 0 <= key < len(input_names):
            return input_names[key]
        raise ConvertError(
            f"dynamic_axes names input index {key}, but the model has "
            f"{len(input_names)} input(s): {', '.join(input_names) or 'none'}"
        )
    raise TypeError(
        f"expected an input name or index as dynamic_axes key, got {type(key).__name__}"
    )


def _normalize_axes(name: str, axes: object, shape: tuple[int, ...]) -> dict[int, str]:
    """Check one input's axes against its sample shape and name any unnamed ones."""
    if axes is None:
        return {}
    if isinstance(axes, Mapping):
        pairs = list(axes.items())
    elif isinstance(axes, Sequence) and not isinstance(axes, str):
        pairs = [(axis, None) for axis in axes]
    else:
        raise TypeError(
            f"expected dynamic_axes[{name!r}] as a dict axis -> name or a list of axes, "
            f"got {type(axes).__name__}"
        )

    named: dict[int, str] = {}
    for axis, dim_name in pairs:
        if not isinstance(axis, int) or isinstance(axis, bool):
            raise TypeError(
                f"expected int axes in dynamic_axes[{name!r}], got {type(axis).__name__}"
            )
        if not -len(shape) <= axis < len(shape):
            raise ConvertError(
                f"dynamic_axes: input {name!r} has rank {len(shape)} (sample shape "
                f"{format_shape(shape)}), so axis {axis} is out of range"
            )
        axis %= len(shape)
        if dim_name is None:
            dim_name = f"{name}_dim{axis}"
        if not isinstance(dim_name, str) or not dim_name:
            raise TypeError(
                f"expected a non-empty str name for axis {axis} of input {name!r}, "
                f"got {dim_name!r}"
            )
        named[axis] = dim_name
    return dict(sorted(named.items()))
