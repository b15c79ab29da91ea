/*
 * ops_attention.c: Attention (opset 23+): scaled dot-product attention
 * with grouped heads, masks, causal and sliding-window masking, softcap
 * and a key/value cache. Float dtypes, computed in double (float16 and
 * bfloat16 step by step in their own precision, see Lowp).
 */
#include <math.h>
#include <stdlib.h>

#include "numeric.h"
#include "ops.h"

/* A Q/K/V operand viewed as (batch, heads, seq, head_size), whether it is
   stored 4-D like that or 3-D as (batch, seq, heads * head_size). */
typedef struct {
    const Tensor *t;
    int64_t b, h, s, d;
    int packed; /* 3-D */
} Heads;

static Status heads_view(const Node *n, const Tensor *t, int64_t heads,
                         Heads *v, Err *err)
{
    v->t = t;
    v->packed = t->ndim == 3;
    if (t->ndim == 4) {
        v->b = t->dims[0]; v->h = t->dims[1]; v->s = t->dims[2]; v->d = t->dims[3];
        return ST_OK;
    }
    if (t->ndim != 3 || heads <= 0 || t->dims[2] % heads)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected 4-D inputs, or "
                         "3-D with q_num_heads/kv_num_heads dividing the "
                         "hidden size");
    v->b = t->dims[0]; v->s = t->dims[1]; v->h = heads; v->d = t->dims[2] / heads;
    return ST_OK;
}

static double at(const Heads *v, int64_t b, int64_t h, int64_t s, int64_t d)
{
    if (v->packed)
        return elem_get_f(v->t, (b * v->s + s) * v->h * v->d + h * v->d + d);
    return elem_get_f(v->t, ((b * v->h + h) * v->s + s) * v->d + d);
}

/* Element (b, h, s, d) of the cache after appending new to past (seq axis). */
static double cached(const Tensor *past, const Heads *new, int64_t b,
                     int64_t h, int64_t s, int64_t d)
{
    int64_t p = past ? past->dims[2] : 0;
    if (s < p)
        return elem_get_f(past, ((b * past->dims[1] + h) * p + s) * past->dims[3] + d);
    return at(new, b, h, s - p, d);
}

/* The additive bias of score (b, h, i, j) over t keys: the mask (bool:
   false -> -inf; keys past its last dim -> -inf), causal and sliding-window
   limits around i + offset, and the non-padded key count of batch b. */
typedef struct {
    const Tensor *mask, *nonpad;
    int causal;
    int64_t left, right, past, lq;
} Bias;

static double bias_at(const Bias *bs, int64_t b, int64_t h, int64_t i,
                      int64_t j)
{
    double v = 0.0;
    const Tensor *m = bs->mask;
    if (m) {
        int64_t c[4] = {b, h, i, j}, off = 0;
        int32_t nd = m->ndim;
        if (j >= m->dims[nd - 1])
            return -INFINITY;
        for (int32_t k = 0; k < nd; k++) {
            int64_t ck = c[4 - nd + k];
            off += (m->dims[k] == 1 ? 0 : ck) * m->strides[k];
        }
        v = m->dtype == DT_BOOL ? (((const uint8_t *)m->data)[off] ? 0.0 : -INFINITY)
                                : elem_get_f(m, off);
    }
    int64_t offset = bs->past;
    if (bs->nonpad && !bs->past)
        offset = tensor_get_int(bs->nonpad, b) - bs->lq;
    int64_t diff = i + offset - j;
    if (bs->causal && diff < 0)
        return -INFINITY;
    if ((bs->left >= 0 && diff > bs->left) || (bs->right >= 0 && -diff > bs->right))
        return -INFINITY;
    if (bs->nonpad && j >= tensor_get_int(bs->nonpad, b))
        return -INFINITY;
    return v;
}

/*
 * float16 / bfloat16 inputs follow the reference's steps in the input type:
 * every intermediate (scaled Q and K, scores, biased scores, exp, the
 * probabilities) is rounded to that type, and the two matrix products
 * accumulate in float32. Computing in double and rounding once differs by
 * one unit in the last place in a quarter of bfloat16 outputs, more than
 * the conformance tolerance allows.
 */
typedef struct {
    int32_t dt;     /* DT_FLOAT16 or DT_BFLOAT16; 0: compute in double */
    double scale;   /* sqrt(scale) in dt: Q and K are each scaled by it */
    double softcap; /* softcap in dt */
} Lowp;

