/*
 * tensor.h: dense tensors, row-major, with ONNX data type codes.
 */
#ifndef WX_TENSOR_H
#define WX_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "status.h"

#define MAX_RANK 8

/* ONNX TensorProto.DataType codes; the plan and the ABI use them as is. */
typedef enum {
    DT_UNDEFINED = 0,
    DT_FLOAT = 1,
    DT_UINT8 = 2,
    DT_INT8 = 3,
    DT_UINT16 = 4,
    DT_INT16 = 5,
    DT_INT32 = 6,
    DT_INT64 = 7,
    DT_STRING = 8,
    DT_BOOL = 9,
    DT_FLOAT16 = 10,
    DT_DOUBLE = 11,
    DT_UINT32 = 12,
    DT_UINT64 = 13,
    DT_COUNT = 14
} DType;

/*
 * A tensor: ndim dimensions of dims[i] elements each; strides[i] is the
 * distance in ELEMENTS between neighbours along dimension i (row-major, so
 * strides[ndim-1] == 1). numel is the product of dims (1 for a scalar).
 * data is owned (freed by tensor_release) unless borrowed (a constant that
 * lives in the plan blob).
 */
typedef struct {
    int32_t dtype;
    int32_t ndim;
    int64_t dims[MAX_RANK];
    int64_t strides[MAX_RANK];
    int64_t numel;
    void *data;
    bool owned;
} Tensor;

/* Bytes per element of dtype; 0 for undefined and string. */
int dtype_size(int32_t dtype);

/* Lower-case numpy-style name ("float32", "int64", ...), "?" if unknown. */
const char *dtype_name(int32_t dtype);

/* dtype code of a numpy-style name, DT_UNDEFINED if unknown. */
int32_t dtype_from_name(const char *name, size_t len);

/*
 * Set dtype and shape, compute strides and numel. Fails with
 * ST_SHAPE_MISMATCH on a negative dimension, a rank above MAX_RANK or an
 * element count that does not fit in linear memory.
 */
Status tensor_set_shape(Tensor *t, int32_t dtype, int32_t ndim,
                        const int64_t *dims, Err *err);

/* tensor_set_shape, then allocate owned, uninitialised data. */
Status tensor_alloc(Tensor *t, int32_t dtype, int32_t ndim,
                    const int64_t *dims, Err *err);

/* Allocate t with the shape and dtype of like. */
Status tensor_alloc_like(Tensor *t, const Tensor *like, Err *err);

/* Free owned data and reset t to an empty tensor. */
void tensor_release(Tensor *t);

/* Size in bytes of the data of t. */
static inline int64_t tensor_nbytes(const Tensor *t)
{
    return t->numel * dtype_size(t->dtype);
}

/* Format the shape as "(1, 3, 224, 224)" into buf (cap bytes). */
const char *shape_str(const int64_t *dims, int32_t ndim, char *buf, int cap);

/* Read element i of an integer tensor (int32 or int64) as int64. */
int64_t tensor_get_int(const Tensor *t, int64_t i);

#endif
