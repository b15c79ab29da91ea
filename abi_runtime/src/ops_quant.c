/*
 * ops_quant.c: QuantizeLinear and DequantizeLinear with per-tensor,
 * per-axis and blocked scales, for the 8-, 16- and 32-bit integer types;
 * DynamicQuantizeLinear; the integer matrix products MatMulInteger and
 * QLinearMatMul (the convolutions are in ops_qconv.c).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "numeric.h"
#include "ops.h"

/* Offset into the scale (and zero point) of each element of x: per tensor
   (one value), per axis (1-D along axis) or blocked (x's rank, block_size
   elements of x per scale value along axis). Fills off[0..x->numel). */
static Status scale_offsets(const Node *n, const Tensor *x, const Tensor *s,
                            int64_t *off, Err *err)
{
    int32_t axis = 0;
    int64_t block = attr_int(n, "block_size", 0);
    Status st = ST_OK;
    if (s->numel != 1 &&
        (st = norm_axis(n, attr_int(n, "axis", 1), x->ndim, &axis, err)))
        return st;
    int blocked = s->numel != 1 && block > 0;
    if (s->numel != 1 && !blocked &&
        (s->ndim != 1 || s->dims[0] != x->dims[axis]))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "scale of %lld values "
                         "does not fit axis %d of size %lld",
                         (long long)s->numel, (int)axis,
                         (long long)x->dims[axis]);
    if (blocked) {
        if (s->ndim != x->ndim)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "blocked scale must "
                             "have the input's rank");
        for (int32_t d = 0; d < x->ndim; d++) {
            int64_t want = d == axis ? (x->dims[d] + block - 1) / block
                                     : x->dims[d];
            if (s->dims[d] != want)
                return node_fail(n, err, ST_SHAPE_MISMATCH, "blocked scale "
                                 "dim %d is %lld, expected %lld", (int)d,
                                 (long long)s->dims[d], (long long)want);
        }
    }
    int64_t idx[MAX_RANK] = {0};
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t o = 0;
        if (blocked)
            for (int32_t d = 0; d < x->ndim; d++)
                o += (d == axis ? idx[d] / block : idx[d]) * s->strides[d];
        else if (s->numel != 1)
            o = idx[axis];
        off[i] = o;
        for (int32_t d = x->ndim - 1; d >= 0; d--) {
            if (++idx[d] < x->dims[d]) break;
            idx[d] = 0;
        }
    }
    return ST_OK;
}

/* Integer range of dtype (the types quantisation targets). */
static int int_range(int32_t dt, double *lo, double *hi)
{
    switch (dt) {
    case DT_UINT8: *lo = 0; *hi = 255; return 1;
    case DT_INT8: *lo = -128; *hi = 127; return 1;
    case DT_UINT16: *lo = 0; *hi = 65535; return 1;
    case DT_INT16: *lo = -32768; *hi = 32767; return 1;
    case DT_INT32: *lo = -2147483648.0; *hi = 2147483647.0; return 1;
    default: return 0;
    }
}

/* y = saturate(round_half_even(x / scale) + zero_point) in the dtype of
   the zero point (or output_dtype; default uint8). */
Status op_quantize(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0], *s = in[1];
    const Tensor *zp = n->n_in > 2 ? in[2] : NULL;
    int32_t to = zp ? zp->dtype : (int32_t)attr_int(n, "output_dtype", DT_UINT8);
    if (!zp && to == 0)
        to = DT_UINT8;
    double lo, hi;
    if (!dtype_is_float(x->dtype) || !dtype_is_float(s->dtype) ||
        !int_range(to, &lo, &hi) || to == DT_INT32)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "quantising %s to %s is "
                         "not supported", dtype_name(x->dtype), dtype_name(to));
    if (zp && zp->numel != s->numel)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "zero point and scale "
                         "differ in size");
    Status st = tensor_alloc(out[0], to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    Tensor offs = {0};
    if ((st = tensor_alloc(&offs, DT_INT64, x->ndim, x->dims, err)) ||
        (st = scale_offsets(n, x, s, offs.data, err))) {
        tensor_release(&offs);
        return st;
    }
    const int64_t *off = offs.data;
    for (int64_t i = 0; i < x->numel; i++) {
        double xv = elem_get_f(x, i), sv = elem_get_f(s, off[i]);
        /* float32 inputs divide in float32, as the reference does */
        double q = x->dtype == DT_FLOAT && s->dtype == DT_FLOAT
                 ? (double)((float)xv / (float)sv) : xv / sv;
        q = nearbyint(q) + (zp ? (double)elem_get_i(zp, off[i]) : 0.0);
        q = isnan(q) ? 0.0 : q < lo ? lo : q > hi ? hi : q;
        elem_set_i(out[0], i, (int64_t)q);
    }
    tensor_release(&offs);
    return ST_OK;
}

