"""Export-time checks of attribute values and input dtypes the runtime refuses.

The runtime checks every attribute when it loads a plan; repeating the cheap checks here
turns a load-time error into an export-time `UnsupportedOpError` that names the node.
Only string attributes with a closed set of values and the dtype of the first input are
checked; everything else is left to the runtime.
"""

from __future__ import annotations

import onnx

from .refusal import refuse as _fail

__all__ = ["check_node"]

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
_RESIZE = {
    "mode": ("nearest", "linear", "cubic"),
    "coordinate_transformation_mode": ("half_pixel", "half_pixel_symmetric",
                                       "pytorch_half_pixel", "align_corners", "asymmetric",
                                       "tf_crop_and_resize"),
    "nearest_mode": ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"),
    "keep_aspect_ratio_policy": ("stretch", "not_larger", "not_smaller"),
}  # fmt: skip
_REDUCTION = {"reduction": ("none", "add", "mul", "max", "min")}
# op_type -> attribute -> the values the runtime executes
ATTRIBUTE_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "Pad": {"mode": ("constant", "reflect", "edge", "wrap")},
    "ScatterElements": _REDUCTION,
    "ScatterND": _REDUCTION,
    "Resize": _RESIZE,
    "Upsample": {"mode": ("nearest", "linear", "bilinear")},
    "DepthToSpace": {"mode": ("DCR", "CRD")},
    "SpaceToDepth": {"mode": ("DCR", "CRD")},
    "TensorScatter": {"mode": ("linear", "circular")},
    "CausalConvWithState": {"activation": ("none", "silu", "swish")},
    "LinearAttention": {"update_rule": ("linear", "gated", "delta", "gated_delta")},
    "StringNormalizer": {"case_change_action": ("NONE", "LOWER", "UPPER")},
    "TfIdfVectorizer": {"mode": ("TF", "IDF", "TFIDF")},
    **{op: {"auto_pad": _AUTO_PAD}
       for op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool")},
    "GridSample": {"padding_mode": ("zeros", "border", "reflection")},
    "RoiAlign": {"mode": ("avg", "max"),
                 "coordinate_transformation_mode": ("half_pixel", "output_half_pixel")},
}  # fmt: skip
# GridSample's mode names changed at opset 20 (bilinear -> linear, bicubic -> cubic)
_GRID_SAMPLE_MODES = {
    16: ("bilinear", "nearest", "bicubic"),
    20: ("linear", "nearest", "cubic"),
}

_F32 = (onnx.TensorProto.FLOAT,)
_T = onnx.TensorProto
_FLOATS = (_T.FLOAT, _T.DOUBLE, _T.FLOAT16, _T.BFLOAT16)
# op_type -> the dtypes of input 0 the runtime computes in
INPUT_DTYPES: dict[str, tuple[int, ...]] = {
    "Conv": (*_F32, _T.FLOAT16, _T.BFLOAT16),
    "ConvTranspose": _F32,
    "Col2Im": _F32,
    "MaxPool": (*_FLOATS, onnx.TensorProto.INT8, onnx.TensorProto.UINT8),
    **{op: _FLOATS for op in ("AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
                              "GlobalLpPool", "GridSample", "AffineGrid", "RoiAlign",
                              "DeformConv")},
    "NonMaxSuppression": _F32,
}  # fmt: skip


def check_node(node: onnx.NodeProto, opset: int, input_dtype: int) -> None:
    """Refuse an attribute value or input dtype the runtime does not execute.

    Args:
        node: an ai.onnx node.
        opset: the model's ai.onnx opset.
        input_dtype: the TensorProto dtype of the node's first input, 0 when unknown.

    Raises:
        UnsupportedOpError: naming the node, the attribute or dtype and what is supported.
    """
    for attr in node.attribute:
        allowed = ATTRIBUTE_VALUES.get(node.op_type, {}).get(attr.name)
        if allowed is None or attr.type != onnx.AttributeProto.STRING:
            continue
        value = attr.s.decode("utf-8", "replace")
        if value not in allowed:
            raise _fail(node, opset, f"{attr.name} {value!r} is not supported (supported: "
                                     f"{', '.join(allowed)})")  # fmt: skip
    if node.op_type in ("Resize", "Upsample") and input_dtype and input_dtype not in _FLOATS:
        mode = next((a.s.decode() for a in node.attribute if a.name == "mode"), "nearest")
        if mode != "nearest" or input_dtype == onnx.TensorProto.BOOL:
            got = onnx.TensorProto.DataType.Name(input_dtype)
            raise _fail(node, opset, f"mode {mode!r} on {got} input is not supported "
                                     "(integer inputs: mode 'nearest' only)")  # fmt: skip
    if node.op_type == "GridSample":
        allowed = _GRID_SAMPLE_MODES[20 if opset >= 20 else 16]
        mode = next((a.s.decode("utf-8", "replace") for a in node.attribute
                     if a.name == "mode"), allowed[0])  # fmt: skip
        if mode not in allowed:
            raise _fail(node, opset, f"mode {mode!r} is not a GridSample mode at this opset "
                                     f"(supported: {', '.join(allowed)})")  # fmt: skip
    dtypes = INPUT_DTYPES.get(node.op_type)
    if dtypes and input_dtype and input_dtype not in dtypes:
        names = ", ".join(onnx.TensorProto.DataType.Name(d) for d in dtypes)
        got = onnx.TensorProto.DataType.Name(input_dtype)
        raise _fail(node, opset, f"input dtype {got} is not supported (supported: {names})",
                    dtype=got)
