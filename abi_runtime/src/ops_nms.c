/*
 * ops_nms.c: NonMaxSuppression (opset 10, 11).
 *
 * Per batch and class, the boxes are visited by falling score (ties: the
 * lower box index first); a box is selected unless it overlaps an already
 * selected box of its class by an IoU above iou_threshold, until
 * max_output_boxes_per_class are selected. With score_threshold given,
 * only boxes scoring above it are candidates. Boxes are corners
 * [y1, x1, y2, x2] in either order (center_point_box 0) or
 * [x_center, y_center, width, height] (1). The output lists the selected
 * [batch, class, box] triples, so its length depends on the data. IoU is
 * computed in float32, as onnxruntime and the reference do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"
#include "sort.h"

/* A candidate box: its score and index in the batch's box list. */
typedef struct {
    float score;
    int64_t idx;
} NmsBox;

/* Order by falling score, then rising index; NaN scores last. */
static int nms_cmp(const void *pa, const void *pb)
{
    const NmsBox *a = pa, *b = pb;
    int na = isnan(a->score), nb = isnan(b->score);
    if (na != nb)
        return na - nb;
    if (!na && a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The extent [lo, hi] of box b (4 floats) along axis 0 (y) or 1 (x). */
static void nms_extent(const float *b, int center, int axis, float *lo,
                       float *hi)
{
    if (center) {
        /* [x_center, y_center, width, height] */
        float c = b[axis == 0 ? 1 : 0], half = b[axis == 0 ? 3 : 2] / 2;
        *lo = c - half;
        *hi = c + half;
        return;
    }
    float u = b[axis], v = b[axis + 2];
    *lo = u < v ? u : v;
    *hi = u < v ? v : u;
}

/* 1 when boxes a and b overlap by an IoU above thr. */
static int nms_suppress(const float *a, const float *b, int center, float thr)
{
    float ay0, ay1, ax0, ax1, by0, by1, bx0, bx1;
    nms_extent(a, center, 1, &ax0, &ax1);
    nms_extent(b, center, 1, &bx0, &bx1);
    float ix0 = ax0 > bx0 ? ax0 : bx0, ix1 = ax1 < bx1 ? ax1 : bx1;
    if (!(ix1 > ix0))
        return 0;
    nms_extent(a, center, 0, &ay0, &ay1);
    nms_extent(b, center, 0, &by0, &by1);
    float iy0 = ay0 > by0 ? ay0 : by0, iy1 = ay1 < by1 ? ay1 : by1;
    if (!(iy1 > iy0))
        return 0;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float area_a = (ax1 - ax0) * (ay1 - ay0), area_b = (bx1 - bx0) * (by1 - by0);
    float uni = area_a + area_b - inter;
    if (!(inter > 0) || !(area_a > 0) || !(area_b > 0) || !(uni > 0))
        return 0;
    return inter / uni > thr;
}

/* Read the optional scalar input t (NULL or empty: absent) as double. */
static int nms_scalar(const Tensor *t, double *v)
{
    if (!t || t->numel == 0)
        return 0;
    *v = elem_get(t, 0);
    return 1;
}

/* selected (m, 3) int64 [batch, class, box] = the boxes kept of
   boxes (b, s, 4) with scores (b, k, s). */
Status op_nms(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *bx = in[0], *sc = in[1];
    int center = attr_int(n, "center_point_box", 0) != 0;
    char sb[96], ss[96];

    /* step 1: check shapes, read the limits */
    if (bx->dtype != DT_FLOAT || sc->dtype != DT_FLOAT || bx->ndim != 3 ||
        bx->dims[2] != 4 || sc->ndim != 3 || sc->dims[0] != bx->dims[0] ||
        sc->dims[2] != bx->dims[1])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected float32 boxes "
                         "(b, s, 4) and scores (b, k, s), got %s %s and %s %s",
                         dtype_name(bx->dtype), shape_str(bx->dims, bx->ndim, sb, 96),
                         dtype_name(sc->dtype), shape_str(sc->dims, sc->ndim, ss, 96));
    const Tensor *opt[5] = {NULL, NULL, NULL, NULL, NULL}; /* absent: NULL */
    for (int i = 2; i < 5 && i < n->n_in; i++)
        opt[i] = in[i];
    for (int i = 2; i < 5; i++) {
        const Tensor *t = opt[i];
        int want_int = i == 2;
        if (t && (t->numel > 1 || (want_int ? !elem_is_index(t->dtype)
                                            : !elem_is_float(t->dtype))))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d must be one "
                             "%s value, got %s of %lld", i,
                             want_int ? "int64" : "float", dtype_name(t->dtype),
                             (long long)t->numel);
    }
    int64_t nb = bx->dims[0], ns = bx->dims[1], nk = sc->dims[1];
    double iou = 0.0, thr = 0.0;
    int64_t max_out = opt[2] && opt[2]->numel > 0 ? tensor_get_int(opt[2], 0) : 0;
    max_out = max_out < 0 ? 0 : max_out > ns ? ns : max_out;
    nms_scalar(opt[3], &iou);
    int has_thr = nms_scalar(opt[4], &thr);
    const float *boxes = bx->data, *scores = sc->data;

    /* step 2: per batch and class, greedy selection into sel (cap, 3) */
    NmsBox *cand = malloc((size_t)(ns + 1) * sizeof *cand);
    int64_t *kept = malloc((size_t)(max_out + 1) * sizeof *kept);
    int64_t cap = 64, m = 0;
    int64_t *sel = malloc((size_t)cap * 3 * sizeof *sel);
    Status st = ST_OK;
    if (!cand || !kept || !sel) {
        st = fail(err, ST_OOM, "NonMaxSuppression: out of memory");
        goto done;
    }
    for (int64_t b = 0; b < nb && max_out > 0; b++)
        for (int64_t k = 0; k < nk; k++) {
            const float *s = scores + (b * nk + k) * ns;
            const float *bb = boxes + b * ns * 4;
            int64_t nc = 0, nkept = 0;
            for (int64_t i = 0; i < ns; i++)
                if (!has_thr || s[i] > (float)thr)
                    cand[nc++] = (NmsBox){s[i], i};
            wx_sort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            for (int64_t c = 0; c < nc && nkept < max_out; c++) {
                int64_t i = cand[c].idx, keep = 1;
                for (int64_t j = 0; j < nkept && keep; j++)
                    keep = !nms_suppress(bb + i * 4, bb + kept[j] * 4, center,
                                         (float)iou);
                if (!keep)
                    continue;
                kept[nkept++] = i;
                if (m == cap) {
                    int64_t *grown = realloc(sel, (size_t)cap * 2 * 3 * sizeof *sel);
                    if (!grown) {
                        st = fail(err, ST_OOM, "NonMaxSuppression: out of memory");
                        goto done;
                    }
                    sel = grown;
                    cap *= 2;
                }
                sel[m * 3] = b;
                sel[m * 3 + 1] = k;
                sel[m * 3 + 2] = i;
                m++;
            }
        }

    /* step 3: the output */
    int64_t dims[2] = {m, 3};
    if ((st = tensor_alloc(out[0], DT_INT64, 2, dims, err)) == ST_OK && m > 0)
        memcpy(out[0]->data, sel, (size_t)m * 3 * sizeof *sel);
done:
    free(cand);
    free(kept);
    free(sel);
    return st;
}
