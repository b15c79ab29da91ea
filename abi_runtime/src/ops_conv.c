/*
 * ops_conv.c: 1-D and 2-D convolution (NCHW) by im2col into GEMM panels,
 * or, for 3x3 kernels with stride 1, by Winograd's F(2x2, 3x3) (winograd.c),
 * or, with one input channel per group, directly (depthwise.c).
 *
 * The column matrix of one group, (cg * kh * kw, oh * ow), is never built
 * whole: gemm_run asks for a block of output pixels at a time and
 * pack_im2col writes that block straight into packed panels; a 1x1
 * convolution with stride 1 and no padding reads its input as the (c, h*w)
 * matrix it already is. The weights usually arrive packed by the packager
 * (attribute wx_weight_shape present: input 1 is then the packed A of
 * gemm.h per group); otherwise they are packed on each call. The packager
 * may also fuse a following Relu or Clip (attribute wx_clip = [lo, hi]).
 */
#include <stdlib.h>
#include <string.h>

#include "depthwise.h"
#include "gemm.h"
#include "ops.h"
#include "simd.h"
#include "winograd.h"

typedef struct {
    int64_t group;
    int64_t kernel[2], stride[2], dilation[2];
    int64_t pad_begin[2], pad_end[2];
    int auto_pad; /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    int spatial;  /* 1 or 2 spatial dims (1-D runs as height 1) */
    int packed;   /* input 1 holds packed panels (gemm.h) */
    int64_t wshape[4]; /* the weight's (m, c/group, kh, kw) when packed */
    float lo, hi; /* fused clamp of the output; -inf, inf when none */
} ConvParams;

Status prep_conv(const Model *m, Node *n, Err *err)
{
    /* the weight decides the spatial rank; a plan always carries it */
    if (n->in[1] < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "the weight input is missing");
    const Value *w = &m->values[n->in[1]];
    const Attr *ws = node_attr(n, "wx_weight_shape");
    int rank = ws ? ws->count : w->rank;
    if (rank != 3 && rank != 4)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "only 1-D and 2-D "
                         "convolution is supported, weight has rank %d",
                         (int)rank);
    ConvParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    int s = p->spatial = rank - 2;
    Status st;
    if ((st = fused_clamp(n, &p->lo, &p->hi, err)))
        return st;
    if (ws) {
        if (ws->type != AT_INTS)
            return node_fail(n, err, ST_BAD_FORMAT, "wx_weight_shape must be "
                             "INTS");
        p->packed = 1;
        for (int i = 0; i < rank; i++) {
            p->wshape[i] = attr_ints_at(ws, i);
            if (p->wshape[i] < 1)
                return node_fail(n, err, ST_BAD_FORMAT, "wx_weight_shape has "
                                 "a dimension < 1");
        }
    }
    p->group = attr_int(n, "group", 1);
    for (int i = 0; i < 2; i++)
        p->kernel[i] = p->stride[i] = p->dilation[i] = 1;
    int64_t pads[4] = {0, 0, 0, 0};
    if ((st = attr_ints_exact(n, "strides", p->stride + 2 - s, s, err)) ||
        (st = attr_ints_exact(n, "dilations", p->dilation + 2 - s, s, err)) ||
        (st = attr_ints_exact(n, "pads", pads, 2 * s, err)))
        return st;
    for (int i = 0; i < s; i++) {
        p->pad_begin[2 - s + i] = pads[i];
        p->pad_end[2 - s + i] = pads[s + i];
    }
    if ((st = read_auto_pad(n, &p->auto_pad, err)))
        return st;
    for (int i = 0; i < 2; i++)
        if (p->stride[i] < 1 || p->dilation[i] < 1 || p->pad_begin[i] < 0 ||
            p->pad_end[i] < 0)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "strides and "
                             "dilations must be >= 1 and pads >= 0");
    if (p->group < 1)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "group must be >= 1, got "
                         "%lld", (long long)p->group);
    return ST_OK;
}

/* What pack_im2col needs: one image and group, and the geometry. */
typedef struct {
    const float *x;      /* (cg, ih, iw) of this image and group */
    int64_t cg, ih, iw;  /* input channels per group, input height, width */
    int64_t kh, kw, ow;  /* kernel height, width; output width */
    const ConvParams *p;
    int64_t pt, pl;      /* effective top and left padding */
} Im2col;

