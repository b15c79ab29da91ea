/*
 * ops.h: the operator table.
 *
 * One X-macro list generates the op enum, the name table and the dispatch
 * table. Columns: ONNX op_type, domain (ONNX = "" / "ai.onnx"), kernel,
 * prepare (reads attributes once at load; NULL when none), the smallest
 * and largest input count, the output count range. The comment on each row
 * states its semantics.
 */
#ifndef WX_OPS_H
#define WX_OPS_H

#include "model.h"

/* Run one node: read in[0..n_in) (NULL = absent optional input), allocate
   and fill out[0..n_out) (NULL = output not wanted). */
typedef Status (*OpRun)(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err);
/* Validate attributes and precompute n->params; runs once at load. */
typedef Status (*OpPrepare)(const Model *m, Node *n, Err *err);

#define OP_LIST(OP)                                                           \
    /* elementwise (ops_elementwise.c) */                                   \
    OP(Abs, op_unary, NULL, 1, 1, 1, 1)      /* y = |x| */              \
    OP(Neg, op_unary, NULL, 1, 1, 1, 1)      /* y = -x */               \
    OP(Relu, op_unary, NULL, 1, 1, 1, 1)     /* y = max(x, 0) */        \
    OP(Sigmoid, op_unary, NULL, 1, 1, 1, 1)  /* y = 1/(1+e^-x) */       \
    OP(Tanh, op_unary, NULL, 1, 1, 1, 1)     /* y = tanh(x) */          \
    OP(Exp, op_unary, NULL, 1, 1, 1, 1)      /* y = e^x */              \
    OP(Log, op_unary, NULL, 1, 1, 1, 1)      /* y = ln x */             \
    OP(Sqrt, op_unary, NULL, 1, 1, 1, 1)     /* y = sqrt(x) */          \
    OP(Erf, op_unary, NULL, 1, 1, 1, 1)      /* y = erf(x) */           \
    OP(LeakyRelu, op_unary, NULL, 1, 1, 1, 1) /* y = x<0 ? a*x : x */   \
    OP(Add, op_binary, NULL, 2, 2, 1, 1)    /* c = a + b, broadcast */ \
    OP(Sub, op_binary, NULL, 2, 2, 1, 1)    /* c = a - b, broadcast */ \
    OP(Mul, op_binary, NULL, 2, 2, 1, 1)    /* c = a * b, broadcast */ \
    OP(Div, op_binary, NULL, 2, 2, 1, 1)    /* c = a / b, broadcast */ \
    OP(Pow, op_binary, NULL, 2, 2, 1, 1)    /* c = a ^ b, broadcast */ \
    OP(Identity, op_identity, NULL, 1, 1, 1, 1)    /* y = x */                \
    OP(Dropout, op_identity, NULL, 1, 3, 1, 2)     /* inference: y = x */     \
    /* matrix products (ops_matmul.c) */                                    \
    OP(MatMul, op_matmul, prep_matmul, 2, 2, 1, 1) /* numpy matmul, bcast */  \
    OP(Gemm, op_gemm, prep_gemm, 2, 3, 1, 1) /* a*op(A)op(B) + b*C */         \
    /* convolution (ops_conv.c) */                                          \
    OP(Conv, op_conv_dispatch, prep_conv_dispatch, 2, 3, 1, 1)                \
                      /* NC(D)HW cross-correlation; 3-D in ops_convt.c */   \
    /* normalisation and reductions (ops_reduce.c) */                       \
    OP(Softmax, op_softmax, prep_softmax, 1, 1, 1, 1) /* e^x / sum e^x */     \
    OP(LogSoftmax, op_softmax, prep_softmax, 1, 1, 1, 1) /* log softmax */    \
    /* shape and layout (ops_shape.c) */                                    \
    OP(Reshape, op_reshape, NULL, 2, 2, 1, 1)  /* new shape, same data */     \
    OP(Flatten, op_flatten, NULL, 1, 1, 1, 1)  /* to 2-D at axis */           \
    OP(Squeeze, op_squeeze, NULL, 1, 2, 1, 1)  /* drop size-1 axes */         \
    OP(Unsqueeze, op_unsqueeze, NULL, 1, 2, 1, 1) /* insert size-1 axes */    \
    OP(Transpose, op_transpose, NULL, 1, 1, 1, 1) /* permute axes */          \
    OP(DepthToSpace, op_depth_to_space, prep_depth_to_space, 1, 1, 1, 1)      \
                                           /* (n,c*b*b,h,w)->(n,c,h*b,w*b) */ \
    OP(Shape, op_shape, NULL, 1, 1, 1, 1)      /* dims as int64[] */          \
    OP(Gather, op_gather, NULL, 2, 2, 1, 1)    /* take indices along axis */  \
    OP(Concat, op_concat, NULL, 1, MAX_NODE_IO, 1, 1) /* join along axis */   \
    OP(Slice, op_slice, NULL, 1, 5, 1, 1)      /* strided sub-tensor */       \
    OP(Cast, op_cast, NULL, 1, 1, 1, 1)        /* convert dtype */            \
    OP(ConstantOfShape, op_constant_of_shape, prep_constant_of_shape, 1, 1, 1, 1)               \
                                               /* fill a shape with value */ \
    /* indexing and replication (ops_index.c, ops_pad.c) */                 \
    OP(Expand, op_expand, NULL, 2, 2, 1, 1)   /* broadcast to a shape */      \
    OP(Tile, op_tile, NULL, 2, 2, 1, 1)       /* repeat along each axis */    \
    OP(Split, op_split, NULL, 1, 2, 1, MAX_NODE_IO) /* pieces along axis */   \
    OP(Pad, op_pad, prep_pad, 1, 4, 1, 1)     /* constant/reflect/edge/wrap */\
    OP(Range, op_range, NULL, 3, 3, 1, 1)     /* start, start+delta, ... */   \
    OP(OneHot, op_one_hot, NULL, 3, 3, 1, 1)  /* one-hot along axis */        \
    OP(NonZero, op_non_zero, NULL, 1, 1, 1, 1) /* coords of x != 0 */         \
    OP(GatherElements, op_gather_elements, NULL, 2, 2, 1, 1)                  \
                                 /* y[i] = x[i with axis <- indices[i]] */    \
    OP(GatherND, op_gather_nd, NULL, 2, 2, 1, 1) /* x[index tuples] */        \
    OP(ScatterElements, op_scatter_elements, prep_scatter, 3, 3, 1, 1)        \
                         /* y = x; y[i with axis <- indices[i]] op= u[i] */   \
    OP(Scatter, op_scatter_elements, prep_scatter, 3, 3, 1, 1)                \
                                     /* opset 9-10 ScatterElements */         \
    OP(ScatterND, op_scatter_nd, prep_scatter, 3, 3, 1, 1)                    \
                                     /* y = x; y[index tuples] op= u */       \
    OP(Trilu, op_trilu, NULL, 1, 2, 1, 1)     /* upper/lower triangle */      \
    OP(EyeLike, op_eye_like, NULL, 1, 1, 1, 1) /* ones on diagonal k */       \
    OP(Size, op_size, NULL, 1, 1, 1, 1)       /* numel as int64 scalar */     \
    OP(SpaceToDepth, op_space_to_depth, NULL, 1, 1, 1, 1)                     \
                                     /* (n,c,h*b,w*b)->(n,c*b*b,h,w) */       \
    OP(Compress, op_compress, NULL, 2, 2, 1, 1) /* keep where condition */    \
    OP(ReverseSequence, op_reverse_sequence, NULL, 2, 2, 1, 1)                \
                                     /* reverse each sequence's prefix */     \
    OP(Unique, op_unique, NULL, 1, 1, 1, 4)   /* unique values or slices */   \
    OP(CenterCropPad, op_center_crop_pad, NULL, 2, 2, 1, 1)                   \
                                     /* centre crop or zero pad */            \
    OP(Einsum, op_einsum, NULL, 1, 8, 1, 1)   /* sum of products by labels */ \
    /* pooling, 1-D to 3-D (ops_pool.c) */                                  \
    OP(MaxPool, op_pool, prep_pool, 1, 1, 1, 2) /* window max, indices */     \
    OP(AveragePool, op_pool, prep_pool, 1, 1, 1, 1) /* window mean */         \
    OP(LpPool, op_pool, prep_pool, 1, 1, 1, 1) /* (sum |x|^p)^(1/p) */        \
    OP(GlobalMaxPool, op_pool, prep_pool, 1, 1, 1, 1) /* max per plane */     \
    OP(GlobalAveragePool, op_pool, prep_pool, 1, 1, 1, 1) /* mean / plane */  \
    OP(GlobalLpPool, op_pool, prep_pool, 1, 1, 1, 1) /* Lp norm per plane */ \
    OP(MaxUnpool, op_max_unpool, prep_pool, 2, 3, 1, 1) /* y.flat[i] = x */  \
    OP(MaxRoiPool, op_max_roi_pool, NULL, 2, 2, 1, 1) /* max per roi bin */ \
    /* transposed and 3-D convolution (ops_convt.c) */                      \
    OP(ConvTranspose, op_conv_transpose, prep_conv_transpose, 2, 3, 1, 1)     \
                      /* gradient of Conv: scatter x through w, + b */ \
    OP(Col2Im, op_col2im, NULL, 3, 3, 1, 1) /* sum columns into an image */  \
    /* resizing (ops_resize.c) */                                           \
    OP(Resize, op_resize, prep_resize, 1, 4, 1, 1) /* nearest/linear/cubic */ \
    OP(Upsample, op_resize, prep_resize, 1, 2, 1, 1) /* Resize, asymmetric */  \
    /* control flow (ops_control.c): bodies are graphs of the plan, run  */ \
    /* by graph_run through control_run; op_subgraph is never called    */ \
    OP(If, op_subgraph, prep_if, 1, 1, 1, MAX_NODE_IO)                        \
                                  /* outputs of then_branch or else_branch */ \
    OP(Loop, op_subgraph, prep_loop, 2, MAX_NODE_IO, 1, MAX_NODE_IO)          \
                  /* while i < M && cond: states = body(i, cond, states) */   \
    OP(Scan, op_subgraph, prep_scan, 1, MAX_NODE_IO, 1, MAX_NODE_IO)          \
                  /* states = body(states, slices of the scan inputs) */      \
    /* sequences of tensors and optionals (ops_sequence.c; SequenceMap   */ \
    /* runs its body in ops_control.c). Outputs are deep copies.         */ \
    OP(SequenceEmpty, op_sequence_empty, NULL, 0, 0, 1, 1) /* S = [] */       \
    OP(SequenceConstruct, op_sequence_construct, NULL, 1, MAX_NODE_IO, 1, 1)  \
                                                 /* S = [x0, x1, ...] */      \
    OP(SequenceAt, op_sequence_at, NULL, 2, 2, 1, 1)   /* y = S[p] */         \
    OP(SequenceInsert, op_sequence_insert, NULL, 2, 3, 1, 1)                  \
                                     /* S' = S[:p] + [x] + S[p:], p = n */    \
    OP(SequenceErase, op_sequence_erase, NULL, 1, 2, 1, 1)                    \
                                     /* S' = S[:p] + S[p+1:], p = -1 */       \
    OP(SequenceLength, op_sequence_length, NULL, 1, 1, 1, 1) /* int64 len */  \
    OP(ConcatFromSequence, op_concat_from_sequence, NULL, 1, 1, 1, 1)         \
                              /* concat items along axis (new_axis: stack) */ \
    OP(SplitToSequence, op_split_to_sequence, NULL, 1, 2, 1, 1)               \
                              /* S = pieces of x along axis */                \
    OP(SequenceMap, op_subgraph, prep_sequence_map, 1, MAX_NODE_IO, 1, MAX_NODE_IO) \
                              /* S_k[i] = body(S_0[i], ..., tensors)_k */     \
    OP(Optional, op_optional, NULL, 0, 1, 1, 1)  /* y = x, or empty */        \
    OP(OptionalHasElement, op_optional_has_element, NULL, 0, 1, 1, 1)         \
                              /* bool: x given and not empty */               \
    OP(OptionalGetElement, op_optional_get_element, NULL, 1, 1, 1, 1)         \
                              /* y = the value in x; error when empty */      \
    /* recurrent layers (ops_rnn.c) */                                      \
    OP(RNN, op_rnn, prep_rnn, 3, 6, 1, 2)    /* H = f(X W^T + H R^T + b) */   \
    OP(GRU, op_rnn, prep_rnn, 3, 6, 1, 2)    /* gates z, r, h */              \
    OP(LSTM, op_rnn, prep_rnn, 3, 8, 1, 3)   /* gates i, o, f, c; cell C */    \
    /* dtype-generic elementwise math (ops_math.c) */                       \
    OP(Sign, op_math_unary, NULL, 1, 1, 1, 1)       /* -1, 0 or 1 */          \
    OP(Floor, op_math_unary, NULL, 1, 1, 1, 1)      /* round down */          \
    OP(Ceil, op_math_unary, NULL, 1, 1, 1, 1)       /* round up */            \
    OP(Round, op_math_unary, NULL, 1, 1, 1, 1)      /* half to even */        \
    OP(Reciprocal, op_math_unary, NULL, 1, 1, 1, 1) /* 1 / x */               \
    OP(Sin, op_math_unary, NULL, 1, 1, 1, 1)        /* sin x */               \
    OP(Cos, op_math_unary, NULL, 1, 1, 1, 1)        /* cos x */               \
    OP(Tan, op_math_unary, NULL, 1, 1, 1, 1)        /* tan x */               \
    OP(Asin, op_math_unary, NULL, 1, 1, 1, 1)       /* asin x */              \
    OP(Acos, op_math_unary, NULL, 1, 1, 1, 1)       /* acos x */              \
    OP(Atan, op_math_unary, NULL, 1, 1, 1, 1)       /* atan x */              \
    OP(Sinh, op_math_unary, NULL, 1, 1, 1, 1)       /* sinh x */              \
    OP(Cosh, op_math_unary, NULL, 1, 1, 1, 1)       /* cosh x */              \
    OP(Asinh, op_math_unary, NULL, 1, 1, 1, 1)      /* asinh x */             \
    OP(Acosh, op_math_unary, NULL, 1, 1, 1, 1)      /* acosh x */             \
    OP(Atanh, op_math_unary, NULL, 1, 1, 1, 1)      /* atanh x */             \
    OP(HardSigmoid, op_math_unary, NULL, 1, 1, 1, 1) /* clamp(a*x+b, 0, 1) */ \
    OP(HardSwish, op_math_unary, NULL, 1, 1, 1, 1)  /* x*hardsigmoid(x) */    \
    OP(Elu, op_math_unary, NULL, 1, 1, 1, 1)        /* x<0 ? a(e^x-1) : x */  \
    OP(Selu, op_math_unary, NULL, 1, 1, 1, 1)       /* g*elu_a(x) */          \
    OP(Celu, op_math_unary, NULL, 1, 1, 1, 1)       /* max(0,x)+min(0,elu) */ \
    OP(Softplus, op_math_unary, NULL, 1, 1, 1, 1)   /* ln(1+e^x) */           \
    OP(Softsign, op_math_unary, NULL, 1, 1, 1, 1)   /* x/(1+|x|) */           \
    OP(ThresholdedRelu, op_math_unary, NULL, 1, 1, 1, 1) /* x>a ? x : 0 */    \
    OP(Gelu, op_math_unary, NULL, 1, 1, 1, 1)       /* x*Phi(x), or tanh */   \
    OP(Mish, op_math_unary, NULL, 1, 1, 1, 1)       /* x*tanh(softplus x) */  \
    OP(Shrink, op_math_unary, NULL, 1, 1, 1, 1)     /* soft shrinkage */      \
    OP(IsNaN, op_math_unary, NULL, 1, 1, 1, 1)      /* bool: x != x */        \
    OP(IsInf, op_math_unary, NULL, 1, 1, 1, 1)      /* bool: |x| = inf */     \
    OP(Not, op_math_unary, NULL, 1, 1, 1, 1)        /* bool: !x */            \
    OP(BitwiseNot, op_math_unary, NULL, 1, 1, 1, 1) /* ~x */                  \
    OP(Mod, op_math_binary, NULL, 2, 2, 1, 1)       /* a mod b (fmod attr) */ \
    OP(PRelu, op_math_binary, NULL, 2, 2, 1, 1)     /* x<0 ? slope*x : x */   \
    OP(Equal, op_math_binary, NULL, 2, 2, 1, 1)     /* bool: a == b */        \
    OP(Less, op_math_binary, NULL, 2, 2, 1, 1)      /* bool: a < b */         \
    OP(LessOrEqual, op_math_binary, NULL, 2, 2, 1, 1) /* bool: a <= b */      \
    OP(Greater, op_math_binary, NULL, 2, 2, 1, 1)   /* bool: a > b */         \
    OP(GreaterOrEqual, op_math_binary, NULL, 2, 2, 1, 1) /* bool: a >= b */   \
    OP(And, op_math_binary, NULL, 2, 2, 1, 1)       /* bool: a && b */        \
    OP(Or, op_math_binary, NULL, 2, 2, 1, 1)        /* bool: a || b */        \
    OP(Xor, op_math_binary, NULL, 2, 2, 1, 1)       /* bool: a != b */        \
    OP(BitwiseAnd, op_math_binary, NULL, 2, 2, 1, 1) /* a & b */              \
    OP(BitwiseOr, op_math_binary, NULL, 2, 2, 1, 1) /* a | b */               \
    OP(BitwiseXor, op_math_binary, NULL, 2, 2, 1, 1) /* a ^ b */              \
    OP(BitShift, op_math_binary, NULL, 2, 2, 1, 1)  /* a << b or a >> b */    \
    OP(Min, op_math_binary, NULL, 1, MAX_NODE_IO, 1, 1) /* elementwise min */ \
    OP(Max, op_math_binary, NULL, 1, MAX_NODE_IO, 1, 1) /* elementwise max */ \
    OP(Sum, op_math_binary, NULL, 1, MAX_NODE_IO, 1, 1) /* a + b + ... */     \
    OP(Mean, op_math_binary, NULL, 1, MAX_NODE_IO, 1, 1) /* sum / count */    \
    OP(Where, op_where, NULL, 3, 3, 1, 1)           /* c ? x : y, broadcast */\
    OP(Clip, op_clip, NULL, 1, 3, 1, 1)             /* clamp to [lo, hi] */   \
    OP(CastLike, op_cast_like, NULL, 2, 2, 1, 1)    /* x as target's dtype */ \
    /* reductions and ranking (ops_reducers.c) */                           \
    OP(ReduceSum, op_reduce, NULL, 1, 2, 1, 1)      /* sum over axes */       \
    OP(ReduceMean, op_reduce, NULL, 1, 2, 1, 1)     /* mean over axes */      \
    OP(ReduceMax, op_reduce, NULL, 1, 2, 1, 1)      /* max over axes */       \
    OP(ReduceMin, op_reduce, NULL, 1, 2, 1, 1)      /* min over axes */       \
    OP(ReduceProd, op_reduce, NULL, 1, 2, 1, 1)     /* product over axes */   \
    OP(ReduceL1, op_reduce, NULL, 1, 2, 1, 1)       /* sum |x| */             \
    OP(ReduceL2, op_reduce, NULL, 1, 2, 1, 1)       /* sqrt(sum x^2) */       \
    OP(ReduceLogSum, op_reduce, NULL, 1, 2, 1, 1)   /* ln(sum x) */           \
    OP(ReduceLogSumExp, op_reduce, NULL, 1, 2, 1, 1) /* ln(sum e^x) */        \
    OP(ReduceSumSquare, op_reduce, NULL, 1, 2, 1, 1) /* sum x^2 */            \
    OP(ArgMax, op_argminmax, NULL, 1, 1, 1, 1)      /* index of the max */    \
    OP(ArgMin, op_argminmax, NULL, 1, 1, 1, 1)      /* index of the min */    \
    OP(CumSum, op_cumsum, NULL, 2, 2, 1, 1)         /* running sum on axis */ \
    OP(TopK, op_topk, NULL, 1, 2, 2, 2)             /* k largest/smallest */  \
    OP(Hardmax, op_hardmax, NULL, 1, 1, 1, 1)       /* one-hot of the max */  \
    /* normalisation (ops_norm.c) */                                        \
    OP(BatchNormalization, op_batchnorm, NULL, 5, 5, 1, 3) /* per channel */  \
    OP(LayerNormalization, op_layernorm, NULL, 2, 3, 1, 3) /* per row */      \
    OP(RMSNormalization, op_layernorm, NULL, 2, 2, 1, 1) /* x / rms(x) */     \
    OP(InstanceNormalization, op_groupnorm, NULL, 3, 3, 1, 1) /* per (n,c) */ \
    OP(GroupNormalization, op_groupnorm, NULL, 3, 3, 1, 1) /* per group */    \
    OP(LpNormalization, op_lpnorm, NULL, 1, 1, 1, 1) /* x / ||x||_p */        \
    OP(MeanVarianceNormalization, op_mvn, NULL, 1, 1, 1, 1) /* standardise */ \
    /* losses (ops_loss.c) */                                               \
    OP(NegativeLogLikelihoodLoss, op_nll_loss, NULL, 2, 3, 1, 1) /* -x[t]*w */\
    OP(SoftmaxCrossEntropyLoss, op_sce_loss, NULL, 2, 3, 1, 2) /* nll(lsm) */ \
    /* more elementwise (ops_math.c) */                                     \
    OP(Swish, op_math_unary, NULL, 1, 1, 1, 1)      /* x*sigmoid(a*x) */      \
    OP(CumProd, op_cumsum, NULL, 2, 2, 1, 1)        /* running product */     \
    OP(LRN, op_lrn, NULL, 1, 1, 1, 1)               /* cross-channel norm */  \
    /* quantisation (ops_quant.c) */                                        \
    OP(QuantizeLinear, op_quantize, NULL, 2, 3, 1, 1) /* round(x/s)+zp */     \
    OP(DequantizeLinear, op_dequantize, NULL, 2, 3, 1, 1) /* (x-zp)*s */      \
    OP(DynamicQuantizeLinear, op_dynamic_quantize, NULL, 1, 1, 3, 3)          \
                                               /* uint8 over x's range */     \
    OP(MatMulInteger, op_matmul_integer, NULL, 2, 4, 1, 1) /* int32 matmul */ \
    /* signal windows (ops_signal.c) */                                     \
    OP(HannWindow, op_window, NULL, 1, 1, 1, 1)     /* sin^2(pi n / N) */     \
    OP(HammingWindow, op_window, NULL, 1, 1, 1, 1)  /* a - b cos(2 pi n/N) */ \
    OP(BlackmanWindow, op_window, NULL, 1, 1, 1, 1) /* 3-term cosine */       \
    /* attention (ops_attention.c) */                                       \
    OP(Attention, op_attention, NULL, 3, 7, 1, 4) /* softmax(QK^T+bias) V */ \
    OP(RotaryEmbedding, op_rotary, NULL, 3, 4, 1, 1) /* rotate feature pairs */ \
    /* spatial sampling and detection (ops_grid.c, ops_roi.c, ops_nms.c,  */ \
    /* ops_deformconv.c)                                                  */ \
    OP(GridSample, op_grid_sample, prep_grid_sample, 2, 2, 1, 1)              \
                           /* Y = X read at normalised grid points, padded */ \
    OP(AffineGrid, op_affine_grid, NULL, 2, 2, 1, 1)                          \
                           /* grid = theta (x, y[, z], 1) per output point */ \
    OP(RoiAlign, op_roi_align, prep_roi_align, 3, 3, 1, 1)                    \
                           /* avg/max of bilinear samples per roi bin */      \
    OP(NonMaxSuppression, op_nms, NULL, 2, 5, 1, 1)                           \
                           /* [batch, class, box] kept by score and IoU */    \
    OP(DeformConv, op_deform_conv, prep_deform_conv, 3, 5, 1, 1)              \
                           /* Conv whose taps move by offsets, times mask */\
    /* gated activation (ops_swiglu.c) */                                   \
    OP(SwiGLU, op_swiglu, NULL, 2, 2, 1, 1)  /* y = a*sigmoid(alpha*a)*b */   \
    /* cache update (ops_tensor_scatter.c) */                               \
    OP(TensorScatter, op_tensor_scatter, prep_tensor_scatter, 2, 3, 1, 1)     \
                     /* y = cache; y[b, .., w_b + s, ..] = update[.., s, ..] */\
    /* stateful causal convolution (ops_causal_conv.c) */                   \
    OP(CausalConvWithState, op_causal_conv, prep_causal_conv, 2, 4, 1, 2)     \
                     /* depthwise conv over [past_state, x]; last k-1 kept */ \
    /* recurrent linear attention (ops_linear_attention.c) */               \
    OP(LinearAttention, op_linear_attention, prep_linear_attention, 3, 6, 1, 2)\
                     /* S = g*S + k (x) beta(v - S^T k); o = scale q^T S */ \
    /* text on string tensors (ops_string_text.c, ops_regex.c, ops_tfidf.c) */ \
    OP(StringConcat, op_string_concat, NULL, 2, 2, 1, 1) /* y = a + b, bcast */\
    OP(StringSplit, op_string_split, NULL, 1, 1, 1, 2)                        \
                              /* pieces (..., k) padded with "", counts */    \
    OP(StringNormalizer, op_string_normalizer, prep_string_normalizer, 1, 1, 1, 1) \
                              /* drop stopwords, change case */               \
    OP(RegexFullMatch, op_regex_full_match, prep_regex_full_match, 1, 1, 1, 1)\
                              /* bool: all of x matches the pattern */        \
    OP(TfIdfVectorizer, op_tfidf, prep_tfidf, 1, 1, 1, 1)                     \
                              /* weighted n-gram counts per row */            \
    /* spectral transforms (ops_signal.c) */                                \
    OP(DFT, op_dft, NULL, 1, 3, 1, 1)       /* FFT along an axis, re/im */    \
    OP(STFT, op_stft, NULL, 2, 4, 1, 1)     /* DFT of windowed frames */      \
    OP(MelWeightMatrix, op_mel_weight_matrix, NULL, 5, 5, 1, 1)               \
                                  /* triangular mel filterbank (bins, mels) */\
    /* bit reinterpretation (ops_bitcast.c), linear algebra (ops_det.c) */  \
    OP(BitCast, op_bitcast, NULL, 1, 1, 1, 1) /* same bytes, dtype `to` */    \
    OP(Det, op_det, NULL, 1, 1, 1, 1)       /* det of (..., M, M), LU */      \
    /* quantized products (ops_quant.c, ops_qconv.c) */                     \
    OP(QLinearMatMul, op_qlinear_matmul, NULL, 8, 8, 1, 1)                    \
                          /* q((A-za)(B-zb) sa sb / sy) + zy, 8-bit */        \
    OP(ConvInteger, op_conv_integer, NULL, 2, 4, 1, 1)                        \
                          /* int32 conv(x - zx, w - zw) */                    \
    OP(QLinearConv, op_qlinear_conv, NULL, 8, 9, 1, 1)                        \
                          /* q((conv(x-zx, w-zw) + B) sx sw / sy) + zy */     \
    /* random draws, deterministic cases only (ops_random.c) */             \
    OP(Bernoulli, op_bernoulli, NULL, 1, 1, 1, 1) /* p in {0, 1}: y = p */

