/*
 * ops_elem.h: reading and writing single elements of any fixed-size dtype
 * as double, for kernels that compute in one type whatever they are given
 * (index ops, pooling, resizing). Header-only, static inline.
 */
#ifndef WX_OPS_ELEM_H
#define WX_OPS_ELEM_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"

/* Element i of t as double (exact for integers below 2^53). */
static inline double elem_get(const Tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case DT_FLOAT: return ((const float *)d)[i];
    case DT_DOUBLE: return ((const double *)d)[i];
    case DT_FLOAT16: return half_to_float(((const uint16_t *)d)[i]);
    case DT_BFLOAT16: return bf16_to_float(((const uint16_t *)d)[i]);
    case DT_INT64: return (double)((const int64_t *)d)[i];
    case DT_INT32: return ((const int32_t *)d)[i];
    case DT_INT16: return ((const int16_t *)d)[i];
    case DT_INT8: return ((const int8_t *)d)[i];
    case DT_UINT64: return (double)((const uint64_t *)d)[i];
    case DT_UINT32: return ((const uint32_t *)d)[i];
    case DT_UINT16: return ((const uint16_t *)d)[i];
    case DT_UINT8: case DT_BOOL: return ((const uint8_t *)d)[i];
    default: return 0.0;
    }
}

/* Store v into element i of t: floats round, integers truncate toward zero
   and saturate (NaN stores 0), bool stores v != 0. Never traps. */
static inline void elem_set(Tensor *t, int64_t i, double v)
{
    void *d = t->data;
    switch (t->dtype) {
    case DT_FLOAT: ((float *)d)[i] = (float)v; return;
    case DT_DOUBLE: ((double *)d)[i] = v; return;
    case DT_FLOAT16: ((uint16_t *)d)[i] = double_to_half(v); return;
    case DT_BFLOAT16: ((uint16_t *)d)[i] = double_to_bf16(v); return;
    case DT_BOOL: ((uint8_t *)d)[i] = v != 0.0; return;
    default: break;
    }
    if (isnan(v)) v = 0.0;
#define ELEM_SAT(T, lo, hi) ((T *)d)[i] = v <= (double)(lo) ? (T)(lo) \
                          : v >= (double)(hi) ? (T)(hi) : (T)v
    switch (t->dtype) {
    case DT_INT64: ELEM_SAT(int64_t, INT64_MIN, INT64_MAX); break;
    case DT_INT32: ELEM_SAT(int32_t, INT32_MIN, INT32_MAX); break;
    case DT_INT16: ELEM_SAT(int16_t, INT16_MIN, INT16_MAX); break;
    case DT_INT8: ELEM_SAT(int8_t, INT8_MIN, INT8_MAX); break;
    case DT_UINT64: ELEM_SAT(uint64_t, 0, UINT64_MAX); break;
    case DT_UINT32: ELEM_SAT(uint32_t, 0, UINT32_MAX); break;
    case DT_UINT16: ELEM_SAT(uint16_t, 0, UINT16_MAX); break;
    case DT_UINT8: ELEM_SAT(uint8_t, 0, UINT8_MAX); break;
    default: break;
    }
#undef ELEM_SAT
}

/* Copy element si of s into element di of d (same dtype, any size). */
static inline void elem_copy(Tensor *d, int64_t di, const Tensor *s, int64_t si,
                             int size)
{
    memcpy((char *)d->data + di * size, (const char *)s->data + si * size,
           (size_t)size);
}

/* Fail unless t's dtype has a fixed element size (not string). */
static inline Status elem_require_fixed(const Node *n, const Tensor *t,
                                        int index, Err *err)
{
    if (dtype_size(t->dtype) > 0)
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is %s, this op "
                     "supports fixed-size dtypes only", index,
                     dtype_name(t->dtype));
}

/* 1 for float32, float64, float16, bfloat16. */
static inline int elem_is_float(int32_t dt)
{
    return dtype_is_float(dt);
}

/* 1 for int32 or int64 (index tensors). */
static inline int elem_is_index(int32_t dt)
{
    return dt == DT_INT32 || dt == DT_INT64;
}

/* Unravel flat index i into idx[0..ndim) over dims. */
static inline void elem_unravel(int64_t i, const int64_t *dims, int32_t ndim,
                                int64_t *idx)
{
    for (int32_t d = ndim - 1; d >= 0; d--) {
        idx[d] = dims[d] ? i % dims[d] : 0;
        i = dims[d] ? i / dims[d] : 0;
    }
}

#endif
