/*
 * ops_ml.h: helpers shared by the ai.onnx.ml kernels (ops_ml_*.c).
 *
 * Semantics follow onnxruntime's CPU kernels, the de-facto reference for
 * these ops: scores are float32, probability transforms are computed in
 * float32 with the same formulas, labels come from the raw scores.
 */
#ifndef WX_OPS_ML_H
#define WX_OPS_ML_H

#include "ops.h"

/* The post_transform attribute of the classifiers and regressors. */
typedef enum {
    PT_NONE = 0, PT_SOFTMAX, PT_LOGISTIC, PT_SOFTMAX_ZERO, PT_PROBIT
} PostTransform;

/* Parse attribute "post_transform" (default NONE) into *pt. */
Status ml_post_transform(const Node *n, int *pt, Err *err);

float ml_logistic(float v);
/* sqrt(2) * erfinv(2p - 1), with onnxruntime's erfinv approximation. */
float ml_probit(float p);

/* Apply pt to one row of c >= 2 scores in place. */
void ml_transform_row(int pt, float *s, int64_t c);

/* Element i of a float / double / int32 / int64 tensor as a double. */
double ml_get(const Tensor *t, int64_t i);

/* Fail unless t is float, double, int32 or int64. */
Status ml_require_numeric(const Node *n, const Tensor *t, Err *err);

/* Rows and columns of a feature input: (F,) is one row, (N, F) N rows;
   other ranks fail. */
Status ml_rows_cols(const Node *n, const Tensor *x, int64_t *rows,
                    int64_t *cols, Err *err);

/*
 * Copy a numeric list attribute into a new double array (*v, freed by the
 * caller): the FLOATS attribute `name`, else the TENSOR attribute
 * `tensor_name` (float or double; NULL: none). *count is -1 when neither
 * is present, *v then NULL.
 */
Status ml_doubles(const Model *m, const Node *n, const char *name,
                  const char *tensor_name, double **v, int64_t *count,
                  Err *err);

/* Copy an INTS attribute (or an int64 TENSOR attribute) into a new array;
   *count -1 when absent. */
Status ml_ints(const Model *m, const Node *n, const char *name,
               const char *tensor_name, int64_t **v, int64_t *count,
               Err *err);

/* A STRINGS attribute: pointers into the plan, *count -1 when absent. */
const char *const *ml_strings(const Node *n, const char *name,
                              int64_t *count);

/* Allocate a 1-D string or int64 label tensor of n elements. */
Status ml_alloc_labels(Tensor *y, int strings, int64_t n, Err *err);

#endif
