/*
 * ops_convt.c: ConvTranspose over 1, 2 or 3 spatial axes, and 3-D Conv.
 *
 * Both run as direct loops over a (d, h, w) geometry in which missing
 * leading spatial axes have size 1. 1-D and 2-D Conv stay in ops_conv.c;
 * conv_dispatch_* below route rank-5 weights here.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define CT_SPATIAL 3
/* First field of CtParams: tells a 3-D Conv's params from ops_conv.c's,
   whose first field is a group count >= 1. */
#define CT_TAG (INT64_MIN + 0x3d)

typedef struct {
    int64_t tag;        /* CT_TAG */
    int spatial;        /* 1, 2 or 3 */
    int64_t group;
    int64_t stride[CT_SPATIAL], dilation[CT_SPATIAL];
    int64_t pad_begin[CT_SPATIAL], pad_end[CT_SPATIAL];
    int64_t out_pad[CT_SPATIAL];    /* ConvTranspose output_padding */
    int64_t out_shape[CT_SPATIAL];  /* ConvTranspose output_shape, or -1 */
    int has_kernel_shape;
    int64_t kernel[CT_SPATIAL];
    int auto_pad;       /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
} CtParams;

/* Attributes of Conv (3-D) and ConvTranspose; the weight's declared rank
   gives the spatial rank. */
static Status prep_ct(const Model *m, Node *n, Err *err)
{
    if (n->in[1] < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "the weight input is missing");
    int32_t rank = m->values[n->in[1]].rank;
    if (rank < 3 || rank > 2 + CT_SPATIAL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "only 1-D to 3-D is "
                         "supported, weight has rank %d", (int)rank);
    CtParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    p->tag = CT_TAG;
    int s = p->spatial = rank - 2;
    int64_t pads[2 * CT_SPATIAL] = {0};
    for (int i = 0; i < s; i++) {
        p->stride[i] = p->dilation[i] = 1;
        p->out_shape[i] = -1;
    }
    const Attr *os = node_attr(n, "output_shape");
    int64_t shape[2 + CT_SPATIAL];
    Status st;
    if ((st = attr_ints_exact(n, "strides", p->stride, s, err)) ||
        (st = attr_ints_exact(n, "dilations", p->dilation, s, err)) ||
        (st = attr_ints_exact(n, "pads", pads, 2 * s, err)) ||
        (st = attr_ints_exact(n, "output_padding", p->out_pad, s, err)) ||
        (st = attr_ints_exact(n, "kernel_shape", p->kernel, s, err)))
        return st;
    p->has_kernel_shape = node_attr(n, "kernel_shape") != NULL;
    if (os) {
        /* output_shape may list the spatial sizes or the whole shape */
        int c = os->type == AT_INTS ? os->count : -1;
        if (c != s && c != s + 2)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "output_shape must "
                             "list %d or %d sizes, got %d", s, s + 2, c);
        for (int i = 0; i < c; i++) shape[i] = attr_ints_at(os, i);
        for (int i = 0; i < s; i++) p->out_shape[i] = shape[c - s + i];
    }
    for (int i = 0; i < s; i++) {
        p->pad_begin[i] = pads[i];
        p->pad_end[i] = pads[s + i];
        if (p->stride[i] < 1 || p->dilation[i] < 1 || pads[i] < 0 ||
            pads[s + i] < 0 || p->out_pad[i] < 0 || p->stride[i] > 1 << 20 ||
            p->dilation[i] > 1 << 20 || pads[i] > 1 << 20 ||
            pads[s + i] > 1 << 20 || p->out_pad[i] > 1 << 20 ||
            (os && (p->out_shape[i] < 0 || p->out_shape[i] > 1 << 24)))
            return node_fail(n, err, ST_UNSUPPORTED_OP, "strides and "
                             "dilations must be >= 1, pads, output_padding "
                             "and output_shape >= 0");
    }
    p->group = attr_int(n, "group", 1);
    if (p->group < 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "group must be >= 1, got "
                         "%lld", (long long)p->group);
    if ((st = read_auto_pad(n, &p->auto_pad, err)))
        return st;
    return ST_OK;
}

