/*
 * ops_random.c: Bernoulli where it is deterministic.
 *
 * The runtime draws no random numbers: a result that depends on a random
 * draw could not be reproduced or verified. Probabilities of exactly 0 and
 * 1 give a certain outcome; any other probability is refused at run time.
 */
#include "numeric.h"
#include "ops.h"

/* Y = X as 0 or 1 where every probability of X is exactly 0 or 1, in
   dtype `dtype` (default X's); fails on any other probability. */
Status op_bernoulli(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    int32_t to = (int32_t)attr_int(n, "dtype", x->dtype);
    if (!dtype_is_float(x->dtype) || dtype_domain(to) == DOM_NONE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "Bernoulli from %s to %s is "
                         "not supported", dtype_name(x->dtype), dtype_name(to));
    for (int64_t i = 0; i < x->numel; i++) {
        double p = elem_get_f(x, i);
        if (p != 0.0 && p != 1.0)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "probability %g at index "
                             "%lld needs a random draw, which is not supported "
                             "(only probabilities 0 and 1 are deterministic)", p,
                             (long long)i);
    }
    Status st = tensor_alloc(out[0], to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    for (int64_t i = 0; i < x->numel; i++)
        elem_set_f(out[0], i, elem_get_f(x, i));
    return ST_OK;
}