/*
 * The ai.onnx.ml domain: the same columns, its own list (the rows use the
 * macro ML so that build.py tells the domains apart). Kernels in
 * ops_ml_linear.c (linear models, SVMs, scalers), ops_ml_tree.c (tree
 * ensembles) and ops_ml_misc.c (encoders, maps, feature plumbing).
 */
#define ML_OP_LIST(ML)                                                        \
    /* linear models and SVMs (ops_ml_linear.c) */                          \
    ML(LinearClassifier, op_linear_classifier, prep_linear, 1, 1, 2, 2)     \
                                    /* labels, scores = post(X W^T + b) */  \
    ML(LinearRegressor, op_linear_regressor, prep_linear, 1, 1, 1, 1)       \
                                    /* Y = post(X W^T + b) */               \
    ML(SVMClassifier, op_svm_classifier, prep_svm, 1, 1, 2, 2)              \
                                    /* labels, scores of a kernel SVM */    \
    ML(SVMRegressor, op_svm_regressor, prep_svm, 1, 1, 1, 1)                \
                                    /* Y = sum_i c_i K(x, sv_i) + rho */    \
    ML(Normalizer, op_normalizer, NULL, 1, 1, 1, 1) /* rows / norm */       \
    ML(Scaler, op_scaler, NULL, 1, 1, 1, 1)    /* (X - offset) * scale */   \
    ML(Binarizer, op_binarizer, NULL, 1, 1, 1, 1) /* X > threshold */       \
    /* tree ensembles (ops_ml_tree.c) */                                    \
    ML(TreeEnsembleClassifier, op_tree_classifier, prep_tree, 1, 1, 2, 2)   \
                                    /* labels, scores: sum of leaf votes */ \
    ML(TreeEnsembleRegressor, op_tree_regressor, prep_tree, 1, 1, 1, 1)     \
                                    /* Y = aggregate of leaf values */      \
    ML(TreeEnsemble, op_tree_ensemble, prep_tree5, 1, 1, 1, 1)              \
                                    /* opset 5: tensors of nodes, leaves */ \
    /* encoders, maps, feature plumbing (ops_ml_misc.c) */                  \
    ML(ArrayFeatureExtractor, op_array_feature_extractor, NULL, 2, 2, 1, 1) \
                                    /* Y = X[..., indices] */               \
    ML(CastMap, op_cast_map, NULL, 1, 1, 1, 1) /* map -> (1, n) tensor */   \
    ML(CategoryMapper, op_category_mapper, NULL, 1, 1, 1, 1)                \
                                    /* string <-> int64 by table */         \
    ML(DictVectorizer, op_dict_vectorizer, NULL, 1, 1, 1, 1)                \
                                    /* map -> (1, |vocabulary|) */          \
    ML(FeatureVectorizer, op_feature_vectorizer, NULL, 1, MAX_NODE_IO, 1, 1) \
                                    /* concat inputs as float columns */    \
    ML(Imputer, op_imputer, NULL, 1, 1, 1, 1) /* replace missing values */  \
    ML(LabelEncoder, op_label_encoder, prep_label_encoder, 1, 1, 1, 1)      \
                                    /* Y = table[X] or default */           \
    ML(OneHotEncoder, op_one_hot_encoder, NULL, 1, 1, 1, 1)                 \
                                    /* X (...) -> (..., |categories|) */    \
    ML(ZipMap, op_zip_map, prep_zip_map, 1, 1, 1, 1)                        \
                                    /* (N, C) -> N maps label -> score */

