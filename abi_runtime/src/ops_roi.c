/*
 * ops_roi.c: RoiAlign (opset 10, 16, 22).
 *
 * Each region of interest (x1, y1, x2, y2), scaled by spatial_scale, is
 * cut into output_height x output_width bins; each bin averages (mode avg)
 * or takes the largest (mode max) of a regular grid of bilinear samples,
 * sampling_ratio per bin side or ceil(bin size) when it is 0. Opset 16
 * added coordinate_transformation_mode: half_pixel (its default) shifts
 * the region by half a pixel; output_half_pixel (opset 10's only mode)
 * does not and stretches regions to at least one pixel. Like onnxruntime
 * and the reference, max mode takes the largest weighted corner term of
 * each sample. Values are computed in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

#define ROI_MAX_GRID 65536 /* samples per bin side */

typedef struct {
    int max_mode;     /* 0 avg, 1 max */
    int half_pixel;   /* coordinate_transformation_mode half_pixel */
    int64_t out_h, out_w, sampling_ratio;
    double scale;
} RoiParams;

/* Read and check the attributes once at load. */
Status prep_roi_align(const Model *m, Node *n, Err *err)
{
    (void)m;
    RoiParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    const char *mode = attr_string(n, "mode", "avg");
    const char *ct = attr_string(n, "coordinate_transformation_mode",
                                 n->opset >= 16 ? "half_pixel"
                                                : "output_half_pixel");
    p->max_mode = !strcmp(mode, "max");
    p->half_pixel = !strcmp(ct, "half_pixel");
    if ((!p->max_mode && strcmp(mode, "avg")) ||
        (!p->half_pixel && strcmp(ct, "output_half_pixel")))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "unsupported mode '%s' or "
                         "coordinate_transformation_mode '%s' (expected avg or "
                         "max, half_pixel or output_half_pixel)", mode, ct);
    p->out_h = attr_int(n, "output_height", 1);
    p->out_w = attr_int(n, "output_width", 1);
    p->sampling_ratio = attr_int(n, "sampling_ratio", 0);
    p->scale = attr_float(n, "spatial_scale", 1.0f);
    if (p->out_h < 1 || p->out_w < 1 || p->out_h > 1 << 16 ||
        p->out_w > 1 << 16 || p->sampling_ratio < 0 ||
        p->sampling_ratio > ROI_MAX_GRID)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "output_height %lld and "
                         "output_width %lld must be 1 to 65536, sampling_ratio "
                         "%lld 0 to %d", (long long)p->out_h,
                         (long long)p->out_w, (long long)p->sampling_ratio,
                         ROI_MAX_GRID);
    return ST_OK;
}

/* One bilinear sample: four element offsets into an (h, w) plane and
   their weights; all zero when the point lies outside [-1, h] x [-1, w]. */
typedef struct {
    int64_t pos[4];
    double w[4];
} RoiSample;

/* The sample of plane (h, w) at (y, x). */
static RoiSample roi_sample(double y, double x, int64_t h, int64_t w)
{
    RoiSample s = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    if (!(y >= -1.0 && y <= (double)h && x >= -1.0 && x <= (double)w))
        return s;
    y = y < 0 ? 0 : y;
    x = x < 0 ? 0 : x;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) { y0 = y1 = h - 1; y = (double)y0; } else y1 = y0 + 1;
    if (x0 >= w - 1) { x0 = x1 = w - 1; x = (double)x0; } else x1 = x0 + 1;
    double ly = y - (double)y0, lx = x - (double)x0;
    double hy = 1.0 - ly, hx = 1.0 - lx;
    s.pos[0] = y0 * w + x0; s.w[0] = hy * hx;
    s.pos[1] = y0 * w + x1; s.w[1] = hy * lx;
    s.pos[2] = y1 * w + x0; s.w[2] = ly * hx;
    s.pos[3] = y1 * w + x1; s.w[3] = ly * lx;
    return s;
}

/* Samples per bin side: sampling_ratio, or ceil(extent / bins) clamped to
   [0, ROI_MAX_GRID]; -1 when the extent is not finite. */
static int64_t roi_grid(int64_t ratio, double extent, int64_t bins)
{
    if (ratio > 0)
        return ratio;
    double g = ceil(extent / (double)bins);
    if (isnan(g) || g > ROI_MAX_GRID)
        return -1;
    return g < 0 ? 0 : (int64_t)g;
}