/* Shared checks: float32 X (n, c, ...), W, optional B (bias_len). */
static Status ct_check(const Node *n, const CtParams *p, const Tensor *x,
                       const Tensor *w, const Tensor *b, int64_t bias_len,
                       Err *err)
{
    char sx[96], sw[96];
    Status st;
    if ((st = require_float(n, x, 0, err)) || (st = require_float(n, w, 1, err)) ||
        (b && (st = require_float(n, b, 2, err))))
        return st;
    if (x->ndim != p->spatial + 2 || w->ndim != p->spatial + 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected input and "
                         "weight of rank %d, got %s and %s", p->spatial + 2,
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(w->dims, w->ndim, sw, 96));
    if (b && (b->ndim != 1 || b->dims[0] != bias_len))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "bias must have shape "
                         "(%lld,), got %s", (long long)bias_len,
                         shape_str(b->dims, b->ndim, sx, 96));
    for (int a = 0; a < p->spatial; a++)
        if (p->has_kernel_shape && p->kernel[a] != w->dims[2 + a])
            return node_fail(n, err, ST_SHAPE_MISMATCH, "kernel_shape does "
                             "not match the weight %s",
                             shape_str(w->dims, w->ndim, sw, 96));
    return ST_OK;
}

/* Pad a spatial vector of s values to 3 with `fill` in front. */
static void to3(const int64_t *v, int s, int64_t fill, int64_t *o)
{
    for (int i = 0; i < CT_SPATIAL; i++)
        o[i] = i < CT_SPATIAL - s ? fill : v[i - (CT_SPATIAL - s)];
}

/* Y (n, m, od, oh, ow) = X (n, c, id, ih, iw) transposed-convolved with
   W (c, m/group, kd, kh, kw) + B (m). */
Status op_conv_transpose(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const CtParams *p = n->params;
    const Tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    int s = p->spatial;
    char sx[96], sw[96];
    Status st = ct_check(n, p, x, w, b, w->ndim > 1 ? w->dims[1] * p->group : 0,
                         err);
    if (st != ST_OK)
        return st;
    int64_t batch = x->dims[0], c = x->dims[1], mg = w->dims[1];
    int64_t cg = c / p->group, m = mg * p->group;
    if (w->dims[0] != c || c % p->group)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s does not fit "
                         "weight %s with group %lld",
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(w->dims, w->ndim, sw, 96),
                         (long long)p->group);

    /* step 1: output size and leading pad along each axis */
    int64_t dims[2 + CT_SPATIAL] = {batch, m}, pb[CT_SPATIAL];
    for (int a = 0; a < s; a++) {
        int64_t in_ = x->dims[2 + a], st_ = p->stride[a];
        int64_t span = (w->dims[2 + a] - 1) * p->dilation[a] + 1;
        int64_t full = st_ * (in_ - 1) + p->out_pad[a] + span, o;
        if (p->out_shape[a] >= 0 || p->auto_pad == 1 || p->auto_pad == 2) {
            o = p->out_shape[a] >= 0 ? p->out_shape[a] : in_ * st_;
            /* a negative total extends the output with bias-only cells */
            int64_t total = full - o;
            pb[a] = p->auto_pad == 2 ? total - total / 2 : total / 2;
        } else {
            int64_t b0 = p->auto_pad == 3 ? 0 : p->pad_begin[a];
            int64_t e0 = p->auto_pad == 3 ? 0 : p->pad_end[a];
            o = full - b0 - e0;
            pb[a] = b0;
        }
        if (o < 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "pads exceed the "
                             "output of input %s", shape_str(x->dims, x->ndim,
                                                             sx, 96));
        dims[2 + a] = o;
    }
    if ((st = tensor_alloc(out[0], DT_FLOAT, s + 2, dims, err)))
        return st;

    /* step 2: geometry as 3-D */
    int64_t id[3], od[3], kd[3], sd[3], dd[3], pd[3];
    to3(x->dims + 2, s, 1, id);
    to3(dims + 2, s, 1, od);
    to3(w->dims + 2, s, 1, kd);
    to3(p->stride, s, 1, sd);
    to3(p->dilation, s, 1, dd);
    to3(pb, s, 0, pd);
    int64_t in_plane = id[0] * id[1] * id[2], out_plane = od[0] * od[1] * od[2];
    int64_t k_plane = kd[0] * kd[1] * kd[2];
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *y = out[0]->data;
    for (int64_t i = 0; i < batch * m; i++) {
        float v = bd ? bd[i % m] : 0.0f;
        for (int64_t j = 0; j < out_plane; j++) y[i * out_plane + j] = v;
    }

    /* step 3: scatter each input element through the kernel */
    for (int64_t nb = 0; nb < batch; nb++)
        for (int64_t ci = 0; ci < c; ci++) {
            int64_t g = ci / cg;
            const float *xp = xd + (nb * c + ci) * in_plane;
            for (int64_t co = 0; co < mg; co++) {
                const float *wp = wd + (ci * mg + co) * k_plane;
                float *yp = y + (nb * m + g * mg + co) * out_plane;
                for (int64_t a0 = 0; a0 < kd[0]; a0++)
                for (int64_t a1 = 0; a1 < kd[1]; a1++)
                for (int64_t a2 = 0; a2 < kd[2]; a2++) {
                    float wv = wp[(a0 * kd[1] + a1) * kd[2] + a2];
                    for (int64_t i0 = 0; i0 < id[0]; i0++) {
                        int64_t o0 = i0 * sd[0] + a0 * dd[0] - pd[0];
                        if (o0 < 0 || o0 >= od[0]) continue;
                        for (int64_t i1 = 0; i1 < id[1]; i1++) {
                            int64_t o1 = i1 * sd[1] + a1 * dd[1] - pd[1];
                            if (o1 < 0 || o1 >= od[1]) continue;
                            const float *xr = xp + (i0 * id[1] + i1) * id[2];
                            float *yr = yp + (o0 * od[1] + o1) * od[2];
                            for (int64_t i2 = 0; i2 < id[2]; i2++) {
                                int64_t o2 = i2 * sd[2] + a2 * dd[2] - pd[2];
                                if (o2 >= 0 && o2 < od[2]) yr[o2] += xr[i2] * wv;
                            }
                        }
                    }
                }
            }
        }
    return ST_OK;
}

