/*
 * ops_linear_attention.c: LinearAttention (opset 27), recurrent linear
 * attention with a (d_k, d_v) state per key/value head, run token by
 * token (the result the spec defines; chunk_size is a tuning hint):
 *
 *     gated:  S = exp(g_t) * S                 (decay, in log space)
 *     delta:  v_t = beta_t * (v_t - S^T k_t)   (S after the decay)
 *             S = S + k_t (x) v_t
 *             o_t = scale * q_t^T S            (per query head)
 *
 * Query head h reads the state of key/value head h / (Hq / Hkv). Inputs
 * are packed (B, T, H * D); the state is (B, Hkv, d_k, d_v). float32 and
 * float16 (stored as binary16), computed in float32.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

typedef struct {
    int64_t hq, hkv;  /* q_num_heads, kv_num_heads */
    int gated, delta; /* update_rule: gated, delta, both, or neither */
    float scale;      /* 0: 1 / sqrt(d_k) */
} LinAttnParams;

/* Read and check the attributes once. */
Status prep_linear_attention(const Model *m, Node *n, Err *err)
{
    (void)m;
    LinAttnParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    const char *rule = attr_string(n, "update_rule", "gated_delta");
    p->hq = attr_int(n, "q_num_heads", 0);
    p->hkv = attr_int(n, "kv_num_heads", 0);
    p->scale = attr_float(n, "scale", 0.0f);
    p->gated = strcmp(rule, "gated") == 0 || strcmp(rule, "gated_delta") == 0;
    p->delta = strcmp(rule, "delta") == 0 || strcmp(rule, "gated_delta") == 0;
    if (!p->gated && !p->delta && strcmp(rule, "linear") != 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "update_rule '%s' is not "
                         "supported (linear, gated, delta or gated_delta)", rule);
    if (p->hq <= 0 || p->hkv <= 0 || p->hq % p->hkv || p->hq > INT32_MAX)
        return node_fail(n, err, ST_BAD_FORMAT, "q_num_heads (%lld) must be a "
                         "positive multiple of kv_num_heads (%lld)",
                         (long long)p->hq, (long long)p->hkv);
    return ST_OK;
}

/* Shapes of one call: batch, tokens, head sizes, decay and beta widths. */
typedef struct {
    int64_t b, t, dk, dv;
    int64_t g_width;  /* decay per (b, t): hkv * dk (per key dim) or hkv */
    int64_t b_width;  /* beta per (b, t): hkv or 1 */
} LinAttnDims;

/* Fail unless t is (B, T, width) of dtype dt. */
static Status check_packed(const Node *n, const Tensor *t, const char *what,
                           int64_t b, int64_t tt, int32_t dt, Err *err)
{
    char s0[96];
    if (t->dtype != dt)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "%s is %s, query %s (one "
                         "dtype is supported)", what, dtype_name(t->dtype),
                         dtype_name(dt));
    if (t->ndim != 3 || t->dims[0] != b || t->dims[1] != tt)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s %s must be (%lld, "
                         "%lld, ...)", what, shape_str(t->dims, t->ndim, s0, 96),
                         (long long)b, (long long)tt);
    return ST_OK;
}

