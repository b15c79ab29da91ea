/*
 * ops_index.c: ops that index, replicate or select data: Expand, Tile,
 * Split, Range, OneHot, NonZero, GatherElements, GatherND, ScatterElements
 * (and the older Scatter), ScatterND, Trilu, EyeLike, Size, SpaceToDepth,
 * Compress, ReverseSequence, Unique, CenterCropPad.
 *
 * All work on every dtype of fixed element size; strings are refused.
 * Every index read from a tensor is range-checked before use.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

/* ---- shared helpers --------------------------------------------------- */

/* See ops.h: an odometer over dims, copying runs of the last axis. */
Status ix_strided_copy(const void *x, int size, Tensor *y,
                       const int64_t *src_strides, int32_t ndim,
                       const int64_t *dims)
{
    int64_t total = 1;
    for (int32_t i = 0; i < ndim; i++) total *= dims[i];
    if (total == 0)
        return ST_OK;
    int64_t idx[MAX_RANK * 2] = {0}, src = 0;
    int32_t last = ndim - 1;
    int64_t run = ndim ? dims[last] : 1, step = ndim ? src_strides[last] : 0;
    const char *xs = x;
    char *yd = y->data;
    for (int64_t o = 0; o < total; o += run) {
        if (step == 1) {
            memcpy(yd + o * size, xs + src * size, (size_t)(run * size));
        } else if (size == 4) {
            const uint32_t *s4 = (const uint32_t *)xs + src;
            uint32_t *d4 = (uint32_t *)yd + o;
            for (int64_t i = 0; i < run; i++) d4[i] = s4[i * step];
        } else {
            for (int64_t i = 0; i < run; i++)
                memcpy(yd + (o + i) * size, xs + (src + i * step) * size,
                       (size_t)size);
        }
        for (int32_t d = last - 1; d >= 0; d--) {
            src += src_strides[d];
            if (++idx[d] < dims[d])
                break;
            src -= src_strides[d] * dims[d];
            idx[d] = 0;
        }
    }
    return ST_OK;
}

/* Read a scalar (or one-element) tensor of any numeric dtype as double. */
static Status scalar_arg(const Node *n, const Tensor *t, const char *what,
                         double *v, Err *err)
{
    if (!t || t->numel != 1 || dtype_size(t->dtype) == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be a "
                         "one-element numeric tensor", what);
    *v = elem_get(t, 0);
    return ST_OK;
}

/* Check that every index of ix lies in [-len, len); names the op input. */
static Status check_indices(const Node *n, const Tensor *ix, int64_t len,
                            const char *what, Err *err)
{
    if (!elem_is_index(ix->dtype))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be int64 or "
                         "int32, got %s", what, dtype_name(ix->dtype));
    for (int64_t j = 0; j < ix->numel; j++) {
        int64_t v = tensor_get_int(ix, j);
        if (v < -len || v >= len)
            return node_fail(n, err, ST_BAD_REQUEST, "%s value %lld out of "
                             "range [-%lld, %lld)", what, (long long)v,
                             (long long)len, (long long)len);
    }
    return ST_OK;
}

/* ---- Expand, Tile ----------------------------------------------------- */

/* Y = X broadcast (numpy rules, both ways) with the shape input. */
Status op_expand(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t shape[MAX_RANK], dims[MAX_RANK], strides[MAX_RANK];
    int32_t ns;
    char sx[96], ss[96];
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = read_int_list(n, in[1], shape, MAX_RANK, &ns, err)))
        return st;
    int32_t nd = ns > x->ndim ? ns : x->ndim;
    for (int32_t i = 0; i < nd; i++) {
        int32_t ix = i - (nd - x->ndim), is = i - (nd - ns);
        int64_t a = ix >= 0 ? x->dims[ix] : 1, b = is >= 0 ? shape[is] : 1;
        if (a != b && a != 1 && b != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast %s "
                             "to %s", shape_str(x->dims, x->ndim, sx, 96),
                             shape_str(shape, ns, ss, 96));
        dims[i] = a == 1 ? b : a;
        strides[i] = (ix >= 0 && a != 1) ? x->strides[ix] : 0;
    }
    if ((st = tensor_alloc(out[0], x->dtype, nd, dims, err)))
        return st;
    return ix_strided_copy(x->data, dtype_size(x->dtype), out[0], strides,
                           nd, dims);
}