/* v rounded to the low-precision type (unchanged when computing in double). */
static double rd(const Lowp *lp, double v)
{
    return lp->dt ? round_to_dtype(lp->dt, v) : v;
}

/* Score (b, h, i, j) in low precision: (Q * s) . (K * s), softcapped. */
static double lowp_score(const Lowp *lp, const Heads *q, const Tensor *pk,
                         const Heads *k, int64_t b, int64_t h, int64_t kh,
                         int64_t i, int64_t j)
{
    float acc = 0.0f;
    for (int64_t d = 0; d < q->d; d++) {
        double qs = rd(lp, at(q, b, h, i, d) * lp->scale);
        double ks = rd(lp, cached(pk, k, b, kh, j, d) * lp->scale);
        acc += (float)(qs * ks); /* exact: 2 x 11 significant bits */
    }
    double dot = rd(lp, acc);
    if (lp->softcap > 0.0)
        dot = rd(lp, rd(lp, tanh(rd(lp, dot / lp->softcap))) * lp->softcap);
    return dot;
}

/* Softmax of row[0..t) (maximum mx) in low precision, in place: exp of
   the shifted scores, their sum (bfloat16: rounded after every addition,
   as numpy adds that type; float16: accumulated in float32), quotients.
   raw receives the biased scores for qk_matmul_output_mode 2. */
static void lowp_softmax(const Lowp *lp, double *row, double *raw, int64_t t,
                         double mx, int64_t mode)
{
    double shift = isinf(mx) && mx < 0 ? 0.0 : mx, sum = 0.0;
    float fsum = 0.0f;
    for (int64_t j = 0; j < t; j++) {
        if (mode == 2) raw[j] = row[j];
        row[j] = rd(lp, exp(rd(lp, row[j] - shift)));
        if (lp->dt == DT_BFLOAT16)
            sum = j ? rd(lp, sum + row[j]) : row[j];
        else
            fsum += (float)row[j];
    }
    if (lp->dt != DT_BFLOAT16)
        sum = rd(lp, fsum);
    if (sum == 0.0)
        sum = 1.0;
    for (int64_t j = 0; j < t; j++)
        row[j] = rd(lp, row[j] / sum);
}

/* Y = softmax(softcap(Q K^T * scale) + bias) V per head (query head h
   reads key/value head h / (Hq / Hkv)); outputs present_key/value (the
   cache with the new keys appended) and the chosen qk_matmul_output. */