/* Check every input against the attributes; fill d. */
static Status check_inputs(const Node *n, const LinAttnParams *p,
                           Tensor *const *in, LinAttnDims *d, Err *err)
{
    const Tensor *q = in[0], *k = in[1], *v = in[2];
    const Tensor *past = n->n_in > 3 ? in[3] : NULL;
    const Tensor *decay = n->n_in > 4 ? in[4] : NULL;
    const Tensor *beta = n->n_in > 5 ? in[5] : NULL;
    char s0[96];
    Status st;
    if (q->dtype != DT_FLOAT && q->dtype != DT_FLOAT16)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "query is %s; float32 and "
                         "float16 are supported", dtype_name(q->dtype));
    if (q->ndim != 3)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "query %s must be (B, T, "
                         "q_num_heads * d_k)", shape_str(q->dims, q->ndim, s0, 96));
    d->b = q->dims[0];
    d->t = q->dims[1];
    if ((st = check_packed(n, k, "key", d->b, d->t, q->dtype, err)) ||
        (st = check_packed(n, v, "value", d->b, d->t, q->dtype, err)) ||
        (decay && (st = check_packed(n, decay, "decay", d->b, d->t, q->dtype, err))) ||
        (beta && (st = check_packed(n, beta, "beta", d->b, d->t, q->dtype, err))))
        return st;
    d->dk = q->dims[2] / p->hq;
    d->dv = v->dims[2] / p->hkv;
    if (q->dims[2] % p->hq || k->dims[2] != p->hkv * d->dk || v->dims[2] % p->hkv)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "query, key and value widths "
                         "%lld, %lld, %lld do not split into %lld and %lld heads "
                         "of one key size", (long long)q->dims[2],
                         (long long)k->dims[2], (long long)v->dims[2],
                         (long long)p->hq, (long long)p->hkv);
    if ((decay != NULL) != p->gated || (beta != NULL) != p->delta)
        return node_fail(n, err, ST_BAD_FORMAT, "this update_rule %s decay and "
                         "%s beta", p->gated ? "needs" : "takes no",
                         p->delta ? "needs" : "takes no");
    d->g_width = decay ? decay->dims[2] : 0;
    d->b_width = beta ? beta->dims[2] : 0;
    if (decay && d->g_width != p->hkv * d->dk && d->g_width != p->hkv)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "decay width %lld must be "
                         "kv_num_heads * d_k (%lld) or kv_num_heads (%lld)",
                         (long long)d->g_width, (long long)(p->hkv * d->dk),
                         (long long)p->hkv);
    if (beta && d->b_width != p->hkv && d->b_width != 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "beta width %lld must be "
                         "kv_num_heads (%lld) or 1", (long long)d->b_width,
                         (long long)p->hkv);
    if (past && (!dtype_is_float(past->dtype) || past->dtype == DT_DOUBLE))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "past_state is %s; float32 "
                         "and float16 are supported", dtype_name(past->dtype));
    if (past && (past->ndim != 4 || past->dims[0] != d->b || past->dims[1] != p->hkv ||
                 past->dims[2] != d->dk || past->dims[3] != d->dv))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "past_state %s must be "
                         "(%lld, %lld, %lld, %lld)",
                         shape_str(past->dims, past->ndim, s0, 96),
                         (long long)d->b, (long long)p->hkv, (long long)d->dk,
                         (long long)d->dv);
    return ST_OK;
}

/* One token of one key/value head: decay, delta correction and write on
   s (dk, dv); kt (dk) and vt (dv, overwritten) of the token. */
static void state_step(float *s, const float *kt, float *vt, const float *g,
                       int64_t g_n, float beta, int delta, int64_t dk,
                       int64_t dv)
{
    for (int64_t i = 0; g && i < dk; i++) {
        float e = expf(g[g_n == 1 ? 0 : i]);
        for (int64_t m = 0; m < dv; m++)
            s[i * dv + m] *= e;
    }
    for (int64_t m = 0; delta && m < dv; m++) {
        float r = 0.0f; /* (S^T k)[m] */
        for (int64_t i = 0; i < dk; i++)
            r += s[i * dv + m] * kt[i];
        vt[m] = beta * (vt[m] - r);
    }
    for (int64_t i = 0; i < dk; i++)
        for (int64_t m = 0; m < dv; m++)
            s[i * dv + m] += kt[i] * vt[m];
}

/* output (B, T, Hq * d_v), present_state (B, Hkv, d_k, d_v) of past's
   dtype (query's when past is absent). */