/* y = (x - zero_point) * scale in the scale's dtype. */
Status op_dequantize(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const Tensor *x = in[0], *s = in[1];
    const Tensor *zp = n->n_in > 2 ? in[2] : NULL;
    double lo, hi;
    if (!int_range(x->dtype, &lo, &hi) || !dtype_is_float(s->dtype))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dequantising %s with a "
                         "%s scale is not supported", dtype_name(x->dtype),
                         dtype_name(s->dtype));
    if (zp && (zp->numel != s->numel || zp->dtype != x->dtype))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "zero point must match the "
                         "scale's size and the input's dtype");
    int32_t to = (int32_t)attr_int(n, "output_dtype", 0);
    to = to ? to : s->dtype;
    if (!dtype_is_float(to))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "output dtype %s is not "
                         "supported", dtype_name(to));
    Status st = tensor_alloc(out[0], to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    Tensor offs = {0};
    if ((st = tensor_alloc(&offs, DT_INT64, x->ndim, x->dims, err)) ||
        (st = scale_offsets(n, x, s, offs.data, err))) {
        tensor_release(&offs);
        return st;
    }
    const int64_t *off = offs.data;
    for (int64_t i = 0; i < x->numel; i++) {
        double d = (double)elem_get_i(x, i) - (zp ? (double)elem_get_i(zp, off[i]) : 0.0);
        double v = d * elem_get_f(s, off[i]);
        /* float32 scales multiply in float32, as the reference does */
        if (s->dtype == DT_FLOAT)
            v = (double)((float)d * (float)elem_get_f(s, off[i]));
        elem_set_f(out[0], i, v);
    }
    tensor_release(&offs);
    return ST_OK;
}

/* Y (uint8), scale, zero point = the uint8 quantisation of X over the
   range [min(0, min X), max(0, max X)], computed in float32. */
Status op_dynamic_quantize(const Node *n, Tensor *const *in,
                           Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    if (x->dtype != DT_FLOAT)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    const float *xv = x->data;
    float mx = 0.0f, mn = 0.0f;
    for (int64_t i = 0; i < x->numel; i++) {
        mx = xv[i] > mx ? xv[i] : mx;
        mn = xv[i] < mn ? xv[i] : mn;
    }
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float zp = 0.0f - mn / scale;
    zp = nearbyintf(zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp);
    Status st;
    if ((st = tensor_alloc(out[0], DT_UINT8, x->ndim, x->dims, err)))
        return st;
    for (int64_t i = 0; i < x->numel; i++) {
        float q = nearbyintf(xv[i] / scale) + zp;
        ((uint8_t *)out[0]->data)[i] = (uint8_t)(isnan(q) ? 0.0f : q < 0.0f ? 0.0f
                                                 : q > 255.0f ? 255.0f : q);
    }
    if (n->n_out > 1 && out[1]) {
        if ((st = tensor_alloc(out[1], DT_FLOAT, 0, NULL, err)))
            return st;
        *(float *)out[1]->data = scale;
    }
    if (n->n_out > 2 && out[2]) {
        if ((st = tensor_alloc(out[2], DT_UINT8, 0, NULL, err)))
            return st;
        *(uint8_t *)out[2]->data = (uint8_t)zp;
    }
    return ST_OK;
}

/* Y (int32) = (A - a_zero_point) x (B - b_zero_point): A (..., M, K) and B
   (K, N) or (..., K, N) with the same batch dims; a zero point is a scalar
   or per row of A (M), b's a scalar or per column of B (N). */