Status op_attention(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *mask = n->n_in > 3 ? in[3] : NULL;
    const Tensor *pk = n->n_in > 4 ? in[4] : NULL, *pv = n->n_in > 5 ? in[5] : NULL;
    const Tensor *nonpad = n->n_in > 6 ? in[6] : NULL;
    Heads q, k, v;
    Status st;
    for (int i = 0; i < 3; i++)
        if (dtype_domain(in[i]->dtype) != DOM_FLOAT)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                             "supported", dtype_name(in[i]->dtype));
    if ((st = heads_view(n, in[0], attr_int(n, "q_num_heads", 0), &q, err)) ||
        (st = heads_view(n, in[1], attr_int(n, "kv_num_heads", 0), &k, err)) ||
        (st = heads_view(n, in[2], attr_int(n, "kv_num_heads", 0), &v, err)))
        return st;
    int64_t p = pk && pk->ndim == 4 ? pk->dims[2] : 0, t = p + k.s;
    if ((pk == NULL) != (pv == NULL) || (pk && (pk->ndim != 4 || pv->ndim != 4 ||
        pk->dims[0] != q.b || pv->dims[0] != q.b || pk->dims[1] != k.h ||
        pv->dims[1] != k.h || pk->dims[3] != k.d || pv->dims[2] != p ||
        pv->dims[3] != v.d)) || k.h == 0 || q.h % k.h || k.d != q.d ||
        v.h != k.h || v.s != k.s || k.b != q.b || v.b != q.b ||
        (nonpad && (nonpad->numel != q.b || (nonpad->dtype != DT_INT64 &&
                                             nonpad->dtype != DT_INT32))))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "Q, K, V, cache or "
                         "nonpad_kv_seqlen shapes do not fit together");
    /* the mask broadcasts to (B, Hq, Lq, T); a shorter last dim is padded */
    int64_t extent[4] = {q.b, q.h, q.s, t};
    for (int32_t d = 0; mask && d < mask->ndim; d++) {
        int64_t e = mask->ndim <= 4 ? extent[4 - mask->ndim + d] : -1;
        int last = d == mask->ndim - 1;
        if (e < 0 || (last ? mask->dims[d] > e
                           : mask->dims[d] != 1 && mask->dims[d] != e))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "attn_mask does not "
                             "broadcast to (%lld, %lld, %lld, %lld)",
                             (long long)q.b, (long long)q.h, (long long)q.s,
                             (long long)t);
    }
    const Attr *sa = node_attr(n, "scale");
    double scale = sa && sa->type == AT_FLOAT ? attr_floats_at(sa, 0)
                                              : 1.0 / sqrt((double)q.d);
    double softcap = attr_float(n, "softcap", 0.0f);
    int64_t mode = attr_int(n, "qk_matmul_output_mode", 0);
    Bias bs = {mask, nonpad, (int)attr_int(n, "is_causal", 0),
               attr_int(n, "left_window_size", -1),
               attr_int(n, "right_window_size", -1), p, q.s};

    /* step 1: outputs: Y like Q (head size of V), caches, scores */
    int32_t dt = in[0]->dtype;
    int64_t ydims[4] = {q.b, q.h, q.s, v.d};
    if (q.packed) {
        ydims[1] = q.s;
        ydims[2] = q.h * v.d;
    }
    int64_t kd[4] = {q.b, k.h, t, k.d}, vd[4] = {q.b, k.h, t, v.d};
    int64_t sd[4] = {q.b, q.h, q.s, t};
    if ((st = tensor_alloc(out[0], dt, q.packed ? 3 : 4, ydims, err)))
        return st;
    if (n->n_out > 1 && out[1] && (st = tensor_alloc(out[1], dt, 4, kd, err)))
        return st;
    if (n->n_out > 2 && out[2] && (st = tensor_alloc(out[2], dt, 4, vd, err)))
        return st;
    if (n->n_out > 3 && out[3] && (st = tensor_alloc(out[3], dt, 4, sd, err)))
        return st;
    for (int64_t b = 0; b < q.b; b++)
        for (int64_t h = 0; h < k.h; h++)
            for (int64_t s = 0; s < t; s++) {
                for (int64_t d = 0; n->n_out > 1 && out[1] && d < k.d; d++)
                    elem_set_f(out[1], ((b * k.h + h) * t + s) * k.d + d,
                               cached(pk, &k, b, h, s, d));
                for (int64_t d = 0; n->n_out > 2 && out[2] && d < v.d; d++)
                    elem_set_f(out[2], ((b * k.h + h) * t + s) * v.d + d,
                               cached(pv, &v, b, h, s, d));
            }

    /* step 2: per (batch, head, query): scores, softmax, weighted sum */
    double *row = malloc(sizeof(double) * 3 * (t ? t : 1));
    if (!row)
        return node_fail(n, err, ST_OOM, "out of memory");
    double *bias = row + t, *raw = row + 2 * t;
    Lowp lp = {dtype_is_half(dt) ? dt : 0, 0.0, 0.0};
    if (lp.dt) {
        lp.scale = rd(&lp, sqrt(scale));
        lp.softcap = rd(&lp, softcap);
    }
    for (int64_t b = 0; b < q.b; b++)
        for (int64_t h = 0; h < q.h; h++)
            for (int64_t i = 0; i < q.s; i++) {
                int64_t kh = h / (q.h / k.h);
                double mx = -INFINITY, bmax = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < t; j++) {
                    double dot = 0.0;
                    if (lp.dt) {
                        dot = lowp_score(&lp, &q, pk, &k, b, h, kh, i, j);
                    } else {
                        for (int64_t d = 0; d < q.d; d++)
                            dot += at(&q, b, h, i, d) * cached(pk, &k, b, kh, j, d);
                        dot *= scale;
                        if (softcap > 0.0)
                            dot = softcap * tanh(dot / softcap);
                    }
                    raw[j] = dot;
                    bias[j] = bias_at(&bs, b, h, i, j);
                    row[j] = rd(&lp, dot + bias[j]);
                    mx = fmax(mx, row[j]);
                    bmax = fmax(bmax, bias[j]);
                }
                int masked = isinf(bmax) && bmax < 0; /* no key attends */
                if (lp.dt) {
                    lowp_softmax(&lp, row, raw, t, mx, mode);
                    sum = 1.0; /* row holds the probabilities */
                } else {
                    for (int64_t j = 0; j < t; j++) {
                        double e = isinf(mx) && mx < 0 ? 0.0 : exp(row[j] - mx);
                        sum += e;
                        if (mode == 2) raw[j] = row[j];
                        row[j] = e;
                    }
                }
                for (int64_t j = 0; j < t; j++) {
                    row[j] = masked || sum == 0.0 ? 0.0 : row[j] / sum;
                    if (mode == 3) raw[j] = row[j];
                    if (n->n_out > 3 && out[3])
                        elem_set_f(out[3], ((b * q.h + h) * q.s + i) * t + j, raw[j]);
                }
                for (int64_t d = 0; d < v.d; d++) {
                    double acc = 0.0;
                    if (lp.dt) {
                        /* float32 accumulation, as the reference's matmul */
                        float f = 0.0f;
                        for (int64_t j = 0; j < t; j++)
                            f += (float)(row[j] * cached(pv, &v, b, kh, j, d));
                        acc = f;
                    } else {
                        for (int64_t j = 0; j < t; j++)
                            acc += row[j] * cached(pv, &v, b, kh, j, d);
                    }
                    int64_t o = q.packed ? (b * q.s + i) * q.h * v.d + h * v.d + d
                                         : ((b * q.h + h) * q.s + i) * v.d + d;
                    elem_set_f(out[0], o, acc);
                }
            }
    free(row);
    return ST_OK;
}