/* Y = X repeated repeats[i] times along each axis i. */
Status op_tile(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t reps[MAX_RANK], dims[2 * MAX_RANK], strides[2 * MAX_RANK];
    int32_t nr;
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = read_int_list(n, in[1], reps, MAX_RANK, &nr, err)))
        return st;
    if (nr != x->ndim)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "repeats has %d values, "
                         "input has rank %d", (int)nr, (int)x->ndim);
    int64_t ydims[MAX_RANK];
    for (int32_t i = 0; i < x->ndim; i++) {
        if (reps[i] < 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "repeats must be >= "
                             "0, got %lld", (long long)reps[i]);
        /* as (rep, dim) pairs: the rep axis has stride 0 */
        dims[2 * i] = reps[i];
        strides[2 * i] = 0;
        dims[2 * i + 1] = x->dims[i];
        strides[2 * i + 1] = x->strides[i];
        if (x->dims[i] && reps[i] > (int64_t)1 << 31)
            return node_fail(n, err, ST_OOM, "repeats too large");
        ydims[i] = reps[i] * x->dims[i];
    }
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, ydims, err)))
        return st;
    /* MAX_RANK*2 axes: ix_strided_copy allows that many */
    return ix_strided_copy(x->data, dtype_size(x->dtype), out[0], strides,
                           2 * x->ndim, dims);
}

/* ---- Split ------------------------------------------------------------ */

/* Y_k = consecutive pieces of X along axis: by 'split' sizes (attribute
   before opset 13, input after), by num_outputs (18), or equal parts. */
Status op_split(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int32_t axis, count = 0;
    int present = 0;
    char sx[96];
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err)))
        return st;
    if (x->ndim == 0)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot split a scalar");
    int64_t *sizes = malloc(sizeof(int64_t) * MAX_NODE_IO);
    if (!sizes)
        return fail(err, ST_OOM, "out of memory");
    int64_t dim = x->dims[axis];
    if (n->opset >= 13 && n->n_in > 1 && in[1]) {
        st = read_int_list(n, in[1], sizes, MAX_NODE_IO, &count, err);
        present = 1;
    } else if (n->opset < 13) {
        st = int_list_arg(n, in, MAX_NODE_IO, "split", sizes, MAX_NODE_IO,
                          &count, &present, err);
    }
    if (st == ST_OK && !present) {
        int64_t parts = n->n_out, chunk;
        if (n->opset >= 18 && node_attr(n, "num_outputs")) {
            parts = attr_int(n, "num_outputs", n->n_out);
            if (parts != n->n_out) {
                free(sizes);
                return node_fail(n, err, ST_SHAPE_MISMATCH, "num_outputs "
                                 "%lld differs from the %d outputs",
                                 (long long)parts, (int)n->n_out);
            }
            chunk = (dim + parts - 1) / parts;
        } else {
            chunk = dim / parts;
            if (dim % parts)
                st = node_fail(n, err, ST_SHAPE_MISMATCH, "axis %d of %s does "
                               "not split into %lld equal parts", (int)axis,
                               shape_str(x->dims, x->ndim, sx, 96),
                               (long long)parts);
        }
        for (int64_t k = 0, left = dim; k < parts && k < MAX_NODE_IO; k++) {
            sizes[k] = chunk < left ? chunk : left;
            left -= sizes[k];
        }
        count = (int32_t)parts;
    }
    int64_t total = 0;
    for (int32_t k = 0; st == ST_OK && k < count; k++) {
        if (sizes[k] < 0)
            st = node_fail(n, err, ST_SHAPE_MISMATCH, "negative split size");
        total += sizes[k];
    }
    if (st == ST_OK && (count != n->n_out || total != dim))
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "split sizes (%d parts, "
                       "total %lld) do not fit %d outputs and axis %d of %s",
                       (int)count, (long long)total, (int)n->n_out, (int)axis,
                       shape_str(x->dims, x->ndim, sx, 96));
    int64_t outer = 1, inner = x->strides[axis] * dtype_size(x->dtype);
    for (int32_t d = 0; d < axis; d++) outer *= x->dims[d];
    for (int32_t k = 0, off = 0; st == ST_OK && k < count; off += sizes[k], k++) {
        if (!out[k])
            continue;
        int64_t dims[MAX_RANK];
        memcpy(dims, x->dims, sizeof dims);
        dims[axis] = sizes[k];
        if ((st = tensor_alloc(out[k], x->dtype, x->ndim, dims, err)))
            break;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)out[k]->data + o * sizes[k] * inner,
                   (const char *)x->data + (o * dim + off) * inner,
                   (size_t)(sizes[k] * inner));
    }
    free(sizes);
    return st;
}

/* ---- Range, OneHot, NonZero, EyeLike, Size, Trilu --------------------- */

