/*
 * ops_shape.c: ops that move or describe data without arithmetic:
 * Reshape, Flatten, Squeeze, Unsqueeze, Transpose, DepthToSpace, Shape,
 * Gather, Concat, Slice, Cast, ConstantOfShape. All work on any dtype of
 * fixed element size (strings come later).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Copy t's data into a fresh tensor of the same dtype and a new shape. */
static Status copy_reshaped(const Tensor *t, int32_t ndim, const int64_t *dims,
                            Tensor *y, Err *err)
{
    Status st = tensor_alloc(y, t->dtype, ndim, dims, err);
    if (st == ST_OK)
        memcpy(y->data, t->data, (size_t)tensor_nbytes(t));
    return st;
}

/* y[out index] = x[sum(index_i * src_strides_i)] over the dims of y. */
static void strided_copy(const Tensor *x, Tensor *y, const int64_t *src_strides,
                         int32_t ndim, const int64_t *dims)
{
    int size = dtype_size(x->dtype);
    int64_t total = 1;
    for (int32_t i = 0; i < ndim; i++) total *= dims[i];
    if (total == 0)
        return;
    int64_t idx[2 * MAX_RANK] = {0}, src = 0;
    int32_t last = ndim - 1;
    int64_t run = ndim ? dims[last] : 1, step = ndim ? src_strides[last] : 0;
    const char *xs = x->data;
    char *yd = y->data;
    for (int64_t o = 0; o < total; o += run) {
        if (size == 4) {
            const uint32_t *s4 = (const uint32_t *)xs + src;
            uint32_t *d4 = (uint32_t *)yd + o;
            for (int64_t i = 0; i < run; i++) d4[i] = s4[i * step];
        } else {
            for (int64_t i = 0; i < run; i++)
                memcpy(yd + (o + i) * size, xs + (src + i * step) * size, size);
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            src += src_strides[d];
            if (++idx[d] < dims[d])
                break;
            src -= src_strides[d] * dims[d];
            idx[d] = 0;
        }
    }
}

/* Y = X with the shape of the shape input (0 copies, -1 infers). */
Status op_reshape(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t dims[MAX_RANK];
    int32_t nd;
    char sx[96], ss[96];
    Status st = read_int_list(n, in[1], dims, MAX_RANK, &nd, err);
    if (st != ST_OK)
        return st;
    int allowzero = n->opset >= 14 && attr_int(n, "allowzero", 0);
    int64_t known = 1;
    int32_t infer = -1;
    for (int32_t i = 0; i < nd; i++) {
        if (dims[i] == 0 && !allowzero) {
            if (i >= x->ndim)
                return node_fail(n, err, ST_SHAPE_MISMATCH, "shape %s copies "
                                 "dimension %d of %s, which has no such "
                                 "dimension", shape_str(dims, nd, ss, 96),
                                 (int)i, shape_str(x->dims, x->ndim, sx, 96));
            dims[i] = x->dims[i];
        }
        if (dims[i] == -1 && infer < 0) infer = i;
        else if (dims[i] < 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "invalid shape %s",
                             shape_str(dims, nd, ss, 96));
        else known *= dims[i];
    }
    if (infer >= 0)
        dims[infer] = known ? x->numel / known : 0;
    int64_t numel = 1;
    for (int32_t i = 0; i < nd; i++) numel *= dims[i];
    if (numel != x->numel || (infer >= 0 && known && x->numel % known))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot reshape %s (%lld "
                         "elements) to %s", shape_str(x->dims, x->ndim, sx, 96),
                         (long long)x->numel, shape_str(dims, nd, ss, 96));
    return copy_reshaped(x, nd, dims, out[0], err);
}

/* Y = X as 2-D: (prod dims[:axis], prod dims[axis:]). */
Status op_flatten(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t axis = attr_int(n, "axis", 1);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis > x->ndim)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "axis %lld out of range "
                         "for rank %d", (long long)attr_int(n, "axis", 1),
                         (int)x->ndim);
    int64_t dims[2] = {1, 1};
    for (int32_t i = 0; i < x->ndim; i++) dims[i < axis ? 0 : 1] *= x->dims[i];
    return copy_reshaped(x, 2, dims, out[0], err);
}

