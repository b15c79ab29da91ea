/*
 * ops_matmul.c: MatMul and Gemm on the packed GEMM of gemm.c.
 *
 * When the packager finds a constant 2-D B it stores it packed (attribute
 * wx_weight_shape = B's ONNX shape; input 1 is then the packed B of
 * gemm.h, already transposed for Gemm's transB), and it may fuse a
 * following bias (MatMul: attribute wx_bias, a constant of n values) and
 * Relu or Clip (attribute wx_clip = [lo, hi]).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "ops.h"

Status fused_clamp(const Node *n, float *lo, float *hi, Err *err)
{
    const Attr *a = node_attr(n, "wx_clip");
    *lo = -INFINITY;
    *hi = INFINITY;
    if (!a)
        return ST_OK;
    if (a->type != AT_FLOATS || a->count != 2)
        return node_fail(n, err, ST_BAD_FORMAT, "wx_clip must be 2 floats");
    *lo = attr_floats_at(a, 0);
    *hi = attr_floats_at(a, 1);
    return ST_OK;
}

/* The packed B of node n: shape (k, n) from wx_weight_shape (transposed
   when trans), checked against the tensor's size. *packed stays 0 when
   the node carries no packed weight. */
static Status packed_b(const Node *n, const Tensor *b, int trans, int *packed,
                       int64_t *k, int64_t *nn, Err *err)
{
    const Attr *a = node_attr(n, "wx_weight_shape");
    *packed = 0;
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS || a->count != 2)
        return node_fail(n, err, ST_BAD_FORMAT, "wx_weight_shape must be 2 ints");
    int64_t d0 = attr_ints_at(a, 0), d1 = attr_ints_at(a, 1);
    *k = trans ? d1 : d0;
    *nn = trans ? d0 : d1;
    if (d0 < 1 || d1 < 1 || b->numel != gemm_packed_b_size(*k, *nn))
        return node_fail(n, err, ST_BAD_FORMAT, "packed weight of %lld floats "
                         "does not match shape (%lld, %lld)", (long long)b->numel,
                         (long long)d0, (long long)d1);
    *packed = 1;
    return ST_OK;
}

/* C (m, n) = A (m, k) B (k, n) + epilogue, for strided A; B strided
   (brs, bcs) or, when bpacked is set, packed panels. C row-major. */
static Status matmul_2d(int64_t m, int64_t nn, int64_t k, const float *a,
                        int64_t ars, int64_t acs, const float *b, int64_t brs,
                        int64_t bcs, const float *bpacked, float *c,
                        const Epilogue *ep, Err *err)
{
    GemmA ga = {NULL, a, ars, acs};
    StridedB sb = {b, k, brs, bcs};
    GemmB gb = {bpacked, gemm_pack_b_strided, &sb};
    return gemm_run(m, nn, k, &ga, &gb, c, nn, ep, err);
}

/* The bias fused into a MatMul (wx_bias), checked to have nn floats. */
static Status matmul_bias(const Node *n, const Model *model, int64_t nn,
                          const float **bias, Err *err)
{
    (void)model;
    *bias = NULL;
    const Attr *a = node_attr(n, "wx_bias");
    if (!a)
        return ST_OK;
    const Tensor *t = n->params;
    if (!t || t->dtype != DT_FLOAT || t->numel != nn)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "fused bias must have %lld "
                         "floats", (long long)nn);
    *bias = t->data;
    return ST_OK;
}

Status prep_matmul(const Model *m, Node *n, Err *err)
{
    const Attr *a = node_attr(n, "wx_bias");
    if (!a)
        return ST_OK;
    int32_t v = a->type == AT_TENSOR ? attr_tensor(a) : -1;
    if (v < 0 || v >= m->n_values || m->values[v].kind != VK_CONSTANT)
        return node_fail(n, err, ST_BAD_FORMAT, "wx_bias is not a constant");
    n->params = (void *)&m->values[v].constant;
    return ST_OK;
}

Status matmul_batch(const Node *n, const Tensor *a, const Tensor *b,
                    int64_t m, int64_t nn, MatmulBatch *mb, Err *err)
{
    char sa[96], sb[96];
    int32_t ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
    int32_t nb = mb->nb = ba > bb ? ba : bb;
    mb->batches = 1;
    for (int32_t i = 0; i < nb; i++) {
        int32_t ia = i - (nb - ba), ib = i - (nb - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast "
                             "batch dims of %s and %s",
                             shape_str(a->dims, a->ndim, sa, 96),
                             shape_str(b->dims, b->ndim, sb, 96));
        mb->dims[i] = da == 1 ? db : da;
        mb->sta[i] = da == 1 ? 0 : a->strides[ia];
        mb->stb[i] = db == 1 ? 0 : b->strides[ib];
        mb->batches *= mb->dims[i];
    }
    mb->nd = nb;
    if (a->ndim >= 2) mb->dims[mb->nd++] = m;
    if (b->ndim >= 2) mb->dims[mb->nd++] = nn;
    return ST_OK;
}

void matmul_batch_offsets(const MatmulBatch *mb, int64_t t, int64_t *oa,
                          int64_t *ob)
{
    *oa = *ob = 0;
    for (int32_t i = mb->nb - 1; i >= 0; i--) {
        *oa += t % mb->dims[i] * mb->sta[i];
        *ob += t % mb->dims[i] * mb->stb[i];
        t /= mb->dims[i];
    }
}

