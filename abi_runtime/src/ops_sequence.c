/*
 * ops_sequence.c: sequences of tensors and optional values.
 *
 * A sequence is a Tensor of kind TK_SEQ_TENSOR whose data holds its items
 * (tensor.h); an empty optional is a Tensor of kind TK_NONE, and a present
 * optional is simply the value it holds. Every output here is a deep copy
 * of what it takes from the inputs, so a sequence never shares items with
 * another value and tensor_release can free it whole. Positions read from
 * tensors are checked against the sequence length: a bad one is a clean
 * error naming the range, never an out-of-bounds read.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Fail unless input k is present and of kind `kind` (`what` in words). */
static Status need_kind(const Node *n, const Tensor *t, int k, int kind,
                        const char *what, Err *err)
{
    char tn[64];
    if (t && t->kind == kind)
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d must be %s, got %s",
                     k, what, !t ? "nothing"
                     : type_name(t->kind, t->dtype, t->key_dtype, tn, 64));
}

static Status need_seq(const Node *n, const Tensor *t, int k, Err *err)
{
    return need_kind(n, t, k, TK_SEQ_TENSOR, "a sequence of tensors", err);
}

static Status need_tensor(const Node *n, const Tensor *t, int k, Err *err)
{
    return need_kind(n, t, k, TK_TENSOR, "a tensor", err);
}

/* The items of sequence s. */
static Tensor *items_of(const Tensor *s)
{
    return (Tensor *)s->data;
}

/*
 * *pos = the position in t, input k (one int32 or int64 element), checked
 * to lie in [-len, len - 1 + extra] and made non-negative (extra is 1 where
 * the end of the sequence is a valid position, as for SequenceInsert).
 */
static Status read_position(const Node *n, const Tensor *t, int k, int64_t len,
                            int extra, int64_t *pos, Err *err)
{
    Status st = need_tensor(n, t, k, err);
    if (st != ST_OK)
        return st;
    if ((t->dtype != DT_INT64 && t->dtype != DT_INT32) || t->numel != 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "position must be one "
                         "int32 or int64, got %s with %lld elements",
                         dtype_name(t->dtype), (long long)t->numel);
    int64_t p = tensor_get_int(t, 0);
    if (p < -len || p > len - 1 + extra)
        return node_fail(n, err, ST_BAD_REQUEST, "position %lld is out of "
                         "range [%lld, %lld] for a sequence of %lld tensors",
                         (long long)p, (long long)-len,
                         (long long)(len - 1 + extra), (long long)len);
    *pos = p < 0 ? p + len : p;
    return ST_OK;
}

/* Fail unless item x may join sequence s (same dtype). */
static Status check_item_dtype(const Node *n, const Tensor *s, const Tensor *x,
                               Err *err)
{
    if (x->dtype == s->dtype)
        return ST_OK;
    return node_fail(n, err, ST_SHAPE_MISMATCH, "tensor of %s cannot join a "
                     "sequence of %s", dtype_name(x->dtype),
                     dtype_name(s->dtype));
}

/* ---- building sequences ---------------------------------------------- */

/* S = [] of the dtype attribute (float32 by default). */
Status op_sequence_empty(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    (void)in;
    int64_t dtype = attr_int(n, "dtype", DT_FLOAT);
    if (dtype <= DT_UNDEFINED || dtype >= DT_COUNT)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %lld is not "
                         "supported", (long long)dtype);
    return seq_alloc(out[0], (int32_t)dtype, 0, err);
}

/* S = [x0, x1, ...], all of one dtype. */
Status op_sequence_construct(const Node *n, Tensor *const *in,
                             Tensor *const *out, Err *err)
{
    Status st = ST_OK;
    for (int32_t k = 0; k < n->n_in && st == ST_OK; k++)
        if ((st = need_tensor(n, in[k], k, err)) == ST_OK && k > 0)
            st = check_item_dtype(n, in[0], in[k], err);
    if (st == ST_OK)
        st = seq_alloc(out[0], in[0]->dtype, n->n_in, err);
    for (int32_t k = 0; k < n->n_in && st == ST_OK; k++)
        st = tensor_copy(&items_of(out[0])[k], in[k], err);
    return st;
}

