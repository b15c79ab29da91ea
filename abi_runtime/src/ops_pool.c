/*
 * ops_pool.c: MaxPool (with the optional Indices output), AveragePool,
 * LpPool and their Global forms over 1, 2 or 3 spatial axes (N, C, ...).
 *
 * One N-D kernel serves them all: for each output position it walks the
 * (dilated) window and combines the elements that fall inside the input.
 * Values are computed in double and stored in the input's dtype, so every
 * dtype the spec allows (float16/32/64, int8, uint8) comes out exact or
 * correctly rounded.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"
#include "simd.h"

#define POOL_MAX_SPATIAL 3

typedef enum { POOL_MAX, POOL_AVG, POOL_LP } PoolKind;

typedef struct {
    int kind;           /* PoolKind */
    int global;         /* Global*Pool: the window is the whole input */
    int spatial;        /* spatial axes; 0 until known for global pools */
    int64_t kernel[POOL_MAX_SPATIAL], stride[POOL_MAX_SPATIAL];
    int64_t dilation[POOL_MAX_SPATIAL];
    int64_t pad_begin[POOL_MAX_SPATIAL], pad_end[POOL_MAX_SPATIAL];
    int auto_pad;       /* AutoPad */
    int ceil_mode;
    int count_include_pad;
    int storage_order;  /* MaxPool Indices: 0 row-major, 1 column-major */
    double p;           /* LpPool exponent */
} PoolParams;

/* Read and check the attributes of every pooling op once, at load. */
Status prep_pool(const Model *m, Node *n, Err *err)
{
    (void)m;
    PoolParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    const char *t = n->op_type;
    p->kind = strstr(t, "MaxPool") ? POOL_MAX : strstr(t, "AveragePool")
            ? POOL_AVG : POOL_LP;
    p->global = !strncmp(t, "Global", 6);
    p->p = 2.0;
    const Attr *pa = node_attr(n, "p");
    if (pa)
        p->p = pa->type == AT_INT ? (double)attr_ints_at(pa, 0)
             : pa->type == AT_FLOAT ? attr_floats_at(pa, 0) : 0.0;
    if (p->kind == POOL_LP && !(p->p > 0))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "p must be > 0");
    if (p->global)
        return ST_OK;

    const Attr *k = node_attr(n, "kernel_shape");
    if (!k || k->type != AT_INTS || k->count < 1 || k->count > POOL_MAX_SPATIAL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "kernel_shape must list 1 "
                         "to %d sizes", POOL_MAX_SPATIAL);
    int s = p->spatial = k->count;
    int64_t pads[2 * POOL_MAX_SPATIAL] = {0};
    for (int i = 0; i < s; i++) {
        p->kernel[i] = attr_ints_at(k, i);
        p->stride[i] = p->dilation[i] = 1;
    }
    Status st;
    if ((st = attr_ints_exact(n, "strides", p->stride, s, err)) ||
        (st = attr_ints_exact(n, "dilations", p->dilation, s, err)) ||
        (st = attr_ints_exact(n, "pads", pads, 2 * s, err)))
        return st;
    for (int i = 0; i < s; i++) {
        p->pad_begin[i] = pads[i];
        p->pad_end[i] = pads[s + i];
        if (p->kernel[i] < 1 || p->stride[i] < 1 || p->dilation[i] < 1 ||
            pads[i] < 0 || pads[s + i] < 0 || p->kernel[i] > 1 << 20 ||
            p->stride[i] > 1 << 20 || p->dilation[i] > 1 << 20 ||
            pads[i] > 1 << 20 || pads[s + i] > 1 << 20)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "kernel_shape, strides "
                             "and dilations must be >= 1 and pads >= 0");
        if (pads[i] >= p->kernel[i] * p->dilation[i] ||
            pads[s + i] >= p->kernel[i] * p->dilation[i])
            return node_fail(n, err, ST_UNSUPPORTED_OP, "pads must be smaller "
                             "than the kernel");
    }
    if ((st = read_auto_pad(n, &p->auto_pad, err)))
        return st;
    p->ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
    p->count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
    p->storage_order = attr_int(n, "storage_order", 0) != 0;
    return ST_OK;
}