/* Y = start, start+delta, ... while < limit (> limit for delta < 0). */
Status op_range(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    double s, l, d;
    Status st;
    if ((st = scalar_arg(n, in[0], "start", &s, err)) ||
        (st = scalar_arg(n, in[1], "limit", &l, err)) ||
        (st = scalar_arg(n, in[2], "delta", &d, err)))
        return st;
    int32_t dt = in[0]->dtype;
    if (in[1]->dtype != dt || in[2]->dtype != dt || dt == DT_BOOL)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "start, limit and delta "
                         "must share one numeric dtype, got %s, %s, %s",
                         dtype_name(dt), dtype_name(in[1]->dtype),
                         dtype_name(in[2]->dtype));
    if (d == 0.0 || isnan(s) || isnan(l) || isnan(d))
        return node_fail(n, err, ST_BAD_REQUEST, "delta must be non-zero and "
                         "bounds finite");
    double cnt = ceil((l - s) / d);
    if (!(cnt < 2147483648.0))
        return node_fail(n, err, ST_OOM, "range of %g elements is too large",
                         cnt);
    int64_t len = cnt > 0 ? (int64_t)cnt : 0;
    if ((st = tensor_alloc(out[0], dt, 1, &len, err)))
        return st;
    if (elem_is_float(dt)) {
        for (int64_t i = 0; i < len; i++)
            elem_set(out[0], i, dt == DT_DOUBLE ? s + (double)i * d
                                                : (float)s + (float)i * (float)d);
        return ST_OK;
    }
    /* integers: exact int64 arithmetic, wrapping like the stored type */
    int64_t si = (int64_t)s, di = (int64_t)d;
    for (int64_t i = 0; i < len; i++)
        elem_set(out[0], i, (double)(int64_t)((uint64_t)si + (uint64_t)i * (uint64_t)di));
    return ST_OK;
}

/* Y = one-hot of indices with depth inserted at axis; values = [off, on]. */
Status op_one_hot(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *ix = in[0], *vals = in[2];
    double depth_f;
    Status st;
    if ((st = scalar_arg(n, in[1], "depth", &depth_f, err)))
        return st;
    if (vals->numel != 2 || !dtype_size(vals->dtype) || !dtype_size(ix->dtype))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "values must hold 2 "
                         "elements [off, on], got %lld", (long long)vals->numel);
    if (!(depth_f >= 1 && depth_f < 2147483648.0))
        return node_fail(n, err, ST_BAD_REQUEST, "depth must be >= 1, got %g",
                         depth_f);
    int64_t depth = (int64_t)depth_f;
    int32_t axis, nd = ix->ndim + 1;
    if (nd > MAX_RANK)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "result rank %d exceeds "
                         "%d", (int)nd, MAX_RANK);
    if ((st = norm_axis(n, attr_int(n, "axis", -1), nd, &axis, err)))
        return st;
    int64_t dims[MAX_RANK];
    for (int32_t i = 0, k = 0; i < nd; i++)
        dims[i] = i == axis ? depth : ix->dims[k++];
    if ((st = tensor_alloc(out[0], vals->dtype, nd, dims, err)))
        return st;
    int size = dtype_size(vals->dtype);
    int64_t inner = 1, outer = 1;
    for (int32_t i = axis; i < ix->ndim; i++) inner *= ix->dims[i];
    for (int32_t i = 0; i < axis; i++) outer *= ix->dims[i];
    for (int64_t i = 0; i < out[0]->numel; i++)
        elem_copy(out[0], i, vals, 0, size);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            double v = elem_get(ix, o * inner + j);
            if (isnan(v) || v < -(double)depth || v >= (double)depth)
                continue; /* out of range: the whole line stays off */
            int64_t h = (int64_t)v;
            h = h < 0 ? h + depth : h;
            elem_copy(out[0], (o * depth + h) * inner + j, vals, 1, size);
        }
    return ST_OK;
}

/* Y (rank, nnz) int64 = the coordinates of X's non-zero elements. */
Status op_non_zero(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0];
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++) nnz += elem_get(x, i) != 0.0;
    int64_t r = x->ndim ? x->ndim : 1, dims[2] = {r, nnz}, idx[MAX_RANK];
    if ((st = tensor_alloc(out[0], DT_INT64, 2, dims, err)))
        return st;
    int64_t *y = out[0]->data, k = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (elem_get(x, i) == 0.0)
            continue;
        elem_unravel(i, x->dims, x->ndim, idx);
        for (int32_t d = 0; d < r; d++)
            y[d * nnz + k] = x->ndim ? idx[d] : 0;
        k++;
    }
    return ST_OK;
}

/* Y = a 2-D tensor like X with ones on the k-th diagonal. */
Status op_eye_like(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0];
    int32_t dt = (int32_t)attr_int(n, "dtype", x->dtype);
    int64_t k = attr_int(n, "k", 0);
    if (x->ndim != 2 || dt <= 0 || dt >= DT_COUNT || !dtype_size(dt))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected a 2-D input and "
                         "a fixed-size dtype, got rank %d and %s", (int)x->ndim,
                         dtype_name(dt));
    Status st = tensor_alloc(out[0], dt, 2, x->dims, err);
    if (st != ST_OK)
        return st;
    memset(out[0]->data, 0, (size_t)tensor_nbytes(out[0]));
    for (int64_t i = 0; i < x->dims[0]; i++) {
        int64_t j = i + k;
        if (j >= 0 && j < x->dims[1])
            elem_set(out[0], i * x->dims[1] + j, 1.0);
    }
    return ST_OK;
}

