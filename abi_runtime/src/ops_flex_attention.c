/*
 * ops_flex_attention.c: FlexAttention (ai.onnx.preview opset 1), scaled
 * dot-product attention over rank-4 inputs with two optional modifier
 * bodies, each a graph of the plan with one input and one output of the
 * scores' shape (B, Hq, L, S):
 *
 *     scores = (Q * sqrt(scale)) (K * sqrt(scale))^T   (in Q's dtype)
 *     scores = score_mod(scores)                       (if given)
 *     probs  = softmax(scores) along S
 *     probs  = prob_mod(probs)                         (if given)
 *     Y      = probs V                                 (rounded to V's dtype)
 *
 * Query head h reads key/value head h / (Hq / Hkv). The scores and probs
 * have the softmax_precision dtype (default float32, float64 for float64
 * inputs); float16 inputs are stored as binary16 and computed in float32
 * or wider, rounded where the function body rounds: the pre-scaled Q and
 * K, the scores in Q's dtype, then the softmax precision.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

typedef struct {
    int32_t score_mod, prob_mod; /* body graphs, -1 when absent */
    int has_scale;
    float scale;
    int32_t precision;           /* dtype of scores and probs, 0: default */
} FlexParams;

/* Graph index of optional GRAPH attribute name (-1 when absent), checked to
   take one input and return one output. */
static Status mod_attr(const Model *m, const Node *n, const char *name,
                       int32_t *gi, Err *err)
{
    const Attr *a = node_attr(n, name);
    *gi = -1;
    if (!a)
        return ST_OK;
    if (a->type != AT_GRAPH)
        return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must be a "
                         "graph", name);
    int32_t g;
    memcpy(&g, a->raw, 4);
    if (m->graphs[g].n_inputs != 1 || m->graphs[g].n_outputs != 1)
        return node_fail(n, err, ST_BAD_FORMAT, "%s must take 1 input and "
                         "return 1 output, not %d and %d", name,
                         (int)m->graphs[g].n_inputs, (int)m->graphs[g].n_outputs);
    *gi = g;
    return ST_OK;
}

/* Read the bodies, scale and softmax_precision once. */
Status prep_flex_attention(const Model *m, Node *n, Err *err)
{
    FlexParams *p = calloc(1, sizeof *p);
    Status st;
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    if ((st = mod_attr(m, n, "score_mod", &p->score_mod, err)) ||
        (st = mod_attr(m, n, "prob_mod", &p->prob_mod, err)))
        return st;
    const Attr *sa = node_attr(n, "scale");
    p->has_scale = sa && sa->type == AT_FLOAT;
    p->scale = p->has_scale ? attr_floats_at(sa, 0) : 0.0f;
    int64_t prec = attr_int(n, "softmax_precision", 0);
    if (prec != 0 && prec != DT_FLOAT && prec != DT_FLOAT16 && prec != DT_DOUBLE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "softmax_precision %lld is "
                         "not supported (float, float16 or double)",
                         (long long)prec);
    p->precision = (int32_t)prec;
    return ST_OK;
}

/* v rounded to dtype dt (float32, float16 or float64). */
static double round_to(int32_t dt, double v)
{
    if (dt == DT_FLOAT)
        return (float)v;
    if (dt == DT_FLOAT16)
        return half_to_float(double_to_half(v));
    return v;
}

/*
 * Replace *t (owned, (B, Hq, L, S)) by body gi applied to it; the result
 * must have the same shape and a float dtype. what names the body.
 */
static Status apply_mod(const Model *m, const Node *n, int32_t gi,
                        Tensor *vals, Tensor *t, const char *what, Err *err)
{
    Tensor r = {0};
    char s0[96], s1[96];
    Status st = body_call(m, n, gi, vals, t, &r, err);
    if (st != ST_OK)
        return st;
    if (r.kind != TK_TENSOR || !dtype_is_float(r.dtype) || r.ndim != 4 ||
        memcmp(r.dims, t->dims, sizeof(int64_t) * 4)) {
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "%s returned %s %s, expected "
                       "float %s", what, dtype_name(r.dtype),
                       shape_str(r.dims, r.ndim, s0, 96),
                       shape_str(t->dims, 4, s1, 96));
        tensor_release(&r);
        return st;
    }
    tensor_release(t);
    *t = r;
    return ST_OK;
}

/* Check Q (B, Hq, L, E), K (B, Hkv, S, E), V (B, Hkv, S, Ev): one float
   dtype, Hq a multiple of Hkv. */
static Status check_qkv(const Node *n, const Tensor *q, const Tensor *k,
                        const Tensor *v, Err *err)
{
    char s0[96], s1[96], s2[96];
    if (!dtype_is_float(q->dtype) || k->dtype != q->dtype || v->dtype != q->dtype)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "Q, K and V are %s, %s and "
                         "%s; one float dtype is supported", dtype_name(q->dtype),
                         dtype_name(k->dtype), dtype_name(v->dtype));
    if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4 || k->dims[0] != q->dims[0] ||
        v->dims[0] != q->dims[0] || k->dims[1] != v->dims[1] || k->dims[1] == 0 ||
        q->dims[1] % k->dims[1] || k->dims[2] != v->dims[2] || k->dims[3] != q->dims[3])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "Q %s, K %s and V %s must be "
                         "(B, Hq, L, E), (B, Hkv, S, E) and (B, Hkv, S, Ev) with "
                         "Hq a multiple of Hkv",
                         shape_str(q->dims, q->ndim, s0, 96),
                         shape_str(k->dims, k->ndim, s1, 96),
                         shape_str(v->dims, v->ndim, s2, 96));
    return ST_OK;
}

