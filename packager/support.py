"""What the runtime executes beyond op names: dtypes per op and attribute values.

``check_ops`` (lower.py) knows which op types the runtime has kernels for; this module
refuses, at export time, the nodes those kernels would refuse or get wrong at run time:
a dtype outside the runtime's set (complex, float8, ...), a dtype an op's kernel does not
compute (Conv in float64), or an attribute value the kernel does not implement. A refusal
here is an ``UnsupportedOpError`` naming the node; nothing is left to fail silently.
"""

from __future__ import annotations

import logging

import onnx
from onnx import numpy_helper

from .refusal import node_attr as _attr
from .refusal import refuse as _refuse
from .text_checks import check_text_node

__all__ = ["OP_DTYPES", "RUNTIME_DTYPES", "check_model_support", "value_dtypes"]

logger = logging.getLogger(__name__)

_T = onnx.TensorProto
FLOATS = frozenset({_T.FLOAT, _T.FLOAT16, _T.BFLOAT16, _T.DOUBLE})
SIGNED = frozenset({_T.INT8, _T.INT16, _T.INT32, _T.INT64})
UNSIGNED = frozenset({_T.UINT8, _T.UINT16, _T.UINT32, _T.UINT64})
INTS = SIGNED | UNSIGNED
NUMERIC = FLOATS | INTS
NUMERIC_BOOL = NUMERIC | {_T.BOOL}
BOOL = frozenset({_T.BOOL})
FLOAT32 = frozenset({_T.FLOAT})
HALVES = frozenset({_T.FLOAT16, _T.BFLOAT16})
F32_F16 = frozenset({_T.FLOAT, _T.FLOAT16})
STRING = frozenset({_T.STRING})
INT8S = frozenset({_T.INT8, _T.UINT8})

# Element types the runtime can hold at all (tensor.h DType); strings only pass through.
RUNTIME_DTYPES = NUMERIC_BOOL | {_T.STRING}

_FLOAT_UNARY = (
    "Sigmoid Tanh Exp Log Sqrt Erf LeakyRelu Floor Ceil Round Reciprocal Sin Cos Tan Asin "
    "Acos Atan Sinh Cosh Asinh Acosh Atanh HardSigmoid HardSwish Elu Selu Celu Softplus "
    "Softsign ThresholdedRelu Gelu Mish IsNaN IsInf Sum Mean Hardmax BatchNormalization "
    "LayerNormalization RMSNormalization InstanceNormalization GroupNormalization "
    "LpNormalization MeanVarianceNormalization LRN Swish NegativeLogLikelihoodLoss "
    "SoftmaxCrossEntropyLoss Attention RotaryEmbedding"
).split()
_NUMERIC = (
    "Abs Neg Sign Relu Shrink Add Sub Mul Div Pow Mod Min Max PRelu Clip Less LessOrEqual "
    "Greater GreaterOrEqual ReduceSum ReduceMean ReduceProd ReduceL1 ReduceL2 ReduceLogSum "
    "ReduceLogSumExp ReduceSumSquare ArgMax ArgMin CumSum CumProd TopK"
).split()