/* Y (n, m, od, oh, ow) = X (n, c, id, ih, iw) * W (m, c/group, kd, kh, kw)
   + B (m): 3-D cross-correlation by direct loops. */
static Status conv3d(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const CtParams *p = n->params;
    const Tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    char sx[96], sw[96];
    Status st = ct_check(n, p, x, w, b, w->ndim ? w->dims[0] : 0, err);
    if (st != ST_OK)
        return st;
    int64_t batch = x->dims[0], c = x->dims[1], m = w->dims[0], cg = w->dims[1];
    if (cg * p->group != c || m % p->group)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s does not fit "
                         "weight %s with group %lld",
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(w->dims, w->ndim, sw, 96),
                         (long long)p->group);
    int64_t dims[5] = {batch, m}, pb[3];
    for (int a = 0; a < 3; a++) {
        int64_t in_ = x->dims[2 + a], st_ = p->stride[a];
        int64_t span = (w->dims[2 + a] - 1) * p->dilation[a] + 1, o;
        if (p->auto_pad == 1 || p->auto_pad == 2) {
            o = (in_ + st_ - 1) / st_;
            int64_t total = (o - 1) * st_ + span - in_;
            total = total > 0 ? total : 0;
            pb[a] = p->auto_pad == 1 ? total / 2 : total - total / 2;
        } else {
            int64_t b0 = p->auto_pad == 3 ? 0 : p->pad_begin[a];
            int64_t e0 = p->auto_pad == 3 ? 0 : p->pad_end[a];
            int64_t room = in_ + b0 + e0 - span;
            o = room < 0 ? -1 : room / st_ + 1;
            pb[a] = b0;
        }
        if (o < 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s is smaller "
                             "than the kernel %s",
                             shape_str(x->dims, x->ndim, sx, 96),
                             shape_str(w->dims, w->ndim, sw, 96));
        dims[2 + a] = o;
    }
    if ((st = tensor_alloc(out[0], DT_FLOAT, 5, dims, err)))
        return st;
    const int64_t *id = x->dims + 2, *od = dims + 2, *kd = w->dims + 2;
    const int64_t *sd = p->stride, *dd = p->dilation;
    int64_t mg = m / p->group;
    const float *xd = x->data, *wd = w->data, *bd = b ? b->data : NULL;
    float *y = out[0]->data;
    for (int64_t nb = 0; nb < batch; nb++)
        for (int64_t mo = 0; mo < m; mo++) {
            int64_t g = mo / mg;
            for (int64_t o0 = 0; o0 < od[0]; o0++)
            for (int64_t o1 = 0; o1 < od[1]; o1++)
            for (int64_t o2 = 0; o2 < od[2]; o2++) {
                float acc = bd ? bd[mo] : 0.0f;
                for (int64_t ci = 0; ci < cg; ci++) {
                    const float *xp = xd + (nb * c + g * cg + ci) * id[0] * id[1] * id[2];
                    const float *wp = wd + (mo * cg + ci) * kd[0] * kd[1] * kd[2];
                    for (int64_t a0 = 0; a0 < kd[0]; a0++) {
                        int64_t i0 = o0 * sd[0] - pb[0] + a0 * dd[0];
                        if (i0 < 0 || i0 >= id[0]) continue;
                        for (int64_t a1 = 0; a1 < kd[1]; a1++) {
                            int64_t i1 = o1 * sd[1] - pb[1] + a1 * dd[1];
                            if (i1 < 0 || i1 >= id[1]) continue;
                            for (int64_t a2 = 0; a2 < kd[2]; a2++) {
                                int64_t i2 = o2 * sd[2] - pb[2] + a2 * dd[2];
                                if (i2 < 0 || i2 >= id[2]) continue;
                                acc += xp[(i0 * id[1] + i1) * id[2] + i2] *
                                       wp[(a0 * kd[1] + a1) * kd[2] + a2];
                            }
                        }
                    }
                }
                y[(((nb * m + mo) * od[0] + o0) * od[1] + o1) * od[2] + o2] = acc;
            }
        }
    return ST_OK;
}