/* y = S[p] (a copy); -len <= p < len. */
Status op_sequence_at(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    int64_t p;
    Status st = need_seq(n, in[0], 0, err);
    if (st == ST_OK)
        st = read_position(n, in[1], 1, in[0]->numel, 0, &p, err);
    return st ? st : tensor_copy(out[0], &items_of(in[0])[p], err);
}

/* S' = S[:p] + [x] + S[p:]; p defaults to len (append). */
Status op_sequence_insert(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    int64_t p;
    Status st = need_seq(n, in[0], 0, err);
    if (st == ST_OK)
        st = need_tensor(n, in[1], 1, err);
    if (st == ST_OK)
        st = check_item_dtype(n, in[0], in[1], err);
    if (st != ST_OK)
        return st;
    int64_t len = in[0]->numel;
    p = len;
    if (n->n_in > 2 && in[2] && (st = read_position(n, in[2], 2, len, 1, &p, err)))
        return st;
    if ((st = seq_alloc(out[0], in[0]->dtype, len + 1, err)))
        return st;
    Tensor *y = items_of(out[0]);
    const Tensor *s = items_of(in[0]);
    for (int64_t i = 0, j = 0; i <= len && st == ST_OK; i++)
        st = tensor_copy(&y[i], i == p ? in[1] : &s[j++], err);
    return st;
}

/* S' = S without S[p]; p defaults to -1 (the last). */
Status op_sequence_erase(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    Status st = need_seq(n, in[0], 0, err);
    if (st != ST_OK)
        return st;
    int64_t len = in[0]->numel, p = len - 1;
    if (len == 0)
        return node_fail(n, err, ST_BAD_REQUEST, "cannot erase from an empty "
                         "sequence");
    if (n->n_in > 1 && in[1] && (st = read_position(n, in[1], 1, len, 0, &p, err)))
        return st;
    if ((st = seq_alloc(out[0], in[0]->dtype, len - 1, err)))
        return st;
    const Tensor *s = items_of(in[0]);
    for (int64_t i = 0, j = 0; i < len && st == ST_OK; i++)
        if (i != p)
            st = tensor_copy(&items_of(out[0])[j++], &s[i], err);
    return st;
}

/* y = len(S), an int64 scalar. */
Status op_sequence_length(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    Status st = need_seq(n, in[0], 0, err);
    if (st == ST_OK)
        st = tensor_alloc(out[0], DT_INT64, 0, NULL, err);
    if (st == ST_OK)
        *(int64_t *)out[0]->data = in[0]->numel;
    return st;
}

/* ---- joining and splitting -------------------------------------------- */

/* Product of dims[lo..hi). */
static int64_t dims_product(const int64_t *dims, int32_t lo, int32_t hi)
{
    int64_t p = 1;
    for (int32_t i = lo; i < hi; i++)
        p *= dims[i];
    return p;
}

/*
 * y = the items of S joined along axis (new_axis = 0), or stacked along a
 * new axis (new_axis = 1). Items share dtype and rank, and every dimension
 * but the joined one. Each item is copied as (outer, len_i, inner) blocks
 * into y viewed as (outer, sum len_i, inner).
 */