# Supported dtypes of input 0 per op (ops absent here are not checked by dtype).
OP_DTYPES: dict[str, frozenset[int]] = {
    **{op: FLOATS for op in _FLOAT_UNARY},
    **{op: NUMERIC for op in _NUMERIC},
    **{op: NUMERIC_BOOL for op in ("Equal", "ReduceMax", "ReduceMin")},
    "Equal": NUMERIC_BOOL | {_T.STRING},  # strings compare by text (ops_string_text.c)
    # strings convert to and from every numeric dtype but float16/bfloat16 (ops_string.c)
    **{op: RUNTIME_DTYPES for op in ("Cast", "CastLike")},
    **{op: BOOL for op in ("Not", "And", "Or", "Xor")},
    **{op: INTS for op in ("BitwiseNot", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitShift")},
    "QuantizeLinear": FLOATS,
    "DequantizeLinear": frozenset({_T.INT8, _T.UINT8, _T.INT16, _T.UINT16, _T.INT32}),
    "MatMulInteger": frozenset({_T.INT8, _T.UINT8}),
    # kernels that compute in float32 only
    "Gemm": FLOAT32,
    # float32 kernels that widen 16-bit floats; float64 MatMul and Softmax (ops_widen.c)
    "Conv": FLOAT32 | HALVES,
    **{op: FLOATS for op in ("MatMul", "Softmax", "LogSoftmax")},
    "DynamicQuantizeLinear": FLOAT32,
    **{op: FLOAT32 for op in ("RNN", "GRU", "LSTM")},
    # recent ops (ops_swiglu.c, ops_causal_conv.c, ops_linear_attention.c,
    # ops_flex_attention.c); TensorScatter copies any dtype
    "SwiGLU": FLOATS,
    **{op: F32_F16 for op in ("CausalConvWithState", "LinearAttention")},
    "FlexAttention": FLOATS,
    # text ops (ops_string_text.c, ops_regex.c, ops_tfidf.c)
    **{op: STRING for op in ("StringConcat", "StringSplit", "StringNormalizer",
                             "RegexFullMatch")},
    "TfIdfVectorizer": frozenset({_T.INT32, _T.INT64, _T.STRING}),
    # spectral transforms, linear algebra, quantized products (ops_signal.c, ops_det.c,
    # ops_quant.c, ops_qconv.c), Bernoulli (ops_random.c)
    **{op: FLOATS for op in ("DFT", "STFT", "Det", "Bernoulli")},
    "MelWeightMatrix": frozenset({_T.INT32, _T.INT64}),
    **{op: INT8S for op in ("QLinearMatMul", "QLinearConv", "ConvInteger")},
    # every stored dtype but string: the bytes are reinterpreted
    "BitCast": NUMERIC_BOOL,
}
# Ops whose later inputs must also have a supported dtype: op -> (input index, dtypes).
_MORE_INPUTS: dict[str, tuple[tuple[int, frozenset[int]], ...]] = {
    "Where": ((1, NUMERIC_BOOL),),
    "Conv": ((1, FLOAT32 | HALVES),),
    "Gemm": ((1, FLOAT32),),
    "MatMul": ((1, FLOATS),),
    "CastLike": ((1, RUNTIME_DTYPES),),
    "Pow": ((1, NUMERIC),),
    # spatial sampling and detection: coordinates and weights are float inputs too
    "GridSample": ((1, FLOATS),),
    "RoiAlign": ((1, FLOATS), (2, frozenset({_T.INT64, _T.INT32}))),
    "DeformConv": ((1, FLOATS), (2, FLOATS)),
    "NonMaxSuppression": ((1, FLOAT32),),
    "LinearAttention": ((3, F32_F16),),  # past_state may differ from query
    "StringConcat": ((1, STRING),),
    "QLinearMatMul": ((1, FLOATS), (3, INT8S), (4, FLOATS), (6, FLOATS)),
    "QLinearConv": ((1, FLOAT32), (3, INT8S), (4, FLOAT32), (6, FLOAT32)),
    "ConvInteger": ((1, INT8S),),
    "STFT": ((2, FLOATS),),
}


def _dtype_name(dtype: int) -> str:
    try:
        return _T.DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def value_dtypes(graph: onnx.GraphProto) -> dict[str, int]:
    """Element type of every value the graph declares (inputs, outputs, weights...)."""
    dtypes = {t.name: t.data_type for t in graph.initializer}
    for vi in (*graph.input, *graph.output, *graph.value_info):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type:
            dtypes.setdefault(vi.name, vi.type.tensor_type.elem_type)
    return dtypes


def _check_dtypes(node: onnx.NodeProto, opset: int, dtypes: dict[str, int]) -> None:
    names = [*node.input, *node.output]
    for name in names:
        dtype = dtypes.get(name)
        if name and dtype is not None and dtype not in RUNTIME_DTYPES:
            raise _refuse(node, opset, f"value {name!r} has dtype {_dtype_name(dtype)}, "
                          "which the runtime does not support")  # fmt: skip
        # the ai.onnx.ml kernels read float, double and integer tensors (ops_ml_common.c)
        if name and node.domain == "ai.onnx.ml" and dtype == _T.BFLOAT16:
            raise _refuse(node, opset, f"value {name!r} is BFLOAT16, which ai.onnx.ml "
                          "ops do not take")  # fmt: skip
    checks = []
    if node.op_type in OP_DTYPES and node.input:
        checks.append((0, OP_DTYPES[node.op_type]))
    checks += _MORE_INPUTS.get(node.op_type, ())
    for index, allowed in checks:
        name = node.input[index] if index < len(node.input) else ""
        dtype = dtypes.get(name)
        if name and dtype is not None and dtype not in allowed:
            supported = ", ".join(sorted(_dtype_name(d).lower() for d in allowed))
            got = _dtype_name(dtype).lower()
            raise _refuse(node, opset, f"input {index} ({name!r}) is {got}; "
                          f"the runtime supports {supported}")  # fmt: skip
    if node.op_type in ("Cast", "CastLike"):
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if node.op_type == "CastLike":
            to = dtypes.get(node.input[1]) if len(node.input) > 1 else None
        if to is not None and to not in RUNTIME_DTYPES:
            raise _refuse(node, opset, f"cast to {_dtype_name(to)} is not supported")
        source = dtypes.get(node.input[0])
        for half in (_T.FLOAT16, _T.BFLOAT16):
            if {source, to} == {_T.STRING, half}:
                raise _refuse(node, opset, f"casts between string and {_dtype_name(half)} "
                              "are not supported")  # fmt: skip


def _check_bitcast(node: onnx.NodeProto, opset: int, dtypes: dict[str, int]) -> None:
    """Refuse a BitCast to string or between dtypes of different widths."""
    to = _attr(node, "to", 0)
    source = dtypes.get(node.input[0]) if node.input else None
    if to not in NUMERIC_BOOL:
        raise _refuse(node, opset, f"bit cast to {_dtype_name(to)} is not supported")
    if source in NUMERIC_BOOL:
        width = onnx.helper.tensor_dtype_to_np_dtype
        if width(source).itemsize != width(to).itemsize:
            raise _refuse(node, opset, f"bit cast from {_dtype_name(source)} to "
                          f"{_dtype_name(to)} changes the element width; BitCast "
                          "needs dtypes of the same width")  # fmt: skip


def _check_attributes(
    node: onnx.NodeProto, opset: int, constants: dict, dtypes: dict[str, int]
) -> None:
    op = node.op_type
    if op == "LpNormalization" and _attr(node, "p", 2) not in (1, 2):
        raise _refuse(node, opset, f"p = {_attr(node, 'p', 2)} is not supported (1 or 2)")
    if op == "BatchNormalization" and _attr(node, "spatial", 1) != 1:
        raise _refuse(node, opset, "spatial = 0 is not supported")
    if op == "Dropout" and len(node.input) > 2 and node.input[2]:
        # training mode is deterministic only with ratio 0 (identity, all-true mask); a
        # training_mode computed at run time is checked by the runtime on each request
        mode = constants.get(node.input[2])
        has_ratio = len(node.input) > 1 and bool(node.input[1])
        ratio = constants.get(node.input[1]) if has_ratio else None
        ratio_value = float(ratio.reshape(-1)[0]) if ratio is not None and ratio.size else 0.5
        known = ratio is not None or not has_ratio  # else the runtime checks it
        if mode is not None and bool(mode.reshape(-1)[0]) and known and ratio_value != 0.0:
            raise _refuse(node, opset, f"training_mode is true with ratio {ratio_value:g}: "
                          "the random mask is not supported (only ratio 0 is "
                          "deterministic); set training_mode false for inference")  # fmt: skip
    if op == "BitCast":
        _check_bitcast(node, opset, dtypes)
    if op == "DeformConv":
        # the runtime convolves 2-D images only (ops_deformconv.c)
        for name, want in (("kernel_shape", 2), ("strides", 2), ("dilations", 2), ("pads", 4)):
            value = _attr(node, name, None)
            if value is not None and len(value) != want:
                raise _refuse(node, opset, f"{name} lists {len(value)} values; the runtime "
                              f"supports 2-D DeformConv only ({want} values)")  # fmt: skip
    if op == "BitShift" and _attr(node, "direction", b"") not in (b"LEFT", b"RIGHT"):
        raise _refuse(node, opset, "direction must be LEFT or RIGHT")
    precision = _attr(node, "softmax_precision", None)
    if op == "FlexAttention" and precision not in (None, _T.FLOAT, _T.FLOAT16, _T.DOUBLE):
        raise _refuse(node, opset, f"softmax_precision {_dtype_name(precision)} is not "
                      "supported (FLOAT, FLOAT16 or DOUBLE)")  # fmt: skip


def check_model_support(model: onnx.ModelProto, opset_of) -> None:
    """Refuse nodes whose dtypes or attribute values the runtime does not execute.

    Args:
        model: the prepared model (shape inference has run, so value dtypes are known).
        opset_of: ``opset_of(model, domain)`` from lower.py.

    Raises:
        UnsupportedOpError: naming the node, its op_type and opset, and what is refused.
    """
    graph = model.graph
    dtypes = value_dtypes(graph)
    # small constants some checks read (Dropout's training_mode and ratio)
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer
                 if t.data_type in (_T.BOOL, *FLOATS) and len(t.dims) <= 1
                 and (not t.dims or t.dims[0] <= 1)}  # fmt: skip
    for node in graph.node:
        if node.op_type == "Constant":
            continue
        opset = opset_of(model, node.domain)
        _check_dtypes(node, opset, dtypes)
        _check_attributes(node, opset, constants, dtypes)
        check_text_node(node, opset)  # patterns, locales, pools of the text ops
        logger.debug("support: %s (%s) accepted", node.name, node.op_type)