/* Output size along one axis and the effective leading pad. */
static int64_t pool_out_size(const PoolParams *p, int a, int64_t in,
                             int64_t *pb, int64_t *pe)
{
    int64_t span = (p->kernel[a] - 1) * p->dilation[a] + 1, st = p->stride[a];
    if (p->auto_pad == AP_SAME_UPPER || p->auto_pad == AP_SAME_LOWER) {
        int64_t out = (in + st - 1) / st;
        int64_t total = (out - 1) * st + span - in;
        total = total > 0 ? total : 0;
        *pb = p->auto_pad == AP_SAME_UPPER ? total / 2 : total - total / 2;
        *pe = total - *pb;
        return out;
    }
    *pb = p->auto_pad == AP_VALID ? 0 : p->pad_begin[a];
    *pe = p->auto_pad == AP_VALID ? 0 : p->pad_end[a];
    int64_t room = in + *pb + *pe - span;
    if (room < 0)
        return -1;
    if (!p->ceil_mode)
        return room / st + 1;
    int64_t out = (room + st - 1) / st + 1;
    /* the last window must start inside the input or its leading pad */
    if ((out - 1) * st >= in + *pb)
        out--;
    return out;
}

/* The window cells [lo, hi) along one axis that fall inside [0, len) for a
   window starting at x0: no division, a few steps at the borders only. */
static void pool_window_range(int64_t x0, int64_t k, int64_t d, int64_t len,
                              int64_t *lo, int64_t *hi)
{
    *lo = 0;
    while (*lo < k && x0 + *lo * d < 0) (*lo)++;
    *hi = k;
    while (*hi > *lo && x0 + (*hi - 1) * d >= len) (*hi)--;
}

#ifdef __wasm_simd128__
/* Four adjacent outputs y[0..3] of max pooling whose windows (rows
   [ylo, yhi) of the kernel, every column) lie inside the input: pmax keeps
   the first NaN the way the scalar loop does, lane by lane. */
static void maxpool_row4(const float *xp, int64_t iw, int64_t y0, int64_t ylo,
                         int64_t yhi, int64_t dh, int64_t x0, int64_t kw,
                         int64_t dw, int64_t sx, float *y)
{
    v128_t mx = f32x4_splat(0.0f);
    int first = 1;
    for (int64_t ky = ylo; ky < yhi; ky++) {
        const float *row = xp + (y0 + ky * dh) * iw + x0;
        for (int64_t kx = 0; kx < kw; kx++) {
            const float *c = row + kx * dw;
            v128_t v = sx == 1 ? v128_load(c)
                     : sx == 2 ? f32x4_even(v128_load(c), v128_load(c + 4))
                     : f32x4_make(c[0], c[sx], c[2 * sx], c[3 * sx]);
            mx = first ? v : f32x4_pmax(mx, v);
            first = 0;
        }
    }
    v128_store(y, mx);
}
#endif

#ifdef __wasm_simd128__
#define POOL_VECS 4                  /* output vectors per block */
#define POOL_BLOCK (POOL_VECS * 4)   /* outputs per block */

/* POOL_BLOCK adjacent outputs of max pooling, column stride sx (SX: a
   constant, see f32x4_load_strided): the window is nrows input rows from
   row0, rstep floats apart, by kw columns dw apart, all inside the input.
   The first cell starts the maximum, as in maxpool_row4. Inlined once per
   SX, so that the strided loads are straight-line code. */
static inline __attribute__((always_inline)) void
maxpool_block(const int SX, int64_t sx, const float *row0, int64_t rstep,
              int64_t nrows, int64_t kw, int64_t dw, float *y)
{
    v128_t mx[POOL_VECS];
    _Pragma("clang loop unroll(full)")
    for (int v = 0; v < POOL_VECS; v++)
        mx[v] = f32x4_load_strided(row0 + 4 * v * sx, SX, sx);
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t kx = r == 0; kx < kw; kx++) {
            const float *c = row0 + r * rstep + kx * dw;
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < POOL_VECS; v++)
                mx[v] = f32x4_pmax(mx[v], f32x4_load_strided(c + 4 * v * sx, SX, sx));
        }
    _Pragma("clang loop unroll(full)")
    for (int v = 0; v < POOL_VECS; v++)
        v128_store(y + 4 * v, mx[v]);
}

