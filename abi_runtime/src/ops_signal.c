/*
 * ops_signal.c: window functions (HannWindow, HammingWindow,
 * BlackmanWindow).
 */
#include <math.h>

#include "numeric.h"
#include "ops.h"

#define PI 3.14159265358979323846

/* Y (size) = the window; periodic (default 1) divides by size, otherwise by
   size - 1; output_datatype selects the float dtype (default float32). */
Status op_window(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *sz = in[0];
    if (sz->numel != 1 || (sz->dtype != DT_INT64 && sz->dtype != DT_INT32))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "size must be an int "
                         "scalar");
    int64_t size = tensor_get_int(sz, 0);
    int32_t to = (int32_t)attr_int(n, "output_datatype", DT_FLOAT);
    if (size < 0 || dtype_domain(to) == DOM_NONE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "size %lld or output dtype "
                         "%s is not supported", (long long)size, dtype_name(to));
    Status st = tensor_alloc(out[0], to, 1, &size, err);
    if (st != ST_OK)
        return st;
    double den = attr_int(n, "periodic", 1) ? (double)size : (double)(size - 1);
    for (int64_t i = 0; i < size; i++) {
        double t = 2.0 * PI * (double)i / den, v;
        if (n->op == OP_HannWindow)
            v = sin(PI * (double)i / den) * sin(PI * (double)i / den);
        else if (n->op == OP_HammingWindow)
            v = 25.0 / 46.0 - (1.0 - 25.0 / 46.0) * cos(t);
        else
            v = 0.42 - 0.5 * cos(t) + 0.08 * cos(2.0 * t);
        elem_set_f(out[0], i, v);
    }
    return ST_OK;
}
