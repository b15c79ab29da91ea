/*
 * ops_resize.c: Resize (opset 10 to 19) and Upsample (7, 9).
 *
 * Resizing is separable: for each axis and each output coordinate we list
 * the input taps (index, weight) once; an output element is then the sum,
 * over every combination of one tap per axis, of the product of weights
 * times the input element. Nearest has one tap, linear two, cubic four;
 * antialiasing (opset 18) widens linear and cubic filters by 1/scale when
 * downsampling. Values are computed in double and stored in X's dtype.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

typedef enum { RM_NEAREST, RM_LINEAR, RM_CUBIC } ResizeMode;
typedef enum {
    CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS, CT_ASYMMETRIC, CT_TF_CROP_AND_RESIZE,
    CT_TF_HALF_PIXEL_FOR_NN
} CoordMode;
typedef enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL }
    NearestMode;
typedef enum { KA_STRETCH, KA_NOT_LARGER, KA_NOT_SMALLER } AspectPolicy;

typedef struct {
    int mode, coord, nearest, policy;
    int exclude_outside, antialias;
    double cubic_a, extrapolation;
    int32_t n_axes;            /* 0: all axes */
    int64_t axes[MAX_RANK];
    int32_t n_scales;          /* Upsample-7: scales from the attribute */
    double scales[MAX_RANK];
} ResizeParams;

/* Index of s in names[0..count), or -1. */
static int pick(const char *s, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

/* Read and check every string attribute at load; opset 10 and Upsample
   default to asymmetric coordinates and floor rounding. */
Status prep_resize(const Model *m, Node *n, Err *err)
{
    (void)m;
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
        "align_corners", "asymmetric", "tf_crop_and_resize",
        "tf_half_pixel_for_nn"};
    static const char *const nearests[] = {"round_prefer_floor",
                                           "round_prefer_ceil", "floor", "ceil"};
    static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
    ResizeParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    int upsample = !strcmp(n->op_type, "Upsample");
    /* opset 10 and Upsample: asymmetric coordinates, nearest rounds down */
    int old = upsample || n->opset < 11;
    const char *mode = attr_string(n, "mode", "nearest");
    const char *coord = attr_string(n, "coordinate_transformation_mode",
                                    old ? "asymmetric" : "half_pixel");
    const char *near = attr_string(n, "nearest_mode",
                                   old ? "floor" : "round_prefer_floor");
    const char *pol = attr_string(n, "keep_aspect_ratio_policy", "stretch");
    p->mode = pick(mode, modes, old ? 2 : 3);
    if (upsample && !strcmp(mode, "bilinear"))
        p->mode = RM_LINEAR;
    p->coord = pick(coord, coords, n->opset >= 19 ? 6 : 7);
    if (n->opset < 19 && p->coord == CT_HALF_PIXEL_SYMMETRIC)
        p->coord = -1;
    /* TODO: tf_half_pixel_for_nn (opset 11-12): onnxruntime's results
       differ from the spec's formula and onnx.reference lacks it */
    if (p->coord == CT_TF_HALF_PIXEL_FOR_NN)
        p->coord = -1;
    p->nearest = pick(near, nearests, 4);
    p->policy = pick(pol, policies, 3);
    if (p->mode < 0 || p->coord < 0 || p->nearest < 0 || p->policy < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "unsupported mode '%s', "
                         "coordinate_transformation_mode '%s', nearest_mode "
                         "'%s' or keep_aspect_ratio_policy '%s' at opset %d",
                         mode, coord, near, pol, (int)n->opset);
    p->cubic_a = attr_float(n, "cubic_coeff_a", -0.75f);
    p->exclude_outside = attr_int(n, "exclude_outside", 0) != 0;
    p->extrapolation = attr_float(n, "extrapolation_value", 0.0f);
    p->antialias = attr_int(n, "antialias", 0) != 0;
    const Attr *ax = node_attr(n, "axes");
    if (ax && (ax->type != AT_INTS || ax->count > MAX_RANK))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "axes must list at most "
                         "%d integers", MAX_RANK);
    for (int32_t i = 0; ax && i < ax->count; i++)
        p->axes[i] = attr_ints_at(ax, i);
    p->n_axes = ax ? ax->count : 0;
    const Attr *sc = upsample && n->opset < 9 ? node_attr(n, "scales") : NULL;
    if (sc && (sc->type != AT_FLOATS || sc->count > MAX_RANK))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "scales must list at most "
                         "%d floats", MAX_RANK);
    for (int32_t i = 0; sc && i < sc->count; i++)
        p->scales[i] = attr_floats_at(sc, i);
    p->n_scales = sc ? sc->count : 0;
    if (upsample && n->opset < 9 && !sc)
        return node_fail(n, err, ST_BAD_FORMAT, "the scales attribute is "
                         "missing");
    return ST_OK;
}