/* Y = the number of elements of X, an int64 scalar. */
Status op_size(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    Status st = tensor_alloc(out[0], DT_INT64, 0, NULL, err);
    if (st == ST_OK)
        *(int64_t *)out[0]->data = in[0]->numel;
    return st;
}

/* Y = X with the elements below (upper=1) / above (upper=0) the k-th
   diagonal of the last two axes set to zero. */
Status op_trilu(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int64_t k = 0;
    int upper = attr_int(n, "upper", 1) != 0;
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (n->n_in > 1 && in[1]) {
        if (!elem_is_index(in[1]->dtype) || in[1]->numel != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "k must be an int64 "
                             "scalar");
        k = tensor_get_int(in[1], 0);
    }
    if (x->ndim < 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input must have rank >= "
                         "2, got %d", (int)x->ndim);
    if ((st = tensor_alloc_like(out[0], x, err)))
        return st;
    int size = dtype_size(x->dtype);
    int64_t rows = x->dims[x->ndim - 2], cols = x->dims[x->ndim - 1];
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = i % cols, r = cols ? (i / cols) % rows : 0;
        /* compare without overflow: k may be any int64 */
        int keep = upper ? (c - r >= k) : (c - r <= k);
        if (!keep)
            memset((char *)out[0]->data + i * size, 0, (size_t)size);
    }
    return ST_OK;
}

/* ---- SpaceToDepth ----------------------------------------------------- */

/* (n, c, h, w) -> (n, c*b*b, h/b, w/b), depth order by mode. */
Status op_space_to_depth(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const Tensor *x = in[0];
    int64_t b = attr_int(n, "blocksize", 0);
    char sx[96];
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (b < 1 || x->ndim != 4 || x->dims[2] % b || x->dims[3] % b)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected (n, c, h, w) "
                         "with h and w divisible by blocksize %lld, got %s",
                         (long long)b, shape_str(x->dims, x->ndim, sx, 96));
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2] / b,
            W = x->dims[3] / b, iw = x->dims[3];
    /* output channel order: DCR (by, bx, c); CRD (c, by, bx) */
    const char *mode = attr_string(n, "mode", "DCR");
    int crd = !strcmp(mode, "CRD");
    if (!crd && strcmp(mode, "DCR"))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "mode '%s' is not DCR or "
                         "CRD", mode);
    int64_t dims6[6] = {N, b, b, C, H, W};
    int64_t strides6[6] = {x->strides[0], iw, 1, x->strides[1], b * iw, b};
    if (crd) {
        int64_t d6[6] = {N, C, b, b, H, W};
        int64_t s6[6] = {x->strides[0], x->strides[1], iw, 1, b * iw, b};
        memcpy(dims6, d6, sizeof d6);
        memcpy(strides6, s6, sizeof s6);
    }
    int64_t dims[4] = {N, C * b * b, H, W};
    if ((st = tensor_alloc(out[0], x->dtype, 4, dims, err)))
        return st;
    return ix_strided_copy(x->data, dtype_size(x->dtype), out[0], strides6, 6,
                           dims6);
}

/* ---- GatherElements, GatherND ----------------------------------------- */

/* Y[i] = X[i with axis coordinate replaced by indices[i]]; shape of indices. */
Status op_gather_elements(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const Tensor *x = in[0], *ix = in[1];
    int32_t axis;
    char sx[96], si[96];
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err)))
        return st;
    int ok = ix->ndim == x->ndim && x->ndim > 0;
    for (int32_t d = 0; ok && d < x->ndim; d++)
        ok = d == axis || ix->dims[d] <= x->dims[d];
    if (!ok)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "indices %s do not fit "
                         "data %s", shape_str(ix->dims, ix->ndim, si, 96),
                         shape_str(x->dims, x->ndim, sx, 96));
    if ((st = check_indices(n, ix, x->dims[axis], "indices", err)) ||
        (st = tensor_alloc(out[0], x->dtype, ix->ndim, ix->dims, err)))
        return st;
    int size = dtype_size(x->dtype);
    int64_t idx[MAX_RANK];
    for (int64_t i = 0; i < ix->numel; i++) {
        elem_unravel(i, ix->dims, ix->ndim, idx);
        int64_t v = tensor_get_int(ix, i), src = 0;
        idx[axis] = v < 0 ? v + x->dims[axis] : v;
        for (int32_t d = 0; d < x->ndim; d++) src += idx[d] * x->strides[d];
        elem_copy(out[0], i, x, src, size);
    }
    return ST_OK;
}

/* Shapes shared by GatherND and ScatterND: batch dims, index tuples. */
typedef struct {
    int64_t batch;  /* product of the first batch_dims dims */
    int64_t tuples; /* index tuples per batch */
    int64_t k;      /* coordinates per tuple */
    int64_t chunk;  /* elements addressed by one tuple */
    int64_t slab;   /* elements of data per batch */
} NdGeom;

