/*
 * ops_norm.c: normalisations at inference: BatchNormalization (also its
 * training-mode statistics), LayerNormalization, RMSNormalization,
 * InstanceNormalization, GroupNormalization, LpNormalization and
 * MeanVarianceNormalization. Float dtypes, computed in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"
#include "simd.h"

static Status require_floats(const Node *n, Tensor *const *in, Err *err)
{
    for (int32_t k = 0; k < n->n_in; k++)
        if (in[k] && dtype_domain(in[k]->dtype) != DOM_FLOAT)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is %s, only "
                             "float dtypes are supported", (int)k,
                             dtype_name(in[k]->dtype));
    return ST_OK;
}

/* Element c of a per-channel parameter of C values (or a scalar). */
static Status check_param(const Node *n, const Tensor *p, int64_t c, int k,
                          Err *err)
{
    if (p && p->numel != c && p->numel != 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d has %lld "
                         "values, expected %lld", k, (long long)p->numel,
                         (long long)c);
    return ST_OK;
}

static double param(const Tensor *p, int64_t c, double dflt)
{
    return !p ? dflt : elem_get_f(p, p->numel == 1 ? 0 : c);
}

/* Y = scale * (X - mean) / sqrt(var + eps) + B per channel (axis 1).
   training_mode (opset >= 14) uses the batch statistics and also returns
   running_mean and running_var blended with momentum. */
Status op_batchnorm(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    Status st;
    if ((st = require_floats(n, in, err)) != ST_OK)
        return st;
    if (x->ndim < 2 || attr_int(n, "spatial", 1) != 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "rank %d input or "
                         "spatial = 0 is not supported", (int)x->ndim);
    int64_t c = x->dims[1], nb = x->dims[0], sp = x->numel / (c * nb ? c * nb : 1);
    for (int k = 1; k < 5; k++)
        if ((st = check_param(n, in[k], c, k, err)) != ST_OK)
            return st;
    double eps = attr_float(n, "epsilon", 1e-5f);
    double mom = attr_float(n, "momentum", 0.9f);
    int train = n->opset >= 14 && attr_int(n, "training_mode", 0);
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    for (int64_t ch = 0; ch < c; ch++) {
        double mean = param(in[3], ch, 0.0), var = param(in[4], ch, 1.0);
        if (train) { /* batch statistics over N and the spatial axes */
            double s = 0.0, s2 = 0.0, cnt = (double)(nb * sp);
            for (int64_t b = 0; b < nb; b++)
                for (int64_t i = 0; i < sp; i++)
                    s += elem_get_f(x, (b * c + ch) * sp + i);
            double bm = s / cnt;
            for (int64_t b = 0; b < nb; b++)
                for (int64_t i = 0; i < sp; i++) {
                    double d = elem_get_f(x, (b * c + ch) * sp + i) - bm;
                    s2 += d * d;
                }
            double bv = s2 / cnt;
            if (n->n_out > 1 && out[1] && ch == 0 &&
                (st = tensor_alloc_like(out[1], in[3], err)) != ST_OK)
                return st;
            if (n->n_out > 2 && out[2] && ch == 0 &&
                (st = tensor_alloc_like(out[2], in[4], err)) != ST_OK)
                return st;
            if (n->n_out > 1 && out[1])
                elem_set_f(out[1], ch, mean * mom + bm * (1.0 - mom));
            if (n->n_out > 2 && out[2])
                elem_set_f(out[2], ch, var * mom + bv * (1.0 - mom));
            mean = bm;
            var = bv;
        }
        double scale = param(in[1], ch, 1.0) / sqrt(var + eps);
        double bias = param(in[2], ch, 0.0);
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = 0; i < sp; i++) {
                int64_t at = (b * c + ch) * sp + i;
                elem_set_f(out[0], at, (elem_get_f(x, at) - mean) * scale + bias);
            }
    }
    return ST_OK;
}

/* LayerNormalization / RMSNormalization: each row (the dims from axis on)
   is normalised by its mean and variance (RMS: its root mean square),
   then Y = y * Scale + B, Scale and B broadcast over the row. Optional
   outputs Mean and InvStdDev have X's dims with 1 from axis on. */
#ifdef __wasm_simd128__
/* float32 LayerNormalization (RMSNormalization when rms) of X (rows, cols)
   with a scale and bias of cols values each (b may be NULL): the same two
   passes as op_layernorm, in float vectors. */