/*
 * The ai.onnx.preview domain: the same columns (the rows use the macro PV
 * so that build.py tells the domains apart). FlexAttention runs its
 * score_mod / prob_mod bodies through control_run (ops_flex_attention.c).
 */
#define PREVIEW_OP_LIST(PV)                                                   \
    PV(FlexAttention, op_subgraph, prep_flex_attention, 3, 3, 1, 1)         \
                /* Y = prob_mod(softmax(score_mod(Q K^T * scale))) V */

typedef enum {
#define OP_ENUM(name, run, prep, in_lo, in_hi, out_lo, out_hi) OP_##name,
    OP_LIST(OP_ENUM)
#undef OP_ENUM
#define ML_ENUM(name, run, prep, in_lo, in_hi, out_lo, out_hi) OPML_##name,
    ML_OP_LIST(ML_ENUM)
#undef ML_ENUM
#define PV_ENUM(name, run, prep, in_lo, in_hi, out_lo, out_hi) OPPV_##name,
    PREVIEW_OP_LIST(PV_ENUM)
#undef PV_ENUM
    OP_COUNT
} OpCode;

typedef struct {
    const char *op_type;
    OpRun run;
    OpPrepare prepare;
    int32_t in_lo, in_hi, out_lo, out_hi;
    const char *domain; /* NULL: ai.onnx; else "ai.onnx.ml", "ai.onnx.preview" */
} OpInfo;

