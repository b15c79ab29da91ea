/*
 * ops_deformconv.c: DeformConv (opset 19, 22), 2-D.
 *
 * A convolution whose kernel taps move: tap (ki, kj) of output position
 * (i, j) reads X bilinearly (zero outside) at
 *     (i * stride_h - pad_top + ki * dilation_h + offset_h,
 *      j * stride_w - pad_left + kj * dilation_w + offset_w),
 * the offsets read from the offset input per offset group, tap and output
 * position, and the sample is scaled by the optional mask. Per image and
 * group the samples form columns (c/group * kh * kw, oh * ow) that the
 * group's weights multiply; the bias is added per output channel. Values
 * are computed in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

/* TODO: 1-D and 3-D DeformConv (the reference implements 2-D only) */
#define DC_AXES 2
#define DC_MAX_COLUMN_BYTES 2147483648.0 /* the column buffer of one group */

typedef struct {
    int64_t kernel[DC_AXES];   /* 0: take from W */
    int64_t stride[DC_AXES], dilation[DC_AXES], pads[2 * DC_AXES];
    int64_t group, offset_group;
} DeformParams;

/* Read and check the attributes once at load. */
Status prep_deform_conv(const Model *m, Node *n, Err *err)
{
    (void)m;
    DeformParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    for (int a = 0; a < DC_AXES; a++) {
        p->stride[a] = p->dilation[a] = 1;
        p->pads[a] = p->pads[a + DC_AXES] = 0;
    }
    Status st;
    if ((st = attr_ints_exact(n, "kernel_shape", p->kernel, DC_AXES, err)) ||
        (st = attr_ints_exact(n, "strides", p->stride, DC_AXES, err)) ||
        (st = attr_ints_exact(n, "dilations", p->dilation, DC_AXES, err)) ||
        (st = attr_ints_exact(n, "pads", p->pads, 2 * DC_AXES, err)))
        return st;
    p->group = attr_int(n, "group", 1);
    p->offset_group = attr_int(n, "offset_group", 1);
    int ok = p->group >= 1 && p->group <= 1 << 20 && p->offset_group >= 1 &&
             p->offset_group <= 1 << 20;
    for (int a = 0; a < DC_AXES; a++)
        ok = ok && p->stride[a] >= 1 && p->stride[a] <= 1 << 20 &&
             p->dilation[a] >= 1 && p->dilation[a] <= 1 << 20 &&
             p->kernel[a] >= 0 && p->kernel[a] <= 1 << 20 &&
             p->pads[a] >= 0 && p->pads[a] <= 1 << 20 &&
             p->pads[a + DC_AXES] >= 0 && p->pads[a + DC_AXES] <= 1 << 20;
    if (!ok)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "group, offset_group, "
                         "strides and dilations must be 1 to 2^20, pads and "
                         "kernel_shape 0 to 2^20");
    return ST_OK;
}

/* X[plane] (h, w) read bilinearly at (y, x), zero outside. */
static double dc_bilinear(const Tensor *t, int64_t plane, int64_t h, int64_t w,
                          double y, double x)
{
    if (!(y > -1.0 && y < (double)h && x > -1.0 && x < (double)w))
        return 0.0; /* also NaN: no tap in range */
    double fy = floor(y), fx = floor(x);
    double ty = y - fy, tx = x - fx;
    int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
    double s = 0.0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int64_t yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w)
                continue;
            double wt = (dy ? ty : 1 - ty) * (dx ? tx : 1 - tx);
            s += wt * elem_get(t, plane + yy * w + xx);
        }
    return s;
}

/* Fail unless t (may be NULL when optional) has x's dtype and the dims. */
static Status dc_check(const Node *n, const Tensor *t, const Tensor *x,
                       const char *what, const int64_t *dims, int32_t ndim,
                       Err *err)
{
    char sa[96], sb[96];
    int ok = t->dtype == x->dtype && t->ndim == ndim;
    for (int32_t d = 0; ok && d < ndim; d++) ok = t->dims[d] == dims[d];
    if (ok)
        return ST_OK;
    return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be %s %s, got %s %s",
                     what, dtype_name(x->dtype), shape_str(dims, ndim, sa, 96),
                     dtype_name(t->dtype), shape_str(t->dims, t->ndim, sb, 96));
}

/* Y (n, oc, oh, ow) = deformable convolution of X (n, c, h, w) with
   W (oc, c/group, kh, kw), offset (n, og*kh*kw*2, oh, ow), optional
   B (oc,) and mask (n, og*kh*kw, oh, ow). */
