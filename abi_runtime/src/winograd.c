/*
 * winograd.c: F(2x2, 3x3) convolution (see winograd.h).
 *
 * With d a 4x4 input block, g a 3x3 kernel and Y the 2x2 output block:
 *   Y = A^T [ (G g G^T) * (B^T d B) ] A     (* elementwise)
 *   B^T = | 1  0 -1  0 |   G = | 1    0    0   |   A^T = | 1 1  1  0 |
 *         | 0  1  1  0 |       | 1/2  1/2  1/2 |         | 0 1 -1 -1 |
 *         | 0 -1  1  0 |       | 1/2 -1/2  1/2 |
 *         | 0  1  0 -1 |       | 0    0    1   |
 * For each of the 16 positions xi of the 4x4 transformed blocks, the
 * products summed over input channels form a GEMM: (m, c) weights times
 * (c, tiles) inputs. The tiles go in blocks (WG_BLOCK_FLOATS) so that the
 * transformed inputs and products of a block stay in cache.
 */
#include "winograd.h"

#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

/* Floats of the 16 transformed inputs (c, block) of one block of tiles,
   and of its 16 products (m, block), each: 768 KB, which keeps a block in
   L2 and bounds the scratch memory (192 tiles of 64 channels). */
#define WG_BLOCK_FLOATS (16 * 64 * 192)

/* The 16 transformed weight matrices (m, c), as packed GEMM A operands of
   a_size floats each, from w (m, c * 9): row-major, or itself packed A
   panels (gemm.h) when packed. Made on every call: they cost a few
   additions per weight against m * c * tiles multiplications per matrix,
   and keeping them would hold 16/9 of the weights in memory once more. */
static void transform_weights(const float *w, int packed, int64_t m, int64_t c,
                              int64_t a_size, float *u)
{
    int64_t k = c * 9;
    memset(u, 0, sizeof(float) * (size_t)(16 * a_size)); /* rows past m */
    for (int64_t mi = 0; mi < m; mi++)
        for (int64_t ci = 0; ci < c; ci++) {
            float g[9], t[4][3];
            for (int q = 0; q < 9; q++) {
                int64_t kq = ci * 9 + q;
                g[q] = packed ? w[gemm_a_index(m, k, mi, kq)] : w[mi * k + kq];
            }
            for (int j = 0; j < 3; j++) { /* G g */
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            /* element (mi, ci) of each packed (m, c) A */
            float *dst = u + gemm_a_index(m, c, mi, ci);
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                dst[(i * 4 + 0) * a_size] = t[i][0];
                dst[(i * 4 + 1) * a_size] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                dst[(i * 4 + 2) * a_size] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                dst[(i * 4 + 3) * a_size] = t[i][2];
            }
        }
}

/* The 4x4 input block of tile (ty, tx) of channel plane x, zeros outside. */
static void load_block(const float *x, int64_t ih, int64_t iw, int64_t y0,
                       int64_t x0, float d[4][4])
{
    if (y0 >= 0 && x0 >= 0 && y0 + 4 <= ih && x0 + 4 <= iw) {
        for (int i = 0; i < 4; i++)
            memcpy(d[i], x + (y0 + i) * iw + x0, sizeof(float) * 4);
        return;
    }
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int64_t yy = y0 + i, xx = x0 + j;
            d[i][j] = yy >= 0 && yy < ih && xx >= 0 && xx < iw ? x[yy * iw + xx]
                                                               : 0.0f;
        }
}

#ifdef __wasm_simd128__
/* transform_inputs for four horizontally adjacent tiles whose 4x10 input
   block starts at x (rows iw apart): lane k of each vector is tile k; the
   16 results go to dst + xi * plane, four tiles' floats side by side. */
static void transform_4_tiles(const float *x, int64_t iw, float *dst,
                              int64_t plane)
{
    v128_t d[4][4], r[4][4];
    for (int i = 0; i < 4; i++) {
        /* tile k reads columns 2k .. 2k + 3: every other float */
        const float *row = x + i * iw;
        v128_t a0 = v128_load(row), a1 = v128_load(row + 4);
        v128_t b0 = v128_load(row + 2), b1 = v128_load(row + 6);
        d[i][0] = f32x4_even(a0, a1);
        d[i][1] = f32x4_odd(a0, a1);
        d[i][2] = f32x4_even(b0, b1);
        d[i][3] = f32x4_odd(b0, b1);
    }
    for (int k = 0; k < 4; k++) { /* B^T d */
        r[0][k] = f32x4_sub(d[0][k], d[2][k]);
        r[1][k] = f32x4_add(d[1][k], d[2][k]);
        r[2][k] = f32x4_sub(d[2][k], d[1][k]);
        r[3][k] = f32x4_sub(d[1][k], d[3][k]);
    }
    for (int i = 0; i < 4; i++) { /* (B^T d) B */
        v128_store(dst + (i * 4 + 0) * plane, f32x4_sub(r[i][0], r[i][2]));
        v128_store(dst + (i * 4 + 1) * plane, f32x4_add(r[i][1], r[i][2]));
        v128_store(dst + (i * 4 + 2) * plane, f32x4_sub(r[i][2], r[i][1]));
        v128_store(dst + (i * 4 + 3) * plane, f32x4_sub(r[i][1], r[i][3]));
    }
}

