/*
 * ops_tensor_scatter.c: TensorScatter (opset 24), the functional form of
 * an in-place KV-cache write: present = past with, for every batch entry
 * b, the update's sequence positions s written at w_b + s along axis (mod
 * the cache length in circular mode). Any dtype: elements are copied as
 * bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

typedef struct {
    int64_t axis;   /* as given; normalised against the rank at run time */
    int circular;   /* mode "circular" (else "linear") */
} ScatterParams;

/* Read mode and axis once. */
Status prep_tensor_scatter(const Model *m, Node *n, Err *err)
{
    (void)m;
    const char *mode = attr_string(n, "mode", "linear");
    ScatterParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    p->axis = attr_int(n, "axis", -2);
    p->circular = strcmp(mode, "circular") == 0;
    if (!p->circular && strcmp(mode, "linear") != 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "mode '%s' is not "
                         "supported (linear or circular)", mode);
    return ST_OK;
}

/* present_cache (past's shape) = past_cache with update written along axis
   at write_indices[b] (default 0) per batch entry b. Fails on shapes that
   differ off the axis, an update longer than the cache, and (linear mode)
   a write that would run past the cache's end. */
Status op_tensor_scatter(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const ScatterParams *p = n->params;
    const Tensor *past = in[0], *up = in[1];
    const Tensor *wi = n->n_in > 2 ? in[2] : NULL;
    char s0[96], s1[96];
    int32_t ax;
    Status st;

    /* step 1: shapes: equal except along axis, where update fits */
    if (up->dtype != past->dtype)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "update is %s, past_cache "
                         "%s", dtype_name(up->dtype), dtype_name(past->dtype));
    if ((st = norm_axis(n, p->axis, past->ndim, &ax, err)))
        return st;
    int ok = past->ndim >= 2 && up->ndim == past->ndim && ax != 0;
    for (int32_t i = 0; ok && i < past->ndim; i++)
        ok = i == ax ? up->dims[i] <= past->dims[i] : up->dims[i] == past->dims[i];
    if (!ok)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "update %s does not fit "
                         "past_cache %s along axis %d (not the batch axis 0)",
                         shape_str(up->dims, up->ndim, s0, 96),
                         shape_str(past->dims, past->ndim, s1, 96), (int)ax);
    int64_t batch = past->dims[0], max_len = past->dims[ax], len = up->dims[ax];
    if (wi && ((wi->dtype != DT_INT64 && wi->dtype != DT_INT32) ||
               wi->numel != batch))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "write_indices must be "
                         "int64 of shape (%lld,), got %s with %lld elements",
                         (long long)batch, dtype_name(wi->dtype),
                         (long long)wi->numel);

    /* step 2: copy the cache, then the update rows: both viewed as
       (batch, mid, length along axis, inner) */
    if ((st = tensor_alloc_like(out[0], past, err)))
        return st;
    size_t esize = (size_t)dtype_size(past->dtype);
    memcpy(out[0]->data, past->data, (size_t)tensor_nbytes(past));
    int64_t mid = 1, inner = past->strides[ax];
    for (int32_t i = 1; i < ax; i++)
        mid *= past->dims[i];
    size_t row_bytes = (size_t)inner * esize;
    for (int64_t b = 0; b < batch && len > 0; b++) {
        int64_t w = wi ? tensor_get_int(wi, b) : 0;
        if (p->circular) /* Python-style modulo, as the reference */
            w = (w % max_len + max_len) % max_len;
        else if (w < 0 || w > max_len - len)
            return node_fail(n, err, ST_BAD_REQUEST, "write_indices[%lld] = "
                             "%lld: %lld rows do not fit a cache of %lld",
                             (long long)b, (long long)w, (long long)len,
                             (long long)max_len);
        for (int64_t o = b * mid; o < (b + 1) * mid; o++)
            for (int64_t s = 0; s < len; s++) {
                int64_t t = (w + s) % max_len; /* w + s < 2 max_len */
                memcpy((char *)out[0]->data + (size_t)(o * max_len + t) * row_bytes,
                       (const char *)up->data + (size_t)(o * len + s) * row_bytes,
                       row_bytes);
            }
    }
    return ST_OK;
}