static void layernorm_f32(const float *x, const float *scale, const float *b,
                          float *y, int64_t rows, int64_t cols, float eps, int rms)
{
    for (int64_t r = 0; r < rows; r++, x += cols, y += cols) {
        /* step 1: mean (0 for RMS), then the mean square deviation */
        v128_t s4 = f32x4_splat(0.0f);
        int64_t j = 0;
        for (; j + 4 <= cols; j += 4) s4 = f32x4_add(s4, v128_load(x + j));
        float sum = f32x4_hsum(s4);
        for (; j < cols; j++) sum += x[j];
        float mean = rms ? 0.0f : sum / (float)cols;
        v128_t m4 = f32x4_splat(mean), q4 = f32x4_splat(0.0f);
        for (j = 0; j + 4 <= cols; j += 4) {
            v128_t d = f32x4_sub(v128_load(x + j), m4);
            q4 = f32x4_add(q4, f32x4_mul(d, d));
        }
        float sq = f32x4_hsum(q4);
        for (; j < cols; j++) sq += (x[j] - mean) * (x[j] - mean);
        float inv = 1.0f / sqrtf(sq / (float)cols + eps);

        /* step 2: normalise, scale, shift */
        v128_t i4 = f32x4_splat(inv);
        for (j = 0; j + 4 <= cols; j += 4) {
            v128_t v = f32x4_mul(f32x4_mul(f32x4_sub(v128_load(x + j), m4), i4),
                                 v128_load(scale + j));
            v128_store(y + j, b ? f32x4_add(v, v128_load(b + j)) : v);
        }
        for (; j < cols; j++)
            y[j] = (x[j] - mean) * inv * scale[j] + (b ? b[j] : 0.0f);
    }
}
#endif

Status op_layernorm(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0], *scale = in[1];
    const Tensor *b = n->n_in > 2 ? in[2] : NULL;
    int rms = n->op == OP_RMSNormalization;
    int32_t axis;
    Status st;
    if ((st = require_floats(n, in, err)) != ST_OK ||
        (st = norm_axis(n, attr_int(n, "axis", -1), x->ndim, &axis, err)))
        return st;
    int64_t rows = 1, cols = 1, dims[MAX_RANK];
    for (int32_t i = 0; i < x->ndim; i++) {
        if (i < axis) rows *= x->dims[i];
        else cols *= x->dims[i];
        dims[i] = i < axis ? x->dims[i] : 1;
    }
    if ((st = check_param(n, scale, cols, 1, err)) ||
        (st = check_param(n, b, cols, 2, err)))
        return st;
    double eps = attr_float(n, "epsilon", 1e-5f);
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    for (int k = 1; k < n->n_out && k < 3; k++)
        if (out[k] && (st = tensor_alloc(out[k], x->dtype, x->ndim, dims, err)))
            return st;
#ifdef __wasm_simd128__
    if (x->dtype == DT_FLOAT && scale->dtype == DT_FLOAT && scale->numel == cols &&
        (!b || (b->dtype == DT_FLOAT && b->numel == cols)) && n->n_out == 1) {
        layernorm_f32(x->data, scale->data, b ? b->data : NULL, out[0]->data,
                      rows, cols, (float)eps, rms);
        return ST_OK;
    }
#endif
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0.0, var = 0.0;
        for (int64_t j = 0; j < cols; j++)
            mean += elem_get_f(x, r * cols + j);
        mean = rms ? 0.0 : mean / (double)cols;
        for (int64_t j = 0; j < cols; j++) {
            double d = elem_get_f(x, r * cols + j) - mean;
            var += d * d;
        }
        double inv = 1.0 / sqrt(var / (double)cols + eps);
        for (int64_t j = 0; j < cols; j++) {
            double v = (elem_get_f(x, r * cols + j) - mean) * inv;
            elem_set_f(out[0], r * cols + j,
                       v * param(scale, j, 1.0) + param(b, j, 0.0));
        }
        if (n->n_out > 1 && out[1]) elem_set_f(out[1], r, mean);
        if (n->n_out > 2 && out[2]) elem_set_f(out[2], r, inv);
    }
    return ST_OK;
}

/* Normalise each of the groups of X (N, C, ...): G groups of C/G channels
   (InstanceNormalization: G = C) by their mean and variance, then scale
   and shift per channel (or per group when Scale has G values). */
Status op_groupnorm(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0], *scale = in[1], *b = in[2];
    Status st;
    if ((st = require_floats(n, in, err)) != ST_OK)
        return st;
    if (x->ndim < 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected rank >= 2, got "
                         "%d", (int)x->ndim);
    int64_t nb = x->dims[0], c = x->dims[1];
    int64_t g = n->op == OP_InstanceNormalization ? c
              : attr_int(n, "num_groups", 0);
    if (g <= 0 || c % g)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "num_groups %lld does not "
                         "divide %lld channels", (long long)g, (long long)c);
    int per_group = scale->numel == g && g != c;
    if ((st = check_param(n, scale, per_group ? g : c, 1, err)) ||
        (st = check_param(n, b, per_group ? g : c, 2, err)))
        return st;
    int64_t sp = nb * c ? x->numel / (nb * c) : 0, cg = c / g;
    double eps = attr_float(n, "epsilon", 1e-5f);
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t gi = 0; gi < g; gi++) {
            int64_t base = (bi * c + gi * cg) * sp, len = cg * sp;
            double mean = 0.0, var = 0.0;
            for (int64_t i = 0; i < len; i++)
                mean += elem_get_f(x, base + i);
            mean /= (double)(len ? len : 1);
            for (int64_t i = 0; i < len; i++) {
                double d = elem_get_f(x, base + i) - mean;
                var += d * d;
            }
            double inv = 1.0 / sqrt(var / (double)(len ? len : 1) + eps);
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = per_group ? gi : gi * cg + i / (sp ? sp : 1);
                double v = (elem_get_f(x, base + i) - mean) * inv;
                elem_set_f(out[0], base + i,
                           v * param(scale, ch, 1.0) + param(b, ch, 0.0));
            }
        }
    return ST_OK;
}