/* Input coordinate of output coordinate x along one axis; out is the
   integer output length, out_f = scale * in the exact one. */
static double resize_coord(const ResizeParams *p, double x, double scale,
                           int64_t in, int64_t out, double r0, double r1)
{
    double out_f = scale * (double)in;
    switch (p->coord) {
    case CT_HALF_PIXEL: return (x + 0.5) / scale - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adj = (double)out / out_f;
        double center = (double)in / 2;
        return center * (1 - adj) + (x + 0.5) / scale - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL:
        return out_f == 1.0 ? -0.5 : (x + 0.5) / scale - 0.5;
    case CT_ALIGN_CORNERS:
        return out_f == 1.0 ? 0.0 : x * (double)(in - 1) / (out_f - 1);
    case CT_TF_CROP_AND_RESIZE:
        return r0 * (double)(in - 1) +
               (out_f == 1.0 ? (r1 - r0) * (double)(in - 1) / 2
                             : x * (r1 - r0) * (double)(in - 1) / (out_f - 1));
    case CT_TF_HALF_PIXEL_FOR_NN: return (x + 0.5) / scale;
    default: return x / scale; /* asymmetric */
    }
}

/* Cubic convolution kernel of parameter a at distance d. */
static double cubic_w(double d, double a)
{
    d = fabs(d);
    if (d <= 1) return ((a + 2) * d - (a + 3)) * d * d + 1;
    if (d < 2) return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a;
    return 0.0;
}

/* Taps of one axis: for output coordinate o, count[o] entries of
   (index, weight) from index[o * width], plus out-of-range marks. */
typedef struct {
    int64_t width;
    int64_t *index;
    double *weight;
    int32_t *count;
    uint8_t *outside; /* tf_crop_and_resize: the coordinate is outside */
} AxisTaps;

/* Fill t for one axis of in -> out elements at the given scale. */
static Status axis_taps(const ResizeParams *p, int64_t in, int64_t out,
                        double scale, double r0, double r1, AxisTaps *t,
                        Err *err)
{
    double s = (p->antialias && scale < 1.0 && p->mode != RM_NEAREST) ? scale : 1.0;
    int64_t start = 0, foot = 1;
    /* checked before the float -> int conversions below */
    if (!(s > 1.0 / 1024))
        return fail(err, ST_UNSUPPORTED_OP, "resize: antialias filter too wide "
                    "(scale %g)", scale);
    if (p->mode == RM_LINEAR) {
        start = (int64_t)floor(-1.0 / s) + 1;
        foot = 2 - 2 * start;
    } else if (p->mode == RM_CUBIC) {
        start = (int64_t)floor(-2.0 / s) + 1;
        foot = 2 - 2 * start;
    }
    t->width = foot;
    size_t cells = (size_t)(out * foot + 1);
    t->index = malloc(cells * sizeof(int64_t));
    t->weight = malloc(cells * sizeof(double));
    t->count = malloc((size_t)(out + 1) * sizeof(int32_t));
    t->outside = calloc((size_t)(out + 1), 1);
    if (!t->index || !t->weight || !t->count || !t->outside)
        return fail(err, ST_OOM, "resize: out of memory");
    for (int64_t o = 0; o < out; o++) {
        double x = resize_coord(p, (double)o, scale, in, out, r0, r1);
        int64_t *ix = t->index + o * foot;
        double *w = t->weight + o * foot;
        t->outside[o] = p->coord == CT_TF_CROP_AND_RESIZE &&
                        (x < 0 || x > (double)(in - 1));
        if (!isfinite(x)) x = 0.0;
        if (x < -1e9) x = -1e9;
        if (x > 1e9) x = 1e9;
        if (p->mode == RM_NEAREST) {
            double f = floor(x), r;
            switch (p->nearest) {
            case NM_FLOOR: r = f; break;
            case NM_CEIL: r = ceil(x); break;
            case NM_ROUND_PREFER_CEIL: r = x - f >= 0.5 ? f + 1 : f; break;
            default: r = x - f > 0.5 ? f + 1 : f; break;
            }
            int64_t k = (int64_t)r;
            ix[0] = k < 0 ? 0 : k >= in ? in - 1 : k;
            w[0] = 1.0;
            t->count[o] = 1;
            continue;
        }
        /* the reference prefers the left neighbour: ratio in (0, 1] */
        int64_t x0 = (int64_t)floor(x);
        double ratio = x - (double)x0;
        if (ratio == 0.0) { x0 -= 1; ratio = 1.0; }
        double sum = 0.0;
        int32_t c = 0;
        for (int64_t i = start; i < start + foot; i++) {
            double d = (double)i - ratio;
            double wt = p->mode == RM_LINEAR ? fmax(0.0, 1.0 - fabs(d * s))
                                             : cubic_w(d * s, p->cubic_a);
            int64_t k = x0 + i;
            if (p->exclude_outside && (k < 0 || k >= in))
                wt = 0.0;
            sum += wt;
            if (wt == 0.0)
                continue;
            ix[c] = k < 0 ? 0 : k >= in ? in - 1 : k;
            w[c++] = wt;
        }
        for (int32_t j = 0; j < c && sum != 0.0; j++) w[j] /= sum;
        t->count[o] = c;
    }
    return ST_OK;
}

