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
    /* 14, 15: complex64 / complex128, not supported (size 0, no name) */
    DT_BFLOAT16 = 16, /* the high 16 bits of a float32 */
    DT_COUNT = 17
} DType;

/*
 * What a value holds (the plan's "type kind", docs/plan-format.md). Maps
 * keep their values in data and their keys apart:
 *   TK_MAP      one map: keys[n_keys], data = values (n_keys,)
 *   TK_SEQ_MAP  a sequence of maps sharing one key list (ZipMap):
 *               keys[n_keys], data = values (N, n_keys), one row per map
 * Sequences of tensors and optional values (ops_sequence.c):
 *   TK_SEQ_TENSOR  data = Tensor[numel], the items (each a TK_TENSOR),
 *                  ndim 0, dtype the items' dtype; owned: the items and
 *                  the array are freed by tensor_release
 *   TK_OPT_TENSOR, TK_OPT_SEQ_TENSOR  declared types of plan values only:
 *                  at run time such a value holds its element (a tensor
 *                  or a sequence) or TK_NONE
 *   TK_NONE        an empty optional (data NULL); never in a plan
 */
typedef enum {
    TK_TENSOR = 0,
    TK_SEQ_TENSOR = 1,
    TK_SEQ_MAP = 2,
    TK_MAP = 3,
    TK_OPT_TENSOR = 4,
    TK_OPT_SEQ_TENSOR = 5,
    TK_NONE = 6
} TypeKind;

/*
 * String tensors (DT_STRING) hold one `const char *` per element, each a
 * NUL-terminated UTF-8 string. The pointers never own their text: strings
 * live in the plan blob (constants, attributes) or in the per-request
 * string arena (str_dup), freed together by str_arena_reset after the
 * response is written. So moving ops copy pointers like any other
 * 4-byte element, and tensor_release frees only the pointer array.
 *
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
    /* maps only (kind != TK_TENSOR), see TypeKind; zero for tensors */
    int32_t kind;       /* TypeKind */
    int32_t key_dtype;  /* DT_INT64 or DT_STRING */
    int64_t n_keys;
    void *keys;         /* int64_t[n_keys] or const char *[n_keys] */
    bool keys_owned;    /* keys freed by tensor_release */
} Tensor;

/* Bytes per element of dtype; 0 for undefined; a pointer for string. */
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

/* Give y (a copy of x's values) x's map kind and keys: borrowed when x
   borrows them, else copied. ST_OOM on failure. */
Status tensor_copy_keys(Tensor *y, const Tensor *x, Err *err);

/* Free owned data (the items too, for an owned sequence) and reset t to an
   empty tensor. */
void tensor_release(Tensor *t);

/* Sequences and optionals (see TypeKind). */

/* t = an owned sequence of count zeroed items of dtype (filled by the
   caller, each item owned). */
Status seq_alloc(Tensor *t, int32_t dtype, int64_t count, Err *err);

/* dst (empty) = a deep copy of src: a tensor (map keys included), a
   sequence with every item, or an empty optional. */
Status tensor_copy(Tensor *dst, const Tensor *src, Err *err);

/* True when t holds a value: data, or an empty optional. */
static inline bool value_present(const Tensor *t)
{
    return t->data != NULL || t->kind == TK_NONE;
}

/* Size in bytes of the data of t. */
static inline int64_t tensor_nbytes(const Tensor *t)
{
    return t->numel * dtype_size(t->dtype);
}

/* Format the shape as "(1, 3, 224, 224)" into buf (cap bytes). */
const char *shape_str(const int64_t *dims, int32_t ndim, char *buf, int cap);

/* Read element i of an integer tensor (int32 or int64) as int64. */
int64_t tensor_get_int(const Tensor *t, int64_t i);

/*
 * Copy s[0..len) plus a NUL into the request's string arena; NULL when out
 * of memory. Valid until str_arena_reset.
 */
const char *str_dup(const char *s, size_t len);

/* Free every string of the arena (after each request). */
void str_arena_reset(void);

/* Name of a value's type: "float32", "map(string,float32)",
   "seq(map(int64,float32))". buf holds at least 48 bytes. */
const char *type_name(int32_t kind, int32_t dtype, int32_t key_dtype,
                      char *buf, int cap);

#endif