/* transform_outputs for four horizontally adjacent tiles, both output rows
   and all eight columns inside: s points at tile 0's 16 products, planes
   `plane` apart; 8 outputs per row go to y and y + ow. */
static void outputs_4_tiles(const float *s, int64_t plane, float *y, int64_t ow,
                            float bias, float lo, float hi)
{
    v128_t r[2][4];
    for (int k = 0; k < 4; k++) { /* A^T P */
        v128_t s0 = v128_load(s + (0 + k) * plane), s1 = v128_load(s + (4 + k) * plane);
        v128_t s2 = v128_load(s + (8 + k) * plane), s3 = v128_load(s + (12 + k) * plane);
        r[0][k] = f32x4_add(f32x4_add(s0, s1), s2);
        r[1][k] = f32x4_sub(f32x4_sub(s1, s2), s3);
    }
    v128_t b = f32x4_splat(bias), vlo = f32x4_splat(lo), vhi = f32x4_splat(hi);
    for (int i = 0; i < 2; i++) { /* (A^T P) A, then interleave the columns */
        v128_t o0 = f32x4_add(f32x4_add(f32x4_add(r[i][0], r[i][1]), r[i][2]), b);
        v128_t o1 = f32x4_add(f32x4_sub(f32x4_sub(r[i][1], r[i][2]), r[i][3]), b);
        o0 = f32x4_pmin(f32x4_pmax(o0, vlo), vhi);
        o1 = f32x4_pmin(f32x4_pmax(o1, vlo), vhi);
        v128_store(y + i * ow, f32x4_zip_lo(o0, o1));
        v128_store(y + i * ow + 4, f32x4_zip_hi(o0, o1));
    }
}
#endif

/* Transformed inputs of tiles [t0, t0 + n) for every channel, into 16
   packed B operands (c, np) at v, columns past n zero. */
static void transform_inputs(const float *x, int64_t c, int64_t ih, int64_t iw,
                             int64_t pt, int64_t pl, int64_t tw, int64_t t0,
                             int64_t n, int64_t np, float *v)
{
    int64_t plane = c * np; /* floats of one packed B */
    for (int64_t ci = 0; ci < c; ci++) {
        const float *xc = x + ci * ih * iw;
        for (int64_t j = 0; j < np; j++) {
            /* element (ci, j) of a packed B: panel j / NR, row ci */
            float *dst = v + (j / GEMM_NR) * c * GEMM_NR + ci * GEMM_NR + j % GEMM_NR;
            if (j >= n) {
                for (int xi = 0; xi < 16; xi++) dst[xi * plane] = 0.0f;
                continue;
            }
            int64_t t = t0 + j, ty = t / tw, tx = t % tw;
#ifdef __wasm_simd128__
            /* four tiles side by side, inside the input: one vector each */
            int64_t y0 = 2 * ty - pt, x0 = 2 * tx - pl;
            if (j % 4 == 0 && j + 4 <= n && tx + 4 <= tw && y0 >= 0 && x0 >= 0 &&
                y0 + 4 <= ih && x0 + 10 <= iw) {
                transform_4_tiles(xc + y0 * iw + x0, iw, dst, plane);
                j += 3;
                continue;
            }
#endif
            float d[4][4], r[4][4];
            load_block(xc, ih, iw, 2 * ty - pt, 2 * tx - pl, d);
            for (int k = 0; k < 4; k++) { /* B^T d */
                r[0][k] = d[0][k] - d[2][k];
                r[1][k] = d[1][k] + d[2][k];
                r[2][k] = d[2][k] - d[1][k];
                r[3][k] = d[1][k] - d[3][k];
            }
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                dst[(i * 4 + 0) * plane] = r[i][0] - r[i][2];
                dst[(i * 4 + 1) * plane] = r[i][1] + r[i][2];
                dst[(i * 4 + 2) * plane] = r[i][2] - r[i][1];
                dst[(i * 4 + 3) * plane] = r[i][1] - r[i][3];
            }
        }
    }
}