extern const OpInfo OP_TABLE[OP_COUNT];

/* Resolve n->op_type, check its input/output counts, run its prepare. */
Status op_prepare(const Model *m, Node *n, Err *err);

/* Declarations of every kernel and prepare function of the table. */
#define OP_DECL(name, run, prep, in_lo, in_hi, out_lo, out_hi)                \
    Status run(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);
OP_LIST(OP_DECL)
ML_OP_LIST(OP_DECL)
PREVIEW_OP_LIST(OP_DECL)
#undef OP_DECL
Status prep_gemm(const Model *m, Node *n, Err *err);
Status prep_matmul(const Model *m, Node *n, Err *err); /* fused bias */
Status prep_conv(const Model *m, Node *n, Err *err);
Status prep_softmax(const Model *m, Node *n, Err *err);
Status prep_depth_to_space(const Model *m, Node *n, Err *err);
Status prep_constant_of_shape(const Model *m, Node *n, Err *err);
/* indexing and replication (ops_index.c, ops_pad.c) */
Status prep_pad(const Model *m, Node *n, Err *err);
Status prep_scatter(const Model *m, Node *n, Err *err);
/* pooling (ops_pool.c) */
Status prep_pool(const Model *m, Node *n, Err *err);
/* transposed and 3-D convolution (ops_convt.c): Conv dispatches here for
   rank-5 weights and to op_conv / prep_conv otherwise */
