/*
 * ops_quant.c: QuantizeLinear and DequantizeLinear with per-tensor,
 * per-axis and blocked scales, for the 8-, 16- and 32-bit integer types.
 */
#include <math.h>

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