Status op_concat_from_sequence(const Node *n, Tensor *const *in,
                               Tensor *const *out, Err *err)
{
    char s0[96], s1[96];
    Status st = need_seq(n, in[0], 0, err);
    if (st != ST_OK)
        return st;
    const Tensor *s = items_of(in[0]);
    int64_t count = in[0]->numel, new_axis = attr_int(n, "new_axis", 0);
    if (!node_attr(n, "axis"))
        return node_fail(n, err, ST_BAD_FORMAT, "attribute 'axis' is missing");
    if (count == 0)
        return node_fail(n, err, ST_BAD_REQUEST, "cannot concatenate an empty "
                         "sequence");
    int32_t rank = s[0].ndim, axis;
    if (new_axis && rank + 1 > MAX_RANK)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "stacking items of rank %d "
                         "exceeds the rank limit %d", (int)rank, MAX_RANK);
    if ((st = norm_axis(n, attr_int(n, "axis", 0), rank + (new_axis != 0),
                        &axis, err)))
        return st;

    /* step 1: every item fits the first; the joined length */
    int64_t total = 0;
    for (int64_t i = 0; i < count; i++) {
        const Tensor *x = &s[i];
        int same = x->dtype == s[0].dtype && x->ndim == rank;
        for (int32_t d = 0; same && d < rank; d++)
            same = x->dims[d] == s[0].dims[d] || (!new_axis && d == axis);
        if (!same)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "item %lld (%s %s) does "
                             "not fit item 0 (%s %s) along axis %d",
                             (long long)i, dtype_name(x->dtype),
                             shape_str(x->dims, x->ndim, s0, 96),
                             dtype_name(s[0].dtype),
                             shape_str(s[0].dims, rank, s1, 96), (int)axis);
        total += new_axis ? 1 : x->dims[axis];
    }

    /* step 2: y (outer, total, inner) */
    int64_t dims[MAX_RANK];
    int32_t y_rank = rank + (new_axis != 0);
    for (int32_t d = 0, j = 0; d < y_rank; d++) {
        dims[d] = d == axis ? total : s[0].dims[j];
        j += d != axis || !new_axis; /* stacking: the axis is new */
    }
    if ((st = tensor_alloc(out[0], s[0].dtype, y_rank, dims, err)))
        return st;
    int64_t outer = dims_product(s[0].dims, 0, axis);
    int64_t inner = dims_product(s[0].dims, new_axis ? axis : axis + 1, rank);
    size_t size = (size_t)dtype_size(s[0].dtype);

    /* step 3: copy the blocks */
    int64_t at = 0;
    for (int64_t i = 0; i < count; i++) {
        int64_t len = new_axis ? 1 : s[i].dims[axis];
        size_t chunk = (size_t)(len * inner) * size;
        for (int64_t o = 0; o < outer && chunk; o++)
            memcpy((char *)out[0]->data + (size_t)((o * total + at) * inner) * size,
                   (const char *)s[i].data + (size_t)o * chunk, chunk);
        at += len;
    }
    return ST_OK;
}

/* Split sizes of SplitToSequence into sizes[0..*count) (allocated). */
static Status split_sizes(const Node *n, const Tensor *split, int64_t dim,
                          int64_t **sizes, int64_t *count, Err *err)
{
    Status st;
    int64_t chunk = 1, k = dim;
    if (split && (st = need_tensor(n, split, 1, err)))
        return st;
    if (split && split->dtype != DT_INT64 && split->dtype != DT_INT32)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "split must be int32 or "
                         "int64, got %s", dtype_name(split->dtype));
    if (split && split->ndim == 0) {
        /* one size: pieces of that size, the last one possibly shorter */
        chunk = tensor_get_int(split, 0);
        if (chunk <= 0)
            return node_fail(n, err, ST_BAD_REQUEST, "split must be positive, "
                             "got %lld", (long long)chunk);
        k = dim / chunk + (dim % chunk != 0);
    } else if (split) {
        if (split->ndim != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "split must be a "
                             "scalar or 1-D, got rank %d", (int)split->ndim);
        k = split->numel;
    }
    *sizes = malloc(sizeof(int64_t) * (size_t)(k + 1));
    if (!*sizes)
        return fail(err, ST_OOM, "out of memory splitting a tensor");
    int64_t sum = 0;
    for (int64_t i = 0; i < k; i++) {
        int64_t v = split && split->ndim == 1 ? tensor_get_int(split, i)
                  : (i + 1) * chunk <= dim ? chunk : dim - i * chunk;
        if (v < 0 || v > dim - sum) {
            free(*sizes);
            return node_fail(n, err, ST_BAD_REQUEST, "split sizes must be "
                             "non-negative and add up to %lld", (long long)dim);
        }
        (*sizes)[i] = v;
        sum += v;
    }
    if (sum != dim) {
        free(*sizes);
        return node_fail(n, err, ST_BAD_REQUEST, "split sizes add up to %lld, "
                         "the axis has %lld", (long long)sum, (long long)dim);
    }
    *count = k;
    return ST_OK;
}

