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
    OP(MatMul, op_matmul, NULL, 2, 2, 1, 1)  /* numpy matmul, broadcast */    \
    OP(Gemm, op_gemm, prep_gemm, 2, 3, 1, 1) /* a*op(A)op(B) + b*C */         \
    /* convolution (ops_conv.c) */                                          \
    OP(Conv, op_conv, prep_conv, 2, 3, 1, 1) /* 2-D NCHW cross-correlation */ \
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
                                               /* fill a shape with value */

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

typedef enum {
#define OP_ENUM(name, run, prep, in_lo, in_hi, out_lo, out_hi) OP_##name,
    OP_LIST(OP_ENUM)
#undef OP_ENUM
#define ML_ENUM(name, run, prep, in_lo, in_hi, out_lo, out_hi) OPML_##name,
    ML_OP_LIST(ML_ENUM)
#undef ML_ENUM
    OP_COUNT
} OpCode;

typedef struct {
    const char *op_type;
    OpRun run;
    OpPrepare prepare;
    int32_t in_lo, in_hi, out_lo, out_hi;
    const char *domain; /* NULL: ai.onnx; else "ai.onnx.ml" */
} OpInfo;

extern const OpInfo OP_TABLE[OP_COUNT];

/* Resolve n->op_type, check its input/output counts, run its prepare. */
Status op_prepare(const Model *m, Node *n, Err *err);

/* Declarations of every kernel and prepare function of the table. */
#define OP_DECL(name, run, prep, in_lo, in_hi, out_lo, out_hi)                \
    Status run(const Node *n, Tensor *const *in, Tensor *const *out, Err *e);
OP_LIST(OP_DECL)
ML_OP_LIST(OP_DECL)
#undef OP_DECL
Status prep_gemm(const Model *m, Node *n, Err *err);
Status prep_conv(const Model *m, Node *n, Err *err);
Status prep_softmax(const Model *m, Node *n, Err *err);
Status prep_depth_to_space(const Model *m, Node *n, Err *err);
Status prep_constant_of_shape(const Model *m, Node *n, Err *err);
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

/* Helpers shared by kernels (ops_common.c). */

/* Fail unless t has dtype float32 ("node 'x' (Op): input 0 is int64, ..."). */
Status require_float(const Node *n, const Tensor *t, int index, Err *err);

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

#endif
