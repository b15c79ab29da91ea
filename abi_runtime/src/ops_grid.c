/*
 * ops_grid.c: GridSample (opset 16, 20, 22) and AffineGrid (opset 20).
 *
 * GridSample reads X (n, c, d_1..d_r) at the points of a grid
 * (n, o_1..o_r, r) of normalised coordinates in [-1, 1]; the last grid
 * axis lists them in reverse order (x = width first). Each spatial axis
 * gets its own taps (index, weight): nearest one, linear two, cubic four;
 * an output element is the sum over every combination of one tap per axis
 * of the product of weights times the input element. Padding decides what
 * a tap outside the input reads: zero, the nearest border element, or the
 * element mirrored at the borders. Opset 16 names the modes "bilinear" and
 * "bicubic" and allows 2-D only; opset 20 names them "linear" and "cubic"
 * and allows 1-D to 3-D here. Values are computed in double. Cubic
 * sampling with border padding follows PyTorch and onnxruntime, which
 * clamp each tap rather than the point.
 *
 * AffineGrid builds the grid of normalised coordinates that GridSample
 * reads: each base point (x, y[, z], 1) multiplied by theta (n, r, r+1).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

#define GS_MAX_AXES 3             /* spatial axes of X */
#define GS_MAX_TAPS 4             /* taps per axis (cubic) */
#define GS_MAX_COMBOS 64          /* GS_MAX_TAPS ^ GS_MAX_AXES */
#define GS_COORD_LIMIT 1e9        /* |coordinate| clamp before float -> int */

typedef enum { GM_LINEAR, GM_NEAREST, GM_CUBIC } GridMode;
typedef enum { GP_ZEROS, GP_BORDER, GP_REFLECTION } GridPadding;

typedef struct {
    int mode;           /* GridMode */
    int padding;        /* GridPadding */
    int align_corners;  /* 1: -1 and 1 are the centres of the corner elements */
} GridParams;

/* Index of s in names[0..count), or -1. */
static int grid_pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* Read mode, padding_mode and align_corners once at load; the mode names
   follow the node's opset (bilinear/bicubic before 20, linear/cubic from). */
Status prep_grid_sample(const Model *m, Node *n, Err *err)
{
    (void)m;
    static const char *const modes16[] = {"bilinear", "nearest", "bicubic"};
    static const char *const modes20[] = {"linear", "nearest", "cubic"};
    static const char *const pads[] = {"zeros", "border", "reflection"};
    int old = n->opset < 20;
    GridParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    const char *mode = attr_string(n, "mode", old ? "bilinear" : "linear");
    const char *pad = attr_string(n, "padding_mode", "zeros");
    p->mode = grid_pick(mode, old ? modes16 : modes20, 3);
    p->padding = grid_pick(pad, pads, 3);
    p->align_corners = attr_int(n, "align_corners", 0) != 0;
    if (p->mode < 0 || p->padding < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "unsupported mode '%s' or "
                         "padding_mode '%s' at opset %d (modes: %s, nearest, "
                         "%s; padding: zeros, border, reflection)", mode, pad,
                         (int)n->opset, old ? "bilinear" : "linear",
                         old ? "bicubic" : "cubic");
    return ST_OK;
}

/* Mirror x at lo and hi until it lies in [lo, hi]. */
static double grid_reflect(double x, double lo, double hi)
{
    double range = hi - lo;
    if (!(range > 0))
        return lo;
    if (x >= lo && x <= hi)
        return x;
    double dx = x < lo ? lo - x : x - hi;
    double k = floor(dx / range);
    double r = dx - k * range;
    int even = fmod(k, 2.0) == 0.0;
    if (x < lo)
        return even ? lo + r : hi - r;
    return even ? hi - r : lo + r;
}

/* The element index that integer position i of an axis of d elements
   reads, or -1 for a zero (padding zeros, i outside). */
static int64_t grid_pixel(const GridParams *p, int64_t i, int64_t d,
                          double lo, double hi)
{
    if (p->padding == GP_ZEROS)
        return i >= 0 && i < d ? i : -1;
    if (p->padding == GP_REFLECTION)
        i = (int64_t)grid_reflect((double)i, lo, hi);
    return i < 0 ? 0 : i >= d ? d - 1 : i;
}

/* Keys' cubic convolution weights (a = -0.75) of the four taps at
   x0 - 1 .. x0 + 2 for the fraction t = x - x0 in [0, 1). */
