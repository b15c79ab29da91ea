/*
 * ops_common.c: load-time resolution of a node's op in the op table
 * (op_table.c) and argument helpers shared by the kernels.
 */
#include <string.h>

#include "ops.h"

static int is_onnx_domain(const char *d)
{
    return d[0] == 0 || strcmp(d, "ai.onnx") == 0;
}

Status op_prepare(const Model *m, Node *n, Err *err)
{
    n->op = -1;
    for (int32_t i = 0; i < OP_COUNT; i++) {
        /* the row's domain must match: ai.onnx rows have none */
        const char *d = OP_TABLE[i].domain;
        int same = d ? strcmp(d, n->domain) == 0 : is_onnx_domain(n->domain);
        if (same && strcmp(OP_TABLE[i].op_type, n->op_type) == 0)
            n->op = i;
    }
    if (n->op < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "op %s%s%s (opset %d) is "
                         "not supported by this runtime", n->domain,
                         n->domain[0] ? "." : "", n->op_type, (int)n->opset);
    const OpInfo *info = &OP_TABLE[n->op];
    if (!info->run)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "op %s%s%s is not built "
                         "into this runtime (a build with a subset of the "
                         "ops); package the model again, which picks the "
                         "runtime with every op", n->domain,
                         n->domain[0] ? "." : "", n->op_type);
    if (n->n_in < info->in_lo || n->n_in > info->in_hi)
        return node_fail(n, err, ST_BAD_FORMAT, "expected %d to %d inputs, "
                         "got %d", (int)info->in_lo, (int)info->in_hi,
                         (int)n->n_in);
    if (n->n_out < info->out_lo || n->n_out > info->out_hi)
        return node_fail(n, err, ST_BAD_FORMAT, "expected %d to %d outputs, "
                         "got %d", (int)info->out_lo, (int)info->out_hi,
                         (int)n->n_out);
    /* kernels write out[0] unconditionally (except where it is optional) */
    if (!OP_FIRST_OUTPUT_OPTIONAL(n->op) && n->out[0] < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "first output is missing");
    return info->prepare ? info->prepare(m, n, err) : ST_OK;
}

Status require_float(const Node *n, const Tensor *t, int index, Err *err)
{
    if (t->dtype == DT_FLOAT)
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is %s, this runtime "
                     "computes this op in float32 only", index,
                     dtype_name(t->dtype));
}

void split_at_axis(const Tensor *x, int32_t axis, int flatten, int64_t *outer,
                   int64_t *len, int64_t *inner)
{
    *outer = *len = *inner = 1;
    for (int32_t i = 0; i < x->ndim; i++) {
        if (i < axis) *outer *= x->dims[i];
        else if (i == axis || flatten) *len *= x->dims[i];
        else *inner *= x->dims[i];
    }
}

Status norm_axis(const Node *n, int64_t axis, int32_t rank, int32_t *out,
                 Err *err)
{
    /* rank 0 tensors accept axis 0 / -1 where the op allows it */
    int32_t r = rank > 0 ? rank : 1;
    if (axis < -r || axis >= r)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "axis %lld out of range "
                         "for rank %d", (long long)axis, (int)rank);
    *out = (int32_t)(axis < 0 ? axis + r : axis);
    return ST_OK;
}

Status read_int_list(const Node *n, const Tensor *t, int64_t *v, int32_t cap,
                     int32_t *count, Err *err)
{
    if (t->dtype != DT_INT64 && t->dtype != DT_INT32)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected an int64 list, "
                         "got %s", dtype_name(t->dtype));
    if (t->ndim > 1 || t->numel > cap)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected a 1-D list of "
                         "at most %d integers, got %lld values", (int)cap,
                         (long long)t->numel);
    for (int64_t i = 0; i < t->numel; i++)
        v[i] = tensor_get_int(t, i);
    *count = (int32_t)t->numel;
    return ST_OK;
}

Status int_list_arg(const Node *n, Tensor *const *in, int input_index,
                    const char *attr, int64_t *v, int32_t cap,
                    int32_t *count, int *present, Err *err)
{
    *count = 0;
    *present = 0;
    if (input_index < n->n_in && in[input_index]) {
        *present = 1;
        return read_int_list(n, in[input_index], v, cap, count, err);
    }
    const Attr *a = node_attr(n, attr);
    if (!a || a->type != AT_INTS)
        return ST_OK;
    if (a->count > cap)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "attribute '%s' has %d "
                         "values, at most %d supported", attr, (int)a->count,
                         (int)cap);
    for (int32_t i = 0; i < a->count; i++)
        v[i] = attr_ints_at(a, i);
    *count = a->count;
    *present = 1;
    return ST_OK;
}

Status read_auto_pad(const Node *n, int *out, Err *err)
{
    static const char *const names[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER",
                                        "VALID"};
    const char *ap = attr_string(n, "auto_pad", "NOTSET");
    for (int i = 0; i < 4; i++)
        if (!strcmp(ap, names[i])) {
            *out = i;
            return ST_OK;
        }
    return node_fail(n, err, ST_UNSUPPORTED_OP, "auto_pad '%s' is not one of "
                     "NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap);
}