static void maxpool_block_any(int64_t sx, const float *row0, int64_t rstep,
                              int64_t nrows, int64_t kw, int64_t dw, float *y)
{
    if (sx == 1)
        maxpool_block(1, 1, row0, rstep, nrows, kw, dw, y);
    else if (sx == 2)
        maxpool_block(2, 2, row0, rstep, nrows, kw, dw, y);
    else
        maxpool_block(0, sx, row0, rstep, nrows, kw, dw, y);
}
#endif

/* Y (n, c, oh, ow) = max pooling of float32 X (n, c, ih, iw), the same
   result as pool2d_f32 (the first cell seen starts the maximum, so a NaN
   there stays), with the window clipped to the input once per row and
   column instead of a test per cell. */
static void maxpool2d_f32(const PoolParams *p, const Tensor *x, Tensor *y,
                          const int64_t *pb)
{
    int64_t ih = x->dims[2], iw = x->dims[3], oh = y->dims[2], ow = y->dims[3];
    int64_t planes = x->dims[0] * x->dims[1];
    int64_t kh = p->kernel[0], kw = p->kernel[1];
    int64_t dh = p->dilation[0], dw = p->dilation[1];
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = (const float *)x->data + pl * ih * iw;
        float *yp = (float *)y->data + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++) {
            int64_t y0 = i * p->stride[0] - pb[0], ylo, yhi;
            pool_window_range(y0, kh, dh, ih, &ylo, &yhi);
            for (int64_t j = 0; j < ow; j++) {
                int64_t x0 = j * p->stride[1] - pb[1], xlo, xhi;
                pool_window_range(x0, kw, dw, iw, &xlo, &xhi);
#ifdef __wasm_simd128__
                /* POOL_BLOCK, else four outputs whose windows lie inside
                   the row, up to the last float a load reads (stride 2
                   loads one past) */
                int64_t sx = p->stride[1];
                if (j + POOL_BLOCK <= ow && xlo == 0 && ylo < yhi &&
                    x0 + (kw - 1) * dw + (POOL_BLOCK - 1) * sx + (sx == 2) < iw) {
                    maxpool_block_any(sx, xp + (y0 + ylo * dh) * iw + x0, dh * iw,
                                      yhi - ylo, kw, dw, yp + i * ow + j);
                    j += POOL_BLOCK - 1;
                    continue;
                }
                if (j + 3 < ow && xlo == 0 && ylo < yhi &&
                    x0 + (kw - 1) * dw + 3 * sx + (sx == 2) < iw) {
                    maxpool_row4(xp, iw, y0, ylo, yhi, dh, x0, kw, dw, sx,
                                 yp + i * ow + j);
                    j += 3;
                    continue;
                }
#endif
                float mx = -INFINITY;
                int seen = 0;
                for (int64_t ky = ylo; ky < yhi; ky++) {
                    const float *row = xp + (y0 + ky * dh) * iw + x0;
                    for (int64_t kx = xlo; kx < xhi; kx++) {
                        float v = row[kx * dw];
                        if (!seen++ || v > mx) mx = v;
                    }
                }
                yp[i * ow + j] = mx;
            }
        }
    }
}

/* Y (n, c, oh, ow) = max or mean pooling of float32 X (n, c, ih, iw); the
   same result as the generic loop of op_pool, without per-cell index math. */