/* ConvTranspose attributes, read once at load. */
Status prep_conv_transpose(const Model *m, Node *n, Err *err)
{
    return prep_ct(m, n, err);
}

/* Conv: rank-5 weights run here, everything else in ops_conv.c. */
Status prep_conv_dispatch(const Model *m, Node *n, Err *err)
{
    if (n->in[1] >= 0 && m->values[n->in[1]].rank == 5)
        return prep_ct(m, n, err);
    return prep_conv(m, n, err);
}

/* Run a Conv node with the kernel its prepare chose. */
Status op_conv_dispatch(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err)
{
    if (in[0]->dtype != DT_FLOAT)
        return conv_wide(n, in, out, err); /* other floats: ops_widen.c */
    if (n->params && *(const int64_t *)n->params == CT_TAG)
        return conv3d(n, in, out, err);
    return op_conv(n, in, out, err);
}

/* Y (n, c, image...) = the sum of the columns of X (n, c * prod(block), L)
   placed back at their sliding-block positions (inverse of im2col). */
Status op_col2im(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t img[CT_SPATIAL], blk[CT_SPATIAL];
    int64_t str[CT_SPATIAL], dil[CT_SPATIAL], pads[2 * CT_SPATIAL] = {0};
    int32_t ni, nb;
    char sx[96];
    Status st;
    if ((st = require_float(n, x, 0, err)) ||
        (st = read_int_list(n, in[1], img, CT_SPATIAL, &ni, err)) ||
        (st = read_int_list(n, in[2], blk, CT_SPATIAL, &nb, err)))
        return st;
    int s = ni;
    for (int a = 0; a < s; a++) str[a] = dil[a] = 1;
    if (ni != nb || s < 1 ||
        (st = attr_ints_exact(n, "strides", str, s, err)) ||
        (st = attr_ints_exact(n, "dilations", dil, s, err)) ||
        (st = attr_ints_exact(n, "pads", pads, 2 * s, err)))
        return st ? st : node_fail(n, err, ST_SHAPE_MISMATCH, "image_shape "
                                   "and block_shape must have one length");
    /* blocks along each axis, and their product L */
    int64_t nblk[CT_SPATIAL], L = 1, kprod = 1;
    for (int a = 0; a < s; a++) {
        if (str[a] < 1 || dil[a] < 1 || blk[a] < 1 || img[a] < 0 ||
            pads[a] < 0 || pads[s + a] < 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "invalid block, "
                             "stride, dilation or pad");
        int64_t room = img[a] + pads[a] + pads[s + a] - (blk[a] - 1) * dil[a] - 1;
        nblk[a] = room < 0 ? 0 : room / str[a] + 1;
        L *= nblk[a];
        kprod *= blk[a];
    }
    if (x->ndim != 3 || x->dims[1] % kprod || x->dims[2] != L)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s does not fit "
                         "%lld blocks of %lld elements",
                         shape_str(x->dims, x->ndim, sx, 96), (long long)L,
                         (long long)kprod);
    int64_t c = x->dims[1] / kprod, dims[2 + CT_SPATIAL] = {x->dims[0], c};
    int64_t plane = 1;
    for (int a = 0; a < s; a++) {
        dims[2 + a] = img[a];
        plane *= img[a];
    }
    if ((st = tensor_alloc(out[0], DT_FLOAT, s + 2, dims, err)))
        return st;
    float *y = out[0]->data;
    const float *xd = x->data;
    memset(y, 0, (size_t)tensor_nbytes(out[0]));
    int64_t ki[CT_SPATIAL], li[CT_SPATIAL];
    for (int64_t b = 0; b < x->dims[0] * c; b++)
        for (int64_t k = 0; k < kprod; k++)
            for (int64_t l = 0; l < L; l++) {
                int64_t rem = k, reml = l, off = 0;
                int inside = 1;
                for (int a = s - 1; a >= 0; a--) {
                    ki[a] = rem % blk[a]; rem /= blk[a];
                    li[a] = reml % nblk[a]; reml /= nblk[a];
                }
                for (int a = 0; a < s; a++) {
                    int64_t pos = li[a] * str[a] - pads[a] + ki[a] * dil[a];
                    inside &= pos >= 0 && pos < img[a];
                    off = off * img[a] + pos;
                }
                if (inside)
                    y[b * plane + off] += xd[(b * kprod + k) * L + l];
            }
    return ST_OK;
}