/* Y = A @ B, numpy semantics: 1-D operands promoted, batch dims broadcast. */
Status op_matmul(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    Status st;
    if (a->dtype != DT_FLOAT || b->dtype != DT_FLOAT)
        return matmul_wide(n, in, out, err); /* other floats: ops_widen.c */
    if (a->ndim == 0 || b->ndim == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "operands must have rank "
                         ">= 1, got ranks %d and %d", (int)a->ndim, (int)b->ndim);
    int packed;
    int64_t k, kb, nn;
    if ((st = packed_b(n, b, 0, &packed, &kb, &nn, err)))
        return st;
    int32_t brank = packed ? 2 : b->ndim;
    const int64_t *bdims = b->dims;
    int64_t pdims[2] = {kb, nn};
    if (packed)
        bdims = pdims;
    int64_t m = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1;
    k = a->dims[a->ndim - 1];
    kb = brank >= 2 ? bdims[brank - 2] : bdims[0];
    nn = brank >= 2 ? bdims[brank - 1] : 1;
    char sa[96], sb[96];
    if (k != kb)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dimensions differ: "
                         "%s @ %s", shape_str(a->dims, a->ndim, sa, 96),
                         shape_str(bdims, brank, sb, 96));
    Epilogue ep = gemm_no_epilogue();
    if ((st = fused_clamp(n, &ep.lo, &ep.hi, err)) ||
        (st = matmul_bias(n, NULL, nn, &ep.bias_col, err)))
        return st;

    /* step 1: a 2-D B: one product over all rows of A (batch folded in m) */
    if (brank == 2) {
        int64_t dims[MAX_RANK];
        for (int32_t i = 0; i < a->ndim - 1; i++) dims[i] = a->dims[i];
        dims[a->ndim - 1] = nn;
        if ((st = tensor_alloc(out[0], DT_FLOAT, a->ndim, dims, err)))
            return st;
        int64_t rows = 1;
        for (int32_t i = 0; i < a->ndim - 1; i++) rows *= a->dims[i];
        return matmul_2d(rows, nn, k, a->data, k, 1, b->data, nn, 1,
                         packed ? b->data : NULL, out[0]->data, &ep, err);
    }

    /* step 2: broadcast batch dims; output: batch, then m and n */
    MatmulBatch mb;
    if ((st = matmul_batch(n, a, b, m, nn, &mb, err)) ||
        (st = tensor_alloc(out[0], DT_FLOAT, mb.nd, mb.dims, err)))
        return st;

    /* step 3: one 2-D product per batch index */
    for (int64_t t = 0; t < mb.batches; t++) {
        int64_t oa, ob;
        matmul_batch_offsets(&mb, t, &oa, &ob);
        const float *pa = (const float *)a->data + oa;
        const float *pb = (const float *)b->data + ob;
        float *pc = (float *)out[0]->data + t * m * nn;
        int64_t brs = b->ndim >= 2 ? nn : 1;
        if ((st = matmul_2d(m, nn, k, pa, k, 1, pb, brs, 1, NULL, pc, &ep, err)))
            return st;
    }
    return ST_OK;
}

typedef struct {
    float alpha, beta;
    int trans_a, trans_b;
    float lo, hi; /* fused clamp */
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
    return fused_clamp(n, &p->lo, &p->hi, err);
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
    int packed;
    int64_t kb, nn;
    if ((st = packed_b(n, b, p->trans_b, &packed, &kb, &nn, err)))
        return st;
    char sa[96], sb[96];
    if (a->ndim != 2 || (!packed && b->ndim != 2))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "A and B must be 2-D, got "
                         "%s and %s", shape_str(a->dims, a->ndim, sa, 96),
                         shape_str(b->dims, b->ndim, sb, 96));
    int64_t m = p->trans_a ? a->dims[1] : a->dims[0];
    int64_t k = p->trans_a ? a->dims[0] : a->dims[1];
    if (!packed) {
        kb = p->trans_b ? b->dims[1] : b->dims[0];
        nn = p->trans_b ? b->dims[0] : b->dims[1];
    }
    if (k != kb)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "inner dimensions differ: "
                         "A %s%s, B has %lld rows%s", shape_str(a->dims, 2, sa, 96),
                         p->trans_a ? "^T" : "", (long long)kb,
                         p->trans_b ? " (transposed)" : "");
    int64_t dims[2] = {m, nn};
    if ((st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    float *y = out[0]->data;

    /* a bias row C of n values (the usual case) goes into the epilogue */
    Epilogue ep = gemm_no_epilogue();
    int simple = p->alpha == 1.0f;
    int bias_fused = simple && c && p->beta == 1.0f && c->numel == nn &&
                     (c->ndim == 1 || (c->ndim == 2 && c->dims[0] == 1));
    if (bias_fused)
        ep.bias_col = c->data;
    if (simple && (!c || bias_fused)) {
        ep.lo = p->lo;
        ep.hi = p->hi;
    }
    const float *av = a->data, *bv = b->data;
    st = matmul_2d(m, nn, k, av, p->trans_a ? 1 : k, p->trans_a ? m : 1, bv,
                   p->trans_b ? 1 : nn, p->trans_b ? k : 1, packed ? bv : NULL,
                   y, &ep, err);
    if (st != ST_OK || (simple && (!c || bias_fused)))
        return st;

    /* the general case: scale, add C, then the fused clamp */
    if (p->alpha != 1.0f)
        for (int64_t i = 0; i < m * nn; i++) y[i] *= p->alpha;
    if (c && p->beta != 0.0f && (st = add_c(n, c, p->beta, y, m, nn, err)))
        return st;
    for (int64_t i = 0; i < m * nn; i++)
        y[i] = y[i] < p->lo ? p->lo : y[i] > p->hi ? p->hi : y[i];
    return ST_OK;
}
