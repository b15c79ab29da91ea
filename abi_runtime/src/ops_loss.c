/*
 * ops_loss.c: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * (inference of the loss value; float dtypes, computed in double).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

/*
 * The weighted negative log-likelihood of logp (N, C, D) at the labels
 * t (N, D) into y: reduction "none" gives (N, d1, ...) like t, "sum" and
 * "mean" a scalar (mean divides by the total weight of the counted
 * elements). A label equal to ignore_index counts with weight 0; any other
 * label outside [0, C) is an error.
 */
static Status nll(const Node *n, const double *logp, const Tensor *t,
                  const Tensor *w, int64_t nb, int64_t c, int64_t d,
                  int32_t dtype, Tensor *y, Err *err)
{
    const char *red = attr_string(n, "reduction", "mean");
    int none = strcmp(red, "none") == 0, sum = strcmp(red, "sum") == 0;
    if (!none && !sum && strcmp(red, "mean") != 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "reduction '%s' is not "
                         "supported", red);
    const Attr *ia = node_attr(n, "ignore_index");
    int64_t ignore = ia && ia->type == AT_INT ? attr_ints_at(ia, 0) : 0;
    Status st = none ? tensor_alloc(y, dtype, t->ndim, t->dims, err)
                     : tensor_alloc(y, dtype, 0, NULL, err);
    if (st != ST_OK)
        return st;
    double total = 0.0, wsum = 0.0;
    for (int64_t i = 0; i < nb; i++)
        for (int64_t k = 0; k < d; k++) {
            int64_t label = tensor_get_int(t, i * d + k);
            double wt = 0.0, loss = 0.0;
            if (!(ia && label == ignore)) {
                if (label < 0 || label >= c)
                    return node_fail(n, err, ST_BAD_REQUEST, "label %lld out "
                                     "of range for %lld classes",
                                     (long long)label, (long long)c);
                wt = w ? elem_get_f(w, label) : 1.0;
                loss = -logp[(i * c + label) * d + k] * wt;
            }
            if (none)
                elem_set_f(y, i * d + k, loss);
            total += loss;
            wsum += wt;
        }
    if (!none)
        elem_set_f(y, 0, sum ? total : total / wsum);
    return ST_OK;
}

/* Shapes of a loss: X (N, C, d1, ...), labels (N, d1, ...) of int32/64. */
static Status loss_shapes(const Node *n, const Tensor *x, const Tensor *t,
                          const Tensor *w, int64_t *nb, int64_t *c, int64_t *d,
                          Err *err)
{
    if (dtype_domain(x->dtype) != DOM_FLOAT || (w && !dtype_is_float(w->dtype)) ||
        (t->dtype != DT_INT64 && t->dtype != DT_INT32))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtypes %s, %s are not "
                         "supported", dtype_name(x->dtype), dtype_name(t->dtype));
    if (x->ndim < 2 || t->ndim != x->ndim - 1 || t->dims[0] != x->dims[0])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected input (N, C, ...) "
                         "and labels (N, ...)");
    *nb = x->dims[0];
    *c = x->dims[1];
    *d = 1;
    for (int32_t i = 2; i < x->ndim; i++) {
        if (t->dims[i - 1] != x->dims[i])
            return node_fail(n, err, ST_SHAPE_MISMATCH, "labels do not match "
                             "the input's dims");
        *d *= x->dims[i];
    }
    if (w && w->numel != *c)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "weights have %lld values, "
                         "expected %lld", (long long)w->numel, (long long)*c);
    return ST_OK;
}

/* loss = NLL(X, labels, weights): X holds log-probabilities. */
Status op_nll_loss(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0], *t = in[1], *w = n->n_in > 2 ? in[2] : NULL;
    int64_t nb, c, d;
    Status st = loss_shapes(n, x, t, w, &nb, &c, &d, err);
    if (st != ST_OK)
        return st;
    double *logp = malloc(sizeof(double) * (x->numel ? x->numel : 1));
    if (!logp)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t i = 0; i < x->numel; i++)
        logp[i] = elem_get_f(x, i);
    st = nll(n, logp, t, w, nb, c, d, x->dtype, out[0], err);
    free(logp);
    return st;
}

/* loss = NLL(log_softmax(scores, axis 1), labels, weights); the optional
   second output is the log_softmax itself. */
Status op_sce_loss(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0], *t = in[1], *w = n->n_in > 2 ? in[2] : NULL;
    int64_t nb, c, d;
    Status st = loss_shapes(n, x, t, w, &nb, &c, &d, err);
    if (st != ST_OK)
        return st;
    double *logp = malloc(sizeof(double) * (x->numel ? x->numel : 1));
    if (!logp)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t i = 0; i < nb; i++)
        for (int64_t k = 0; k < d; k++) {
            double mx = -INFINITY, s = 0.0;
            for (int64_t j = 0; j < c; j++)
                mx = fmax(mx, elem_get_f(x, (i * c + j) * d + k));
            for (int64_t j = 0; j < c; j++)
                s += exp(elem_get_f(x, (i * c + j) * d + k) - mx);
            for (int64_t j = 0; j < c; j++)
                logp[(i * c + j) * d + k] =
                    elem_get_f(x, (i * c + j) * d + k) - mx - log(s);
        }
    st = nll(n, logp, t, w, nb, c, d, x->dtype, out[0], err);
    if (st == ST_OK && n->n_out > 1 && out[1] &&
        (st = tensor_alloc_like(out[1], x, err)) == ST_OK)
        for (int64_t i = 0; i < x->numel; i++)
            elem_set_f(out[1], i, logp[i]);
    free(logp);
    return st;
}