/* Y = X / ||X||_p along axis (p = 1 or 2); a zero norm gives 0. */
Status op_lpnorm(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *x = in[0];
    int32_t axis;
    Status st;
    int64_t p = attr_int(n, "p", 2);
    if ((st = require_floats(n, in, err)) ||
        (st = norm_axis(n, attr_int(n, "axis", -1), x->ndim, &axis, err)))
        return st;
    if (p != 1 && p != 2)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "p = %lld is not "
                         "supported (1 or 2)", (long long)p);
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    int64_t outer, len, inner;
    split_at_axis(x, axis, 0, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double s = 0.0;
            for (int64_t k = 0; k < len; k++) {
                double v = elem_get_f(x, (o * len + k) * inner + i);
                s += p == 1 ? fabs(v) : v * v;
            }
            double norm = p == 1 ? s : sqrt(s);
            for (int64_t k = 0; k < len; k++) {
                int64_t at = (o * len + k) * inner + i;
                elem_set_f(out[0], at, norm == 0.0 ? 0.0 : elem_get_f(x, at) / norm);
            }
        }
    return ST_OK;
}

/* Y = (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9), the moments taken over
   axes (default 0, 2, 3). */
Status op_mvn(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    Status st;
    if ((st = require_floats(n, in, err)) != ST_OK)
        return st;
    uint8_t mask[MAX_RANK] = {0};
    const Attr *a = node_attr(n, "axes");
    int32_t count = a && a->type == AT_INTS ? a->count : 3;
    for (int32_t k = 0; k < count; k++) {
        int32_t ax;
        int64_t v = a && a->type == AT_INTS ? attr_ints_at(a, k)
                                            : (int64_t[]){0, 2, 3}[k];
        if ((st = norm_axis(n, v, x->ndim, &ax, err)) != ST_OK)
            return st;
        mask[ax] = 1;
    }
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    /* group id of each element: its index over the kept axes */
    int64_t groups = 1, gstride[MAX_RANK];
    for (int32_t i = x->ndim - 1; i >= 0; i--) {
        gstride[i] = mask[i] ? 0 : groups;
        groups *= mask[i] ? 1 : x->dims[i];
    }
    double *s = calloc((size_t)(2 * groups + 1), sizeof(double));
    if (!s)
        return node_fail(n, err, ST_OOM, "out of memory");
    int64_t per = groups ? x->numel / groups : 1;
    for (int pass = 0; pass < 2; pass++) {
        int64_t idx[MAX_RANK] = {0}, gi = 0;
        for (int64_t i = 0; i < x->numel; i++) {
            double v = elem_get_f(x, i);
            if (pass == 0) {
                s[2 * gi] += v;
                s[2 * gi + 1] += v * v;
            } else {
                double m = s[2 * gi] / per, var = s[2 * gi + 1] / per - m * m;
                elem_set_f(out[0], i, (v - m) / (sqrt(var) + 1e-9));
            }
            for (int32_t d = x->ndim - 1; d >= 0; d--) {
                gi += gstride[d];
                if (++idx[d] < x->dims[d]) break;
                gi -= gstride[d] * x->dims[d];
                idx[d] = 0;
            }
        }
    }
    free(s);
    return ST_OK;
}

/* Local response normalisation across channels of X (N, C, ...):
   y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta,
   the window running from c - floor((size-1)/2) to c + ceil((size-1)/2). */
Status op_lrn(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    Status st;
    if ((st = require_floats(n, in, err)) != ST_OK)
        return st;
    int64_t size = attr_int(n, "size", 0);
    if (x->ndim < 2 || size <= 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected rank >= 2 and "
                         "size > 0, got rank %d, size %lld", (int)x->ndim,
                         (long long)size);
    double alpha = attr_float(n, "alpha", 1e-4f), beta = attr_float(n, "beta", 0.75f);
    double bias = attr_float(n, "bias", 1.0f);
    int64_t nb = x->dims[0], c = x->dims[1], sp = nb * c ? x->numel / (nb * c) : 0;
    int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < sp; i++) {
                double s = 0.0;
                for (int64_t k = ch - lo; k <= ch + hi; k++) {
                    if (k < 0 || k >= c) continue;
                    double v = elem_get_f(x, (b * c + k) * sp + i);
                    s += v * v;
                }
                int64_t at = (b * c + ch) * sp + i;
                elem_set_f(out[0], at, elem_get_f(x, at) /
                                       pow(bias + alpha / (double)size * s, beta));
            }
    return ST_OK;
}