static void grid_cubic_weights(double t, double *w)
{
    const double a = -0.75;
    double d[4] = {t + 1, t, 1 - t, 2 - t};
    for (int k = 0; k < 4; k++) {
        double s = d[k];
        w[k] = s <= 1 ? ((a + 2) * s - (a + 3)) * s * s + 1
                      : ((a * s - 5 * a) * s + 8 * a) * s - 4 * a;
    }
}

/* Taps of one axis of d elements for normalised coordinate v: ix[k] is an
   element index or -1 (reads zero), w[k] its weight; returns the count. */
static int grid_taps(const GridParams *p, double v, int64_t d, int64_t *ix,
                     double *w)
{
    double lo = p->align_corners ? 0.0 : -0.5;
    double hi = p->align_corners ? (double)d - 1 : (double)d - 0.5;
    /* the reference denormalises into float32 */
    double x = (float)(p->align_corners ? (v + 1) / 2 * (double)(d - 1)
                                        : ((v + 1) * (double)d - 1) / 2);
    if (isnan(x))
        x = lo - 1; /* NaN reads as a point left of the input */
    x = x < -GS_COORD_LIMIT ? -GS_COORD_LIMIT
                            : x > GS_COORD_LIMIT ? GS_COORD_LIMIT : x;
    if (p->mode == GM_NEAREST)
        x = nearbyint(x); /* half to even */
    if (x < lo || x > hi) {
        /* cubic with border padding clamps each tap, not the point, as
           PyTorch and onnxruntime do (onnx.reference clamps the point) */
        if (p->padding == GP_BORDER && p->mode != GM_CUBIC)
            x = x < 0 ? 0 : x > (double)(d - 1) ? (double)(d - 1) : x;
        else if (p->padding == GP_REFLECTION)
            x = grid_reflect(x, lo, hi);
    }
    if (p->mode == GM_NEAREST) {
        ix[0] = grid_pixel(p, (int64_t)x, d, lo, hi);
        w[0] = 1.0;
        return 1;
    }
    double f = floor(x), t = x - f;
    int64_t x0 = (int64_t)f;
    if (p->mode == GM_LINEAR) {
        ix[0] = grid_pixel(p, x0, d, lo, hi);
        ix[1] = grid_pixel(p, x0 + 1, d, lo, hi);
        w[0] = 1 - t;
        w[1] = t;
        return 2;
    }
    grid_cubic_weights(t, w);
    for (int k = 0; k < 4; k++)
        ix[k] = grid_pixel(p, x0 - 1 + k, d, lo, hi);
    return 4;
}

/* Y (n, c, o_1..o_r) = X (n, c, d_1..d_r) sampled at grid (n, o_1..o_r, r). */
Status op_grid_sample(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    const GridParams *p = n->params;
    const Tensor *x = in[0], *g = in[1];
    int32_t r = x->ndim - 2;
    char sx[96], sg[96];

    /* step 1: check dtypes and shapes */
    if (!elem_is_float(x->dtype) || !elem_is_float(g->dtype))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "X and grid must be float "
                         "tensors, got %s and %s", dtype_name(x->dtype),
                         dtype_name(g->dtype));
    if (r < 1 || r > GS_MAX_AXES || (n->opset < 20 && r != 2))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "X must have %s spatial "
                         "axes at opset %d, got shape %s",
                         n->opset < 20 ? "2" : "1 to 3", (int)n->opset,
                         shape_str(x->dims, x->ndim, sx, 96));
    if (g->ndim != r + 2 || g->dims[0] != x->dims[0] || g->dims[r + 1] != r)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "grid must be (n, o_1..o_%d"
                         ", %d) for X %s, got %s", (int)r, (int)r,
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(g->dims, g->ndim, sg, 96));
    int64_t dims[MAX_RANK] = {x->dims[0], x->dims[1]};
    int64_t points = 1, plane = 1;
    for (int32_t a = 0; a < r; a++) {
        dims[2 + a] = g->dims[1 + a];
        points *= g->dims[1 + a];
        plane *= x->dims[2 + a];
    }
    Status st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err);
    if (st != ST_OK || out[0]->numel == 0)
        return st;
    if (plane == 0)
        return node_fail(n, err, ST_BAD_REQUEST, "X %s has no elements to sample",
                         shape_str(x->dims, x->ndim, sx, 96));

    /* step 2: per grid point, the tap combinations, then every channel */
    int64_t nc = x->dims[1];
    for (int64_t b = 0; b < x->dims[0]; b++)
        for (int64_t q = 0; q < points; q++) {
            int64_t off[GS_MAX_COMBOS] = {0};
            double wt[GS_MAX_COMBOS] = {1.0};
            int combos = 1;
            const int64_t gbase = (b * points + q) * r;
            for (int32_t a = 0; a < r; a++) {
                int64_t ix[GS_MAX_TAPS];
                double w[GS_MAX_TAPS];
                /* axis a of X reads grid component r - 1 - a */
                double v = elem_get(g, gbase + r - 1 - a);
                int taps = grid_taps(p, v, x->dims[2 + a], ix, w);
                int64_t stride = x->strides[2 + a];
                int next = 0;
                int64_t noff[GS_MAX_COMBOS];
                double nwt[GS_MAX_COMBOS];
                for (int c = 0; c < combos; c++)
                    for (int k = 0; k < taps; k++) {
                        if (ix[k] < 0)
                            continue;
                        noff[next] = off[c] + ix[k] * stride;
                        nwt[next++] = wt[c] * w[k];
                    }
                memcpy(off, noff, (size_t)next * sizeof *off);
                memcpy(wt, nwt, (size_t)next * sizeof *wt);
                combos = next;
            }
            for (int64_t c = 0; c < nc; c++) {
                int64_t xb = (b * nc + c) * plane;
                double s = 0.0;
                for (int k = 0; k < combos; k++)
                    s += wt[k] * elem_get(x, xb + off[k]);
                elem_set(out[0], (b * nc + c) * points + q, s);
            }
        }
    return ST_OK;
}

