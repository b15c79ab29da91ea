/*
 * gemm.c: packed single-precision GEMM with a 2x16 micro-kernel.
 *
 * Loop nest (outermost first), sized for a 32 KB L1 and a ~1 MB L2:
 *   1. blocks of nc columns of B, packed once (or read pre-packed)
 *   2. blocks of kc rows of k; C accumulates across them
 *   3. panels of A (kc, GEMM_MR): one, broadcast, stays in L1
 *   4. panels of B (kc, GEMM_NR), streaming from L2: the micro-kernel
 * The scalar micro-kernel is the reference; the SIMD128 one has the same
 * contract but reads A broadcast (a_panel below). Both builds
 * multiply and then add, in two roundings: the relaxed-SIMD build's fused
 * multiply-add was slower here (~38 against ~45 GFLOP/s in wasmtime on
 * x86-64), because Cranelift ties the result of vfmadd213ps to a
 * multiplicand, which costs a register copy per
 * multiply-add and moves every accumulator to a new register each step.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "simd.h"

#define GEMM_B_BLOCK_FLOATS (128 * 1024) /* nc * kc: the B block in L2 */

_Static_assert(GEMM_MR == 2, "the SIMD micro-kernel broadcasts 2 lanes of A");
_Static_assert(GEMM_NR == 16, "the SIMD micro-kernel switch lists 1..4 B vectors");
_Static_assert(GEMM_NR % 4 == 0, "B panels are whole vectors");

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
    int64_t step = gemm_k_step(k);
    for (int64_t p0 = 0; p0 < k; p0 += step) {
        int64_t kc = k - p0 < step ? k - p0 : step;
        for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR)
            /* the panel's (kc, GEMM_MR) slice, rows past m zero */
            for (int64_t p = p0; p < p0 + kc; p++)
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

#ifndef __wasm_simd128__
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
/* body for each row r of R (a constant), unrolled */
#define TILE_ROWS(R, body) \
    _Pragma("clang loop unroll(full)") for (int r = 0; r < (R); r++) body

/* Hide x's origin from the compiler (no instruction is emitted). Used on
   the k loop's panel pointers: clang's loop strength reduction otherwise
   turns every load b + 4 * v into an i32.add and a load at offset 0,
   which Cranelift compiles to two instructions instead of one with the
   offset folded in. */
#define OPAQUE(x) __asm__("" : "+r"(x))

/* SIMD128 micro-kernel for tiles of R valid rows (R = 1..2) and V vectors
   of valid columns (V = 1..4), constants after inlining: same contract as
   the reference above, but rows past R and vectors past V are never
   computed, and A comes broadcast: (k, GEMM_MR) vectors, each one value
   of the packed panel in all four lanes. Eight accumulators (2 rows x 4 vectors), four B vectors, one
   broadcast and one product fit the sixteen vector registers of x86-64
   hosts without spilling; the 4x12 tile this replaces kept twelve
   accumulators and spilled four of them every step. The k loop is not
   unrolled: Cranelift places every load of a loop body before its
   arithmetic, so an unrolled body keeps all its loaded vectors alive at
   once and spills. Measured in wasmtime on x86-64: ~45 GFLOP/s against
   ~29 for the 4x12 tile, before A came broadcast and the loop's pointers
   stopped spilling (each ~10% more). */