Status op_linear_attention(const Node *n, Tensor *const *in,
                           Tensor *const *out, Err *err)
{
    const LinAttnParams *p = n->params;
    const Tensor *q = in[0], *k = in[1], *v = in[2];
    const Tensor *past = n->n_in > 3 ? in[3] : NULL;
    const Tensor *decay = n->n_in > 4 ? in[4] : NULL;
    const Tensor *beta = n->n_in > 5 ? in[5] : NULL;
    Tensor *present = n->n_out > 1 ? out[1] : NULL;
    LinAttnDims d;
    Status st = check_inputs(n, p, in, &d, err);
    if (st != ST_OK)
        return st;
    int64_t hq = p->hq, hkv = p->hkv, group = hq / hkv, dk = d.dk, dv = d.dv;
    float scale = p->scale != 0.0f ? p->scale : 1.0f / sqrtf((float)dk);
    int64_t ydims[3] = {d.b, d.t, hq * dv}, sdims[4] = {d.b, hkv, dk, dv};
    if ((st = tensor_alloc(out[0], q->dtype, 3, ydims, err)) ||
        (present && (st = tensor_alloc(present, past ? past->dtype : q->dtype,
                                       4, sdims, err))))
        return st;

    /* s (dk, dv): one head's state; kt, g, qt (dk), vt (dv): one token */
    if (dk > 0 && dv > (INT32_MAX / (int64_t)sizeof(float)) / dk - 4)
        return node_fail(n, err, ST_OOM, "a state of %lld x %lld does not fit "
                         "in memory", (long long)dk, (long long)dv);
    float *s = malloc(sizeof(float) * ((size_t)(dk * dv + 3 * dk + dv) + 1));
    if (!s)
        return node_fail(n, err, ST_OOM, "out of memory");
    float *kt = s + dk * dv, *g = kt + dk, *qt = g + dk, *vt = qt + dk;
    for (int64_t b = 0; b < d.b; b++)
        for (int64_t h = 0; h < hkv; h++) {
            /* step 1: the state, from past_state or zeros */
            int64_t s0 = (b * hkv + h) * dk * dv;
            for (int64_t i = 0; i < dk * dv; i++)
                s[i] = past ? (float)elem_get_f(past, s0 + i) : 0.0f;

            for (int64_t t = 0; t < d.t; t++) {
                /* step 2: this token's key, value, decay and beta */
                int64_t bt = b * d.t + t;
                for (int64_t i = 0; i < dk; i++)
                    kt[i] = (float)elem_get_f(k, (bt * hkv + h) * dk + i);
                for (int64_t m = 0; m < dv; m++)
                    vt[m] = (float)elem_get_f(v, (bt * hkv + h) * dv + m);
                int64_t g_n = d.g_width == hkv * dk ? dk : 1;
                for (int64_t i = 0; decay && i < g_n; i++)
                    g[i] = (float)elem_get_f(decay, bt * d.g_width + h * g_n + i);
                float bv = beta ? (float)elem_get_f(beta, bt * d.b_width +
                                                   (d.b_width == 1 ? 0 : h)) : 1.0f;

                /* step 3: update the state, then read it per query head */
                state_step(s, kt, vt, decay ? g : NULL, g_n, bv, p->delta, dk, dv);
                for (int64_t qh = h * group; qh < (h + 1) * group; qh++) {
                    for (int64_t i = 0; i < dk; i++)
                        qt[i] = (float)elem_get_f(q, (bt * hq + qh) * dk + i);
                    for (int64_t m = 0; m < dv; m++) {
                        float acc = 0.0f;
                        for (int64_t i = 0; i < dk; i++)
                            acc += qt[i] * s[i * dv + m];
                        elem_set_f(out[0], (bt * hq + qh) * dv + m, scale * acc);
                    }
                }
            }
            for (int64_t i = 0; present && i < dk * dv; i++)
                elem_set_f(present, s0 + i, s[i]);
        }
    free(s);
    return ST_OK;
}