static void pool2d_f32(const PoolParams *p, const Tensor *x, Tensor *y,
                       const int64_t *pb, const int64_t *pe)
{
    int64_t ih = x->dims[2], iw = x->dims[3], oh = y->dims[2], ow = y->dims[3];
    int64_t planes = x->dims[0] * x->dims[1];
    int is_max = p->kind == POOL_MAX;
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xp = (const float *)x->data + pl * ih * iw;
        float *yp = (float *)y->data + pl * oh * ow;
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int64_t y0 = i * p->stride[0] - pb[0], x0 = j * p->stride[1] - pb[1];
                float mx = -INFINITY;
                double sum = 0.0;
                int64_t cnt = 0, seen = 0;
                for (int64_t ky = 0; ky < p->kernel[0]; ky++) {
                    int64_t yy = y0 + ky * p->dilation[0];
                    int row_in = yy >= 0 && yy < ih;
                    int row_pad = yy >= -pb[0] && yy < ih + pe[0];
                    for (int64_t kx = 0; kx < p->kernel[1]; kx++) {
                        int64_t xx = x0 + kx * p->dilation[1];
                        if (!row_in || xx < 0 || xx >= iw) {
                            cnt += p->count_include_pad && row_pad &&
                                   xx >= -pb[1] && xx < iw + pe[1];
                            continue;
                        }
                        float v = xp[yy * iw + xx];
                        if (!seen++ || v > mx) mx = v;
                        sum += v;
                        cnt++;
                    }
                }
                yp[i * ow + j] = is_max ? mx : cnt ? (float)(sum / (double)cnt)
                                                   : NAN;
            }
    }
}

/* Y (n, c, o...) = pool of X (n, c, i...); Indices (MaxPool) as int64. */
Status op_pool(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const PoolParams *pp = n->params;
    PoolParams p = *pp;
    const Tensor *x = in[0];
    char sx[96];
    int s = x->ndim - 2;
    int ok = elem_is_float(x->dtype) ||
             (p.kind == POOL_MAX && (x->dtype == DT_INT8 || x->dtype == DT_UINT8));
    if (!ok)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected a "
                         "float type%s", dtype_name(x->dtype),
                         p.kind == POOL_MAX ? ", int8 or uint8" : "");
    if (s < 1 || s > POOL_MAX_SPATIAL || (!p.global && s != p.spatial))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected (n, c) and %d "
                         "spatial axes, got %s", p.global ? POOL_MAX_SPATIAL
                         : p.spatial, shape_str(x->dims, x->ndim, sx, 96));

    /* step 1: geometry */
    if (p.global) {
        for (int a = 0; a < s; a++) {
            p.kernel[a] = x->dims[2 + a];
            p.stride[a] = p.dilation[a] = 1;
        }
        p.spatial = s;
    }
    int64_t dims[MAX_RANK] = {x->dims[0], x->dims[1]}, pb[POOL_MAX_SPATIAL],
            pe[POOL_MAX_SPATIAL];
    for (int a = 0; a < s; a++) {
        dims[2 + a] = pool_out_size(&p, a, x->dims[2 + a], &pb[a], &pe[a]);
        if (dims[2 + a] < 1 && x->dims[2 + a] > 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s is smaller "
                             "than the window", shape_str(x->dims, x->ndim, sx, 96));
        if (dims[2 + a] < 0) dims[2 + a] = 0;
    }
    Status st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err);
    Tensor *ind = n->n_out > 1 ? out[1] : NULL;
    if (st == ST_OK && ind)
        st = tensor_alloc(ind, DT_INT64, x->ndim, dims, err);
    if (st != ST_OK)
        return st;

    /* step 2: float32 max/average pooling in 2-D without indices, the
       common CNN case, takes direct loops */
    if (x->dtype == DT_FLOAT && s == 2 && !ind && p.kind == POOL_MAX) {
        maxpool2d_f32(&p, x, out[0], pb);
        return ST_OK;
    }
    if (x->dtype == DT_FLOAT && s == 2 && !ind && p.kind != POOL_LP) {
        pool2d_f32(&p, x, out[0], pb, pe);
        return ST_OK;
    }

    /* step 3: each (n, c) plane, each output position, each window cell */
    int64_t planes = x->dims[0] * x->dims[1], in_plane = 1, out_plane = 1;
    int64_t wsize = 1;
    for (int a = 0; a < s; a++) {
        in_plane *= x->dims[2 + a];
        out_plane *= dims[2 + a];
        wsize *= p.kernel[a];
    }
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t o = 0; o < out_plane; o++) {
            int64_t oi[POOL_MAX_SPATIAL], wi[POOL_MAX_SPATIAL];
            elem_unravel(o, dims + 2, s, oi);
            double acc = p.kind == POOL_MAX ? -INFINITY : 0.0;
            int64_t cnt = 0, best = -1;
            for (int64_t w = 0; w < wsize; w++) {
                elem_unravel(w, p.kernel, s, wi);
                int64_t off = 0;
                int inside = 1, in_pad = 1;
                for (int a = 0; a < s; a++) {
                    int64_t c = oi[a] * p.stride[a] - pb[a] + wi[a] * p.dilation[a];
                    int64_t len = x->dims[2 + a];
                    inside &= c >= 0 && c < len;
                    in_pad &= c >= -pb[a] && c < len + pe[a];
                    off = off * len + c;
                }
                if (!inside) {
                    cnt += p.count_include_pad && in_pad;
                    continue;
                }
                double v = elem_get(x, pl * in_plane + off);
                cnt++;
                if (p.kind == POOL_MAX) {
                    if (best < 0 || v > acc) {
                        acc = v;
                        best = off;
                    }
                } else if (p.kind == POOL_AVG) {
                    acc += v;
                } else {
                    acc += pow(fabs(v), p.p);
                }
            }
            double y = p.kind == POOL_MAX ? acc
                     : p.kind == POOL_AVG ? (cnt ? acc / (double)cnt : NAN)
                     : pow(acc, 1.0 / p.p);
            elem_set(out[0], pl * out_plane + o, y);
            if (ind) {
                int64_t idx = best < 0 ? 0 : best;
                if (p.storage_order && best >= 0) {
                    /* column-major within the plane */
                    int64_t ci[POOL_MAX_SPATIAL];
                    elem_unravel(best, x->dims + 2, s, ci);
                    idx = 0;
                    for (int a = s - 1; a >= 0; a--)
                        idx = idx * x->dims[2 + a] + ci[a];
                }
                ((int64_t *)ind->data)[pl * out_plane + o] = pl * in_plane + idx;
            }
        }
    return ST_OK;
}

