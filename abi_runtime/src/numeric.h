/*
 * numeric.h: dtype-generic element access and float16 / bfloat16
 * conversion.
 *
 * Kernels that serve many dtypes read elements through one of three
 * computation domains and store them back:
 *     float    float16 / bfloat16 / float32 / float64, computed as double
 *     signed   int8 .. int64, computed as int64 (wrapping on store)
 *     unsigned uint8 .. uint64 and bool, computed as uint64
 * float16 is stored as IEEE binary16 bits, bfloat16 as the high 16 bits of
 * a float32 (8 exponent bits, 7 mantissa bits); both convert with round to
 * nearest even, keeping NaN and infinities.
 */
#ifndef WX_NUMERIC_H
#define WX_NUMERIC_H

#include <stdint.h>

#include "tensor.h"

typedef enum { DOM_NONE = 0, DOM_FLOAT, DOM_SIGNED, DOM_UNSIGNED } Domain;

/* The computation domain of dtype; DOM_NONE for string and unknown. */
Domain dtype_domain(int32_t dtype);

static inline int dtype_is_float(int32_t dt)
{
    return dt == DT_FLOAT || dt == DT_DOUBLE || dt == DT_FLOAT16 ||
           dt == DT_BFLOAT16;
}

/* 1 for the 16-bit floats, which kernels compute in a wider type. */
static inline int dtype_is_half(int32_t dt)
{
    return dt == DT_FLOAT16 || dt == DT_BFLOAT16;
}

/* binary16 bits -> float (exact). */
float half_to_float(uint16_t h);

/* double -> binary16 bits, rounded to nearest even (one rounding). */
uint16_t double_to_half(double v);

/* bfloat16 bits -> float (exact). */
static inline float bf16_to_float(uint16_t b)
{
    union { uint32_t u; float f; } c = {(uint32_t)b << 16};
    return c.f;
}

/* float -> bfloat16 bits, rounded to nearest even; NaN stays a quiet NaN. */
static inline uint16_t float_to_bf16(float f)
{
    union { float f; uint32_t u; } c = {f};
    if ((c.u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((c.u >> 16) | 0x40);
    return (uint16_t)((c.u + 0x7fffu + ((c.u >> 16) & 1)) >> 16);
}

/* double -> bfloat16 bits, rounded to nearest even (one rounding, so not
   always float_to_bf16((float)v)). */
uint16_t double_to_bf16(double v);

/* v rounded to the precision of float dtype dt (float16, bfloat16 or
   float32; float64 and other dtypes unchanged). */
double round_to_dtype(int32_t dt, double v);

/* Element i as double (any numeric dtype; int64 beyond 2^53 rounds). */
double elem_get_f(const Tensor *t, int64_t i);

/* Element i of an integer or bool tensor as int64 (uint64 keeps its bits). */
int64_t elem_get_i(const Tensor *t, int64_t i);

/* Store v into element i of a float tensor; of an integer tensor: truncate
   toward zero, saturating at the type's range (NaN gives 0); bool: v != 0. */
void elem_set_f(Tensor *t, int64_t i, double v);

/* Store the low bits of v into element i of an integer tensor (wraps like
   a C conversion); bool: v != 0; float: converted. */
void elem_set_i(Tensor *t, int64_t i, int64_t v);

/* Store an unsigned value (float tensors convert it as unsigned). */
void elem_set_u(Tensor *t, int64_t i, uint64_t v);

#endif
