/*
 * ops_bitcast.c: BitCast, reinterpreting the bytes of a tensor as another
 * dtype of the same width.
 */
#include <string.h>

#include "ops.h"

/* Y = X's bytes read as dtype `to`: same shape, same element width (the
   runtime stores every dtype little-endian); strings are refused. */
Status op_bitcast(const Node *n, Tensor *const *in, Tensor *const *out,
                  Err *err)
{
    const Tensor *x = in[0];
    int32_t to = (int32_t)attr_int(n, "to", 0);
    if (to <= DT_UNDEFINED || to >= DT_COUNT || to == DT_STRING ||
        x->dtype == DT_STRING)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "bit cast from %s to dtype "
                         "%d is not supported", dtype_name(x->dtype), (int)to);
    if (dtype_size(to) != dtype_size(x->dtype))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s (%d bits) and %s (%d "
                         "bits) differ in width", dtype_name(x->dtype),
                         8 * dtype_size(x->dtype), dtype_name(to),
                         8 * dtype_size(to));
    Status st = tensor_alloc(out[0], to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    return ST_OK;
}