/* Y (r, c, oh, ow) = pooled bilinear samples of X (n, c, h, w) over each
   region rois[i] (r, 4) of image batch_indices[i] (r,). */
Status op_roi_align(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const RoiParams *p = n->params;
    const Tensor *x = in[0], *rois = in[1], *bi = in[2];
    char sx[96], sr[96], sb[96];

    /* step 1: check dtypes and shapes */
    if (!elem_is_float(x->dtype) || x->ndim != 4 || rois->dtype != x->dtype ||
        rois->ndim != 2 || rois->dims[1] != 4 || !elem_is_index(bi->dtype) ||
        bi->ndim != 1 || bi->dims[0] != rois->dims[0])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected float X (n, c, h,"
                         " w), rois (r, 4) of its dtype and int64 batch_indices "
                         "(r,), got %s %s, %s %s and %s %s",
                         dtype_name(x->dtype), shape_str(x->dims, x->ndim, sx, 96),
                         dtype_name(rois->dtype),
                         shape_str(rois->dims, rois->ndim, sr, 96),
                         dtype_name(bi->dtype), shape_str(bi->dims, bi->ndim, sb, 96));
    int64_t nr = rois->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t oh = p->out_h, ow = p->out_w;
    if (nr > 0 && (h == 0 || w == 0))
        return node_fail(n, err, ST_BAD_REQUEST, "X %s has no pixels to sample",
                         shape_str(x->dims, x->ndim, sx, 96));
    int64_t dims[4] = {nr, c, oh, ow};
    Status st = tensor_alloc(out[0], x->dtype, 4, dims, err);
    if (st != ST_OK)
        return st;

    for (int64_t r = 0; r < nr; r++) {
        /* step 2: the region and its bins */
        int64_t b = tensor_get_int(bi, r);
        if (b < 0 || b >= x->dims[0])
            return node_fail(n, err, ST_BAD_REQUEST, "batch_indices[%lld] is "
                             "%lld, expected 0 to %lld", (long long)r,
                             (long long)b, (long long)x->dims[0] - 1);
        double off = p->half_pixel ? 0.5 : 0.0;
        double x1 = elem_get(rois, r * 4 + 0) * p->scale - off;
        double y1 = elem_get(rois, r * 4 + 1) * p->scale - off;
        double x2 = elem_get(rois, r * 4 + 2) * p->scale - off;
        double y2 = elem_get(rois, r * 4 + 3) * p->scale - off;
        double rw = x2 - x1, rh = y2 - y1;
        if (!p->half_pixel) {
            rw = rw > 1.0 ? rw : 1.0;
            rh = rh > 1.0 ? rh : 1.0;
        }
        double bh = rh / (double)oh, bw = rw / (double)ow;
        int64_t gh = roi_grid(p->sampling_ratio, rh, oh);
        int64_t gw = roi_grid(p->sampling_ratio, rw, ow);
        if (gh < 0 || gw < 0)
            return node_fail(n, err, ST_BAD_REQUEST, "roi %lld spans %g x %g "
                             "pixels, more than %d samples per bin side",
                             (long long)r, rh, rw, ROI_MAX_GRID);
        int64_t count = gh * gw > 1 ? gh * gw : 1;

        /* step 3: each bin of each channel */
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++)
                for (int64_t ch = 0; ch < c; ch++) {
                    int64_t base = (b * c + ch) * h * w;
                    double acc = 0.0;
                    int first = 1;
                    for (int64_t iy = 0; iy < gh; iy++) {
                        double yy = y1 + (double)i * bh +
                                    ((double)iy + 0.5) * bh / (double)gh;
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double xx = x1 + (double)j * bw +
                                        ((double)ix + 0.5) * bw / (double)gw;
                            RoiSample s = roi_sample(yy, xx, h, w);
                            double t[4];
                            for (int k = 0; k < 4; k++)
                                t[k] = s.w[k] * elem_get(x, base + s.pos[k]);
                            if (!p->max_mode) {
                                acc += t[0] + t[1] + t[2] + t[3];
                                continue;
                            }
                            double v = t[0];
                            for (int k = 1; k < 4; k++) v = t[k] > v ? t[k] : v;
                            acc = first || v > acc ? v : acc;
                            first = 0;
                        }
                    }
                    if (!p->max_mode)
                        acc /= (double)count;
                    elem_set(out[0], ((r * c + ch) * oh + i) * ow + j, acc);
                }
    }
    return ST_OK;
}