/* Check indices (last dim k) against data with b batch dims. */
static Status nd_geometry(const Node *n, const Tensor *x, const Tensor *ix,
                          int64_t b, NdGeom *g, Err *err)
{
    char sx[96], si[96];
    int ok = elem_is_index(ix->dtype) && ix->ndim >= 1 && b >= 0 &&
             b < ix->ndim && b <= x->ndim;
    g->k = ok ? ix->dims[ix->ndim - 1] : 0;
    ok = ok && g->k + b <= x->ndim;
    g->batch = g->tuples = g->chunk = 1;
    for (int64_t d = 0; ok && d < b; d++) {
        ok = ix->dims[d] == x->dims[d];
        g->batch *= x->dims[d];
    }
    if (!ok)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "indices %s %s do not fit "
                         "data %s with batch_dims %lld",
                         dtype_name(ix->dtype),
                         shape_str(ix->dims, ix->ndim, si, 96),
                         shape_str(x->dims, x->ndim, sx, 96), (long long)b);
    for (int32_t d = (int32_t)b; d < ix->ndim - 1; d++) g->tuples *= ix->dims[d];
    for (int32_t d = (int32_t)(b + g->k); d < x->ndim; d++) g->chunk *= x->dims[d];
    g->slab = g->batch ? x->numel / g->batch : 0;
    /* every coordinate in range */
    for (int64_t j = 0; j < ix->numel; j++) {
        int32_t d = (int32_t)(b + j % (g->k ? g->k : 1));
        int64_t v = tensor_get_int(ix, j), len = x->dims[d];
        if (g->k && (v < -len || v >= len))
            return node_fail(n, err, ST_BAD_REQUEST, "index %lld out of range "
                             "for axis %d of size %lld", (long long)v, (int)d,
                             (long long)len);
    }
    return ST_OK;
}

/* Element offset inside one batch slab of the tuple starting at ix[j]. */
static int64_t nd_offset(const Tensor *x, const Tensor *ix, int64_t j,
                         int64_t b, int64_t k)
{
    int64_t off = 0;
    for (int64_t c = 0; c < k; c++) {
        int64_t v = tensor_get_int(ix, j + c), len = x->dims[b + c];
        off += (v < 0 ? v + len : v) * x->strides[b + c];
    }
    return off;
}

/* Y = slices of X addressed by the index tuples in the last axis of
   indices, after batch_dims shared leading axes. */
Status op_gather_nd(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0], *ix = in[1];
    int64_t b = attr_int(n, "batch_dims", 0);
    NdGeom g;
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = nd_geometry(n, x, ix, b, &g, err)))
        return st;
    int64_t dims[2 * MAX_RANK];
    int32_t nd = 0;
    for (int32_t d = 0; d < ix->ndim - 1; d++) dims[nd++] = ix->dims[d];
    for (int32_t d = (int32_t)(b + g.k); d < x->ndim; d++) dims[nd++] = x->dims[d];
    if ((st = tensor_alloc(out[0], x->dtype, nd, dims, err)))
        return st;
    size_t bytes = (size_t)(g.chunk * dtype_size(x->dtype));
    char *y = out[0]->data;
    for (int64_t bi = 0; bi < g.batch; bi++)
        for (int64_t t = 0; t < g.tuples; t++, y += bytes) {
            int64_t off = nd_offset(x, ix, (bi * g.tuples + t) * g.k, b, g.k);
            memcpy(y, (const char *)x->data +
                   (bi * g.slab + off) * dtype_size(x->dtype), bytes);
        }
    return ST_OK;
}

/* ---- ScatterElements, ScatterND ---------------------------------------- */

typedef enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } Reduction;