Status op_deform_conv(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    const DeformParams *p = n->params;
    const Tensor *x = in[0], *wt = in[1], *of = in[2];
    const Tensor *bias = n->n_in > 3 ? in[3] : NULL;
    const Tensor *mask = n->n_in > 4 ? in[4] : NULL;
    char sx[96], sw[96];

    /* step 1: shapes of X and W, then of the output */
    if (!elem_is_float(x->dtype) || x->ndim != 2 + DC_AXES ||
        wt->dtype != x->dtype || wt->ndim != 2 + DC_AXES)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "expected float X (n, c, h,"
                         " w) and W (oc, c/group, kh, kw) of its dtype, got %s "
                         "%s and %s %s (TODO: 1-D and 3-D)", dtype_name(x->dtype),
                         shape_str(x->dims, x->ndim, sx, 96), dtype_name(wt->dtype),
                         shape_str(wt->dims, wt->ndim, sw, 96));
    int64_t nb = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t oc = wt->dims[0], icg = wt->dims[1], kh = wt->dims[2], kw = wt->dims[3];
    int64_t g = p->group, og = p->offset_group;
    if (icg * g != c || oc % g != 0 || c % og != 0 ||
        (p->kernel[0] && p->kernel[0] != kh) || (p->kernel[1] && p->kernel[1] != kw))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "X %s and W %s do not fit "
                         "group %lld, offset_group %lld and kernel_shape",
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(wt->dims, wt->ndim, sw, 96), (long long)g,
                         (long long)og);
    int64_t oh = (h + p->pads[0] + p->pads[2] - ((kh - 1) * p->dilation[0] + 1)) /
                 p->stride[0] + 1;
    int64_t ow = (w + p->pads[1] + p->pads[3] - ((kw - 1) * p->dilation[1] + 1)) /
                 p->stride[1] + 1;
    if (oh < 1 || ow < 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "the kernel (%lld, %lld) "
                         "does not fit X %s with its pads and dilations",
                         (long long)kh, (long long)kw,
                         shape_str(x->dims, x->ndim, sx, 96));
    int64_t taps = kh * kw;
    int64_t odims[4] = {nb, og * taps * 2, oh, ow};
    int64_t mdims[4] = {nb, og * taps, oh, ow};
    int64_t bdims[1] = {oc};
    Status st;
    if ((st = dc_check(n, of, x, "offset", odims, 4, err)) ||
        (mask && (st = dc_check(n, mask, x, "mask", mdims, 4, err))) ||
        (bias && (st = dc_check(n, bias, x, "B", bdims, 1, err))))
        return st;
    int64_t ydims[4] = {nb, oc, oh, ow};
    if ((st = tensor_alloc(out[0], x->dtype, 4, ydims, err)) || out[0]->numel == 0)
        return st;

    /* step 2: per image and group, sample the columns, then multiply */
    int64_t rows = icg * taps, cols = oh * ow, ocg = oc / g, icog = c / og;
    if ((double)rows * (double)cols * sizeof(double) > DC_MAX_COLUMN_BYTES)
        return node_fail(n, err, ST_OOM, "columns of %lld x %lld samples do not "
                         "fit in memory", (long long)rows, (long long)cols);
    double *col = malloc((size_t)(rows * cols + 1) * sizeof *col); /* (rows, cols) */
    if (!col)
        return node_fail(n, err, ST_OOM, "out of memory for %lld x %lld samples",
                         (long long)rows, (long long)cols);
    for (int64_t b = 0; b < nb; b++)
        for (int64_t gi = 0; gi < g; gi++) {
            for (int64_t ci = 0; ci < icg; ci++) {
                int64_t ic = gi * icg + ci, ogi = ic / icog;
                int64_t plane = (b * c + ic) * h * w;
                for (int64_t k = 0; k < taps; k++) {
                    int64_t ki = k / kw, kj = k % kw;
                    int64_t ob = ((b * og + ogi) * taps + k) * 2 * cols;
                    int64_t mb = ((b * og + ogi) * taps + k) * cols;
                    double *dst = col + (ci * taps + k) * cols;
                    for (int64_t i = 0; i < oh; i++)
                        for (int64_t j = 0; j < ow; j++) {
                            int64_t q = i * ow + j;
                            double y = (double)(i * p->stride[0] - p->pads[0] +
                                                ki * p->dilation[0]) +
                                       elem_get(of, ob + q);
                            double xx = (double)(j * p->stride[1] - p->pads[1] +
                                                 kj * p->dilation[1]) +
                                        elem_get(of, ob + cols + q);
                            double v = dc_bilinear(x, plane, h, w, y, xx);
                            dst[q] = mask ? v * elem_get(mask, mb + q) : v;
                        }
                }
            }
            for (int64_t o = gi * ocg; o < (gi + 1) * ocg; o++) {
                double b0 = bias ? elem_get(bias, o) : 0.0;
                for (int64_t q = 0; q < cols; q++) {
                    double s = b0;
                    for (int64_t k = 0; k < rows; k++)
                        s += elem_get(wt, o * rows + k) * col[k * cols + q];
                    elem_set(out[0], (b * oc + o) * cols + q, s);
                }
            }
        }
    free(col);
    return ST_OK;
}