Status prep_conv_transpose(const Model *m, Node *n, Err *err);
Status prep_conv_dispatch(const Model *m, Node *n, Err *err);
Status op_conv(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);
/* resizing (ops_resize.c) */
Status prep_resize(const Model *m, Node *n, Err *err);
/* float16, bfloat16 and float64 for float32 kernels (ops_widen.c): the
   float32 kernel calls these when its input is another float dtype.
   MatMul and Conv widen 16-bit floats to float32 and round the result
   back; MatMul in float64 and Softmax / LogSoftmax in every dtype but
   float32 compute in the input's precision, step by step as the ONNX
   reference does. Any other dtype is refused. */
Status matmul_wide(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);
Status conv_wide(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);
Status softmax_wide(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);

/* spatial sampling and detection (ops_grid.c, ops_roi.c, ops_deformconv.c) */
Status prep_grid_sample(const Model *m, Node *n, Err *err);
Status prep_roi_align(const Model *m, Node *n, Err *err);
Status prep_deform_conv(const Model *m, Node *n, Err *err);

/* control flow and recurrent layers */
Status prep_if(const Model *m, Node *n, Err *err);
Status prep_loop(const Model *m, Node *n, Err *err);
Status prep_scan(const Model *m, Node *n, Err *err);
Status prep_sequence_map(const Model *m, Node *n, Err *err);
Status prep_rnn(const Model *m, Node *n, Err *err);