/* Read the 'reduction' attribute at load. */
Status prep_scatter(const Model *m, Node *n, Err *err)
{
    (void)m;
    const char *r = attr_string(n, "reduction", "none");
    int red = !strcmp(r, "none") ? RED_NONE : !strcmp(r, "add") ? RED_ADD
            : !strcmp(r, "mul") ? RED_MUL : !strcmp(r, "max") ? RED_MAX
            : !strcmp(r, "min") ? RED_MIN : -1;
    if (red < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "reduction '%s' is not "
                         "none, add, mul, max or min", r);
    int *p = malloc(sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    *p = red;
    n->params = p;
    return ST_OK;
}

/* y[i] = reduce(y[i], u[j]) in y's own type (integers wrap like C). */
static void reduce_into(Tensor *y, int64_t i, const Tensor *u, int64_t j,
                        int red)
{
#define RED_T(T)                                                            \
    {                                                                       \
        T *a = (T *)y->data + i, b = ((const T *)u->data)[j];               \
        switch (red) {                                                      \
        case RED_ADD: *a = (T)(*a + b); break;                              \
        case RED_MUL: *a = (T)(*a * b); break;                              \
        case RED_MAX: *a = b > *a ? b : *a; break;                          \
        case RED_MIN: *a = b < *a ? b : *a; break;                          \
        default: *a = b;                                                    \
        }                                                                   \
        return;                                                             \
    }
    switch (y->dtype) {
    case DT_FLOAT: RED_T(float)
    case DT_DOUBLE: RED_T(double)
    case DT_INT32: RED_T(int32_t)
    case DT_INT16: RED_T(int16_t)
    case DT_INT8: RED_T(int8_t)
    case DT_UINT64: RED_T(uint64_t)
    case DT_UINT32: RED_T(uint32_t)
    case DT_UINT16: RED_T(uint16_t)
    case DT_UINT8: RED_T(uint8_t)
    case DT_INT64: {
        /* wrap through unsigned: signed overflow is undefined in C */
        int64_t *a = (int64_t *)y->data + i, b = ((const int64_t *)u->data)[j];
        switch (red) {
        case RED_ADD: *a = (int64_t)((uint64_t)*a + (uint64_t)b); break;
        case RED_MUL: *a = (int64_t)((uint64_t)*a * (uint64_t)b); break;
        case RED_MAX: *a = b > *a ? b : *a; break;
        case RED_MIN: *a = b < *a ? b : *a; break;
        default: *a = b;
        }
        return;
    }
    case DT_BOOL: {
        uint8_t *a = (uint8_t *)y->data + i, b = ((const uint8_t *)u->data)[j];
        *a = (red == RED_ADD || red == RED_MAX) ? (*a | b)
           : (red == RED_MUL || red == RED_MIN) ? (*a & b) : b;
        return;
    }
    case DT_FLOAT16: case DT_BFLOAT16: {
        float a = (float)elem_get(y, i), b = (float)elem_get(u, j);
        float r = red == RED_ADD ? a + b : red == RED_MUL ? a * b
                : red == RED_MAX ? (b > a ? b : a)
                : red == RED_MIN ? (b < a ? b : a) : b;
        if (red == RED_NONE)
            ((uint16_t *)y->data)[i] = ((const uint16_t *)u->data)[j];
        else
            elem_set(y, i, r);
        return;
    }
    default: return;
    }
#undef RED_T
}

/* Y = X, then Y[i with axis coordinate = indices[i]] (op)= updates[i]. */
Status op_scatter_elements(const Node *n, Tensor *const *in,
                           Tensor *const *out, Err *err)
{
    const Tensor *x = in[0], *ix = in[1], *u = in[2];
    int red = n->params ? *(const int *)n->params : RED_NONE;
    int32_t axis;
    char sx[96], si[96];
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err)))
        return st;
    int ok = ix->ndim == x->ndim && u->ndim == ix->ndim &&
             u->dtype == x->dtype && x->ndim > 0;
    for (int32_t d = 0; ok && d < x->ndim; d++)
        ok = u->dims[d] == ix->dims[d] &&
             (d == axis || ix->dims[d] <= x->dims[d]);
    if (!ok)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "indices %s and updates "
                         "must share one shape that fits data %s",
                         shape_str(ix->dims, ix->ndim, si, 96),
                         shape_str(x->dims, x->ndim, sx, 96));
    if ((st = check_indices(n, ix, x->dims[axis], "indices", err)) ||
        (st = tensor_alloc_like(out[0], x, err)))
        return st;
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    int64_t idx[MAX_RANK];
    for (int64_t i = 0; i < ix->numel; i++) {
        elem_unravel(i, ix->dims, ix->ndim, idx);
        int64_t v = tensor_get_int(ix, i), dst = 0;
        idx[axis] = v < 0 ? v + x->dims[axis] : v;
        for (int32_t d = 0; d < x->ndim; d++) dst += idx[d] * x->strides[d];
        reduce_into(out[0], dst, u, i, red);
    }
    return ST_OK;
}

/* Y = X, then the slices addressed by the index tuples (op)= updates. */
Status op_scatter_nd(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const Tensor *x = in[0], *ix = in[1], *u = in[2];
    int red = n->params ? *(const int *)n->params : RED_NONE;
    NdGeom g;
    char su[96];
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = nd_geometry(n, x, ix, 0, &g, err)))
        return st;
    /* updates: indices.shape[:-1] + data.shape[k:] */
    int ok = u->dtype == x->dtype && u->ndim == ix->ndim - 1 + x->ndim - g.k;
    for (int32_t d = 0; ok && d < u->ndim; d++)
        ok = u->dims[d] == (d < ix->ndim - 1 ? ix->dims[d]
                            : x->dims[g.k + d - (ix->ndim - 1)]);
    if (!ok)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "updates %s %s do not fit "
                         "indices and data", dtype_name(u->dtype),
                         shape_str(u->dims, u->ndim, su, 96));
    if ((st = tensor_alloc_like(out[0], x, err)))
        return st;
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    for (int64_t t = 0; t < g.tuples; t++) {
        int64_t off = nd_offset(x, ix, t * g.k, 0, g.k);
        for (int64_t e = 0; e < g.chunk; e++)
            reduce_into(out[0], off + e, u, t * g.chunk + e, red);
    }
    return ST_OK;
}

