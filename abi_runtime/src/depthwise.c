/*
 * depthwise.c: depthwise convolution, direct.
 *
 * As one-row GEMMs (one per channel), a depthwise layer spends its time
 * packing im2col panels and runs the micro-kernel at half its rows: ~2
 * GFLOP/s. Here, per input channel:
 *   1. the plane is copied once into a scratch plane with the padding
 *      written as zeros, plus slack on the right for the last vectors of
 *      a row, so that the loops below read without bounds checks;
 *   2. per output channel of the group, per output row, blocks of
 *      DW_BLOCK pixels accumulate kh * kw taps each, starting from the
 *      bias: one broadcast weight times DW_BLOCK / 4 input vectors per tap
 *      (stride 1: plain loads; stride 2: every other float of two loads;
 *      other strides: four scalar loads);
 *   3. the fused clamp, then the store (a partial block through a row
 *      buffer).
 */
#include "depthwise.h"

#include <stdlib.h>

#include "simd.h"

#define DW_VECS 4                 /* output vectors per block */
#define DW_BLOCK (DW_VECS * 4)    /* output pixels per block */

/* n floats from src to dst. A loop, not memcpy: wasmtime runs memcpy as
   memory.copy, a call costing more than these rows of a few hundred
   bytes (memset likewise). */
static void copy_floats(float *dst, const float *src, int64_t n)
{
    int64_t i = 0;
#ifdef __wasm_simd128__
    for (; i + 4 <= n; i += 4)
        v128_store(dst + i, v128_load(src + i));
#endif
    for (; i < n; i++)
        dst[i] = src[i];
}

/* Step 1: the plane of x (ih, iw) at (py - pt, px - pl) for every (py, px)
   of the scratch plane (ph, pw) that holds input; the rest stays as the
   caller zeroed it, the same for every channel. */
static void fill_plane(const DwGeometry *g, const float *x, float *plane,
                       int64_t ph, int64_t pw)
{
    int64_t rows = g->ih < ph - g->pt ? g->ih : ph - g->pt;
    int64_t cols = g->iw < pw - g->pl ? g->iw : pw - g->pl;
    for (int64_t iy = 0; iy < rows; iy++)
        copy_floats(plane + (iy + g->pt) * pw + g->pl, x + iy * g->iw, cols);
}

#ifdef __wasm_simd128__
/* Steps 2-3 for one output row: out[ox] for ox in [0, ow). rows[t] is the
   scratch row of tap t, already offset by the tap's column. */
static inline __attribute__((always_inline)) void
row_taps(const int SX, int64_t sx, int64_t ow, int64_t taps, const float *const *rows,
         const v128_t *w, float bias, float lo, float hi, float *out)
{
    v128_t b = f32x4_splat(bias), vlo = f32x4_splat(lo), vhi = f32x4_splat(hi);
    for (int64_t ox = 0; ox < ow; ox += DW_BLOCK) {
        v128_t acc[DW_VECS];
        for (int v = 0; v < DW_VECS; v++)
            acc[v] = b;
        for (int64_t t = 0; t < taps; t++) {
            const float *src = rows[t] + ox * sx;
            v128_t wt = w[t];
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < DW_VECS; v++)
                acc[v] = f32x4_add(
                    f32x4_mul(wt, f32x4_load_strided(src + 4 * v * sx, SX, sx)), acc[v]);
        }
        /* step 3: NaN stays NaN, as in the GEMM epilogue; a partial
           block through tail */
        float tail[DW_BLOCK];
        float *dst = ox + DW_BLOCK <= ow ? out + ox : tail;
        for (int v = 0; v < DW_VECS; v++)
            v128_store(dst + 4 * v, f32x4_pmin(f32x4_pmax(acc[v], vlo), vhi));
        if (dst == tail)
            for (int64_t i = 0; i < ow - ox; i++)
                out[ox + i] = tail[i];
    }
}

/* A weight as the row loop reads it: in all four lanes. */
typedef v128_t Weight;

static Weight weight(float w)
{
    return f32x4_splat(w);
}

static void conv_row(int64_t sx, int64_t ow, int64_t taps, const float *const *rows,
                     const Weight *w, float bias, float lo, float hi, float *out)
{
    if (sx == 1)
        row_taps(1, 1, ow, taps, rows, w, bias, lo, hi, out);
    else if (sx == 2)
        row_taps(2, 2, ow, taps, rows, w, bias, lo, hi, out);
    else
        row_taps(0, sx, ow, taps, rows, w, bias, lo, hi, out);
}
#else
typedef float Weight;

static Weight weight(float w)
{
    return w;
}

static void conv_row(int64_t sx, int64_t ow, int64_t taps, const float *const *rows,
                     const Weight *w, float bias, float lo, float hi, float *out)
{
    for (int64_t ox = 0; ox < ow; ox++) {
        float acc = bias;
        for (int64_t t = 0; t < taps; t++)
            acc += w[t] * rows[t][ox * sx];
        out[ox] = acc < lo ? lo : acc > hi ? hi : acc;
    }
}
#endif

Status depthwise_conv(const DwGeometry *g, int64_t c, int64_t mg, const float *x,
                      DwTaps taps_of, const void *taps_ctx, const float *bias,
                      float lo, float hi, float *y, Err *err)
{
    int64_t taps = g->kh * g->kw;
    /* scratch plane: every row the taps reach; every column the blocks of
       a row reach, loads of four and the stride-2 pair included */
    int64_t blocks = (g->ow + DW_BLOCK - 1) / DW_BLOCK;
    int64_t ph = (g->oh - 1) * g->sy + (g->kh - 1) * g->dy + 1;
    int64_t pw = (blocks * DW_BLOCK - 1) * g->sx + (g->kw - 1) * g->dx + 1 + 4;
    float *plane = calloc((size_t)(ph * pw), sizeof(float));
    float *w = malloc(sizeof(float) * (size_t)taps);
    Weight *wv = malloc(sizeof(Weight) * (size_t)taps);
    const float **rows = malloc(sizeof(float *) * (size_t)taps);
    Status st = ST_OK;
    if (!plane || !w || !wv || !rows) {
        st = fail(err, ST_OOM, "depthwise conv: out of memory for a (%lld, %lld) "
                  "plane", (long long)ph, (long long)pw);
        goto done;
    }
    for (int64_t ch = 0; ch < c; ch++) {
        fill_plane(g, x + ch * g->ih * g->iw, plane, ph, pw);
        for (int64_t j = 0; j < mg; j++) {
            int64_t oc = ch * mg + j;
            taps_of(taps_ctx, oc, w);
            for (int64_t t = 0; t < taps; t++)
                wv[t] = weight(w[t]);
            float *yc = y + oc * g->oh * g->ow;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                for (int64_t ky = 0, t = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++, t++)
                        rows[t] = plane + (oy * g->sy + ky * g->dy) * pw + kx * g->dx;
                conv_row(g->sx, g->ow, taps, rows, wv, bias ? bias[oc] : 0.0f, lo, hi,
                         yc + oy * g->ow);
            }
        }
    }
done:
    free(plane);
    free(w);
    free(wv);
    free(rows);
    return st;
}
