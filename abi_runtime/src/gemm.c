/*
 * gemm.c: packed single-precision GEMM with a 4x8 micro-kernel.
 *
 * The scalar micro-kernel is the reference; the SIMD128 one has the same
 * signature and is chosen at compile time. Both accumulate over k in the
 * same order, so they agree up to floating-point contraction (none: we
 * build without -ffast-math and wasm SIMD has no fused multiply-add).
 */
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

/* Largest B block, in floats, packed at once (fits in L2 with room). */
#define GEMM_B_BLOCK_FLOATS (96 * 1024)

int64_t gemm_packed_a_size(int64_t m, int64_t k)
{
    return ((m + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * k;
}

void gemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs,
                 float *dst)
{
    for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR) {
        /* panel: (k, GEMM_MR), rows past m zero */
        for (int64_t p = 0; p < k; p++)
            for (int64_t r = 0; r < GEMM_MR; r++)
                *dst++ = i0 + r < m ? a[(i0 + r) * rs + p * cs] : 0.0f;
    }
}

void gemm_pack_b_strided(const void *ctx, int64_t j0, int64_t nj, float *dst)
{
    const StridedB *s = ctx;
    for (int64_t jp = 0; jp < nj; jp += GEMM_NR) {
        int64_t cols = nj - jp < GEMM_NR ? nj - jp : GEMM_NR;
        /* panel: (k, GEMM_NR), columns past cols zero */
        for (int64_t p = 0; p < s->k; p++) {
            const float *row = s->b + p * s->rs + (j0 + jp) * s->cs;
            int64_t c = 0;
            for (; c < cols; c++) dst[c] = row[c * s->cs];
            for (; c < GEMM_NR; c++) dst[c] = 0.0f;
            dst += GEMM_NR;
        }
    }
}

/* Store the (GEMM_MR, GEMM_NR) tile acc into C, clipped to rows x cols. */
static void store_tile(const float *acc, float *c, int64_t ldc, int rows,
                       int cols)
{
    for (int r = 0; r < rows; r++)
        memcpy(c + r * ldc, acc + r * GEMM_NR, sizeof(float) * cols);
}

#ifndef __wasm_simd128__
/* Reference micro-kernel: tile = a (k, MR)^T b (k, NR) + bias. */
static void kernel_4x8(int64_t k, const float *a, const float *b, float *c,
                       int64_t ldc, int rows, int cols, const float *bias)
{
    float acc[GEMM_MR * GEMM_NR];
    for (int r = 0; r < GEMM_MR; r++)
        for (int j = 0; j < GEMM_NR; j++)
            acc[r * GEMM_NR + j] = bias && r < rows ? bias[r] : 0.0f;
    for (int64_t p = 0; p < k; p++, a += GEMM_MR, b += GEMM_NR)
        for (int r = 0; r < GEMM_MR; r++)
            for (int j = 0; j < GEMM_NR; j++)
                acc[r * GEMM_NR + j] += a[r] * b[j];
    store_tile(acc, c, ldc, rows, cols);
}
#else
/* SIMD128 micro-kernel: same contract as the reference above. */
static void kernel_4x8(int64_t k, const float *a, const float *b, float *c,
                       int64_t ldc, int rows, int cols, const float *bias)
{
    v128_t c00, c01, c10, c11, c20, c21, c30, c31;
    c00 = c01 = f32x4_splat(bias ? bias[0] : 0.0f);
    c10 = c11 = f32x4_splat(bias && rows > 1 ? bias[1] : 0.0f);
    c20 = c21 = f32x4_splat(bias && rows > 2 ? bias[2] : 0.0f);
    c30 = c31 = f32x4_splat(bias && rows > 3 ? bias[3] : 0.0f);
    for (int64_t p = 0; p < k; p++, a += GEMM_MR, b += GEMM_NR) {
        v128_t b0 = v128_load(b), b1 = v128_load(b + 4);
        v128_t av = v128_load(a);
        v128_t a0 = lane_splat(av, 0), a1 = lane_splat(av, 1);
        v128_t a2 = lane_splat(av, 2), a3 = lane_splat(av, 3);
        c00 = f32x4_add(c00, f32x4_mul(a0, b0));
        c01 = f32x4_add(c01, f32x4_mul(a0, b1));
        c10 = f32x4_add(c10, f32x4_mul(a1, b0));
        c11 = f32x4_add(c11, f32x4_mul(a1, b1));
        c20 = f32x4_add(c20, f32x4_mul(a2, b0));
        c21 = f32x4_add(c21, f32x4_mul(a2, b1));
        c30 = f32x4_add(c30, f32x4_mul(a3, b0));
        c31 = f32x4_add(c31, f32x4_mul(a3, b1));
    }
    if (rows == GEMM_MR && cols == GEMM_NR) {
        v128_store(c, c00); v128_store(c + 4, c01); c += ldc;
        v128_store(c, c10); v128_store(c + 4, c11); c += ldc;
        v128_store(c, c20); v128_store(c + 4, c21); c += ldc;
        v128_store(c, c30); v128_store(c + 4, c31);
        return;
    }
    float acc[GEMM_MR * GEMM_NR];
    v128_store(acc, c00); v128_store(acc + 4, c01);
    v128_store(acc + 8, c10); v128_store(acc + 12, c11);
    v128_store(acc + 16, c20); v128_store(acc + 20, c21);
    v128_store(acc + 24, c30); v128_store(acc + 28, c31);
    store_tile(acc, c, ldc, rows, cols);
}
#endif

Status gemm_packed(int64_t m, int64_t n, int64_t k, const float *packed_a,
                   PackB pack_b, const void *ctx, float *c, int64_t ldc,
                   const float *bias_row, Err *err)
{
    /* columns per packed block: a multiple of GEMM_NR, bounded in size */
    int64_t nc = GEMM_B_BLOCK_FLOATS / (k > 0 ? k : 1);
    nc = nc < GEMM_NR ? GEMM_NR : nc - nc % GEMM_NR;
    if (nc > n)
        nc = (n + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    float *pb = malloc(sizeof(float) * (size_t)(nc * (k > 0 ? k : 1)));
    if (!pb)
        return fail(err, ST_OOM, "gemm: out of memory for a (%lld, %lld) "
                    "block", (long long)k, (long long)nc);

    for (int64_t j0 = 0; j0 < n; j0 += nc) {
        int64_t nj = n - j0 < nc ? n - j0 : nc;
        pack_b(ctx, j0, nj, pb);
        for (int64_t jp = 0; jp < nj; jp += GEMM_NR) {
            int cols = (int)(nj - jp < GEMM_NR ? nj - jp : GEMM_NR);
            const float *bpanel = pb + (jp / GEMM_NR) * k * GEMM_NR;
            for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR) {
                int rows = (int)(m - i0 < GEMM_MR ? m - i0 : GEMM_MR);
                kernel_4x8(k, packed_a + (i0 / GEMM_MR) * k * GEMM_MR, bpanel,
                           c + i0 * ldc + j0 + jp, ldc, rows, cols,
                           bias_row ? bias_row + i0 : NULL);
            }
        }
    }
    free(pb);
    return ST_OK;
}