/* ---- Compress, ReverseSequence ----------------------------------------- */

/* Y = the slices of X along axis (of the flattened X when no axis) whose
   condition is true. */
Status op_compress(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0], *c = in[1];
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    const Attr *a = node_attr(n, "axis");
    int32_t axis = 0, nd = 1;
    int64_t dims[MAX_RANK], outer = 1, len = x->numel, inner = 1;
    if (a) {
        if ((st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err)))
            return st;
        nd = x->ndim;
        memcpy(dims, x->dims, sizeof dims);
        len = x->dims[axis];
        inner = x->strides[axis];
        for (int32_t d = 0; d < axis; d++) outer *= x->dims[d];
    }
    if (c->ndim != 1 || !dtype_size(c->dtype))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "condition must be 1-D");
    int64_t kept = 0;
    for (int64_t i = 0; i < c->numel; i++) {
        int on = elem_get(c, i) != 0.0;
        if (on && i >= len)
            return node_fail(n, err, ST_BAD_REQUEST, "condition selects "
                             "index %lld of an axis of size %lld",
                             (long long)i, (long long)len);
        kept += on;
    }
    dims[a ? axis : 0] = kept;
    if ((st = tensor_alloc(out[0], x->dtype, nd, dims, err)))
        return st;
    size_t bytes = (size_t)(inner * dtype_size(x->dtype));
    char *y = out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < c->numel; i++)
            if (elem_get(c, i) != 0.0) {
                memcpy(y, (const char *)x->data + (o * len + i) * bytes, bytes);
                y += bytes;
            }
    return ST_OK;
}

/* Y = X with the first sequence_lens[b] steps along time_axis reversed,
   for each b along batch_axis. */
Status op_reverse_sequence(const Node *n, Tensor *const *in,
                           Tensor *const *out, Err *err)
{
    const Tensor *x = in[0], *lens = in[1];
    int64_t ba = attr_int(n, "batch_axis", 1), ta = attr_int(n, "time_axis", 0);
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (x->ndim < 2 || (ba != 0 && ba != 1) || (ta != 0 && ta != 1) || ba == ta)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected rank >= 2 and "
                         "batch_axis, time_axis a permutation of 0, 1");
    if (!elem_is_index(lens->dtype) || lens->ndim != 1 ||
        lens->dims[0] != x->dims[ba])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "sequence_lens must be "
                         "int64 of shape (%lld,)", (long long)x->dims[ba]);
    for (int64_t b = 0; b < lens->numel; b++) {
        int64_t l = tensor_get_int(lens, b);
        if (l < 0 || l > x->dims[ta])
            return node_fail(n, err, ST_BAD_REQUEST, "sequence length %lld "
                             "out of range [0, %lld]", (long long)l,
                             (long long)x->dims[ta]);
    }
    if ((st = tensor_alloc_like(out[0], x, err)))
        return st;
    int size = dtype_size(x->dtype);
    size_t bytes = (size_t)(x->strides[1] * size); /* one (t, b) cell */
    for (int64_t t = 0; t < x->dims[ta]; t++)
        for (int64_t b = 0; b < x->dims[ba]; b++) {
            int64_t l = tensor_get_int(lens, b), st_ = t < l ? l - 1 - t : t;
            int64_t dst = ta == 0 ? t * x->dims[1] + b : b * x->dims[1] + t;
            int64_t src = ta == 0 ? st_ * x->dims[1] + b : b * x->dims[1] + st_;
            memcpy((char *)out[0]->data + dst * bytes,
                   (const char *)x->data + src * bytes, bytes);
        }
    return ST_OK;
}

/* ---- Unique ------------------------------------------------------------ */

/* Compare slices a and b (len elements each, elem stride 1) of t. */
static int slice_cmp(const Tensor *t, int64_t a, int64_t b, int64_t len,
                     int64_t inner, int64_t outer, int64_t count)
{
    /* slice s = elements (o * count + s) * inner + i for o, i */
    (void)len;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double x = elem_get(t, (o * count + a) * inner + i);
            double y = elem_get(t, (o * count + b) * inner + i);
            /* NaN equals NaN and sorts after every number, as in numpy */
            if (isnan(x) || isnan(y)) {
                if (isnan(x) && isnan(y)) continue;
                return isnan(x) ? 1 : -1;
            }
            if (x < y) return -1;
            if (x > y) return 1;
        }
    return 0;
}

/* Y = the unique elements (or slices along axis) of X, sorted or in order
   of first occurrence; indices, inverse_indices and counts as int64. */