/* Y (n, c, o...) = zeros with Y.flat[I[i]] = X[i]: the inverse of MaxPool
   given its Indices; o from output_shape or from the pooling geometry. */
Status op_max_unpool(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const PoolParams *p = n->params;
    const Tensor *x = in[0], *ix = in[1];
    const Tensor *os = n->n_in > 2 ? in[2] : NULL;
    char sx[96], si[96];
    int s = p->spatial, same = ix->ndim == x->ndim;
    for (int32_t d = 0; same && d < x->ndim; d++) same = ix->dims[d] == x->dims[d];
    if (x->ndim != s + 2 || !same || ix->dtype != DT_INT64)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected X with %d "
                         "spatial axes and int64 indices of its shape, got %s "
                         "and %s %s", s, shape_str(x->dims, x->ndim, sx, 96),
                         dtype_name(ix->dtype),
                         shape_str(ix->dims, ix->ndim, si, 96));
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    /* indices address the inferred shape; output_shape may add zeros at
       the end of each axis */
    int64_t dims[MAX_RANK] = {x->dims[0], x->dims[1]}, inf[MAX_RANK];
    int64_t inf_numel = x->dims[0] * x->dims[1];
    inf[0] = x->dims[0];
    inf[1] = x->dims[1];
    for (int a = 0; a < s; a++) {
        inf[2 + a] = (x->dims[2 + a] - 1) * p->stride[a] + p->kernel[a] -
                     p->pad_begin[a] - p->pad_end[a];
        if (inf[2 + a] < 0) inf[2 + a] = 0;
        inf_numel *= inf[2 + a];
        dims[2 + a] = inf[2 + a];
    }
    if (os) {
        int32_t c;
        if ((st = read_int_list(n, os, dims, MAX_RANK, &c, err)))
            return st;
        int fits = c == x->ndim;
        for (int32_t d = 0; fits && d < c; d++) fits = dims[d] >= inf[d];
        if (!fits || dims[0] != x->dims[0] || dims[1] != x->dims[1])
            return node_fail(n, err, ST_SHAPE_MISMATCH, "output_shape must "
                             "keep (n, c) and be at least %s",
                             shape_str(inf, x->ndim, si, 96));
    }
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err)))
        return st;
    int size = dtype_size(x->dtype);
    memset(out[0]->data, 0, (size_t)tensor_nbytes(out[0]));
    int64_t idx[MAX_RANK];
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = ((const int64_t *)ix->data)[i], dst = 0;
        if (k < 0 || k >= inf_numel)
            return node_fail(n, err, ST_BAD_REQUEST, "index %lld out of range "
                             "for an unpooled tensor of %lld elements",
                             (long long)k, (long long)inf_numel);
        elem_unravel(k, inf, x->ndim, idx);
        for (int32_t d = 0; d < x->ndim; d++) dst = dst * dims[d] + idx[d];
        elem_copy(out[0], dst, x, i, size);
    }
    return ST_OK;
}