/* recent ops: SwiGLU, TensorScatter, CausalConvWithState, LinearAttention,
   FlexAttention */
Status prep_tensor_scatter(const Model *m, Node *n, Err *err);
Status prep_causal_conv(const Model *m, Node *n, Err *err);
Status prep_linear_attention(const Model *m, Node *n, Err *err);
Status prep_flex_attention(const Model *m, Node *n, Err *err);

/* Ops whose bodies are subgraphs: graph_run calls control_run for them
   (FlexAttention: its optional score_mod / prob_mod). */
#define OP_HAS_SUBGRAPH(op)                                                   \
    ((op) == OP_If || (op) == OP_Loop || (op) == OP_Scan ||                   \
     (op) == OP_SequenceMap || (op) == OPPV_FlexAttention)

/* Ops that may read a sequence of tensors or an empty optional (graph_run
   refuses such inputs to every other op): Identity, the control-flow ops
   that carry them, and the ops of ops_sequence.c. Each checks the kind of
   every input it reads. */
#define OP_TAKES_SEQUENCES(op)                                                \
    ((op) == OP_Identity || (op) == OP_If || (op) == OP_Loop ||               \
     (op) == OP_Scan || (op) == OP_SequenceMap ||                             \
     ((op) >= OP_SequenceEmpty && (op) <= OP_OptionalGetElement))