static inline __attribute__((always_inline)) void
kernel_rows(const int R, const int V, int64_t k, const float *a, const float *b,
            const Tile *t)
{
    enum { NV = GEMM_NR / 4 };
    v128_t acc[GEMM_MR][NV];   /* [R][V] used */
    float row[GEMM_NR];   /* scratch for a partial row of C */
    int full = t->cols == GEMM_NR;

    /* step 1: start from C on later k blocks, else from the biases */
    if (!t->first) {
        TILE_ROWS(R, {
            const float *src = t->c + r * t->ldc;
            if (!full) {
                memset(row, 0, sizeof row);
                memcpy(row, src, sizeof(float) * (size_t)t->cols);
                src = row;
            }
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < V; v++)
                acc[r][v] = v128_load(src + 4 * v);
        });
    } else {
        v128_t bc[NV];   /* [V] used */
        const float *col = t->bias_col;
        if (col && !full) {
            memset(row, 0, sizeof row);
            memcpy(row, col, sizeof(float) * (size_t)t->cols);
            col = row;
        }
        _Pragma("clang loop unroll(full)")
        for (int v = 0; v < V; v++)
            bc[v] = col ? v128_load(col + 4 * v) : f32x4_splat(0.0f);
        TILE_ROWS(R, {
            v128_t br = f32x4_splat(t->bias_row ? t->bias_row[r] : 0.0f);
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < V; v++)
                acc[r][v] = f32x4_add(br, bc[v]);
        });
    }

    /* step 2: per k, V vectors of B and the MR broadcasts of A */
    const float *b_end = b + k * GEMM_NR;
#pragma clang loop unroll(disable)
    for (; b != b_end; a += GEMM_MR * 4, b += GEMM_NR) {
        OPAQUE(a);
        OPAQUE(b);
        v128_t bv[NV];   /* [V] used */
#pragma clang loop unroll(full)
        for (int v = 0; v < V; v++)
            bv[v] = v128_load(b + 4 * v);
        TILE_ROWS(R, {
            v128_t sp = v128_load(a + 4 * r);
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < V; v++)
                acc[r][v] = f32x4_add(f32x4_mul(sp, bv[v]), acc[r][v]);
        });
    }

    /* the tile's fields are read again below rather than kept in
       registers across the loop, which then has enough registers for its
       pointers (spilling one costs a store-to-load round trip per step) */
    __asm__ __volatile__("" ::: "memory");
    full = t->cols == GEMM_NR;

    /* step 3: clamp on the last k block; NaN stays NaN: pmax(v, lo) and
       pmin(v, hi) return v for NaN */
    if (t->last && (t->lo > -INFINITY || t->hi < INFINITY)) {
        v128_t lo = f32x4_splat(t->lo), hi = f32x4_splat(t->hi);
        TILE_ROWS(R, {
            _Pragma("clang loop unroll(full)")
            for (int v = 0; v < V; v++)
                acc[r][v] = f32x4_pmin(f32x4_pmax(acc[r][v], lo), hi);
        });
    }

    /* step 4: store the valid part */
    TILE_ROWS(R, {
        float *dst = t->c + r * t->ldc;
        _Pragma("clang loop unroll(full)")
        for (int v = 0; v < V; v++)
            v128_store(full ? dst + 4 * v : row + 4 * v, acc[r][v]);
        if (!full)
            memcpy(dst, row, sizeof(float) * (size_t)t->cols);
    });
}

/* SIMD128 micro-kernel: one specialisation per number of valid rows and
   of valid column vectors. Not inlined, so that the caller's state does
   not compete for registers. */
static __attribute__((noinline)) void kernel(int64_t k, const float *a, const float *b,
                                             const Tile *t)
{
#define KERNEL_CASE(R, V) \
    case (R) * 8 + (V): kernel_rows((R), (V), k, a, b, t); break;
    switch (t->rows * 8 + (t->cols + 3) / 4) {
    KERNEL_CASE(2, 4) KERNEL_CASE(2, 3) KERNEL_CASE(2, 2) KERNEL_CASE(2, 1)
    KERNEL_CASE(1, 4) KERNEL_CASE(1, 3) KERNEL_CASE(1, 2) KERNEL_CASE(1, 1)
    default: break; /* no valid element */
    }
#undef KERNEL_CASE
}
#endif

#ifdef __wasm_simd128__
/* The A panel of rows [i0, i0 + GEMM_MR) and columns [p0, p0 + kc), each
   value broadcast to a vector: the SIMD micro-kernel reads a[p * MR + r]
   as one 16-byte load instead of a load and a lane shuffle per row and
   step, ~10% faster in wasmtime. Built once per A panel and k block,
   reused by every B panel of the block (16 KB: it stays in L1). Static:
   gemm_run is never re-entered. */
