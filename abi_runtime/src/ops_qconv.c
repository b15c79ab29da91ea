/*
 * ops_qconv.c: integer convolution (ConvInteger) and quantized
 * convolution (QLinearConv) over 1 to 3 spatial dims, NC(D)HW.
 *
 * Both subtract the zero points, convolve in exact integers (the sum
 * wraps in 32 bits, as the spec allows) and ConvInteger stops there;
 * QLinearConv adds the int32 bias and requantizes with
 * round_half_even(acc * (x_scale * w_scale / y_scale)) + y_zero_point,
 * the factor computed in float32, saturated to the output's 8-bit type.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "numeric.h"
#include "ops.h"

/* Largest stride, dilation or pad accepted (keeps index arithmetic exact). */
#define QCONV_ATTR_MAX ((int64_t)1 << 24)

/* Geometry of one convolution, every tensor seen as 3 spatial dims (the
   missing leading ones of size 1). */
typedef struct {
    int32_t s;                 /* spatial dims of the node: 1, 2 or 3 */
    int64_t batch, c, m, group;
    int64_t in[3], k[3], out[3];
    int64_t stride[3], dil[3], pad[3]; /* pad: leading pad of each dim */
} QConvGeom;

/* Fill g from x (N, C, ...), w (M, C/group, ...) and the attributes
   group, kernel_shape, strides, dilations, pads, auto_pad. */
static Status qconv_geometry(const Node *n, const Tensor *x, const Tensor *w,
                             QConvGeom *g, Err *err)
{
    int32_t s = x->ndim - 2;
    if (s < 1 || s > 3 || w->ndim != x->ndim)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "expected x and w of rank 3 "
                         "to 5 (1 to 3 spatial dims), got ranks %d and %d",
                         (int)x->ndim, (int)w->ndim);
    *g = (QConvGeom){.s = s, .batch = x->dims[0], .c = x->dims[1],
                     .m = w->dims[0], .group = attr_int(n, "group", 1)};
    if (g->group < 1 || g->m % g->group || w->dims[1] * g->group != g->c)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "w (%lld, %lld, ...) does "
                         "not fit %lld input channels in %lld groups",
                         (long long)g->m, (long long)w->dims[1],
                         (long long)g->c, (long long)g->group);
    int64_t ks[3], st3[3] = {1, 1, 1}, dl[3] = {1, 1, 1};
    int64_t pads[6] = {0, 0, 0, 0, 0, 0};
    for (int32_t i = 0; i < s; i++)
        ks[i] = w->dims[2 + i];
    Status st;
    int auto_pad;
    if ((st = attr_ints_exact(n, "kernel_shape", ks, s, err)) ||
        (st = attr_ints_exact(n, "strides", st3, s, err)) ||
        (st = attr_ints_exact(n, "dilations", dl, s, err)) ||
        (st = attr_ints_exact(n, "pads", pads, 2 * s, err)) ||
        (st = read_auto_pad(n, &auto_pad, err)))
        return st;
    for (int32_t d = 0; d < 3; d++) {
        int32_t i = d - (3 - s); /* the node's spatial dim, < 0 if padded */
        g->in[d] = i < 0 ? 1 : x->dims[2 + i];
        g->k[d] = i < 0 ? 1 : w->dims[2 + i];
        g->stride[d] = i < 0 ? 1 : st3[i];
        g->dil[d] = i < 0 ? 1 : dl[i];
        int64_t pb = i < 0 ? 0 : pads[i], pe = i < 0 ? 0 : pads[s + i];
        if (i >= 0 && ks[i] != g->k[d])
            return node_fail(n, err, ST_SHAPE_MISMATCH, "kernel_shape %lld "
                             "differs from the weight's %lld", (long long)ks[i],
                             (long long)g->k[d]);
        if (g->stride[d] < 1 || g->dil[d] < 1 || pb < 0 || pe < 0 ||
            g->stride[d] > QCONV_ATTR_MAX || g->dil[d] > QCONV_ATTR_MAX ||
            pb > QCONV_ATTR_MAX || pe > QCONV_ATTR_MAX)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "strides and dilations "
                             "must be in [1, 2^24] and pads in [0, 2^24]");
        int64_t ek = (g->k[d] - 1) * g->dil[d] + 1; /* effective kernel */
        if (auto_pad == AP_VALID) {
            pb = pe = 0;
        } else if (auto_pad != AP_NOTSET) {
            int64_t o = (g->in[d] + g->stride[d] - 1) / g->stride[d];
            int64_t total = (o - 1) * g->stride[d] + ek - g->in[d];
            total = total > 0 ? total : 0;
            pb = auto_pad == AP_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
        }
        if (g->in[d] + pb + pe < ek)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "kernel extent %lld "
                             "exceeds the padded input %lld", (long long)ek,
                             (long long)(g->in[d] + pb + pe));
        g->pad[d] = pb;
        g->out[d] = (g->in[d] + pb + pe - ek) / g->stride[d] + 1;
    }
    return ST_OK;
}

