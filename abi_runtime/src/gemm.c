/*
 * gemm.c: packed single-precision GEMM with a 6x8 micro-kernel.
 *
 * Loop nest (outermost first), sized for a 32 KB L1 and a ~1 MB L2:
 *   1. blocks of nc columns of B, packed once (or read pre-packed)
 *   2. blocks of kc rows of k; C accumulates across them
 *   3. panels of GEMM_MR rows of A (kc x MR floats, stays in L1)
 *   4. panels of GEMM_NR columns of the B block: the micro-kernel
 * The scalar micro-kernel is the reference; the SIMD128 one has the same
 * contract. Built with relaxed SIMD, the multiply-add is fused (one
 * rounding instead of two), so results differ from the plain build in the
 * last bits only.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

#define GEMM_KC 256                   /* rows of k per block */
#define GEMM_B_BLOCK_FLOATS (64 * 1024) /* nc * kc: the B block in L2 */

Epilogue gemm_no_epilogue(void)
{
    return (Epilogue){NULL, NULL, -INFINITY, INFINITY};
}

int64_t gemm_packed_a_size(int64_t m, int64_t k)
{
    return ((m + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * k;
}

int64_t gemm_packed_b_size(int64_t k, int64_t n)
{
    return ((n + GEMM_NR - 1) / GEMM_NR) * GEMM_NR * k;
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
        const float *col0 = s->b + (j0 + jp) * s->cs;
        /* panel: (k, GEMM_NR), columns past cols zero */
        if (s->cs == 1 && cols == GEMM_NR) {
            for (int64_t p = 0; p < s->k; p++, dst += GEMM_NR)
                memcpy(dst, col0 + p * s->rs, sizeof(float) * GEMM_NR);
            continue;
        }
        for (int64_t p = 0; p < s->k; p++) {
            const float *row = col0 + p * s->rs;
            int64_t c = 0;
            for (; c < cols; c++) dst[c] = row[c * s->cs];
            for (; c < GEMM_NR; c++) dst[c] = 0.0f;
            dst += GEMM_NR;
        }
    }
}

/* One micro-kernel call: the tile and what to do at its start and end. */
typedef struct {
    float *c;
    int64_t ldc;
    int rows, cols;          /* valid part of the tile */
    int first, last;         /* first / last k block: init, epilogue */
    const float *bias_row;   /* (rows) or NULL */
    const float *bias_col;   /* (cols) or NULL */
    float lo, hi;
} Tile;

/* The starting value of tile element (r, j): C on later k blocks, else
   the bias. */
static float tile_init(const Tile *t, int r, int j)
{
    if (!t->first)
        return r < t->rows && j < t->cols ? t->c[r * t->ldc + j] : 0.0f;
    float v = t->bias_row && r < t->rows ? t->bias_row[r] : 0.0f;
    return v + (t->bias_col && j < t->cols ? t->bias_col[j] : 0.0f);
}

/* Store acc (GEMM_MR, GEMM_NR) into the valid part of the tile, clamped
   on the last k block. */
static void tile_store(const Tile *t, const float *acc)
{
    for (int r = 0; r < t->rows; r++)
        for (int j = 0; j < t->cols; j++) {
            float v = acc[r * GEMM_NR + j];
            if (t->last)
                v = v < t->lo ? t->lo : v > t->hi ? t->hi : v;
            t->c[r * t->ldc + j] = v;
        }
}

#ifndef __wasm_simd128__
/* Reference micro-kernel: tile (+)= a (k, MR)^T b (k, NR). */
static void kernel(int64_t k, const float *a, const float *b, const Tile *t)
{
    float acc[GEMM_MR * GEMM_NR];
    for (int r = 0; r < GEMM_MR; r++)
        for (int j = 0; j < GEMM_NR; j++)
            acc[r * GEMM_NR + j] = tile_init(t, r, j);
    for (int64_t p = 0; p < k; p++, a += GEMM_MR, b += GEMM_NR)
        for (int r = 0; r < GEMM_MR; r++)
            for (int j = 0; j < GEMM_NR; j++)
                acc[r * GEMM_NR + j] += a[r] * b[j];
    tile_store(t, acc);
}
#else
/* SIMD128 micro-kernel: same contract as the reference above. Twelve
   accumulators, two B vectors and one broadcast A value fit the sixteen
   vector registers of x86-64 and arm64 hosts. */
static void kernel(int64_t k, const float *a, const float *b, const Tile *t)
{
    v128_t c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    int full = t->rows == GEMM_MR && t->cols == GEMM_NR;
    if (full && !t->first) {
        const float *c = t->c;
        int64_t l = t->ldc;
        c00 = v128_load(c); c01 = v128_load(c + 4);
        c10 = v128_load(c + l); c11 = v128_load(c + l + 4);
        c20 = v128_load(c + 2 * l); c21 = v128_load(c + 2 * l + 4);
        c30 = v128_load(c + 3 * l); c31 = v128_load(c + 3 * l + 4);
        c40 = v128_load(c + 4 * l); c41 = v128_load(c + 4 * l + 4);
        c50 = v128_load(c + 5 * l); c51 = v128_load(c + 5 * l + 4);
    } else {
        float init[GEMM_MR * GEMM_NR];
        for (int r = 0; r < GEMM_MR; r++)
            for (int j = 0; j < GEMM_NR; j++)
                init[r * GEMM_NR + j] = tile_init(t, r, j);
        c00 = v128_load(init); c01 = v128_load(init + 4);
        c10 = v128_load(init + 8); c11 = v128_load(init + 12);
        c20 = v128_load(init + 16); c21 = v128_load(init + 20);
        c30 = v128_load(init + 24); c31 = v128_load(init + 28);
        c40 = v128_load(init + 32); c41 = v128_load(init + 36);
        c50 = v128_load(init + 40); c51 = v128_load(init + 44);
    }
    for (int64_t p = 0; p < k; p++, a += GEMM_MR, b += GEMM_NR) {
        v128_t b0 = v128_load(b), b1 = v128_load(b + 4), av;
        av = f32x4_load_splat(a);
        c00 = f32x4_madd(av, b0, c00); c01 = f32x4_madd(av, b1, c01);
        av = f32x4_load_splat(a + 1);
        c10 = f32x4_madd(av, b0, c10); c11 = f32x4_madd(av, b1, c11);
        av = f32x4_load_splat(a + 2);
        c20 = f32x4_madd(av, b0, c20); c21 = f32x4_madd(av, b1, c21);
        av = f32x4_load_splat(a + 3);
        c30 = f32x4_madd(av, b0, c30); c31 = f32x4_madd(av, b1, c31);
        av = f32x4_load_splat(a + 4);
        c40 = f32x4_madd(av, b0, c40); c41 = f32x4_madd(av, b1, c41);
        av = f32x4_load_splat(a + 5);
        c50 = f32x4_madd(av, b0, c50); c51 = f32x4_madd(av, b1, c51);
    }
    if (full) {
        float *c = t->c;
        int64_t l = t->ldc;
        if (t->last && (t->lo > -INFINITY || t->hi < INFINITY)) {
            v128_t lo = f32x4_splat(t->lo), hi = f32x4_splat(t->hi);
#define CLAMP(v) v = f32x4_pmin(f32x4_pmax(v, lo), hi) /* NaN stays */
            CLAMP(c00); CLAMP(c01); CLAMP(c10); CLAMP(c11);
            CLAMP(c20); CLAMP(c21); CLAMP(c30); CLAMP(c31);
            CLAMP(c40); CLAMP(c41); CLAMP(c50); CLAMP(c51);
#undef CLAMP
        }
        v128_store(c, c00); v128_store(c + 4, c01);
        v128_store(c + l, c10); v128_store(c + l + 4, c11);
        v128_store(c + 2 * l, c20); v128_store(c + 2 * l + 4, c21);
        v128_store(c + 3 * l, c30); v128_store(c + 3 * l + 4, c31);
        v128_store(c + 4 * l, c40); v128_store(c + 4 * l + 4, c41);
        v128_store(c + 5 * l, c50); v128_store(c + 5 * l + 4, c51);
        return;
    }
    float acc[GEMM_MR * GEMM_NR];
    v128_store(acc, c00); v128_store(acc + 4, c01);
    v128_store(acc + 8, c10); v128_store(acc + 12, c11);
    v128_store(acc + 16, c20); v128_store(acc + 20, c21);
    v128_store(acc + 24, c30); v128_store(acc + 28, c31);
    v128_store(acc + 32, c40); v128_store(acc + 36, c41);
    v128_store(acc + 40, c50); v128_store(acc + 44, c51);
    tile_store(t, acc);
}
#endif

/* Steps 2-4 of the loop nest for one block of nj columns of B, packed as
   panels of (k, GEMM_NR) at pb. */
static void gemm_block(int64_t m, int64_t nj, int64_t k, const float *pa,
                       const float *pb, float *c, int64_t ldc,
                       const Epilogue *ep, const float *bias_col)
{
    for (int64_t p0 = 0; p0 < k || p0 == 0; p0 += GEMM_KC) {
        int64_t kc = k - p0 < GEMM_KC ? k - p0 : GEMM_KC;
        for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR) {
            const float *apanel = pa + (i0 / GEMM_MR) * k * GEMM_MR + p0 * GEMM_MR;
            for (int64_t jp = 0; jp < nj; jp += GEMM_NR) {
                Tile t = {c + i0 * ldc + jp, ldc,
                          (int)(m - i0 < GEMM_MR ? m - i0 : GEMM_MR),
                          (int)(nj - jp < GEMM_NR ? nj - jp : GEMM_NR),
                          p0 == 0, p0 + kc >= k,
                          ep->bias_row ? ep->bias_row + i0 : NULL,
                          bias_col ? bias_col + jp : NULL, ep->lo, ep->hi};
                kernel(kc, apanel, pb + (jp / GEMM_NR) * k * GEMM_NR + p0 * GEMM_NR,
                       &t);
            }
        }
        if (k == 0)
            break;
    }
}