/* dst[c] = src[c * sx] for the GEMM_NR columns of a panel row. Vectors,
   not memcpy (which wasmtime runs as a call to memory.copy); stride 2
   reads one float past src[(GEMM_NR - 1) * 2]. */
static void copy_panel_row(const float *src, int64_t sx, float *dst)
{
#ifdef __wasm_simd128__
    if (sx == 1) {
        for (int c = 0; c < GEMM_NR; c += 4)
            v128_store(dst + c, f32x4_load_strided(src + c, 1, 1));
        return;
    }
    if (sx == 2) {
        for (int c = 0; c < GEMM_NR; c += 4)
            v128_store(dst + c, f32x4_load_strided(src + 2 * c, 2, 2));
        return;
    }
#endif
    for (int c = 0; c < GEMM_NR; c++)
        dst[c] = src[c * sx];
}

/* PackB: columns = output pixels [j0, j0+nj), rows = (c, ky, kx). A
   panel whose pixels lie in one output row and whose kernel row falls
   inside the input is copied without bounds checks (contiguous when the
   stride is 1); other panels check each element against the padding.
   The rows are walked as (c, ky, kx) loops: no division per row. */
static void pack_im2col(const void *ctx, int64_t j0, int64_t nj, float *dst)
{
    const Im2col *s = ctx;
    const ConvParams *p = s->p;
    int64_t sx = p->stride[1], dy = p->dilation[0], dx = p->dilation[1];
    int64_t oy = j0 / s->ow, ox = j0 % s->ow;
    for (int64_t jp = 0; jp < nj; jp += GEMM_NR) {
        /* top-left input corner of each output pixel of this panel */
        int64_t y0[GEMM_NR], x0[GEMM_NR];
        int cols = (int)(nj - jp < GEMM_NR ? nj - jp : GEMM_NR);
        for (int c = 0; c < cols; c++) {
            y0[c] = oy * p->stride[0] - s->pt;
            x0[c] = ox * sx - s->pl;
            if (++ox == s->ow) {
                ox = 0;
                oy++;
            }
        }
        int one_row = cols == GEMM_NR && y0[0] == y0[GEMM_NR - 1];
        int64_t span = (GEMM_NR - 1) * sx;
        for (int64_t ch = 0; ch < s->cg; ch++) {
            const float *plane = s->x + ch * s->ih * s->iw;
            for (int64_t ky = 0; ky < s->kh; ky++) {
                int64_t iy = y0[0] + ky * dy;
                int row_in = one_row && iy >= 0 && iy < s->ih;
                for (int64_t kx = 0; kx < s->kw; kx++, dst += GEMM_NR) {
                    int64_t ix = x0[0] + kx * dx;
                    if (row_in && ix >= 0 && ix + span + (sx == 2) < s->iw) {
                        copy_panel_row(plane + iy * s->iw + ix, sx, dst);
                        continue;
                    }
                    if (one_row && !row_in) { /* a padding row */
                        for (int c = 0; c < GEMM_NR; c++) dst[c] = 0.0f;
                        continue;
                    }
                    if (row_in) { /* one input row, the ends in the padding */
                        const float *src = plane + iy * s->iw;
                        for (int c = 0; c < GEMM_NR; c++) {
                            int64_t xx = ix + c * sx;
                            dst[c] = xx >= 0 && xx < s->iw ? src[xx] : 0.0f;
                        }
                        continue;
                    }
                    int c = 0;
                    for (; c < cols; c++) {
                        int64_t yy = y0[c] + ky * dy, xx = x0[c] + kx * dx;
                        dst[c] = (yy >= 0 && yy < s->ih && xx >= 0 && xx < s->iw)
                               ? plane[yy * s->iw + xx] : 0.0f;
                    }
                    for (; c < GEMM_NR; c++) dst[c] = 0.0f;
                }
            }
        }
    }
}

