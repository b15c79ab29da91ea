/*
 * ops_pad.c: Pad (modes constant, reflect, edge, wrap), any fixed-size
 * dtype. Pads come from the attribute before opset 11 and from an input
 * after; negative pads crop.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

typedef enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } PadMode;

/* Read 'mode' at load; wrap only from opset 19. */
Status prep_pad(const Model *m, Node *n, Err *err)
{
    (void)m;
    const char *mode = attr_string(n, "mode", "constant");
    int p = !strcmp(mode, "constant") ? PAD_CONSTANT
          : !strcmp(mode, "reflect") ? PAD_REFLECT
          : !strcmp(mode, "edge") ? PAD_EDGE
          : (!strcmp(mode, "wrap") && n->opset >= 19) ? PAD_WRAP : -1;
    if (p < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "mode '%s' is not one of "
                         "constant, reflect, edge%s", mode,
                         n->opset >= 19 ? ", wrap" : " (opset < 19)");
    int *mp = malloc(sizeof *mp);
    if (!mp)
        return fail(err, ST_OOM, "model: out of memory");
    *mp = p;
    n->params = mp;
    return ST_OK;
}

/* Source coordinate along one axis for output coordinate o, or -1 when the
   element takes the constant value. */
static int64_t pad_source(int mode, int64_t o, int64_t begin, int64_t dim)
{
    int64_t s = o - begin;
    if (s >= 0 && s < dim)
        return s;
    switch (mode) {
    case PAD_EDGE: return s < 0 ? 0 : dim - 1;
    case PAD_WRAP: return ((s % dim) + dim) % dim;
    case PAD_REFLECT: return s < 0 ? -s : 2 * (dim - 1) - s;
    default: return -1;
    }
}

/* Y = X padded by pads (begin values for each padded axis, then end values)
   on axes (all when absent); the constant fills for mode constant. */
Status op_pad(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int mode = *(const int *)n->params;
    int64_t pads[2 * MAX_RANK], axes[MAX_RANK];
    int32_t np_ = 0, na = 0;
    int present = 0;
    char sx[96];
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;

    /* step 1: pads and axes */
    if (n->opset < 11)
        st = int_list_arg(n, in, MAX_NODE_IO, "pads", pads, 2 * MAX_RANK,
                          &np_, &present, err);
    else if (n->n_in > 1 && in[1])
        st = read_int_list(n, in[1], pads, 2 * MAX_RANK, &np_, err);
    if (st == ST_OK && n->opset >= 18 && n->n_in > 3 && in[3])
        st = read_int_list(n, in[3], axes, MAX_RANK, &na, err);
    else
        for (na = 0; na < x->ndim; na++) axes[na] = na;
    if (st != ST_OK)
        return st;
    if (np_ != 2 * na)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "pads has %d values, "
                         "expected %d for %d axes", (int)np_, (int)(2 * na),
                         (int)na);
    int64_t begin[MAX_RANK] = {0}, end[MAX_RANK] = {0}, dims[MAX_RANK];
    for (int32_t i = 0; i < na; i++) {
        int32_t ax;
        if ((st = norm_axis(n, axes[i], x->ndim, &ax, err)))
            return st;
        begin[ax] = pads[i];
        end[ax] = pads[na + i];
    }
    for (int32_t d = 0; d < x->ndim; d++) {
        int64_t len = x->dims[d], grow = begin[d] > end[d] ? begin[d] : end[d];
        dims[d] = len + begin[d] + end[d];
        if (dims[d] < 0 || begin[d] < -len || end[d] < -len)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "pads %lld, %lld crop "
                             "more than axis %d of %s", (long long)begin[d],
                             (long long)end[d], (int)d,
                             shape_str(x->dims, x->ndim, sx, 96));
        if (grow > 0 && mode != PAD_CONSTANT && len == 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot pad the empty "
                             "axis %d in mode %s", (int)d,
                             attr_string(n, "mode", "constant"));
        if (grow > len - 1 && grow > 0 && mode == PAD_REFLECT)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "reflect padding %lld "
                             "on axis %d of %s must be below the axis size",
                             (long long)grow, (int)d,
                             shape_str(x->dims, x->ndim, sx, 96));
    }

    /* step 2: the constant, as one element of x's dtype */
    int size = dtype_size(x->dtype);
    uint8_t value[8] = {0};
    const Tensor *cv = n->opset >= 11 && n->n_in > 2 ? in[2] : NULL;
    if (cv) {
        if (cv->dtype != x->dtype || cv->numel != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "constant_value must "
                             "be one %s, got %lld %s", dtype_name(x->dtype),
                             (long long)cv->numel, dtype_name(cv->dtype));
        memcpy(value, cv->data, (size_t)size);
    } else if (n->opset < 11) {
        Tensor v = {.dtype = x->dtype, .data = value};
        elem_set(&v, 0, attr_float(n, "value", 0.0f));
    }

    /* step 3: every output element from its source (or the constant) */
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err)))
        return st;
    int64_t idx[MAX_RANK] = {0};
    char *y = out[0]->data;
    for (int64_t i = 0; i < out[0]->numel; i++) {
        int64_t src = 0;
        for (int32_t d = 0; d < x->ndim && src >= 0; d++) {
            int64_t s = pad_source(mode, idx[d], begin[d], x->dims[d]);
            src = s < 0 ? -1 : src + s * x->strides[d];
        }
        memcpy(y + i * size, src < 0 ? (const void *)value
                                     : (const char *)x->data + src * size,
               (size_t)size);
        for (int32_t d = x->ndim - 1; d >= 0; d--) {
            if (++idx[d] < dims[d])
                break;
            idx[d] = 0;
        }
    }
    return ST_OK;
}
