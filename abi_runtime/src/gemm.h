/*
 * gemm.h: single-precision matrix product on packed panels.
 *
 * The product C = A B (+ bias, then a clamp) runs on A and B laid out in
 * panels that the micro-kernel reads sequentially:
 *   packed A: ceil(m / GEMM_MR) panels of (k, GEMM_MR), zero-padded rows,
 *             stored k block by k block (gemm_a_index): the panels' slices
 *             of one block lie end to end, so that a block streams from
 *             memory in one sequential run (weights too large for the cache
 *             arrive faster)
 *   packed B: ceil(n / GEMM_NR) panels of (k, GEMM_NR), zero-padded columns
 * Constant operands (convolution and Gemm/MatMul weights) come packed in
 * this layout from the packager (docs/plan-format.md, "packed weights"),
 * so the runtime never copies them. Other operands are packed on the fly:
 * A one panel at a time from the strided matrix (no copy of the whole),
 * B a block of columns at a time by a caller-supplied function, so that
 * convolution builds its im2col columns straight into panels.
 */
#ifndef WX_GEMM_H
#define WX_GEMM_H

#include <stdint.h>

#include "status.h"

#define GEMM_MR 2 /* rows of C per micro-kernel call */
#define GEMM_NR 16 /* columns of C per micro-kernel call */
#define GEMM_KC 512 /* most columns of k per block */

/* Columns of k per block: k cut into equal blocks of at most GEMM_KC (the
   last one shorter by the rounding), so that no block is a short tail. */
static inline int64_t gemm_k_step(int64_t k)
{
    int64_t blocks = (k + GEMM_KC - 1) / GEMM_KC;
    return blocks > 1 ? (k + blocks - 1) / blocks : GEMM_KC;
}

/* Index of element (i, p) of an (m, k) A in packed panels: blocks of
   columns [p0, p0 + kc) in turn, each holding every panel's (kc, GEMM_MR)
   slice. With k <= GEMM_KC (one block) this is panel after panel. */
static inline int64_t gemm_a_index(int64_t m, int64_t k, int64_t i, int64_t p)
{
    int64_t step = gemm_k_step(k), p0 = p - p % step;
    int64_t kc = k - p0 < step ? k - p0 : step;
    int64_t panels = (m + GEMM_MR - 1) / GEMM_MR;
    return p0 * panels * GEMM_MR + (i / GEMM_MR) * kc * GEMM_MR + (p - p0) * GEMM_MR +
           i % GEMM_MR;
}

/* Where A comes from: packed panels, or a strided matrix read in place. */
typedef struct {
    const float *packed; /* ceil(m / GEMM_MR) panels of (k, GEMM_MR), or NULL */
    const float *a;      /* else: element (i, p) at a[i * rs + p * cs] */
    int64_t rs, cs;
} GemmA;

/* A given as packed panels. */
static inline GemmA gemm_a_packed(const float *packed)
{
    return (GemmA){packed, NULL, 0, 0};
}

/* Write columns [j0, j0 + nj) of B into panels at dst, each panel
   (k, GEMM_NR) row-major, columns past nj zero. */
typedef void (*PackB)(const void *ctx, int64_t j0, int64_t nj, float *dst);

/* Where B comes from: already packed (all n columns), or a packer. */
typedef struct {
    const float *packed; /* ceil(n / GEMM_NR) panels of (k, GEMM_NR), or NULL */
    PackB pack;          /* used when packed is NULL */
    const void *ctx;
} GemmB;

/* What happens to each element of C after the product: add a bias by row
   or by column (NULL: none), then clamp to [lo, hi] (Relu: [0, inf]). */
typedef struct {
    const float *bias_row; /* (m) */
    const float *bias_col; /* (n) */
    float lo, hi;
} Epilogue;

/* An epilogue that adds nothing and clamps nothing. */
Epilogue gemm_no_epilogue(void);

/* Pack A (m, k), element (i, p) at a[i * rs + p * cs], into panels. */
void gemm_pack_a(int64_t m, int64_t k, const float *a, int64_t rs, int64_t cs,
                 float *dst);

/* Floats of packed A for an (m, k) matrix, and of packed B for (k, n). */
int64_t gemm_packed_a_size(int64_t m, int64_t k);
int64_t gemm_packed_b_size(int64_t k, int64_t n);

/*
 * C (m, n), row stride ldc, = A (m, k) times B (k, n), then the
 * epilogue. Returns ST_OOM if its scratch space cannot be allocated.
 */
Status gemm_run(int64_t m, int64_t n, int64_t k, const GemmA *a,
                const GemmB *b, float *c, int64_t ldc, const Epilogue *ep,
                Err *err);

/* B given as a strided matrix: element (p, j) at b[p * rs + j * cs]. */
typedef struct {
    const float *b;
    int64_t k, rs, cs;
} StridedB;

/* PackB for a StridedB context. */
void gemm_pack_b_strided(const void *ctx, int64_t j0, int64_t nj, float *dst);

/* ---- shared by Conv, Gemm and MatMul (ops_matmul.c) -------------------- */

#include "model.h"

/* The batch geometry of A @ B under numpy's rules: the batch dims (all
   but the last two) broadcast, the output dims (batch, then m unless A is
   1-D, n unless B is), and per batch dim the element strides of A and B
   (0 where that operand broadcasts). */
typedef struct {
    int32_t nb, nd;          /* batch dims; output rank */
    int64_t batches;         /* product of the batch dims */
    int64_t dims[MAX_RANK];  /* output dims; the first nb are the batch */
    int64_t sta[MAX_RANK], stb[MAX_RANK];
} MatmulBatch;

/* Fill mb for A @ B with m rows and nn columns per product; fails naming
   both shapes when the batch dims do not broadcast. */
Status matmul_batch(const Node *n, const Tensor *a, const Tensor *b,
                    int64_t m, int64_t nn, MatmulBatch *mb, Err *err);

/* The element offsets into A and B of batch index t. */
void matmul_batch_offsets(const MatmulBatch *mb, int64_t t, int64_t *oa,
                          int64_t *ob);

/* The clamp fused into node n by the packager (attribute wx_clip = [lo,
   hi]), or [-inf, inf]. Fails on a malformed attribute. */
Status fused_clamp(const Node *n, float *lo, float *hi, Err *err);

#endif
