/*
 * ops_widen.c: float16, bfloat16 and float64 for the ops whose kernels
 * compute in float32 (MatMul, Conv) and for Softmax / LogSoftmax.
 *
 * 16-bit floats widen: each 16-bit input is converted to float32 (exact),
 * the float32 kernel runs unchanged, and each float32 output is rounded
 * back to the input's dtype, to nearest even. That is also how the ONNX
 * reference computes them: numpy accumulates products of 16-bit floats in
 * float32 and rounds the sums once. float64 MatMul has a kernel of its own
 * in double, as does Softmax for every float dtype but float32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h" /* fused_clamp */
#include "numeric.h"
#include "ops.h"

/* Inputs and outputs a widened kernel may have (Conv: X, W, B; Y). */
#define WIDEN_MAX_IO 4

/* Convert x (float16 / bfloat16) into a new float32 tensor t. */
static Status widen(const Tensor *x, Tensor *t, Err *err)
{
    Status st = tensor_alloc(t, DT_FLOAT, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    const uint16_t *h = x->data;
    float *f = t->data;
    if (x->dtype == DT_BFLOAT16)
        for (int64_t i = 0; i < x->numel; i++) f[i] = bf16_to_float(h[i]);
    else
        for (int64_t i = 0; i < x->numel; i++) f[i] = half_to_float(h[i]);
    return ST_OK;
}

/* Round float32 tensor t into y of 16-bit float dtype dt (allocated). */
static Status narrow(const Tensor *t, int32_t dt, Tensor *y, Err *err)
{
    Status st = tensor_alloc(y, dt, t->ndim, t->dims, err);
    if (st != ST_OK)
        return st;
    const float *f = t->data;
    uint16_t *h = y->data;
    if (dt == DT_BFLOAT16)
        for (int64_t i = 0; i < t->numel; i++) h[i] = float_to_bf16(f[i]);
    else
        for (int64_t i = 0; i < t->numel; i++) h[i] = double_to_half(f[i]);
    return ST_OK;
}

/* Run float32 kernel fn on a node whose float inputs are float16 or
   bfloat16 (the dtype of input 0): 16-bit inputs are widened to float32
   temporaries, float32 outputs are rounded back to that dtype, other
   inputs and outputs pass through. */
static Status run_in_float32(OpRun fn, const Node *n, Tensor *const *in,
                             Tensor *const *out, Err *err)
{
    int32_t dt = in[0]->dtype;
    Tensor tin[WIDEN_MAX_IO], tout[WIDEN_MAX_IO];
    Tensor *pin[WIDEN_MAX_IO], *pout[WIDEN_MAX_IO];
    Status st = ST_OK;
    if (n->n_in > WIDEN_MAX_IO || n->n_out > WIDEN_MAX_IO)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "%d inputs and %d outputs "
                         "are not supported in %s (at most %d)", (int)n->n_in,
                         (int)n->n_out, dtype_name(dt), WIDEN_MAX_IO);
    memset(tin, 0, sizeof tin);
    memset(tout, 0, sizeof tout);

    /* step 1: float32 copies of the 16-bit inputs */
    for (int32_t i = 0; i < n->n_in; i++) {
        pin[i] = in[i];
        if (in[i] && dtype_is_half(in[i]->dtype)) {
            if (in[i]->dtype != dt) {
                st = node_fail(n, err, ST_SHAPE_MISMATCH, "input %d is %s, "
                               "input 0 is %s", (int)i,
                               dtype_name(in[i]->dtype), dtype_name(dt));
                goto done;
            }
            if ((st = widen(in[i], &tin[i], err)))
                goto done;
            pin[i] = &tin[i];
        }
    }

    /* step 2: the float32 kernel, then its outputs in the 16-bit dtype */
    for (int32_t k = 0; k < n->n_out; k++)
        pout[k] = out[k] ? &tout[k] : NULL;
    if ((st = fn(n, pin, pout, err)))
        goto done;
    for (int32_t k = 0; k < n->n_out; k++) {
        if (!out[k])
            continue;
        if (tout[k].dtype == DT_FLOAT) {
            if ((st = narrow(&tout[k], dt, out[k], err)))
                goto done;
        } else {
            *out[k] = tout[k]; /* not a float: moves as is */
            memset(&tout[k], 0, sizeof tout[k]);
        }
    }
done:
    for (int32_t i = 0; i < WIDEN_MAX_IO; i++) {
        tensor_release(&tin[i]);
        tensor_release(&tout[i]);
    }
    return st;
}

/* Fail unless inputs 0 and 1 share one float dtype other than float32. */
static Status require_wide(const Node *n, const Tensor *a, const Tensor *b,
                           int allow_double, Err *err)
{
    int ok = dtype_is_half(a->dtype) || (allow_double && a->dtype == DT_DOUBLE);
    if (ok && (!b || b->dtype == a->dtype))
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "inputs %s and %s are not "
                     "supported (float32, float16, bfloat16%s, one dtype)",
                     dtype_name(a->dtype), dtype_name(b ? b->dtype : a->dtype),
                     allow_double ? ", float64" : "");
}

/* C (m, n) = A (m, k) B (k, n) in double, clamped to [lo, hi]; A and C
   row-major, B with rows brs apart (a 1-D B: brs 1, n 1). */