/* Normalised coordinate of element i of an axis of s elements. */
static double affine_base(int64_t i, int64_t s, int align_corners)
{
    if (align_corners)
        return s > 1 ? -1.0 + 2.0 * (double)i / (double)(s - 1) : 0.0;
    return -1.0 + (2.0 * (double)i + 1.0) / (double)s;
}

/* grid (n, h, w, 2) or (n, d, h, w, 3) = theta (n, 2, 3) or (n, 3, 4)
   times the base points (x, y[, z], 1) of size (n, c, h, w) or
   (n, c, d, h, w). */
Status op_affine_grid(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    const Tensor *th = in[0], *sz = in[1];
    int align = attr_int(n, "align_corners", 0) != 0;
    int64_t size[5];
    char st_[96];

    /* step 1: read size, check theta against it */
    if (!elem_is_float(th->dtype) || !elem_is_index(sz->dtype) ||
        sz->ndim != 1 || (sz->numel != 4 && sz->numel != 5))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected float theta and "
                         "an int64 size of 4 or 5 values, got %s and %s %s",
                         dtype_name(th->dtype), dtype_name(sz->dtype),
                         shape_str(sz->dims, sz->ndim, st_, 96));
    int32_t r = (int32_t)sz->numel - 2;
    for (int32_t i = 0; i < r + 2; i++) {
        size[i] = tensor_get_int(sz, i);
        if (size[i] < 0 || size[i] > INT32_MAX)
            return node_fail(n, err, ST_BAD_REQUEST, "size[%d] is %lld, "
                             "expected 0 to %d", (int)i, (long long)size[i],
                             INT32_MAX);
    }
    if (th->ndim != 3 || th->dims[0] != size[0] || th->dims[1] != r ||
        th->dims[2] != r + 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "theta must be (%lld, %d, "
                         "%d) for size of %d values, got %s", (long long)size[0],
                         (int)r, (int)r + 1, (int)r + 2,
                         shape_str(th->dims, th->ndim, st_, 96));
    int64_t dims[5] = {size[0]};
    for (int32_t a = 0; a < r; a++)
        dims[1 + a] = size[2 + a];
    dims[r + 1] = r;
    Status st = tensor_alloc(out[0], th->dtype, r + 2, dims, err);
    if (st != ST_OK || out[0]->numel == 0)
        return st;
    int64_t points = out[0]->numel / (size[0] * r); /* product fits: allocated */

    /* step 2: each point (x, y[, z], 1), x along the last axis */
    for (int64_t b = 0; b < size[0]; b++)
        for (int64_t q = 0; q < points; q++) {
            double base[4] = {0, 0, 0, 1};
            int64_t rest = q;
            for (int32_t a = r - 1; a >= 0; a--) {
                int64_t s = size[2 + a];
                base[r - 1 - a] = affine_base(rest % s, s, align);
                rest /= s;
            }
            base[r] = 1.0;
            for (int32_t i = 0; i < r; i++) {
                double v = 0.0;
                for (int32_t j = 0; j <= r; j++)
                    v += elem_get(th, (b * r + i) * (r + 1) + j) * base[j];
                elem_set(out[0], (b * points + q) * r + i, v);
            }
        }
    return ST_OK;
}