Status gemm_run(int64_t m, int64_t n, int64_t k, const float *packed_a,
                const GemmB *b, float *c, int64_t ldc, const Epilogue *ep,
                Err *err)
{
    /* step 1: columns per block: a multiple of GEMM_NR, nc * kc bounded */
    int64_t kc = k < GEMM_KC ? (k > 0 ? k : 1) : GEMM_KC;
    int64_t nc = GEMM_B_BLOCK_FLOATS / kc;
    nc = nc < GEMM_NR ? GEMM_NR : nc - nc % GEMM_NR;
    if (nc > n)
        nc = (n + GEMM_NR - 1) / GEMM_NR * GEMM_NR;
    float *pb = NULL;
    if (!b->packed) {
        pb = malloc(sizeof(float) * (size_t)(nc * (k > 0 ? k : 1)));
        if (!pb)
            return fail(err, ST_OOM, "gemm: out of memory for a (%lld, %lld) "
                        "block", (long long)k, (long long)nc);
    }

    /* steps 2-4 per block of columns */
    for (int64_t j0 = 0; j0 < n; j0 += nc) {
        int64_t nj = n - j0 < nc ? n - j0 : nc;
        const float *block = b->packed ? b->packed + (j0 / GEMM_NR) * k * GEMM_NR
                                       : pb;
        if (!b->packed)
            b->pack(b->ctx, j0, nj, pb);
        gemm_block(m, nj, k, packed_a, block, c + j0, ldc, ep,
                   ep->bias_col ? ep->bias_col + j0 : NULL);
    }
    free(pb);
    return ST_OK;
}