static void matmul_f64_2d(int64_t m, int64_t nn, int64_t k, const double *a,
                          const double *b, int64_t brs, double *c, double lo,
                          double hi)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < nn; j++) {
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++)
                acc += a[i * k + p] * b[p * brs + j];
            c[i * nn + j] = acc < lo ? lo : acc > hi ? hi : acc;
        }
}

/* Y = A @ B in double, numpy semantics (1-D operands promoted, batch dims
   broadcast), with a fused Relu/Clip (wx_clip) applied. */
static Status matmul_f64(const Node *n, const Tensor *a, const Tensor *b,
                         Tensor *y, Err *err)
{
    char sa[96], sb[96];
    if (a->ndim == 0 || b->ndim == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "operands must have rank "
                         ">= 1, got ranks %d and %d", (int)a->ndim, (int)b->ndim);
    int64_t m = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1, k = a->dims[a->ndim - 1];
    int64_t kb = b->ndim >= 2 ? b->dims[b->ndim - 2] : b->dims[0];
    int64_t nn = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    if (k != kb)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dimensions differ: "
                         "%s @ %s", shape_str(a->dims, a->ndim, sa, 96),
                         shape_str(b->dims, b->ndim, sb, 96));
    float lo, hi;
    Status st = fused_clamp(n, &lo, &hi, err);
    if (st != ST_OK)
        return st;

    /* step 1: broadcast batch dims; output: batch, then m and n */
    MatmulBatch mb;
    if ((st = matmul_batch(n, a, b, m, nn, &mb, err)) ||
        (st = tensor_alloc(y, DT_DOUBLE, mb.nd, mb.dims, err)))
        return st;

    /* step 2: one 2-D product per batch index */
    for (int64_t t = 0; t < mb.batches; t++) {
        int64_t oa, ob;
        matmul_batch_offsets(&mb, t, &oa, &ob);
        matmul_f64_2d(m, nn, k, (const double *)a->data + oa,
                      (const double *)b->data + ob, b->ndim >= 2 ? nn : 1,
                      (double *)y->data + t * m * nn, lo, hi);
    }
    return ST_OK;
}

Status matmul_wide(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    Status st = require_wide(n, in[0], in[1], 1, err);
    if (st != ST_OK)
        return st;
    if (in[0]->dtype == DT_DOUBLE)
        return matmul_f64(n, in[0], in[1], out[0], err);
    return run_in_float32(op_matmul, n, in, out, err);
}

Status conv_wide(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    Status st = require_wide(n, in[0], in[1], 0, err);
    if (st != ST_OK)
        return st;
    if (n->n_in > 2 && in[2] && in[2]->dtype != in[0]->dtype)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "bias is %s, input is %s",
                         dtype_name(in[2]->dtype), dtype_name(in[0]->dtype));
    return run_in_float32(op_conv_dispatch, n, in, out, err);
}

/*
 * Softmax (log_form: LogSoftmax) of len values of x spaced inner apart
 * from base, into y, following the reference's steps in x's dtype:
 * e = exp(x - max), y = e / sum(e), LogSoftmax log(y). In float64 every
 * step is exact to double; in float16 / bfloat16 every step is rounded to
 * the dtype, and the sum accumulates as numpy's: in float32 for float16,
 * rounded after each addition for bfloat16.
 */
static void softmax_line_wide(const Tensor *x, Tensor *y, int64_t base,
                              int64_t len, int64_t inner, int log_form)
{
    int32_t dt = x->dtype;
    double mx = -INFINITY, sum = 0.0;
    float fsum = 0.0f;
    for (int64_t i = 0; i < len; i++) {
        double v = elem_get_f(x, base + i * inner);
        mx = v > mx || isnan(v) ? v : mx;
    }
    for (int64_t i = 0; i < len; i++) {
        int64_t at = base + i * inner;
        double e = round_to_dtype(dt, exp(round_to_dtype(dt, elem_get_f(x, at) - mx)));
        elem_set_f(y, at, e);
        if (dt == DT_FLOAT16)
            fsum += (float)e;
        else
            sum = dt == DT_BFLOAT16 && i ? round_to_dtype(dt, sum + e) : sum + e;
    }
    if (dt == DT_FLOAT16)
        sum = round_to_dtype(dt, fsum);
    for (int64_t i = 0; i < len; i++) {
        int64_t at = base + i * inner;
        double p = elem_get_f(y, at) / sum;
        if (log_form)
            p = log(round_to_dtype(dt, p));
        elem_set_f(y, at, p);
    }
}

Status softmax_wide(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    Status st = require_wide(n, x, NULL, 1, err);
    int flatten = n->opset < 13; /* as prep_softmax */
    int32_t axis;
    if (st || (st = norm_axis(n, attr_int(n, "axis", flatten ? 1 : -1), x->ndim,
                              &axis, err)) ||
        (st = tensor_alloc_like(out[0], x, err)))
        return st;
    int64_t outer, len, inner;
    split_at_axis(x, axis, flatten, &outer, &len, &inner);
    int log_form = n->op == OP_LogSoftmax;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            softmax_line_wide(x, out[0], o * len * inner + i, len, inner, log_form);
    return ST_OK;
}
