/*
 * ops_matmul.c: MatMul and Gemm on the packed GEMM of gemm.c.
 */
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "ops.h"

/* C (m, n) = A (m, k) B (k, n) for strided A and B; C row-major. */
static Status matmul_2d(const Node *n, int64_t m, int64_t nn, int64_t k,
                        const float *a, int64_t ars, int64_t acs,
                        const float *b, int64_t brs, int64_t bcs, float *c,
                        Err *err)
{
    (void)n;
    float *pa = malloc(sizeof(float) * (size_t)(gemm_packed_a_size(m, k) + 1));
    if (!pa)
        return fail(err, ST_OOM, "out of memory packing a (%lld, %lld) matrix",
                    (long long)m, (long long)k);
    gemm_pack_a(m, k, a, ars, acs, pa);
    StridedB sb = {b, k, brs, bcs};
    Status st = gemm_packed(m, nn, k, pa, gemm_pack_b_strided, &sb, c, nn,
                            NULL, err);
    free(pa);
    return st;
}

/* Y = A @ B, numpy semantics: 1-D operands promoted, batch dims broadcast. */
Status op_matmul(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    Status st;
    if ((st = require_float(n, a, 0, err)) || (st = require_float(n, b, 1, err)))
        return st;
    if (a->ndim == 0 || b->ndim == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "operands must have rank "
                         ">= 1, got ranks %d and %d", (int)a->ndim, (int)b->ndim);
    int64_t m = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1;
    int64_t k = a->dims[a->ndim - 1];
    int64_t kb = b->ndim >= 2 ? b->dims[b->ndim - 2] : b->dims[0];
    int64_t nn = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    char sa[96], sb[96];
    if (k != kb)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dimensions differ: "
                         "%s @ %s", shape_str(a->dims, a->ndim, sa, 96),
                         shape_str(b->dims, b->ndim, sb, 96));

    /* step 1: broadcast batch dims (all but the last two) */
    int32_t ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
    int32_t nb = ba > bb ? ba : bb;
    int64_t dims[MAX_RANK], sta[MAX_RANK], stb[MAX_RANK];
    for (int32_t i = 0; i < nb; i++) {
        int32_t ia = i - (nb - ba), ib = i - (nb - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast "
                             "batch dims of %s and %s",
                             shape_str(a->dims, a->ndim, sa, 96),
                             shape_str(b->dims, b->ndim, sb, 96));
        dims[i] = da == 1 ? db : da;
        sta[i] = da == 1 ? 0 : a->strides[ia];
        stb[i] = db == 1 ? 0 : b->strides[ib];
    }

    /* step 2: output shape: batch, then m unless A was 1-D, n unless B was */
    int32_t nd = nb;
    if (a->ndim >= 2) dims[nd++] = m;
    if (b->ndim >= 2) dims[nd++] = nn;
    if ((st = tensor_alloc(out[0], DT_FLOAT, nd, dims, err)))
        return st;

    /* step 3: one 2-D product per batch index */
    int64_t batches = 1;
    for (int32_t i = 0; i < nb; i++) batches *= dims[i];
    int64_t idx[MAX_RANK] = {0};
    for (int64_t t = 0; t < batches; t++) {
        int64_t oa = 0, ob = 0, rem = t;
        for (int32_t i = nb - 1; i >= 0; i--) {
            idx[i] = rem % dims[i];
            rem /= dims[i];
            oa += idx[i] * sta[i];
            ob += idx[i] * stb[i];
        }
        const float *pa = (const float *)a->data + oa;
        const float *pb = (const float *)b->data + ob;
        float *pc = (float *)out[0]->data + t * m * nn;
        int64_t brs = b->ndim >= 2 ? nn : 1;
        if ((st = matmul_2d(n, m, nn, k, pa, k, 1, pb, brs, 1, pc, err)))
            return st;
    }
    return ST_OK;
}

typedef struct {
    float alpha, beta;
    int trans_a, trans_b;
} GemmParams;

Status prep_gemm(const Model *m, Node *n, Err *err)
{
    (void)m;
    GemmParams *p = malloc(sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    p->alpha = attr_float(n, "alpha", 1.0f);
    p->beta = attr_float(n, "beta", 1.0f);
    p->trans_a = (int)attr_int(n, "transA", 0);
    p->trans_b = (int)attr_int(n, "transB", 0);
    n->params = p;
    return ST_OK;
}

/* Add beta * C, broadcast to (m, n) (unidirectionally), to y. */
static Status add_c(const Node *n, const Tensor *c, float beta, float *y,
                    int64_t m, int64_t nn, Err *err)
{
    int64_t cm = c->ndim == 2 ? c->dims[0] : 1;
    int64_t cn = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
    if (c->ndim > 2 || (cm != 1 && cm != m) || (cn != 1 && cn != nn))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "C of rank %d with dims "
                         "(%lld, %lld) does not broadcast to (%lld, %lld)",
                         (int)c->ndim, (long long)cm, (long long)cn,
                         (long long)m, (long long)nn);
    const float *cv = c->data;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < nn; j++)
            y[i * nn + j] += beta * cv[(cm == 1 ? 0 : i) * cn + (cn == 1 ? 0 : j)];
    return ST_OK;
}

/* Y = alpha * op(A) op(B) + beta * C, op = optional transpose; 2-D. */
Status op_gemm(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const GemmParams *p = n->params;
    const Tensor *a = in[0], *b = in[1], *c = n->n_in > 2 ? in[2] : NULL;
    Status st;
    if ((st = require_float(n, a, 0, err)) || (st = require_float(n, b, 1, err)) ||
        (c && (st = require_float(n, c, 2, err))))
        return st;
    char sa[96], sb[96];
    if (a->ndim != 2 || b->ndim != 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "A and B must be 2-D, got "
                         "%s and %s", shape_str(a->dims, a->ndim, sa, 96),
                         shape_str(b->dims, b->ndim, sb, 96));
    int64_t m = p->trans_a ? a->dims[1] : a->dims[0];
    int64_t k = p->trans_a ? a->dims[0] : a->dims[1];
    int64_t kb = p->trans_b ? b->dims[1] : b->dims[0];
    int64_t nn = p->trans_b ? b->dims[0] : b->dims[1];
    if (k != kb)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dimensions differ: "
                         "A %s%s, B %s%s", shape_str(a->dims, 2, sa, 96),
                         p->trans_a ? "^T" : "", shape_str(b->dims, 2, sb, 96),
                         p->trans_b ? "^T" : "");
    int64_t dims[2] = {m, nn};
    if ((st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    float *y = out[0]->data;
    const float *av = a->data, *bv = b->data;
    st = matmul_2d(n, m, nn, k, av, p->trans_a ? 1 : k, p->trans_a ? m : 1, bv,
                   p->trans_b ? 1 : nn, p->trans_b ? k : 1, y, err);
    if (st != ST_OK)
        return st;
    if (p->alpha != 1.0f)
        for (int64_t i = 0; i < m * nn; i++) y[i] *= p->alpha;
    if (c && p->beta != 0.0f)
        return add_c(n, c, p->beta, y, m, nn, err);
    return ST_OK;
}