/* Y = X without the listed size-1 axes (all size-1 axes when none). */
Status op_squeeze(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t axes[MAX_RANK];
    int32_t na, ax;
    int present;
    char sx[96];
    Status st = int_list_arg(n, in, 1, "axes", axes, MAX_RANK, &na, &present, err);
    if (st != ST_OK)
        return st;
    int drop[MAX_RANK] = {0};
    for (int32_t i = 0; i < na; i++) {
        if ((st = norm_axis(n, axes[i], x->ndim, &ax, err)))
            return st;
        if (x->dims[ax] != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot squeeze axis "
                             "%d of %s: its size is not 1", (int)ax,
                             shape_str(x->dims, x->ndim, sx, 96));
        drop[ax] = 1;
    }
    int64_t dims[MAX_RANK];
    int32_t nd = 0;
    for (int32_t i = 0; i < x->ndim; i++)
        if (!(na ? drop[i] : x->dims[i] == 1))
            dims[nd++] = x->dims[i];
    return copy_reshaped(x, nd, dims, out[0], err);
}

/* Y = X with size-1 axes inserted at the listed output positions. */
Status op_unsqueeze(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    int64_t axes[MAX_RANK];
    int32_t na, ax;
    int present;
    Status st = int_list_arg(n, in, 1, "axes", axes, MAX_RANK, &na, &present, err);
    if (st != ST_OK)
        return st;
    int32_t nd = x->ndim + na;
    if (nd > MAX_RANK)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "result rank %d exceeds "
                         "%d", (int)nd, MAX_RANK);
    int ins[MAX_RANK] = {0};
    for (int32_t i = 0; i < na; i++) {
        if ((st = norm_axis(n, axes[i], nd, &ax, err)))
            return st;
        if (ins[ax])
            return node_fail(n, err, ST_SHAPE_MISMATCH, "axis %d repeated",
                             (int)ax);
        ins[ax] = 1;
    }
    int64_t dims[MAX_RANK];
    for (int32_t i = 0, k = 0; i < nd; i++)
        dims[i] = ins[i] ? 1 : x->dims[k++];
    return copy_reshaped(x, nd, dims, out[0], err);
}

/* Y = X with axes permuted by perm (reversed when absent). */
Status op_transpose(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    const Attr *perm = node_attr(n, "perm");
    if (perm && (perm->type != AT_INTS || perm->count != x->ndim))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "perm lists %d axes, "
                         "input has rank %d", (int)perm->count, (int)x->ndim);
    int64_t dims[MAX_RANK], strides[MAX_RANK];
    int seen[MAX_RANK] = {0};
    for (int32_t i = 0; i < x->ndim; i++) {
        int64_t a = perm ? attr_ints_at(perm, i) : x->ndim - 1 - i;
        if (a < 0 || a >= x->ndim || seen[a]++)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "perm is not a "
                             "permutation of 0..%d", (int)x->ndim - 1);
        dims[i] = x->dims[a];
        strides[i] = x->strides[a];
    }
    Status st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err);
    if (st == ST_OK)
        strided_copy(x, out[0], strides, x->ndim, dims);
    return st;
}

typedef struct {
    int64_t block;
    int crd; /* mode CRD; otherwise DCR */
} DepthToSpaceParams;

Status prep_depth_to_space(const Model *m, Node *n, Err *err)
{
    (void)m;
    DepthToSpaceParams *p = malloc(sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    p->block = attr_int(n, "blocksize", 0);
    const char *mode = attr_string(n, "mode", "DCR");
    p->crd = !strcmp(mode, "CRD");
    if (!p->crd && strcmp(mode, "DCR"))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "mode '%s' is not DCR or "
                         "CRD", mode);
    if (p->block < 1)
        return node_fail(n, err, ST_BAD_FORMAT, "blocksize must be >= 1, got "
                         "%lld", (long long)p->block);
    return ST_OK;
}

/* (n, c*b*b, h, w) -> (n, c, h*b, w*b), depth split as DCR or CRD. */
Status op_depth_to_space(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const DepthToSpaceParams *p = n->params;
    const Tensor *x = in[0];
    int64_t b = p->block;
    char sx[96];
    if (x->ndim != 4 || x->dims[1] % (b * b))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected (n, c, h, w) "
                         "with c divisible by %lld, got %s", (long long)(b * b),
                         shape_str(x->dims, x->ndim, sx, 96));
    int64_t N = x->dims[0], C = x->dims[1] / (b * b), H = x->dims[2],
            W = x->dims[3];
    int64_t hw = H * W;
    /* source strides of the input channel split (DCR: b1, b2, C; CRD:
       C, b1, b2), read in output order (N, C, H, b1, W, b2) */
    int64_t s_c = p->crd ? b * b * hw : hw;
    int64_t s_b1 = p->crd ? b * hw : b * C * hw;
    int64_t s_b2 = p->crd ? hw : C * hw;
    int64_t dims6[6] = {N, C, H, b, W, b};
    int64_t strides6[6] = {x->strides[0], s_c, W, s_b1, 1, s_b2};
    int64_t dims[4] = {N, C, H * b, W * b};
    Status st = tensor_alloc(out[0], x->dtype, 4, dims, err);
    if (st == ST_OK)
        strided_copy(x, out[0], strides6, 6, dims6);
    return st;
}