/* Output size and effective leading padding along one axis. */
static int64_t conv_out_size(const ConvParams *p, int axis, int64_t in,
                             int64_t kernel, int64_t *pad_begin)
{
    int64_t span = (kernel - 1) * p->dilation[axis] + 1;
    int64_t st = p->stride[axis];
    if (p->auto_pad == 1 || p->auto_pad == 2) {
        int64_t out = (in + st - 1) / st;
        int64_t total = (out - 1) * st + span - in;
        total = total > 0 ? total : 0;
        *pad_begin = p->auto_pad == 1 ? total / 2 : total - total / 2;
        return out;
    }
    int64_t pb = p->auto_pad == 3 ? 0 : p->pad_begin[axis];
    int64_t pe = p->auto_pad == 3 ? 0 : p->pad_end[axis];
    *pad_begin = pb;
    int64_t padded = in + pb + pe - span;
    return padded < 0 ? -1 : padded / st + 1;
}

/* Winograd F(2x2, 3x3) pays for a 3x3 kernel with stride and dilation 1,
   one group, enough channels for its GEMMs and enough 2x2 output tiles for
   its transforms (below that, im2col is as fast). */
static int winograd_pays(const ConvParams *p, int64_t kh, int64_t kw,
                         int64_t c, int64_t m, int64_t oh, int64_t ow)
{
    return p->spatial == 2 && kh == 3 && kw == 3 && p->group == 1 &&
           p->stride[0] == 1 && p->stride[1] == 1 && p->dilation[0] == 1 &&
           p->dilation[1] == 1 && c >= 8 && m >= 8 &&
           ((oh + 1) / 2) * ((ow + 1) / 2) >= 64;
}

/* The direct depthwise kernel pays with one input channel per group and
   a few output channels each (more make the per-group GEMM worthwhile). */
static int depthwise_pays(const ConvParams *p, int64_t cg, int64_t mg)
{
    return p->group > 1 && cg == 1 && mg <= 4;
}

/* The weights of a depthwise convolution: (m, 1, kh, kw) as given, or
   packed per group (panels of gemm.h, k = kh * kw). */
typedef struct {
    const float *w;
    int packed;
    int64_t mg, k, wsize;
} ConvWeights;

/* DwTaps: the k weights of output channel oc. */
static void conv_taps(const void *ctx, int64_t oc, float *taps)
{
    const ConvWeights *cw = ctx;
    if (!cw->packed) {
        memcpy(taps, cw->w + oc * cw->k, sizeof(float) * (size_t)cw->k);
        return;
    }
    int64_t g = oc / cw->mg, j = oc % cw->mg;
    for (int64_t t = 0; t < cw->k; t++)
        taps[t] = cw->w[g * cw->wsize + gemm_a_index(cw->mg, cw->k, j, t)];
}