/* Rotate the first rotary_embedding_dim features of each head of X by the
   angles of cos_cache/sin_cache (rows picked by position_ids when given,
   else (batch, seq, dim/2) caches): pairs are (2i, 2i+1) when interleaved,
   else (i, i + dim/2). X is (B, H, S, D), or (B, S, H*D) with num_heads. */
Status op_rotary(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *x = in[0], *cs = in[1], *sn = in[2];
    const Tensor *pid = n->n_in > 3 ? in[3] : NULL;
    Heads v;
    Status st;
    if (dtype_domain(x->dtype) != DOM_FLOAT || !dtype_is_float(cs->dtype) ||
        cs->dtype != sn->dtype)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    if (x->ndim == 4) { /* (B, H, S, D) */
        v.t = x; v.packed = 0;
        v.b = x->dims[0]; v.h = x->dims[1]; v.s = x->dims[2]; v.d = x->dims[3];
    } else if ((st = heads_view(n, x, attr_int(n, "num_heads", 0), &v, err))) {
        return st;
    }
    int64_t rot = attr_int(n, "rotary_embedding_dim", 0);
    rot = rot ? rot : v.d;
    int64_t half = rot / 2;
    int inter = (int)attr_int(n, "interleaved", 0);
    int64_t rows = pid ? (cs->ndim ? cs->dims[0] : 0) : v.b * v.s;
    if (pid && pid->dtype != DT_INT64 && pid->dtype != DT_INT32)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "position_ids must be "
                         "int64");
    if (rot > v.d || rot % 2 || cs->numel != rows * half || sn->numel != cs->numel ||
        (pid && (pid->numel != v.b * v.s || cs->ndim != 2)))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "caches do not fit "
                         "rotary_embedding_dim %lld", (long long)rot);
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    for (int64_t b = 0; b < v.b; b++)
        for (int64_t s = 0; s < v.s; s++) {
            int64_t row = b * v.s + s;
            if (pid) {
                row = tensor_get_int(pid, b * v.s + s);
                if (row < 0 || row >= rows)
                    return node_fail(n, err, ST_BAD_REQUEST, "position id %lld "
                                     "out of range", (long long)row);
            }
            for (int64_t h = 0; h < v.h; h++) {
                int64_t base = v.packed ? (b * v.s + s) * v.h * v.d + h * v.d
                                        : ((b * v.h + h) * v.s + s) * v.d;
                for (int64_t d = rot; d < v.d; d++)
                    elem_set_f(out[0], base + d, elem_get_f(x, base + d));
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = inter ? 2 * i : i, i2 = inter ? 2 * i + 1 : i + half;
                    double c = elem_get_f(cs, row * half + i);
                    double sv = elem_get_f(sn, row * half + i);
                    double x1 = elem_get_f(x, base + i1), x2 = elem_get_f(x, base + i2);
                    elem_set_f(out[0], base + i1, c * x1 - sv * x2);
                    elem_set_f(out[0], base + i2, sv * x1 + c * x2);
                }
            }
        }
    return ST_OK;
}