/* Y = the dims of X as int64, sliced by start/end (opset 15). */
Status op_shape(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t r = x->ndim;
    int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t len = end > start ? end - start : 0;
    Status st = tensor_alloc(out[0], DT_INT64, 1, &len, err);
    for (int64_t i = 0; st == ST_OK && i < len; i++)
        ((int64_t *)out[0]->data)[i] = x->dims[start + i];
    return st;
}

/* Y = X indexed along axis by the (possibly negative) indices. */
Status op_gather(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0], *ix = in[1];
    int32_t axis;
    Status st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err);
    if (st != ST_OK)
        return st;
    if (x->ndim == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot gather from a "
                         "scalar");
    if (ix->dtype != DT_INT64 && ix->dtype != DT_INT32)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "indices must be int64 or "
                         "int32, got %s", dtype_name(ix->dtype));
    int32_t nd = x->ndim - 1 + ix->ndim;
    if (nd > MAX_RANK)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "result rank %d exceeds "
                         "%d", (int)nd, MAX_RANK);
    int64_t dims[MAX_RANK];
    int32_t k = 0;
    for (int32_t i = 0; i < axis; i++) dims[k++] = x->dims[i];
    for (int32_t i = 0; i < ix->ndim; i++) dims[k++] = ix->dims[i];
    for (int32_t i = axis + 1; i < x->ndim; i++) dims[k++] = x->dims[i];
    if ((st = tensor_alloc(out[0], x->dtype, nd, dims, err)))
        return st;
    int64_t outer = 1, inner = x->strides[axis], len = x->dims[axis];
    for (int32_t i = 0; i < axis; i++) outer *= x->dims[i];
    size_t chunk = (size_t)(inner * dtype_size(x->dtype));
    char *y = out[0]->data;
    for (int64_t j = 0; j < ix->numel; j++) {
        int64_t v = tensor_get_int(ix, j);
        if (v < -len || v >= len)
            return node_fail(n, err, ST_BAD_REQUEST, "index %lld out of range "
                             "for axis %d of size %lld", (long long)v,
                             (int)axis, (long long)len);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ix->numel; j++) {
            int64_t v = tensor_get_int(ix, j);
            v = v < 0 ? v + len : v;
            memcpy(y, (const char *)x->data + (o * len + v) * chunk, chunk);
            y += chunk;
        }
    return ST_OK;
}

/* Y = the inputs joined along axis; all other dims must agree. */
Status op_concat(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x0 = in[0];
    int32_t axis;
    char s0[96], si[96];
    Status st = norm_axis(n, attr_int(n, "axis", 0), x0->ndim, &axis, err);
    if (st != ST_OK)
        return st;
    int64_t dims[MAX_RANK];
    memcpy(dims, x0->dims, sizeof dims);
    dims[axis] = 0;
    for (int32_t i = 0; i < n->n_in; i++) {
        const Tensor *x = in[i];
        int ok = x && x->dtype == x0->dtype && x->ndim == x0->ndim;
        for (int32_t d = 0; ok && d < x0->ndim; d++)
            ok = d == axis || x->dims[d] == x0->dims[d];
        if (!ok)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d %s %s does "
                             "not fit input 0 %s %s", (int)i,
                             x ? dtype_name(x->dtype) : "absent",
                             x ? shape_str(x->dims, x->ndim, si, 96) : "",
                             dtype_name(x0->dtype),
                             shape_str(x0->dims, x0->ndim, s0, 96));
        dims[axis] += x->dims[axis];
    }
    if ((st = tensor_alloc(out[0], x0->dtype, x0->ndim, dims, err)))
        return st;
    int64_t outer = 1;
    for (int32_t d = 0; d < axis; d++) outer *= dims[d];
    int size = dtype_size(x0->dtype);
    char *y = out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int32_t i = 0; i < n->n_in; i++) {
            size_t chunk = (size_t)(in[i]->dims[axis] * in[i]->strides[axis] * size);
            memcpy(y, (const char *)in[i]->data + o * chunk, chunk);
            y += chunk;
        }
    return ST_OK;
}

