/*
 * ops_reduce.c: normalisations along an axis (Softmax, LogSoftmax).
 */
#include <math.h>
#include <stdlib.h>

#include "ops.h"

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
    int64_t outer = 1, len = 1, inner = 1;
    for (int32_t i = 0; i < x->ndim; i++) {
        if (i < axis) outer *= x->dims[i];
        else if (i == axis || p->flatten) len *= x->dims[i];
        else inner *= x->dims[i];
    }
    const float *xv = x->data;
    float *yv = out[0]->data;
    int log_form = n->op == OP_LogSoftmax;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            softmax_line(xv + o * len * inner + i, yv + o * len * inner + i,
                         len, inner, log_form);
    return ST_OK;
}