/* Ops whose first output may be absent ("" in ONNX). */
#define OP_FIRST_OUTPUT_OPTIONAL(op)                                          \
    (OP_HAS_SUBGRAPH(op) || (op) == OP_RNN || (op) == OP_GRU || (op) == OP_LSTM)

/*
 * Run control-flow node n (If, Loop, Scan): its bodies read and write the
 * value slots vals of the whole model (see graph_run). in/out as for OpRun.
 */
Status control_run(const Model *m, const Node *n, Tensor *vals,
                   Tensor *const *in, Tensor *const *out, Err *err);

/*
 * Run body graph gi of node n on one input: its input slot borrows x, and
 * its single output moves (or is copied) into y, empty beforehand. The
 * body's slots are emptied afterwards, on success or failure.
 */
Status body_call(const Model *m, const Node *n, int32_t gi, Tensor *vals,
                 const Tensor *x, Tensor *y, Err *err);

/* FlexAttention (ops_flex_attention.c): scores, score_mod, softmax,
   prob_mod, weighted sum; the bodies run through body_call. */
Status flex_attention_run(const Model *m, const Node *n, Tensor *vals,
                          Tensor *const *in, Tensor *const *out, Err *err);

/* ai.onnx.ml prepares */
Status prep_linear(const Model *m, Node *n, Err *err);
Status prep_svm(const Model *m, Node *n, Err *err);
Status prep_tree(const Model *m, Node *n, Err *err);
Status prep_tree5(const Model *m, Node *n, Err *err);
Status prep_label_encoder(const Model *m, Node *n, Err *err);
Status prep_zip_map(const Model *m, Node *n, Err *err);

