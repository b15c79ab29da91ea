/*
 * ops_reduce.c: normalisations along an axis (Softmax, LogSoftmax).
 */
#include <math.h>
#include <stdlib.h>

#include "ops.h"
#include "simd.h"

typedef struct {
    int64_t axis;
    int flatten; /* opset < 13: normalise over all dims from axis on */
} SoftmaxParams;

Status prep_softmax(const Model *m, Node *n, Err *err)
{
    (void)m;
    SoftmaxParams *p = malloc(sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    p->flatten = n->opset < 13;
    p->axis = attr_int(n, "axis", p->flatten ? 1 : -1);
    n->params = p;
    return ST_OK;
}

#ifdef __wasm_simd128__
/* e^x lane by lane for x <= 0 (NaN stays NaN; below -87.3, where e^x is
   subnormal, 0): x = n ln2 + r with |r| <= ln2 / 2, e^r by a degree-6
   Taylor polynomial (relative error < 2e-7), 2^n by the exponent bits. */
static v128_t exp_f32x4(v128_t x)
{
    v128_t tiny = f32x4_lt(x, f32x4_splat(-87.3f));
    v128_t n = f32x4_nearest(f32x4_mul(x, f32x4_splat(1.44269504f)));
    v128_t r = f32x4_sub(x, f32x4_mul(n, f32x4_splat(0.693145752f)));
    r = f32x4_sub(r, f32x4_mul(n, f32x4_splat(1.42860677e-6f)));
    v128_t p = f32x4_splat(1.0f / 720);
    p = f32x4_madd(p, r, f32x4_splat(1.0f / 120));
    p = f32x4_madd(p, r, f32x4_splat(1.0f / 24));
    p = f32x4_madd(p, r, f32x4_splat(1.0f / 6));
    p = f32x4_madd(p, r, f32x4_splat(0.5f));
    p = f32x4_madd(p, r, f32x4_splat(1.0f));
    p = f32x4_madd(p, r, f32x4_splat(1.0f));
    /* n >= -126 here (x >= -87.3 or masked below), so 2^n is normal */
    v128_t scale = i32x4_shl(i32x4_add(i32x4_from_f32x4(n), i32x4_splat(127)), 23);
    return v128_andnot(f32x4_mul(p, scale), tiny);
}

/* softmax_line for contiguous values (inner == 1). */
static void softmax_line_simd(const float *x, float *y, int64_t len, int log_form)
{
    /* the maximum, NaN skipped as in softmax_line: pmax(m, v) keeps m
       where v is NaN */
    v128_t m4 = f32x4_splat(-INFINITY);
    int64_t i = 0;
    for (; i + 4 <= len; i += 4)
        m4 = f32x4_pmax(m4, v128_load(x + i));
    float mx = -INFINITY;
    for (int r = 0; r < 4; r++) {
        float lane = ((const float *)&m4)[r];
        mx = lane > mx ? lane : mx;
    }
    for (; i < len; i++)
        mx = x[i] > mx ? x[i] : mx;
    m4 = f32x4_splat(mx);
    v128_t s4 = f32x4_splat(0.0f);
    i = 0;
    for (; i + 4 <= len; i += 4) {
        v128_t d = f32x4_sub(v128_load(x + i), m4), e = exp_f32x4(d);
        s4 = f32x4_add(s4, e);
        v128_store(y + i, log_form ? d : e);
    }
    double sum = f32x4_hsum(s4);
    for (; i < len; i++) {
        float e = expf(x[i] - mx);
        sum += e;
        y[i] = log_form ? x[i] - mx : e;
    }
    float inv = (float)(1.0 / sum), lse = (float)log(sum);
    v128_t k = f32x4_splat(log_form ? lse : inv);
    for (i = 0; i + 4 <= len; i += 4) {
        v128_t v = v128_load(y + i);
        v128_store(y + i, log_form ? f32x4_sub(v, k) : f32x4_mul(v, k));
    }
    for (; i < len; i++)
        y[i] = log_form ? y[i] - lse : y[i] * inv;
}
#endif

/* Normalise len values spaced inner apart, starting at x, into y. */
static void softmax_line(const float *x, float *y, int64_t len, int64_t inner,
                         int log_form)
{
    float mx = -INFINITY;
    for (int64_t i = 0; i < len; i++)
        mx = x[i * inner] > mx ? x[i * inner] : mx;
    double sum = 0.0;
    for (int64_t i = 0; i < len; i++) {
        float e = expf(x[i * inner] - mx);
        sum += e;
        y[i * inner] = log_form ? x[i * inner] - mx : e;
    }
    float inv = (float)(1.0 / sum), lse = (float)log(sum);
    for (int64_t i = 0; i < len; i++)
        y[i * inner] = log_form ? y[i * inner] - lse : y[i * inner] * inv;
}

/* Y = exp(X) / sum(exp(X)) along axis (LogSoftmax: its logarithm). */
Status op_softmax(const Node *n, Tensor *const *in, Tensor *const *out,
                  Err *err)
{
    const SoftmaxParams *p = n->params;
    const Tensor *x = in[0];
    Status st;
    int32_t axis;
    if (x->dtype != DT_FLOAT)
        return softmax_wide(n, in, out, err); /* other floats: ops_widen.c */
    if ((st = norm_axis(n, p->axis, x->ndim, &axis, err)) ||
        (st = tensor_alloc_like(out[0], x, err)))
        return st;
    int64_t outer, len, inner;
    split_at_axis(x, axis, p->flatten, &outer, &len, &inner);
    const float *xv = x->data;
    float *yv = out[0]->data;
    int log_form = n->op == OP_LogSoftmax;
#ifdef __wasm_simd128__
    if (inner == 1) {
        for (int64_t o = 0; o < outer; o++)
            softmax_line_simd(xv + o * len, yv + o * len, len, log_form);
        return ST_OK;
    }
#endif
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            softmax_line(xv + o * len * inner + i, yv + o * len * inner + i,
                         len, inner, log_form);
    return ST_OK;
}
