/*
 * ops_causal_conv.c: CausalConvWithState (opset 27), the stateful causal
 * depthwise 1-D convolution of Mamba and Gated DeltaNet blocks:
 *
 *     padded = concat(past_state or zeros (B, C, k-1), x (B, C, L))
 *     y[b, c, t] = bias[c] + sum_j w[c, 0, j] * padded[b, c, t + j]
 *     y = silu(y) when activation is "silu" or "swish"
 *     present_state = padded[:, :, L : L + k - 1]
 *
 * float32 and float16 (stored as binary16), computed in float32; y is
 * rounded to its dtype before the activation, as the function body does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

/* Read the activation attribute once: params is an int, 1 for SiLU. */
Status prep_causal_conv(const Model *m, Node *n, Err *err)
{
    (void)m;
    const char *act = attr_string(n, "activation", "none");
    int *silu = calloc(1, sizeof *silu);
    if (!silu)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = silu;
    *silu = strcmp(act, "silu") == 0 || strcmp(act, "swish") == 0;
    if (!*silu && strcmp(act, "none") != 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "activation '%s' is not "
                         "supported (none, silu or swish)", act);
    return ST_OK;
}

/* Check dtypes and shapes: x (B, C, L), w (C, 1, k), bias (C), past
   (B, C, k-1), all of x's dtype (float32 or float16). */
static Status check_inputs(const Node *n, const Tensor *x, const Tensor *w,
                           const Tensor *bias, const Tensor *past, Err *err)
{
    char s0[96], s1[96];
    const Tensor *all[4] = {x, w, bias, past};
    for (int i = 0; i < 4; i++)
        if (all[i] && (all[i]->dtype != x->dtype ||
                       (x->dtype != DT_FLOAT && x->dtype != DT_FLOAT16)))
            return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is %s, input "
                             "0 %s; float32 or float16 inputs of one dtype are "
                             "supported", i, dtype_name(all[i]->dtype),
                             dtype_name(x->dtype));
    if (x->ndim != 3 || w->ndim != 3 || w->dims[0] != x->dims[1] ||
        w->dims[1] != 1 || w->dims[2] < 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input %s and weight %s "
                         "must be (B, C, L) and (C, 1, k) with k >= 1",
                         shape_str(x->dims, x->ndim, s0, 96),
                         shape_str(w->dims, w->ndim, s1, 96));
    if (bias && (bias->ndim != 1 || bias->dims[0] != x->dims[1]))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "bias %s must be (%lld)",
                         shape_str(bias->dims, bias->ndim, s0, 96),
                         (long long)x->dims[1]);
    if (past && (past->ndim != 3 || past->dims[0] != x->dims[0] ||
                 past->dims[1] != x->dims[1] || past->dims[2] != w->dims[2] - 1))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "past_state %s must be "
                         "(%lld, %lld, %lld)",
                         shape_str(past->dims, past->ndim, s0, 96),
                         (long long)x->dims[0], (long long)x->dims[1],
                         (long long)(w->dims[2] - 1));
    return ST_OK;
}

/* output (B, C, L) and present_state (B, C, k-1) as described above. */
Status op_causal_conv(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    const Tensor *x = in[0], *w = in[1];
    const Tensor *bias = n->n_in > 2 ? in[2] : NULL;
    const Tensor *past = n->n_in > 3 ? in[3] : NULL;
    Tensor *y = out[0], *present = n->n_out > 1 ? out[1] : NULL;
    int silu = *(const int *)n->params;
    Status st = check_inputs(n, x, w, bias, past, err);
    if (st != ST_OK)
        return st;
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2], k = w->dims[2];
    int64_t pdims[3] = {B, C, k - 1};
    if ((st = tensor_alloc_like(y, x, err)) ||
        (present && (st = tensor_alloc(present, x->dtype, 3, pdims, err))))
        return st;

    /* row (k - 1 + L): the padded sequence of one (batch, channel) */
    float *row = malloc(sizeof(float) * ((size_t)(k - 1 + L) + 1));
    if (!row)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            int64_t bc = b * C + c;
            for (int64_t p = 0; p < k - 1; p++)
                row[p] = past ? (float)elem_get_f(past, bc * (k - 1) + p) : 0.0f;
            for (int64_t t = 0; t < L; t++)
                row[k - 1 + t] = (float)elem_get_f(x, bc * L + t);

            /* step 1: the convolution, one rounding to y's dtype */
            float b0 = bias ? (float)elem_get_f(bias, c) : 0.0f;
            for (int64_t t = 0; t < L; t++) {
                float acc = b0;
                for (int64_t j = 0; j < k; j++)
                    acc += (float)elem_get_f(w, c * k + j) * row[t + j];
                elem_set_f(y, bc * L + t, acc);
                if (silu) {
                    float v = (float)elem_get_f(y, bc * L + t);
                    elem_set_f(y, bc * L + t, v / (1.0f + expf(-v)));
                }
            }

            /* step 2: the last k - 1 positions carry over */
            for (int64_t p = 0; present && p < k - 1; p++)
                elem_set_f(present, bc * (k - 1) + p, row[L + p]);
        }
    free(row);
    return ST_OK;
}