/* Cast to or from DT_STRING (ops_string.c): numbers print as onnxruntime
   does ("%.8g" floats, "NaN", "INF"), strings parse as whole numbers. */
Status cast_strings(const Node *n, const Tensor *x, int32_t to, Tensor *y,
                    Err *err);

/* text on string tensors (ops_string_text.c, ops_regex.c, ops_tfidf.c) */
Status prep_string_normalizer(const Model *m, Node *n, Err *err);
Status prep_regex_full_match(const Model *m, Node *n, Err *err);
Status prep_tfidf(const Model *m, Node *n, Err *err);
/* Y (bool) = A == B for string tensors, broadcasting; op_math_binary
   calls it for Equal on strings. */
Status string_equal(const Node *n, const Tensor *a, const Tensor *b,
                    Tensor *y, Err *err);

/* Helpers shared by kernels (ops_common.c). */

/* The auto_pad attribute of Conv, ConvTranspose and the pooling ops. */
typedef enum { AP_NOTSET, AP_SAME_UPPER, AP_SAME_LOWER, AP_VALID } AutoPad;

/* Read auto_pad (default NOTSET) into *out; fails on an unknown value. */
Status read_auto_pad(const Node *n, int *out, Err *err);

/* Fail unless t has dtype float32 ("node 'x' (Op): input 0 is int64, ..."). */
Status require_float(const Node *n, const Tensor *t, int index, Err *err);

/* x's elements as (outer, len, inner) around axis, for ops along it: outer
   the dims before, len the axis (with flatten: every dim from it on, the
   pre-13 Softmax), inner the dims after. */
void split_at_axis(const Tensor *x, int32_t axis, int flatten, int64_t *outer,
                   int64_t *len, int64_t *inner);

/* Normalise a possibly negative axis against rank; fail when out of range. */
Status norm_axis(const Node *n, int64_t axis, int32_t rank, int32_t *out,
                 Err *err);

/* Read a 1-D int64 (or int32) tensor into v[0..*count), at most cap values. */
Status read_int_list(const Node *n, const Tensor *t, int64_t *v, int32_t cap,
                     int32_t *count, Err *err);

/* Read an optional int list from an input (opset >= k) or an INTS attr. */
Status int_list_arg(const Node *n, Tensor *const *in, int input_index,
                    const char *attr, int64_t *v, int32_t cap,
                    int32_t *count, int *present, Err *err);

/* Y (dims[0..ndim), allocated) = x read at sum(index_i * src_strides_i),
   elements of size bytes; up to 2 * MAX_RANK axes (ops_index.c). */
Status ix_strided_copy(const void *x, int size, Tensor *y,
                       const int64_t *src_strides, int32_t ndim,
                       const int64_t *dims);

#endif
