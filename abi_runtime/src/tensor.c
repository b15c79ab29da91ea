/*
 * tensor.c: tensor shapes, allocation and the dtype tables.
 */
#include "tensor.h"
#include "memplan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest tensor the runtime accepts: wasm32 linear memory is 4 GiB. */
#define MAX_TENSOR_BYTES ((int64_t)1 << 31)

typedef struct {
    const char *name; /* numpy-style */
    int size;         /* bytes per element */
} DTypeInfo;

static const DTypeInfo DTYPES[DT_COUNT] = {
    [DT_UNDEFINED] = {"undefined", 0}, [DT_FLOAT] = {"float32", 4},
    [DT_UINT8] = {"uint8", 1},         [DT_INT8] = {"int8", 1},
    [DT_UINT16] = {"uint16", 2},       [DT_INT16] = {"int16", 2},
    [DT_INT32] = {"int32", 4},         [DT_INT64] = {"int64", 8},
    [DT_STRING] = {"string", sizeof(char *)},       [DT_BOOL] = {"bool", 1},
    [DT_FLOAT16] = {"float16", 2},     [DT_DOUBLE] = {"float64", 8},
    [DT_UINT32] = {"uint32", 4},       [DT_UINT64] = {"uint64", 8},
    [DT_BFLOAT16] = {"bfloat16", 2}, /* complex64/128 stay {NULL, 0} */
};

int dtype_size(int32_t dtype)
{
    return (dtype >= 0 && dtype < DT_COUNT) ? DTYPES[dtype].size : 0;
}

const char *dtype_name(int32_t dtype)
{
    return (dtype >= 0 && dtype < DT_COUNT && DTYPES[dtype].name)
               ? DTYPES[dtype].name : "?";
}

int32_t dtype_from_name(const char *name, size_t len)
{
    for (int32_t d = 1; d < DT_COUNT; d++)
        if (DTYPES[d].name && strlen(DTYPES[d].name) == len && memcmp(DTYPES[d].name, name, len) == 0)
            return d;
    return DT_UNDEFINED;
}

Status tensor_set_shape(Tensor *t, int32_t dtype, int32_t ndim,
                        const int64_t *dims, Err *err)
{
    char buf[96];
    if (ndim < 0 || ndim > MAX_RANK)
        return fail(err, ST_SHAPE_MISMATCH, "rank %d exceeds the limit of %d",
                    (int)ndim, MAX_RANK);
    int64_t numel = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return fail(err, ST_SHAPE_MISMATCH, "negative dimension in shape %s",
                        shape_str(dims, ndim, buf, sizeof buf));
        /* checked before multiplying, so the product cannot overflow */
        if (dims[i] > 0 && numel > MAX_TENSOR_BYTES / dims[i])
            return fail(err, ST_OOM, "tensor of shape %s is too large",
                        shape_str(dims, ndim, buf, sizeof buf));
        numel *= dims[i];
    }
    int size = dtype_size(dtype) ? dtype_size(dtype) : 1;
    if (numel * size > MAX_TENSOR_BYTES)
        return fail(err, ST_OOM, "tensor of shape %s is too large",
                    shape_str(dims, ndim, buf, sizeof buf));
    t->dtype = dtype;
    t->ndim = ndim;
    int64_t stride = 1;
    for (int32_t i = ndim - 1; i >= 0; i--) {
        t->dims[i] = dims[i];
        t->strides[i] = stride;
        stride *= dims[i];
    }
    t->numel = numel;
    return ST_OK;
}

Status tensor_alloc(Tensor *t, int32_t dtype, int32_t ndim,
                    const int64_t *dims, Err *err)
{
    Status st = tensor_set_shape(t, dtype, ndim, dims, err);
    if (st != ST_OK)
        return st;
    /* at least one byte, so that an empty tensor still has a valid pointer */
    size_t nbytes = (size_t)tensor_nbytes(t);
    /* an activation of the main graph takes its planned place (memplan.c);
       not owned, so whoever moves owned tensors copies it instead */
    t->data = memplan_claim(t, nbytes);
    if (t->data) {
        t->owned = false;
        return ST_OK;
    }
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->data)
        return fail(err, ST_OOM, "out of memory allocating %zu bytes", nbytes);
    t->owned = true;
    return ST_OK;
}

Status tensor_alloc_like(Tensor *t, const Tensor *like, Err *err)
{
    return tensor_alloc(t, like->dtype, like->ndim, like->dims, err);
}