/* scores (B, Hq, L, S) of dtype cd = (Q * ss) (K * ss)^T, ss = sqrt(scale)
   in float32 rounded to Q's dtype, each product and dot rounded to it. */
static Status compute_scores(const Node *n, const FlexParams *p,
                             const Tensor *q, const Tensor *k, int32_t cd,
                             Tensor *sc, Err *err)
{
    int64_t B = q->dims[0], hq = q->dims[1], L = q->dims[2], E = q->dims[3];
    int64_t hkv = k->dims[1], S = k->dims[2], group = hq / hkv;
    int32_t dt = q->dtype;
    float scale = p->has_scale ? p->scale : (float)(1.0 / sqrt((double)E));
    double ss = round_to(dt, sqrtf(scale));
    int64_t dims[4] = {B, hq, L, S};
    Status st = tensor_alloc(sc, cd, 4, dims, err);
    if (st != ST_OK)
        return st;
    double *qs = malloc(sizeof(double) * ((size_t)E + 1));
    if (!qs)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < hq; h++)
            for (int64_t i = 0; i < L; i++) {
                int64_t qrow = ((b * hq + h) * L + i) * E;
                int64_t krows = (b * hkv + h / group) * S * E;
                for (int64_t e = 0; e < E; e++)
                    qs[e] = round_to(dt, elem_get_f(q, qrow + e) * ss);
                for (int64_t j = 0; j < S; j++) {
                    double dot = 0.0;
                    for (int64_t e = 0; e < E; e++)
                        dot += qs[e] * round_to(dt, elem_get_f(k, krows + j * E + e) * ss);
                    elem_set_f(sc, ((b * hq + h) * L + i) * S + j, round_to(dt, dot));
                }
            }
    free(qs);
    return ST_OK;
}

/* probs (scores' shape, dtype cd) = softmax of each row of scores. A row
   of -inf only gives NaN, as exp(x - max) / sum does. */
static Status softmax_rows(const Tensor *sc, int32_t cd, Tensor *pr, Err *err)
{
    Status st = tensor_alloc(pr, cd, 4, sc->dims, err);
    if (st != ST_OK)
        return st;
    int64_t S = sc->dims[3], rows = S ? sc->numel / S : 0;
    for (int64_t r = 0; r < rows; r++) {
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < S; j++)
            mx = fmax(mx, elem_get_f(sc, r * S + j));
        for (int64_t j = 0; j < S; j++)
            sum += exp(elem_get_f(sc, r * S + j) - mx);
        for (int64_t j = 0; j < S; j++)
            elem_set_f(pr, r * S + j, exp(elem_get_f(sc, r * S + j) - mx) / sum);
    }
    return ST_OK;
}

/* Y (B, Hq, L, Ev) of node n, its bodies run on the value slots vals (see
   control_run); nothing is computed when Y is not wanted. */
Status flex_attention_run(const Model *m, const Node *n, Tensor *vals,
                          Tensor *const *in, Tensor *const *out, Err *err)
{
    const FlexParams *p = n->params;
    const Tensor *q = in[0], *k = in[1], *v = in[2];
    Tensor sc = {0}, pr = {0};
    Status st = check_qkv(n, q, k, v, err);
    if (st != ST_OK || !out[0])
        return st;
    int32_t cd = p->precision ? p->precision
                              : q->dtype == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;

    /* step 1: scores, score_mod, softmax, prob_mod */
    if ((st = compute_scores(n, p, q, k, cd, &sc, err)) ||
        (p->score_mod >= 0 &&
         (st = apply_mod(m, n, p->score_mod, vals, &sc, "score_mod", err))) ||
        (st = softmax_rows(&sc, cd, &pr, err)) ||
        (p->prob_mod >= 0 &&
         (st = apply_mod(m, n, p->prob_mod, vals, &pr, "prob_mod", err)))) {
        tensor_release(&sc);
        tensor_release(&pr);
        return st;
    }
    tensor_release(&sc);

    /* step 2: Y (B, Hq, L, Ev) = probs V, in cd, rounded to V's dtype */
    int64_t B = q->dims[0], hq = q->dims[1], L = q->dims[2];
    int64_t hkv = k->dims[1], S = k->dims[2], ev = v->dims[3], group = hq / hkv;
    int64_t ydims[4] = {B, hq, L, ev};
    if ((st = tensor_alloc(out[0], v->dtype, 4, ydims, err)) == ST_OK)
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < hq; h++)
                for (int64_t i = 0; i < L; i++) {
                    int64_t prow = ((b * hq + h) * L + i) * S;
                    int64_t vrows = (b * hkv + h / group) * S * ev;
                    for (int64_t d = 0; d < ev; d++) {
                        double acc = 0.0;
                        for (int64_t j = 0; j < S; j++)
                            acc += elem_get_f(&pr, prow + j) *
                                   round_to(cd, elem_get_f(v, vrows + j * ev + d));
                        elem_set_f(out[0], ((b * hq + h) * L + i) * ev + d,
                                   round_to(cd, acc));
                    }
                }
    tensor_release(&pr);
    return st;
}