Status op_matmul_integer(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    const Tensor *az = n->n_in > 2 ? in[2] : NULL, *bz = n->n_in > 3 ? in[3] : NULL;
    if (a->ndim < 2 || b->ndim < 2 || dtype_domain(a->dtype) == DOM_FLOAT ||
        dtype_domain(b->dtype) == DOM_FLOAT || dtype_size(a->dtype) != 1 ||
        dtype_size(b->dtype) != 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "expected 8-bit integer "
                         "matrices, got %s and %s", dtype_name(a->dtype),
                         dtype_name(b->dtype));
    int64_t m = a->dims[a->ndim - 2], k = a->dims[a->ndim - 1];
    int64_t nn = b->dims[b->ndim - 1], batch = a->numel / (m * k ? m * k : 1);
    int b_batched = b->ndim > 2;
    if (b->dims[b->ndim - 2] != k || (b_batched && (b->ndim != a->ndim ||
                                                    b->numel != batch * k * nn)))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dims differ or "
                         "batch dims do not match");
    if ((az && az->numel != 1 && az->numel != m) ||
        (bz && bz->numel != 1 && bz->numel != nn))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "zero points must be "
                         "scalars, per row of A or per column of B");
    int64_t dims[MAX_RANK];
    for (int32_t i = 0; i < a->ndim; i++)
        dims[i] = a->dims[i];
    dims[a->ndim - 1] = nn;
    Status st = tensor_alloc(out[0], DT_INT32, a->ndim, dims, err);
    if (st != ST_OK)
        return st;
    int32_t *y = out[0]->data;
    for (int64_t p = 0; p < batch; p++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++) {
                int64_t acc = 0;
                int64_t za = az ? elem_get_i(az, az->numel == 1 ? 0 : i) : 0;
                int64_t zb = bz ? elem_get_i(bz, bz->numel == 1 ? 0 : j) : 0;
                for (int64_t t = 0; t < k; t++) {
                    int64_t av = elem_get_i(a, (p * m + i) * k + t) - za;
                    int64_t bv = elem_get_i(b, ((b_batched ? p : 0) * k + t) * nn + j) - zb;
                    acc += av * bv;
                }
                y[(p * m + i) * nn + j] = (int32_t)acc;
            }
    return ST_OK;
}

/* The requantisation factor a_scale * b_scale / y_scale computed in the
   scales' dtype, as numpy does: float16 rounds after each operation
   (computed in float32), float32 in float32, float64 in double. */
static double qmm_factor(int32_t dt, double as, double bs, double ys)
{
    if (dt == DT_FLOAT16) {
        float p = half_to_float(double_to_half((double)((float)as * (float)bs)));
        return half_to_float(double_to_half((double)(p / (float)ys)));
    }
    if (dt == DT_FLOAT)
        return (double)((float)((float)as * (float)bs) / (float)ys);
    return as * bs / ys;
}

/* Index into a scale or zero point t of the per-row (rows = M, a's) or
   per-column (cols = N, b's and y's) form, or 0 per tensor; -1 when t
   has neither form: numel 1, or numel M with last dim 1 (per row), or
   numel N along the last dim (per column). */
static int64_t qmm_param_index(const Tensor *t, int per_row, int64_t m,
                               int64_t nn, int64_t i, int64_t j)
{
    if (t->numel == 1)
        return 0;
    int64_t last = t->ndim ? t->dims[t->ndim - 1] : 1;
    if (per_row)
        return t->numel == m && t->ndim >= 2 && last == 1 ? i : -1;
    return t->numel == nn && last == nn ? j : -1;
}

/*
 * Y = saturate(round_half_even(((A - a_zero_point) x (B - b_zero_point))
 * * a_scale * b_scale / y_scale) + y_zero_point): A (..., M, K) and B
 * (..., K, N) 8-bit with numpy-broadcast batch dims; Y in y_zero_point's
 * dtype. Scales and zero points: per tensor, per row of A ((M, 1)) or per
 * column of B and Y (N along the last dim); float32, float16 or float64.
 */