/* Outputs of tiles [t0, t0 + n) from the 16 products (m, n) at p: A^T P A,
   plus the bias, clamped, the parts inside (oh, ow) stored. */
static void transform_outputs(const float *p, int64_t m, int64_t n, int64_t t0,
                              int64_t tw, float *y, int64_t oh, int64_t ow,
                              const float *bias, float lo, float hi)
{
    int64_t plane = m * n;
    for (int64_t mi = 0; mi < m; mi++) {
        float b = bias ? bias[mi] : 0.0f;
        float *ym = y + mi * oh * ow;
        for (int64_t j = 0; j < n; j++) {
            const float *s = p + mi * n + j;
#ifdef __wasm_simd128__
            int64_t tq = t0 + j, oy4 = 2 * (tq / tw), ox4 = 2 * (tq % tw);
            if (j + 4 <= n && tq % tw + 4 <= tw && oy4 + 2 <= oh && ox4 + 8 <= ow) {
                outputs_4_tiles(s, plane, ym + oy4 * ow + ox4, ow, b, lo, hi);
                j += 3;
                continue;
            }
#endif
            float r[2][4];
            for (int k = 0; k < 4; k++) { /* A^T P */
                float s0 = s[(0 + k) * plane], s1 = s[(4 + k) * plane];
                float s2 = s[(8 + k) * plane], s3 = s[(12 + k) * plane];
                r[0][k] = s0 + s1 + s2;
                r[1][k] = s1 - s2 - s3;
            }
            int64_t t = t0 + j, oy = 2 * (t / tw), ox = 2 * (t % tw);
            for (int i = 0; i < 2 && oy + i < oh; i++) { /* (A^T P) A */
                float o[2] = {r[i][0] + r[i][1] + r[i][2] + b,
                              r[i][1] - r[i][2] - r[i][3] + b};
                for (int k = 0; k < 2 && ox + k < ow; k++) {
                    float val = o[k] < lo ? lo : o[k] > hi ? hi : o[k];
                    ym[(oy + i) * ow + ox + k] = val;
                }
            }
        }
    }
}

Status winograd_conv(const float *w, int w_packed, int64_t m, int64_t c,
                     const float *x, int64_t ih, int64_t iw, int64_t pt,
                     int64_t pl, float *y, int64_t oh, int64_t ow,
                     const float *bias, float lo, float hi, Err *err)
{
    int64_t th = (oh + 1) / 2, tw = (ow + 1) / 2, tiles = th * tw;
    /* tiles per block: whole B panels, as many as WG_BLOCK_FLOATS holds */
    int64_t widest = c > m ? c : m;
    int64_t block = WG_BLOCK_FLOATS / (16 * widest) / GEMM_NR * GEMM_NR;
    block = block < GEMM_NR ? GEMM_NR : block;
    block = tiles < block ? tiles : block;
    int64_t block_p = (block + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    int64_t a_size = gemm_packed_a_size(m, c);
    float *u = malloc(sizeof(float) * (size_t)(16 * a_size));
    float *v = malloc(sizeof(float) * (size_t)(16 * c * block_p));
    float *p = malloc(sizeof(float) * (size_t)(16 * m * block));
    Status st = ST_OK;
    if (!u || !v || !p) {
        st = fail(err, ST_OOM, "conv: out of memory for a Winograd block of "
                  "%lld tiles", (long long)block);
        goto done;
    }
    transform_weights(w, w_packed, m, c, a_size, u);
    Epilogue none = gemm_no_epilogue();
    for (int64_t t0 = 0; t0 < tiles && st == ST_OK; t0 += block) {
        int64_t n = tiles - t0 < block ? tiles - t0 : block;
        int64_t np = (n + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
        transform_inputs(x, c, ih, iw, pt, pl, tw, t0, n, np, v);
        for (int xi = 0; xi < 16 && st == ST_OK; xi++) {
            GemmB b = {v + xi * c * np, NULL, NULL};
            GemmA a = gemm_a_packed(u + xi * a_size);
            st = gemm_run(m, n, c, &a, &b, p + xi * m * n, n, &none, err);
        }
        if (st == ST_OK)
            transform_outputs(p, m, n, t0, tw, y, oh, ow, bias, lo, hi);
    }
done:
    free(u);
    free(v);
    free(p);
    return st;
}
