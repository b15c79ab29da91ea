/*
 * ops_swiglu.c: SwiGLU (opset 28), the gated activation of LLaMA-style
 * MLPs: Y = Swish_alpha(A) * B = A * sigmoid(alpha * A) * B, elementwise,
 * A and B of one shape (no broadcasting). float32 and float16 compute in
 * float32 (float16 stored as binary16, rounded once on store); float64 in
 * double.
 */
#include <math.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

/* y (n) = a * sigmoid(alpha * a) * b over float32 arrays. */
static void swiglu_f32(const float *a, const float *b, float *y, int64_t n,
                       float alpha)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] / (1.0f + expf(-alpha * a[i])) * b[i];
}

/* Y = A * sigmoid(alpha * A) * B; A, B and Y of one float dtype and shape. */
Status op_swiglu(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    char s0[96], s1[96];
    if (!dtype_is_float(a->dtype) || b->dtype != a->dtype)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "A and B must be one float "
                         "dtype, got %s and %s (not supported)",
                         dtype_name(a->dtype), dtype_name(b->dtype));
    if (a->ndim != b->ndim ||
        memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "A %s and B %s must have "
                         "one shape (no broadcasting)",
                         shape_str(a->dims, a->ndim, s0, 96),
                         shape_str(b->dims, b->ndim, s1, 96));
    float alpha = attr_float(n, "alpha", 1.0f);
    Status st = tensor_alloc_like(out[0], a, err);
    if (st != ST_OK)
        return st;
    if (a->dtype == DT_FLOAT) {
        swiglu_f32(a->data, b->data, out[0]->data, a->numel, alpha);
        return ST_OK;
    }
    for (int64_t i = 0; i < a->numel; i++) {
        double x = elem_get_f(a, i), v = elem_get_f(b, i);
        if (a->dtype == DT_DOUBLE) {
            elem_set_f(out[0], i, x / (1.0 + exp(-(double)alpha * x)) * v);
        } else { /* float16: float32 arithmetic, one rounding to binary16 */
            float xf = (float)x;
            elem_set_f(out[0], i, xf / (1.0f + expf(-alpha * xf)) * (float)v);
        }
    }
    return ST_OK;
}