Status op_qlinear_matmul(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const Tensor *a = in[0], *as = in[1], *az = in[2], *b = in[3];
    const Tensor *bs = in[4], *bz = in[5], *ys = in[6], *yz = in[7];
    if (a->ndim < 2 || b->ndim < 2 || dtype_size(a->dtype) != 1 ||
        dtype_size(b->dtype) != 1 || a->dtype == DT_BOOL || b->dtype == DT_BOOL ||
        az->dtype != a->dtype || bz->dtype != b->dtype ||
        (yz->dtype != DT_INT8 && yz->dtype != DT_UINT8))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "expected int8 or uint8 "
                         "matrices of rank >= 2 with zero points of their "
                         "dtypes, got %s and %s", dtype_name(a->dtype),
                         dtype_name(b->dtype));
    if (!dtype_is_float(as->dtype) || bs->dtype != as->dtype ||
        ys->dtype != as->dtype)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "scales must share one float "
                         "dtype, got %s, %s, %s", dtype_name(as->dtype),
                         dtype_name(bs->dtype), dtype_name(ys->dtype));
    int64_t m = a->dims[a->ndim - 2], k = a->dims[a->ndim - 1];
    int64_t nn = b->dims[b->ndim - 1];
    if (b->dims[b->ndim - 2] != k)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dims differ: %lld "
                         "vs %lld", (long long)k, (long long)b->dims[b->ndim - 2]);
    if (qmm_param_index(as, 1, m, nn, 0, 0) < 0 ||
        qmm_param_index(az, 1, m, nn, 0, 0) < 0 ||
        qmm_param_index(bs, 0, m, nn, 0, 0) < 0 ||
        qmm_param_index(bz, 0, m, nn, 0, 0) < 0 ||
        qmm_param_index(ys, 0, m, nn, 0, 0) < 0 ||
        qmm_param_index(yz, 0, m, nn, 0, 0) < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "scales and zero points must "
                         "be per tensor, per row of a ((M, 1)) or per column of "
                         "b and y (N values)");

    /* step 1: broadcast batch dims (right-aligned) */
    int32_t ba = a->ndim - 2, bb = b->ndim - 2, r = ba > bb ? ba : bb;
    int64_t dims[MAX_RANK], batch = 1;
    for (int32_t d = 0; d < r; d++) {
        int64_t da = d - (r - ba) >= 0 ? a->dims[d - (r - ba)] : 1;
        int64_t db = d - (r - bb) >= 0 ? b->dims[d - (r - bb)] : 1;
        if (da != db && da != 1 && db != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "batch dims %lld and "
                             "%lld do not broadcast", (long long)da, (long long)db);
        dims[d] = da == 1 ? db : da;
        batch *= dims[d];
    }
    dims[r] = m;
    dims[r + 1] = nn;
    Status st = tensor_alloc(out[0], yz->dtype, r + 2, dims, err);
    if (st != ST_OK || out[0]->numel == 0)
        return st;
    double lo = yz->dtype == DT_INT8 ? -128.0 : 0.0;
    double hi = yz->dtype == DT_INT8 ? 127.0 : 255.0;

    /* step 2: the operands minus their zero points, as int32 */
    int32_t *ad = NULL, *bd = NULL; /* like a (..., M, K) and b (..., K, N) */
    if ((uint64_t)a->numel <= SIZE_MAX / 4 && (uint64_t)b->numel <= SIZE_MAX / 4) {
        ad = malloc((size_t)(a->numel ? a->numel : 1) * sizeof *ad);
        bd = malloc((size_t)(b->numel ? b->numel : 1) * sizeof *bd);
    }
    if (!ad || !bd) {
        free(ad);
        free(bd);
        return node_fail(n, err, ST_OOM, "out of memory");
    }
    for (int64_t e = 0; e < a->numel; e++)
        ad[e] = (int32_t)(elem_get_i(a, e) -
                          elem_get_i(az, qmm_param_index(az, 1, m, nn, e / k % m, 0)));
    for (int64_t e = 0; e < b->numel; e++)
        bd[e] = (int32_t)(elem_get_i(b, e) -
                          elem_get_i(bz, qmm_param_index(bz, 0, m, nn, 0, e % nn)));

    /* step 3: each batch's matrix product, then requantise */
    for (int64_t p = 0; p < batch; p++) {
        int64_t oa = 0, ob = 0, rem = p, sa = m * k, sb = k * nn;
        for (int32_t d = r - 1; d >= 0; d--) {
            int64_t idx = rem % dims[d];
            rem /= dims[d];
            int32_t da = d - (r - ba), db = d - (r - bb);
            if (da >= 0) {
                oa += (a->dims[da] == 1 ? 0 : idx) * sa;
                sa *= a->dims[da];
            }
            if (db >= 0) {
                ob += (b->dims[db] == 1 ? 0 : idx) * sb;
                sb *= b->dims[db];
            }
        }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++) {
                const int32_t *ar = ad + oa + i * k, *bc = bd + ob + j;
                uint32_t acc = 0; /* the sum may wrap in 32 bits */
                for (int64_t t = 0; t < k; t++)
                    acc += (uint32_t)(ar[t] * bc[t * nn]); /* |.| <= 2^16 */
                double f = qmm_factor(as->dtype,
                                      elem_get_f(as, qmm_param_index(as, 1, m, nn, i, j)),
                                      elem_get_f(bs, qmm_param_index(bs, 0, m, nn, i, j)),
                                      elem_get_f(ys, qmm_param_index(ys, 0, m, nn, i, j)));
                double zy = (double)elem_get_i(yz, qmm_param_index(yz, 0, m, nn, i, j));
                double q = nearbyint((double)(int32_t)acc * f + zy);
                q = isnan(q) ? 0.0 : q < lo ? lo : q > hi ? hi : q;
                elem_set_i(out[0], (p * m + i) * nn + j, (int64_t)q);
            }
    }
    free(ad);
    free(bd);
    return ST_OK;
}