/* Read a float list (scales, roi) from a float tensor into v. */
static Status read_floats(const Node *n, const Tensor *t, double *v, int cap,
                          int32_t *count, const char *what, Err *err)
{
    if (!elem_is_float(t->dtype) || t->ndim > 1 || t->numel > cap)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be a 1-D float "
                         "list of at most %d values", what, cap);
    for (int64_t i = 0; i < t->numel; i++) v[i] = elem_get(t, i);
    *count = (int32_t)t->numel;
    return ST_OK;
}

/* Y = X resized on some or all axes by scales or to sizes. */
Status op_resize(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const ResizeParams *p = n->params;
    const Tensor *x = in[0];
    int32_t r = x->ndim;
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    /* TODO: linear and cubic on integers: onnxruntime and onnx.reference
       round differently; refused rather than guessed */
    if (x->dtype == DT_BOOL || (p->mode != RM_NEAREST && !elem_is_float(x->dtype)))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "%s input in mode %s; "
                         "integer inputs support nearest only",
                         dtype_name(x->dtype),
                         p->mode == RM_LINEAR ? "linear" : "cubic");

    /* step 1: axes, and the optional inputs by opset */
    int upsample = !strcmp(n->op_type, "Upsample");
    const Tensor *roi_t = NULL, *sc_t = NULL, *sz_t = NULL;
    if (upsample || n->opset < 11) {
        sc_t = n->n_in > 1 ? in[1] : NULL;
    } else {
        roi_t = n->n_in > 1 ? in[1] : NULL;
        sc_t = n->n_in > 2 ? in[2] : NULL;
        sz_t = n->n_in > 3 ? in[3] : NULL;
    }
    if (sc_t && sc_t->numel == 0) sc_t = NULL;
    if (sz_t && sz_t->numel == 0) sz_t = NULL;
    if (roi_t && roi_t->numel == 0) roi_t = NULL;
    int64_t axes[MAX_RANK];
    int32_t na = p->n_axes ? p->n_axes : r;
    int seen[MAX_RANK] = {0};
    for (int32_t i = 0; i < na; i++) {
        int32_t a;
        if ((st = norm_axis(n, p->n_axes ? p->axes[i] : i, r, &a, err)))
            return st;
        if (seen[a]++)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "axis %d repeated",
                             (int)a);
        axes[i] = a;
    }

    /* step 2: per-axis scale and output size */
    double scale[MAX_RANK], roi[2 * MAX_RANK], vals[MAX_RANK];
    int64_t dims[MAX_RANK];
    int32_t cnt = 0;
    for (int32_t d = 0; d < r; d++) {
        scale[d] = 1.0;
        dims[d] = x->dims[d];
        roi[d] = 0.0;
        roi[r + d] = 1.0;
    }
    if (p->n_scales) {
        cnt = p->n_scales;
        memcpy(vals, p->scales, sizeof(double) * (size_t)cnt);
    } else if (sz_t) {
        int64_t sizes[MAX_RANK];
        if ((st = read_int_list(n, sz_t, sizes, MAX_RANK, &cnt, err)))
            return st;
        for (int32_t i = 0; i < cnt; i++) vals[i] = (double)sizes[i];
    } else if (sc_t) {
        if ((st = read_floats(n, sc_t, vals, MAX_RANK, &cnt, "scales", err)))
            return st;
    } else {
        return node_fail(n, err, ST_BAD_FORMAT, "neither scales nor sizes is "
                         "given");
    }
    if (cnt != na)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s lists %d values for "
                         "%d axes", sz_t && !p->n_scales ? "sizes" : "scales",
                         (int)cnt, (int)na);
    if (sz_t && !p->n_scales) {
        double common = 0.0;
        for (int32_t i = 0; i < na && p->policy != KA_STRETCH; i++) {
            double q = vals[i] / (double)x->dims[axes[i]];
            if (i == 0 || (p->policy == KA_NOT_LARGER ? q < common : q > common))
                common = q;
        }
        for (int32_t i = 0; i < na; i++) {
            int64_t a = axes[i], len = x->dims[a];
            if (vals[i] < 0 || vals[i] > (double)(1 << 30))
                return node_fail(n, err, ST_SHAPE_MISMATCH, "invalid size %g",
                                 vals[i]);
            if (p->policy == KA_STRETCH) {
                dims[a] = (int64_t)vals[i];
                scale[a] = len ? vals[i] / (double)len : 1.0;
            } else {
                dims[a] = (int64_t)rint(common * (double)len);
                scale[a] = common;
            }
        }
    } else {
        for (int32_t i = 0; i < na; i++) {
            int64_t a = axes[i];
            double o = floor(vals[i] * (double)x->dims[a]);
            if (!(vals[i] > 0) || !(o < (double)(1 << 30)))
                return node_fail(n, err, ST_SHAPE_MISMATCH, "scales must be "
                                 "positive and the result not too large, got "
                                 "%g", vals[i]);
            scale[a] = vals[i];
            dims[a] = (int64_t)o;
        }
    }
    if (roi_t && p->coord == CT_TF_CROP_AND_RESIZE) {
        double rv[2 * MAX_RANK];
        int32_t nr;
        if ((st = read_floats(n, roi_t, rv, 2 * MAX_RANK, &nr, "roi", err)))
            return st;
        if (nr != 2 * na)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "roi lists %d values, "
                             "expected %d", (int)nr, (int)(2 * na));
        for (int32_t i = 0; i < na; i++) {
            roi[axes[i]] = rv[i];
            roi[r + axes[i]] = rv[na + i];
        }
    }
    if ((st = tensor_alloc(out[0], x->dtype, r, dims, err)))
        return st;
    if (x->numel == 0 && out[0]->numel > 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot resize an empty "
                         "input to a non-empty output");

    /* step 3: taps per axis */
    AxisTaps taps[MAX_RANK];
    memset(taps, 0, sizeof taps);
    for (int32_t d = 0; d < r && st == ST_OK; d++)
        st = axis_taps(p, x->dims[d], dims[d], scale[d], roi[d], roi[r + d],
                       &taps[d], err);

    /* step 4: every output element as a weighted sum over tap combinations */
    int64_t oi[MAX_RANK] = {0};
    for (int64_t e = 0; st == ST_OK && e < out[0]->numel; e++) {
        int outside = 0;
        for (int32_t d = 0; d < r; d++)
            outside |= taps[d].outside[oi[d]] || taps[d].count[oi[d]] == 0;
        double acc = 0.0;
        int32_t k[MAX_RANK] = {0};
        while (!outside) {
            double w = 1.0;
            int64_t src = 0;
            for (int32_t d = 0; d < r; d++) {
                int64_t cell = oi[d] * taps[d].width + k[d];
                w *= taps[d].weight[cell];
                src += taps[d].index[cell] * x->strides[d];
            }
            acc += w * elem_get(x, src);
            int32_t d = r - 1;
            for (; d >= 0; d--) {
                if (++k[d] < taps[d].count[oi[d]])
                    break;
                k[d] = 0;
            }
            if (d < 0)
                break;
        }
        int empty = 0; /* all weights zero: 0, not the extrapolation value */
        for (int32_t d = 0; d < r; d++) empty |= taps[d].count[oi[d]] == 0;
        elem_set(out[0], e, empty ? 0.0 : outside ? p->extrapolation : acc);
        for (int32_t d = r - 1; d >= 0; d--) {
            if (++oi[d] < dims[d])
                break;
            oi[d] = 0;
        }
    }
    for (int32_t d = 0; d < r; d++) {
        free(taps[d].index);
        free(taps[d].weight);
        free(taps[d].count);
        free(taps[d].outside);
    }
    return st;
}