/*
 * S = the pieces of x along axis: of the sizes in split (a scalar: equal
 * pieces, the last shorter; 1-D: one size per piece), or of size 1 each
 * when split is absent, then without the axis unless keepdims.
 */
Status op_split_to_sequence(const Node *n, Tensor *const *in,
                            Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    const Tensor *split = n->n_in > 1 ? in[1] : NULL;
    int32_t axis;
    Status st = need_tensor(n, x, 0, err);
    if (st == ST_OK && x->ndim < 1)
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "input must have rank >= 1");
    if (st == ST_OK)
        st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err);
    int64_t *sizes = NULL, count = 0;
    if (st == ST_OK)
        st = split_sizes(n, split, x->dims[axis], &sizes, &count, err);
    if (st != ST_OK)
        return st;
    int drop = !split && attr_int(n, "keepdims", 1) == 0;
    int64_t outer = dims_product(x->dims, 0, axis);
    int64_t inner = dims_product(x->dims, axis + 1, x->ndim);
    size_t size = (size_t)dtype_size(x->dtype);

    /* piece i: x (outer, [at, at + len), inner) */
    st = seq_alloc(out[0], x->dtype, count, err);
    for (int64_t i = 0, at = 0; i < count && st == ST_OK; at += sizes[i++]) {
        int64_t dims[MAX_RANK];
        int32_t nd = 0;
        for (int32_t d = 0; d < x->ndim; d++)
            if (d != axis || !drop)
                dims[nd++] = d == axis ? sizes[i] : x->dims[d];
        Tensor *y = &items_of(out[0])[i];
        if ((st = tensor_alloc(y, x->dtype, nd, dims, err)))
            break;
        size_t chunk = (size_t)(sizes[i] * inner) * size;
        for (int64_t o = 0; o < outer && chunk; o++)
            memcpy((char *)y->data + (size_t)o * chunk,
                   (const char *)x->data +
                       (size_t)((o * x->dims[axis] + at) * inner) * size,
                   chunk);
    }
    free(sizes);
    return st;
}

/* ---- optionals --------------------------------------------------------- */

/* y = x (a copy), or an empty optional when x is absent. */
Status op_optional(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    if (n->n_in > 0 && in[0])
        return tensor_copy(out[0], in[0], err);
    memset(out[0], 0, sizeof *out[0]);
    out[0]->kind = TK_NONE;
    return ST_OK;
}

/* y = (x is given and not an empty optional), a bool scalar. */
Status op_optional_has_element(const Node *n, Tensor *const *in,
                               Tensor *const *out, Err *err)
{
    Status st = tensor_alloc(out[0], DT_BOOL, 0, NULL, err);
    if (st == ST_OK)
        *(uint8_t *)out[0]->data =
            n->n_in > 0 && in[0] && in[0]->kind != TK_NONE;
    return st;
}

/* y = the value x holds (a copy); an error when x is empty. */
Status op_optional_get_element(const Node *n, Tensor *const *in,
                               Tensor *const *out, Err *err)
{
    if (!in[0] || in[0]->kind == TK_NONE)
        return node_fail(n, err, ST_BAD_REQUEST, "the optional input is empty");
    return tensor_copy(out[0], in[0], err);
}