static v128_t a_splat[GEMM_KC * GEMM_MR];

static const float *a_panel(const GemmA *A, int64_t m, int64_t k, int64_t i0,
                            int64_t p0, int64_t kc)
{
    v128_t *dst = a_splat;
    if (A->packed) {
        const float *a = A->packed + gemm_a_index(m, k, i0, p0);
        for (int64_t p = 0; p < kc; p++, a += GEMM_MR, dst += GEMM_MR) {
            v128_t a2 = wasm_v128_load64_zero(a);
            dst[0] = lane_splat(a2, 0);
            dst[1] = lane_splat(a2, 1);
        }
    } else {
        const float *r0 = A->a + i0 * A->rs + p0 * A->cs;
        const float *r1 = r0 + A->rs;
        int64_t cs = A->cs;
        if (m - i0 >= 2)
            for (int64_t p = 0; p < kc; p++, dst += GEMM_MR) {
                dst[0] = f32x4_splat(r0[p * cs]);
                dst[1] = f32x4_splat(r1[p * cs]);
            }
        else /* the last row of an odd m: the second row is zero */
            for (int64_t p = 0; p < kc; p++, dst += GEMM_MR) {
                dst[0] = f32x4_splat(r0[p * cs]);
                dst[1] = f32x4_splat(0.0f);
            }
    }
    return (const float *)a_splat;
}
#else
/* The A panel of rows [i0, i0 + GEMM_MR) and columns [p0, p0 + kc) as the
   scalar micro-kernel reads it: (kc, GEMM_MR), packed in place or here. */
static float a_pack[GEMM_KC * GEMM_MR];

static const float *a_panel(const GemmA *A, int64_t m, int64_t k, int64_t i0,
                            int64_t p0, int64_t kc)
{
    if (A->packed)
        return A->packed + gemm_a_index(m, k, i0, p0);
    int64_t rows = m - i0 < GEMM_MR ? m - i0 : GEMM_MR;
    gemm_pack_a(rows, kc, A->a + i0 * A->rs + p0 * A->cs, A->rs, A->cs, a_pack);
    return a_pack;
}
#endif

/* Steps 2-4 of the loop nest for one block of nj columns of B, packed as
   panels of (k, GEMM_NR) at pb. */
static void gemm_block(int64_t m, int64_t nj, int64_t k, const GemmA *a,
                       const float *pb, float *c, int64_t ldc,
                       const Epilogue *ep, const float *bias_col)
{
    /* equal k blocks of at most GEMM_KC: no short last block */
    int64_t step = gemm_k_step(k);
    for (int64_t p0 = 0; p0 < k || p0 == 0; p0 += step) {
        int64_t kc = k - p0 < step ? k - p0 : step;
        /* one A panel (kc, GEMM_MR), broadcast, stays in L1 while the
           B panels (kc, GEMM_NR) of the block stream past it from L2 */
        for (int64_t i0 = 0; i0 < m; i0 += GEMM_MR) {
            const float *ap = a_panel(a, m, k, i0, p0, kc);
            for (int64_t jp = 0; jp < nj; jp += GEMM_NR) {
                Tile t = {c + i0 * ldc + jp, ldc,
                          (int)(m - i0 < GEMM_MR ? m - i0 : GEMM_MR),
                          (int)(nj - jp < GEMM_NR ? nj - jp : GEMM_NR),
                          p0 == 0, p0 + kc >= k,
                          ep->bias_row ? ep->bias_row + i0 : NULL,
                          bias_col ? bias_col + jp : NULL, ep->lo, ep->hi};
                kernel(kc, ap, pb + (jp / GEMM_NR) * k * GEMM_NR + p0 * GEMM_NR, &t);
            }
        }
        if (k == 0)
            break;
    }
}

Status gemm_run(int64_t m, int64_t n, int64_t k, const GemmA *a,
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
        gemm_block(m, nj, k, a, block, c + j0, ldc, ep,
                   ep->bias_col ? ep->bias_col + j0 : NULL);
    }
    free(pb);
    return ST_OK;
}