Status tensor_copy_keys(Tensor *y, const Tensor *x, Err *err)
{
    y->kind = x->kind;
    y->key_dtype = x->key_dtype;
    y->n_keys = x->n_keys;
    y->keys = x->keys;
    y->keys_owned = false;
    if (!x->keys_owned)
        return ST_OK;
    size_t n = (size_t)x->n_keys * (size_t)dtype_size(x->key_dtype);
    y->keys = malloc(n ? n : 1);
    if (!y->keys)
        return fail(err, ST_OOM, "out of memory copying map keys");
    memcpy(y->keys, x->keys, n);
    y->keys_owned = true;
    return ST_OK;
}

void tensor_release(Tensor *t)
{
    /* an owned sequence owns its items */
    if (t->kind == TK_SEQ_TENSOR && t->owned)
        for (int64_t i = 0; t->data && i < t->numel; i++)
            tensor_release(&((Tensor *)t->data)[i]);
    if (t->owned)
        free(t->data);
    if (t->keys_owned)
        free(t->keys);
    memset(t, 0, sizeof *t);
}

Status seq_alloc(Tensor *t, int32_t dtype, int64_t count, Err *err)
{
    memset(t, 0, sizeof *t);
    if (count < 0 || count > MAX_TENSOR_BYTES / (int64_t)sizeof(Tensor))
        return fail(err, ST_OOM, "sequence of %lld items is too long",
                    (long long)count);
    t->data = calloc((size_t)count + 1, sizeof(Tensor));
    if (!t->data)
        return fail(err, ST_OOM, "out of memory allocating a sequence");
    t->kind = TK_SEQ_TENSOR;
    t->dtype = dtype;
    t->numel = count;
    t->owned = true;
    return ST_OK;
}

Status tensor_copy(Tensor *dst, const Tensor *src, Err *err)
{
    memset(dst, 0, sizeof *dst);
    if (src->kind == TK_NONE) {
        dst->kind = TK_NONE;
        return ST_OK;
    }
    if (src->kind == TK_SEQ_TENSOR) {
        Status st = seq_alloc(dst, src->dtype, src->numel, err);
        const Tensor *items = src->data;
        for (int64_t i = 0; st == ST_OK && i < src->numel; i++)
            st = tensor_copy(&((Tensor *)dst->data)[i], &items[i], err);
        if (st != ST_OK)
            tensor_release(dst);
        return st;
    }
    Status st = tensor_alloc_like(dst, src, err);
    if (st == ST_OK)
        memcpy(dst->data, src->data, (size_t)tensor_nbytes(src));
    if (st == ST_OK && src->kind != TK_TENSOR)
        st = tensor_copy_keys(dst, src, err);
    if (st != ST_OK)
        tensor_release(dst);
    return st;
}

const char *shape_str(const int64_t *dims, int32_t ndim, char *buf, int cap)
{
    int n = snprintf(buf, cap, "(");
    for (int32_t i = 0; i < ndim && n < cap; i++)
        n += snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (n < cap)
        snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
    return buf;
}

int64_t tensor_get_int(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case DT_INT64: return ((const int64_t *)t->data)[i];
    case DT_INT32: return ((const int32_t *)t->data)[i];
    default: ASSERT(0); return 0;
    }
}

/* ---- the string arena: every string made during one request ---------- */

static struct {
    char **items; /* malloc'd strings */
    size_t n, cap;
} ARENA;

const char *str_dup(const char *s, size_t len)
{
    if (ARENA.n == ARENA.cap) {
        size_t cap = ARENA.cap ? 2 * ARENA.cap : 64;
        char **items = realloc(ARENA.items, cap * sizeof *items);
        if (!items)
            return NULL;
        ARENA.items = items;
        ARENA.cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = 0;
    ARENA.items[ARENA.n++] = copy;
    return copy;
}

void str_arena_reset(void)
{
    for (size_t i = 0; i < ARENA.n; i++)
        free(ARENA.items[i]);
    free(ARENA.items);
    memset(&ARENA, 0, sizeof ARENA);
}

const char *type_name(int32_t kind, int32_t dtype, int32_t key_dtype,
                      char *buf, int cap)
{
    switch (kind) {
    case TK_MAP:
        snprintf(buf, cap, "map(%s,%s)", dtype_name(key_dtype), dtype_name(dtype));
        return buf;
    case TK_SEQ_MAP:
        snprintf(buf, cap, "seq(map(%s,%s))", dtype_name(key_dtype),
                 dtype_name(dtype));
        return buf;
    case TK_SEQ_TENSOR:
        snprintf(buf, cap, "seq(%s)", dtype_name(dtype));
        return buf;
    case TK_OPT_TENSOR:
        snprintf(buf, cap, "optional(%s)", dtype_name(dtype));
        return buf;
    case TK_OPT_SEQ_TENSOR:
        snprintf(buf, cap, "optional(seq(%s))", dtype_name(dtype));
        return buf;
    case TK_NONE:
        return "none";
    default:
        return dtype_name(dtype);
    }
}