/* Y (rois, c, ph, pw) = the max of X (n, c, h, w) over each bin of each
   region [batch, x1, y1, x2, y2] (scaled by spatial_scale, rounded). */
Status op_max_roi_pool(const Node *n, Tensor *const *in, Tensor *const *out,
                       Err *err)
{
    const Tensor *x = in[0], *rois = in[1];
    const Attr *ps = node_attr(n, "pooled_shape");
    double scale = attr_float(n, "spatial_scale", 1.0f);
    char sx[96], sr[96];
    if (!ps || ps->type != AT_INTS || ps->count != 2 || attr_ints_at(ps, 0) < 1 ||
        attr_ints_at(ps, 1) < 1 || attr_ints_at(ps, 0) > 1 << 16 ||
        attr_ints_at(ps, 1) > 1 << 16)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "pooled_shape must list "
                         "2 sizes >= 1");
    if (!elem_is_float(x->dtype) || x->ndim != 4 || rois->dtype != x->dtype ||
        rois->ndim != 2 || rois->dims[1] != 5)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected float X (n, c, "
                         "h, w) and rois (r, 5) of its dtype, got %s %s and %s",
                         dtype_name(x->dtype), shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(rois->dims, rois->ndim, sr, 96));
    int64_t ph = attr_ints_at(ps, 0), pw = attr_ints_at(ps, 1);
    int64_t c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t dims[4] = {rois->dims[0], c, ph, pw};
    Status st = tensor_alloc(out[0], x->dtype, 4, dims, err);
    if (st != ST_OK)
        return st;
    for (int64_t r = 0; r < rois->dims[0]; r++) {
        double v[5];
        for (int k = 0; k < 5; k++) v[k] = elem_get(rois, r * 5 + k);
        if (!(v[0] >= 0 && v[0] < (double)x->dims[0]))
            return node_fail(n, err, ST_BAD_REQUEST, "roi %lld names batch "
                             "%g of %lld", (long long)r, v[0],
                             (long long)x->dims[0]);
        int64_t b = (int64_t)v[0], box[4];
        for (int k = 0; k < 4; k++) {
            double q = round(v[1 + k] * scale);
            box[k] = q < -1e9 ? -1000000000 : q > 1e9 ? 1000000000 : (int64_t)q;
        }
        int64_t rw = box[2] - box[0] + 1, rh = box[3] - box[1] + 1;
        double bw = (double)(rw > 1 ? rw : 1) / (double)pw;
        double bh = (double)(rh > 1 ? rh : 1) / (double)ph;
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < ph; i++)
                for (int64_t j = 0; j < pw; j++) {
                    int64_t hs = (int64_t)floor((double)i * bh) + box[1];
                    int64_t he = (int64_t)ceil((double)(i + 1) * bh) + box[1];
                    int64_t ws = (int64_t)floor((double)j * bw) + box[0];
                    int64_t we = (int64_t)ceil((double)(j + 1) * bw) + box[0];
                    hs = hs < 0 ? 0 : hs > h ? h : hs;
                    he = he < 0 ? 0 : he > h ? h : he;
                    ws = ws < 0 ? 0 : ws > w ? w : ws;
                    we = we < 0 ? 0 : we > w ? w : we;
                    double m = (he <= hs || we <= ws) ? 0.0 : -INFINITY;
                    for (int64_t yy = hs; yy < he; yy++)
                        for (int64_t xx = ws; xx < we; xx++) {
                            double e = elem_get(x, ((b * c + ch) * h + yy) * w + xx);
                            m = e > m ? e : m;
                        }
                    elem_set(out[0], ((r * c + ch) * ph + i) * pw + j, m);
                }
    }
    return ST_OK;
}