Status op_unique(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int sorted = attr_int(n, "sorted", 1) != 0;
    const Attr *a = node_attr(n, "axis");
    int32_t axis = 0;
    Status st = elem_require_fixed(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (a && (st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err)))
        return st;
    int64_t count = a ? x->dims[axis] : x->numel, inner = a ? x->strides[axis] : 1;
    int64_t outer = 1;
    for (int32_t d = 0; a && d < axis; d++) outer *= x->dims[d];

    /* step 1: first occurrence of each slice, O(count^2) comparisons */
    int64_t *first = malloc(sizeof(int64_t) * (size_t)(3 * count + 1));
    if (!first)
        return fail(err, ST_OOM, "out of memory");
    int64_t *inv = first + count, *order = inv + count, nu = 0;
    for (int64_t s = 0; s < count; s++) {
        int64_t u = 0;
        while (u < nu && slice_cmp(x, first[u], s, 0, inner, outer, count)) u++;
        if (u == nu) first[nu++] = s;
        inv[s] = u;
    }
    /* step 2: order of the uniques (insertion sort by value when sorted) */
    for (int64_t u = 0; u < nu; u++) {
        int64_t j = u;
        while (sorted && j > 0 &&
               slice_cmp(x, first[order[j - 1]], first[u], 0, inner, outer,
                         count) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = u;
    }
    int64_t *rank = malloc(sizeof(int64_t) * (size_t)(nu + 1));
    if (!rank) {
        free(first);
        return fail(err, ST_OOM, "out of memory");
    }
    for (int64_t r = 0; r < nu; r++) rank[order[r]] = r;

    /* step 3: outputs */
    int64_t dims[MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = nu;
    int size = dtype_size(x->dtype);
    st = tensor_alloc(out[0], x->dtype, a ? x->ndim : 1, a ? dims : &nu, err);
    for (int64_t o = 0; st == ST_OK && o < outer; o++)
        for (int64_t r = 0; r < nu; r++)
            memcpy((char *)out[0]->data + (o * nu + r) * inner * size,
                   (const char *)x->data + (o * count + first[order[r]]) * inner * size,
                   (size_t)(inner * size));
    int64_t lens[3] = {nu, count, nu};
    for (int k = 1; k < 4 && st == ST_OK; k++) {
        if (k >= n->n_out || !out[k])
            continue;
        if ((st = tensor_alloc(out[k], DT_INT64, 1, &lens[k - 1], err)))
            break;
        int64_t *y = out[k]->data;
        if (k == 1)
            for (int64_t r = 0; r < nu; r++) y[r] = first[order[r]];
        if (k == 2)
            for (int64_t s = 0; s < count; s++) y[s] = rank[inv[s]];
        if (k == 3) {
            memset(y, 0, sizeof(int64_t) * (size_t)nu);
            for (int64_t s = 0; s < count; s++) y[rank[inv[s]]]++;
        }
    }
    free(rank);
    free(first);
    return st;
}

/* ---- CenterCropPad ------------------------------------------------------ */

/* Y = X centre-cropped or zero-padded to the shape input on the axes. */
Status op_center_crop_pad(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const Tensor *x = in[0];
    int64_t shape[MAX_RANK], axes[MAX_RANK], dims[MAX_RANK];
    int32_t ns, na = 0, ax;
    int present;
    Status st;
    if ((st = elem_require_fixed(n, x, 0, err)) ||
        (st = read_int_list(n, in[1], shape, MAX_RANK, &ns, err)) ||
        (st = int_list_arg(n, in, MAX_NODE_IO, "axes", axes, MAX_RANK, &na,
                           &present, err)))
        return st;
    if (!present)
        for (na = 0; na < x->ndim; na++) axes[na] = na;
    if (na != ns)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "shape has %d values for "
                         "%d axes", (int)ns, (int)na);
    int64_t off[MAX_RANK] = {0}; /* source = dest + off along each axis */
    memcpy(dims, x->dims, sizeof dims);
    for (int32_t i = 0; i < na; i++) {
        if ((st = norm_axis(n, axes[i], x->ndim, &ax, err)))
            return st;
        if (shape[i] < 0)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "negative target size");
        dims[ax] = shape[i];
        off[ax] = x->dims[ax] >= shape[i] ? (x->dims[ax] - shape[i]) / 2
                                          : -((shape[i] - x->dims[ax]) / 2);
    }
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err)))
        return st;
    int size = dtype_size(x->dtype);
    int64_t idx[MAX_RANK];
    for (int64_t i = 0; i < out[0]->numel; i++) {
        elem_unravel(i, dims, x->ndim, idx);
        int64_t src = 0;
        int inside = 1;
        for (int32_t d = 0; d < x->ndim && inside; d++) {
            int64_t s = idx[d] + off[d];
            inside = s >= 0 && s < x->dims[d];
            src += s * x->strides[d];
        }
        if (inside)
            elem_copy(out[0], i, x, src, size);
        else
            memset((char *)out[0]->data + i * size, 0, (size_t)size);
    }
    return ST_OK;
}