/* acc (N, M, out...) = conv(x - zx, w - zw[m]) with int32 wrap-around;
   xz (N, C, in...) and wz (M, C/group, k...) already hold the differences. */
static void qconv_run(const QConvGeom *g, const int32_t *xz, const int32_t *wz,
                      int32_t *acc)
{
    int64_t cg = g->c / g->group, mg = g->m / g->group;
    int64_t in_plane = g->in[0] * g->in[1] * g->in[2];
    int64_t k_plane = g->k[0] * g->k[1] * g->k[2];
    int64_t out_plane = g->out[0] * g->out[1] * g->out[2];
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            int64_t grp = oc / mg;
            int32_t *y = acc + (b * g->m + oc) * out_plane; /* (out...) */
            for (int64_t o = 0; o < out_plane; o++) {
                int64_t od = o / (g->out[1] * g->out[2]);
                int64_t oh = o / g->out[2] % g->out[1], ow = o % g->out[2];
                uint32_t sum = 0; /* wraps like int32 accumulation */
                for (int64_t ic = 0; ic < cg; ic++) {
                    const int32_t *xp = xz + (b * g->c + grp * cg + ic) * in_plane;
                    const int32_t *wp = wz + (oc * cg + ic) * k_plane;
                    for (int64_t kd = 0; kd < g->k[0]; kd++) {
                        int64_t id = od * g->stride[0] - g->pad[0] + kd * g->dil[0];
                        if (id < 0 || id >= g->in[0])
                            continue;
                        for (int64_t kh = 0; kh < g->k[1]; kh++) {
                            int64_t ih = oh * g->stride[1] - g->pad[1] + kh * g->dil[1];
                            if (ih < 0 || ih >= g->in[1])
                                continue;
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                int64_t iw = ow * g->stride[2] - g->pad[2] +
                                             kw * g->dil[2];
                                if (iw < 0 || iw >= g->in[2])
                                    continue;
                                int32_t xv = xp[(id * g->in[1] + ih) * g->in[2] + iw];
                                int32_t wv = wp[(kd * g->k[1] + kh) * g->k[2] + kw];
                                sum += (uint32_t)(xv * wv); /* |.| <= 2^16 */
                            }
                        }
                    }
                }
                y[o] = (int32_t)sum;
            }
        }
}

/* count int32 values (at least one), NULL when they do not fit memory. */
static int32_t *i32_alloc(int64_t count)
{
    if ((uint64_t)count > SIZE_MAX / sizeof(int32_t))
        return NULL;
    return malloc((size_t)(count ? count : 1) * sizeof(int32_t));
}

/* Fail unless t is int8 or uint8 (name says which input). */
static Status require_8bit(const Node *n, const Tensor *t, const char *name,
                           Err *err)
{
    if (t->dtype == DT_INT8 || t->dtype == DT_UINT8)
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "%s is %s, expected int8 or "
                     "uint8", name, dtype_name(t->dtype));
}

/* d (like t) = t - zero point: zp absent (0), one value, or one value per
   index of dim 0 (per output channel of a weight). */
static Status minus_zero_point(const Node *n, const Tensor *t,
                               const Tensor *zp, const char *name, int32_t *d,
                               Err *err)
{
    int64_t rows = t->ndim ? t->dims[0] : 1, row = rows ? t->numel / rows : 0;
    if (zp && (zp->dtype != t->dtype || (zp->numel != 1 && zp->numel != rows)))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be a %s scalar or "
                         "have %lld values, got %lld %s values", name,
                         dtype_name(t->dtype), (long long)rows,
                         (long long)zp->numel, dtype_name(zp->dtype));
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t z = !zp ? 0 : elem_get_i(zp, zp->numel == 1 ? 0 : i / row);
        d[i] = (int32_t)(elem_get_i(t, i) - z);
    }
    return ST_OK;
}

/* The shared body of ConvInteger and QLinearConv: acc (N, M, out...) int32
   allocated in y with dtype int32; x_zero_point must be one value. */
