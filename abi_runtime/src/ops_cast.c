/*
 * ops_cast.c: Cast and CastLike between every numeric dtype and bool
 * (strings: ops_string.c).
 */
#include <string.h>

#include "numeric.h"
#include "ops.h"

/* y = x converted to y's dtype: floats round to nearest even (float16 and
   bfloat16 with one rounding from the exact value), floats to integers
   truncate toward zero and saturate, integers to integers keep the low
   bits (as numpy's astype), anything to bool is x != 0 (NaN is true).
   y is allocated with x's shape. */
static Status cast_into(const Node *n, const Tensor *x, int32_t to,
                        Tensor *y, Err *err)
{
    /* to or from strings: ops_string.c (not float16 / bfloat16: refused
       below, as the string side has no domain) */
    int half = to == DT_FLOAT16 || to == DT_BFLOAT16 ||
               x->dtype == DT_FLOAT16 || x->dtype == DT_BFLOAT16;
    if ((to == DT_STRING || x->dtype == DT_STRING) && !half)
        return cast_strings(n, x, to, y, err);
    Domain from = dtype_domain(x->dtype), dom_to = dtype_domain(to);
    if (from == DOM_NONE || dom_to == DOM_NONE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "cast from %s to %s is "
                         "not supported", dtype_name(x->dtype),
                         dtype_name(to));
    Status st = tensor_alloc(y, to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    if (to == x->dtype) {
        memcpy(y->data, x->data, (size_t)tensor_nbytes(x));
        return ST_OK;
    }
    for (int64_t i = 0; i < x->numel; i++) {
        if (from == DOM_FLOAT)
            elem_set_f(y, i, elem_get_f(x, i));
        else if (dom_to == DOM_FLOAT && from == DOM_UNSIGNED)
            elem_set_u(y, i, (uint64_t)elem_get_i(x, i));
        else if (dom_to == DOM_FLOAT)
            elem_set_f(y, i, (double)elem_get_i(x, i));
        else
            elem_set_i(y, i, elem_get_i(x, i));
    }
    return ST_OK;
}

/* Y = X converted to the dtype of attribute 'to'. */
Status op_cast(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    return cast_into(n, in[0], (int32_t)attr_int(n, "to", 0), out[0], err);
}

/* Y = X converted to the dtype of input 1 (whose values are unused). */
Status op_cast_like(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    return cast_into(n, in[0], in[1]->dtype, out[0], err);
}
