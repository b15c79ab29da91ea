/*
 * gemm.h: single-precision matrix product on packed panels.
 *
 * The product C = A B + bias runs on copies of A and B laid out in panels
 * that the micro-kernel reads sequentially:
 *   packed A: ceil(m / GEMM_MR) panels of (k, GEMM_MR), zero-padded rows
 *   packed B: ceil(n / GEMM_NR) panels of (k, GEMM_NR), zero-padded columns
 * B is packed a block of columns at a time by a caller-supplied function,
 * so that convolution can build its im2col columns straight into panels
 * without materialising the whole (k, n) matrix.
 */
#ifndef WX_GEMM_H
#define WX_GEMM_H

#include <stdint.h>

#include "status.h"

#define GEMM_MR 4 /* rows of C per micro-kernel call */
#define GEMM_NR 8 /* columns of C per micro-kernel call */

/* Write columns [j0, j0 + nj) of B into panels at dst, each panel
   (k, GEMM_NR) row-major, columns past nj zero. */
typedef void (*PackB)(const void *ctx, int64_t j0, int64_t nj, float *dst);

/* Pack A (m, k), element (i, p) at a[i * rs + p * cs], into panels. */
void gemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs,
                 float *dst);

/* Floats needed by gemm_pack_a for an (m, k) matrix. */
int64_t gemm_packed_a_size(int64_t m, int64_t k);

/*
 * C (m, n), row stride ldc, = packed A (m, k) times B (k, n) + bias.
 * bias_row (m) is added to every row i, or NULL. B comes from pack_b.
 * Returns ST_OOM if its scratch space cannot be allocated.
 */
Status gemm_packed(int64_t m, int64_t n, int64_t k, const float *packed_a,
                   PackB pack_b, const void *ctx, float *c, int64_t ldc,
                   const float *bias_row, Err *err);

/* B given as a strided matrix: element (p, j) at b[p * rs + j * cs]. */
typedef struct {
    const float *b;
    int64_t k, rs, cs;
} StridedB;

/* PackB for a StridedB context. */
void gemm_pack_b_strided(const void *ctx, int64_t j0, int64_t nj, float *dst);

#endif