static Status qconv_common(const Node *n, const Tensor *x, const Tensor *xzp,
                           const Tensor *w, const Tensor *wzp, Tensor *y,
                           QConvGeom *g, Err *err)
{
    Status st;
    if ((st = require_8bit(n, x, "x", err)) || (st = require_8bit(n, w, "w", err)) ||
        (st = qconv_geometry(n, x, w, g, err)))
        return st;
    if (xzp && xzp->numel != 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "x_zero_point must be one "
                         "value (per tensor), got %lld", (long long)xzp->numel);
    int64_t dims[5] = {g->batch, g->m};
    for (int32_t i = 0; i < g->s; i++)
        dims[2 + i] = g->out[3 - g->s + i];
    if ((st = tensor_alloc(y, DT_INT32, 2 + g->s, dims, err)))
        return st;
    int32_t *xz = i32_alloc(x->numel); /* (N, C, in...) x - x_zero_point */
    int32_t *wz = i32_alloc(w->numel); /* (M, C/group, k...) w - w_zero_point */
    if (!xz || !wz) {
        free(xz);
        free(wz);
        return node_fail(n, err, ST_OOM, "out of memory");
    }
    if (!(st = minus_zero_point(n, x, xzp, "x_zero_point", xz, err)) &&
        !(st = minus_zero_point(n, w, wzp, "w_zero_point", wz, err)))
        qconv_run(g, xz, wz, y->data);
    free(xz);
    free(wz);
    return st;
}

/* Y (N, M, out...) int32 = conv(x - x_zero_point, w - w_zero_point);
   x_zero_point one value, w_zero_point one value or one per output
   channel; attributes as Conv's. */
Status op_conv_integer(const Node *n, Tensor *const *in, Tensor *const *out,
                       Err *err)
{
    QConvGeom g;
    const Tensor *xzp = n->n_in > 2 ? in[2] : NULL;
    const Tensor *wzp = n->n_in > 3 ? in[3] : NULL;
    return qconv_common(n, in[0], xzp, in[1], wzp, out[0], &g, err);
}

/* Y = saturate(round_half_even((conv(x - zx, w - zw) + B) * x_scale *
   w_scale / y_scale) + y_zero_point) in y_zero_point's dtype. x and y
   scales and zero points are per tensor; w's per tensor or per output
   channel; B (M) int32 is optional. */
Status op_qlinear_conv(const Node *n, Tensor *const *in, Tensor *const *out,
                       Err *err)
{
    const Tensor *xs = in[1], *ws = in[4], *ys = in[6], *yzp = in[7];
    const Tensor *bias = n->n_in > 8 ? in[8] : NULL;
    if (xs->dtype != DT_FLOAT || ws->dtype != DT_FLOAT || ys->dtype != DT_FLOAT ||
        xs->numel != 1 || ys->numel != 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "x_scale and y_scale must be "
                         "float32 scalars and w_scale float32");
    Status st;
    if ((st = require_8bit(n, yzp, "y_zero_point", err)))
        return st;
    if (yzp->numel != 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "y_zero_point must be one "
                         "value (per tensor), got %lld", (long long)yzp->numel);
    Tensor acc = {0};
    QConvGeom g;
    if ((st = qconv_common(n, in[0], in[2], in[3], in[5], &acc, &g, err)))
        goto done;
    if ((ws->numel != 1 && ws->numel != g.m) ||
        (bias && (bias->dtype != DT_INT32 || bias->numel != g.m))) {
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "w_scale must have 1 or %lld "
                       "values and B %lld int32 values", (long long)g.m,
                       (long long)g.m);
        goto done;
    }
    if ((st = tensor_alloc(out[0], yzp->dtype, acc.ndim, acc.dims, err)))
        goto done;
    double lo = yzp->dtype == DT_INT8 ? -128.0 : 0.0;
    double hi = yzp->dtype == DT_INT8 ? 127.0 : 255.0;
    double zy = (double)elem_get_i(yzp, 0);
    int64_t plane = g.out[0] * g.out[1] * g.out[2];
    const int32_t *a = acc.data, *b = bias ? bias->data : NULL;
    float sx = ((const float *)xs->data)[0], sy = ((const float *)ys->data)[0];
    for (int64_t i = 0; i < acc.numel; i++) {
        int64_t oc = plane ? i / plane % g.m : 0;
        float f = sx * ((const float *)ws->data)[ws->numel == 1 ? 0 : oc] / sy;
        /* the bias adds in int32 before scaling, wrapping like the sum */
        int32_t v = b ? (int32_t)((uint32_t)a[i] + (uint32_t)b[oc]) : a[i];
        double q = nearbyint((double)v * (double)f + zy);
        q = isnan(q) ? 0.0 : q < lo ? lo : q > hi ? hi : q;
        elem_set_i(out[0], i, (int64_t)q);
    }
done:
    tensor_release(&acc);
    return st;
}