/* Y (n, m, oh, ow) = X (n, c, ih, iw) * W (m, c/group, kh, kw) + B (m). */
Status op_conv(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const ConvParams *p = n->params;
    const Tensor *x = in[0], *w = in[1], *b = n->n_in > 2 ? in[2] : NULL;
    Status st;
    if ((st = require_float(n, x, 0, err)) || (st = require_float(n, w, 1, err)) ||
        (b && (st = require_float(n, b, 2, err))))
        return st;
    char sx[96], sw[96];
    int s = p->spatial;

    /* step 1: geometry; 1-D convolution runs as height 1 */
    const int64_t *wd = p->packed ? p->wshape : w->dims;
    int32_t wrank = p->packed ? s + 2 : w->ndim;
    if (x->ndim != s + 2 || wrank != s + 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected input and "
                         "weight of rank %d, got %s and %s", s + 2,
                         shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(wd, wrank, sw, 96));
    int64_t batch = x->dims[0], c = x->dims[1], m = wd[0], cg = wd[1];
    int64_t ih = s == 2 ? x->dims[2] : 1, iw = x->dims[s + 1];
    int64_t kh = s == 2 ? wd[2] : 1, kw = wd[s + 1];
    if (cg * p->group != c || m % p->group != 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s has %lld "
                         "channels, weight %s with group %lld expects %lld",
                         shape_str(x->dims, x->ndim, sx, 96), (long long)c,
                         shape_str(wd, wrank, sw, 96),
                         (long long)p->group, (long long)(cg * p->group));
    if (b && (b->ndim != 1 || b->dims[0] != m))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "bias must have shape "
                         "(%lld,), got %s", (long long)m,
                         shape_str(b->dims, b->ndim, sx, 96));
    int64_t pt = 0, pl = 0;
    int64_t oh = conv_out_size(p, 0, ih, kh, &pt);
    int64_t ow = conv_out_size(p, 1, iw, kw, &pl);
    if (oh < 1 || ow < 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s is smaller "
                         "than the kernel %s", shape_str(x->dims, x->ndim, sx, 96),
                         shape_str(wd, wrank, sw, 96));
    int64_t dims[4] = {batch, m, s == 2 ? oh : ow, ow};
    if ((st = tensor_alloc(out[0], DT_FLOAT, s + 2, dims, err)))
        return st;

    /* step 2: the weights: as the plan holds them (checked), then by
       Winograd for 3x3 kernels with stride 1, directly for depthwise
       kernels, else as the A of one GEMM per group */
    int64_t mg = m / p->group, k = cg * kh * kw;
    int64_t wsize = gemm_packed_a_size(mg, k);
    if (p->packed && w->numel != wsize * p->group)
        return node_fail(n, err, ST_BAD_FORMAT, "packed weight has %lld "
                         "floats, expected %lld", (long long)w->numel,
                         (long long)(wsize * p->group));
    if (!p->packed && w->numel != m * k)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "weight %s has %lld "
                         "elements", shape_str(wd, wrank, sw, 96),
                         (long long)w->numel);
    if (winograd_pays(p, kh, kw, cg, m, oh, ow)) {
        for (int64_t i = 0; i < batch && st == ST_OK; i++)
            st = winograd_conv(w->data, p->packed, m, c,
                               (const float *)x->data + i * c * ih * iw, ih, iw,
                               pt, pl, (float *)out[0]->data + i * m * oh * ow,
                               oh, ow, b ? b->data : NULL, p->lo, p->hi, err);
        return st;
    }
    if (depthwise_pays(p, cg, mg)) {
        ConvWeights cw = {w->data, p->packed, mg, k, wsize};
        DwGeometry g = {ih, iw, oh, ow, kh, kw, p->stride[0], p->stride[1],
                        p->dilation[0], p->dilation[1], pt, pl};
        for (int64_t i = 0; i < batch && st == ST_OK; i++)
            st = depthwise_conv(&g, c, mg, (const float *)x->data + i * c * ih * iw,
                                conv_taps, &cw, b ? b->data : NULL, p->lo, p->hi,
                                (float *)out[0]->data + i * m * oh * ow, err);
        return st;
    }

    /* step 3: one GEMM per image and group, bias and clamp fused */
    int pointwise = kh == 1 && kw == 1 && p->stride[0] == 1 &&
                    p->stride[1] == 1 && pt == 0 && pl == 0 && oh == ih &&
                    ow == iw;
    for (int64_t i = 0; i < batch && st == ST_OK; i++)
        for (int64_t g = 0; g < p->group && st == ST_OK; g++) {
            const float *xg = (const float *)x->data + (i * c + g * cg) * ih * iw;
            Im2col ctx = {xg, cg, ih, iw, kh, kw, ow, p, pt, pl};
            StridedB direct = {xg, cg, ih * iw, 1};   /* (cg, ih * iw) */
            GemmB gb = {NULL, pointwise ? gemm_pack_b_strided : pack_im2col,
                        pointwise ? (const void *)&direct : (const void *)&ctx};
            Epilogue ep = {b ? (const float *)b->data + g * mg : NULL, NULL,
                           p->lo, p->hi};
            float *y = (float *)out[0]->data + (i * m + g * mg) * oh * ow;
            /* A: the group's weights, packed by the packager or read in
               place (rows of k) */
            const float *wg = (const float *)w->data;
            GemmA ga = p->packed ? gemm_a_packed(wg + g * wsize)
                                 : (GemmA){NULL, wg + g * mg * k, k, 1};
            st = gemm_run(mg, oh * ow, k, &ga, &gb, y, oh * ow, &ep, err);
        }
    return st;
}