/* Clamp a Slice bound into [lo, hi] after resolving negatives. */
static int64_t clamp_bound(int64_t v, int64_t dim, int64_t lo, int64_t hi)
{
    if (v < 0) v = v < INT64_MIN + dim ? INT64_MIN : v + dim;
    return v > hi ? hi : v < lo ? lo : v;
}

/* Y = X[starts:ends:steps] on the listed axes (numpy slicing). */
Status op_slice(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t starts[MAX_RANK], ends[MAX_RANK], axes[MAX_RANK], steps[MAX_RANK];
    int32_t ns, ne, na, nt;
    int has_axes, has_steps, p1, p2;
    Status st;
    if ((st = int_list_arg(n, in, 1, "starts", starts, MAX_RANK, &ns, &p1, err)) ||
        (st = int_list_arg(n, in, 2, "ends", ends, MAX_RANK, &ne, &p2, err)) ||
        (st = int_list_arg(n, in, 3, "axes", axes, MAX_RANK, &na, &has_axes, err)) ||
        (st = int_list_arg(n, in, 4, "steps", steps, MAX_RANK, &nt, &has_steps, err)))
        return st;
    if (ns != ne || (has_axes && na != ns) || (has_steps && nt != ns))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "starts, ends, axes and "
                         "steps must have the same length (%d, %d, %d, %d)",
                         (int)ns, (int)ne, (int)na, (int)nt);
    int64_t begin[MAX_RANK], step[MAX_RANK], dims[MAX_RANK];
    for (int32_t d = 0; d < x->ndim; d++) {
        begin[d] = 0;
        step[d] = 1;
        dims[d] = x->dims[d];
    }
    int seen[MAX_RANK] = {0};
    for (int32_t i = 0; i < ns; i++) {
        int32_t d;
        if ((st = norm_axis(n, has_axes ? axes[i] : i, x->ndim, &d, err)))
            return st;
        int64_t s = has_steps ? steps[i] : 1, dim = x->dims[d];
        if (s == 0 || seen[d]++)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "step 0 or repeated "
                             "axis %d", (int)d);
        int64_t b, e;
        if (s > 0) {
            b = clamp_bound(starts[i], dim, 0, dim);
            e = clamp_bound(ends[i], dim, 0, dim);
            dims[d] = e > b ? (e - b + s - 1) / s : 0;
        } else {
            /* backwards: start in [0, dim-1], end in [-1, dim-1] */
            b = clamp_bound(starts[i], dim, 0, dim - 1);
            e = clamp_bound(ends[i], dim, -1, dim - 1);
            dims[d] = b > e ? (b - e - s - 1) / -s : 0;
        }
        begin[d] = b;
        step[d] = s;
    }
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err)))
        return st;
    if (out[0]->numel == 0)
        return ST_OK;
    /* a view of X starting at begin with strides scaled by step */
    int64_t offset = 0, strides[MAX_RANK];
    for (int32_t d = 0; d < x->ndim; d++) {
        offset += begin[d] * x->strides[d];
        strides[d] = step[d] * x->strides[d];
    }
    Tensor view = *x;
    view.data = (char *)x->data + offset * dtype_size(x->dtype);
    strided_copy(&view, out[0], strides, x->ndim, dims);
    return ST_OK;
}

Status prep_constant_of_shape(const Model *m, Node *n, Err *err)
{
    const Attr *a = node_attr(n, "value");
    if (!a) {
        n->params = NULL; /* float32 zero */
        return ST_OK;
    }
    const Tensor *v = a->type == AT_TENSOR ? &m->values[attr_tensor(a)].constant
                                           : NULL;
    if (!v || !v->data || v->numel != 1 || !dtype_size(v->dtype))
        return node_fail(n, err, ST_BAD_FORMAT, "value must be a one-element "
                         "numeric tensor");
    n->params = (void *)v; /* borrowed from the model, not freed */
    return ST_OK;
}

/* Y = a tensor of the given shape filled with the value attribute. */
Status op_constant_of_shape(const Node *n, Tensor *const *in,
                            Tensor *const *out, Err *err)
{
    const Tensor *v = n->params;
    int64_t dims[MAX_RANK];
    int32_t nd;
    Status st = read_int_list(n, in[0], dims, MAX_RANK, &nd, err);
    if (st != ST_OK)
        return st;
    if ((st = tensor_alloc(out[0], v ? v->dtype : DT_FLOAT, nd, dims, err)))
        return st;
    int size = dtype_size(out[0]->dtype);
    char *y = out[0]->data;
    if (!v)
        memset(y, 0, (size_t)tensor_nbytes(out[0]));
    for (int64_t i = 0; v && i < out[0]->numel; i++)
        memcpy(y + i * size, v->data, size);
    return ST_OK;
}
