/*
 * numeric.c: dtype-generic element access and float16 / bfloat16
 * conversion.
 */
#include "numeric.h"

#include <math.h>
#include <string.h>

Domain dtype_domain(int32_t dtype)
{
    switch (dtype) {
    case DT_FLOAT: case DT_DOUBLE: case DT_FLOAT16: case DT_BFLOAT16:
        return DOM_FLOAT;
    case DT_INT8: case DT_INT16: case DT_INT32: case DT_INT64: return DOM_SIGNED;
    case DT_UINT8: case DT_UINT16: case DT_UINT32: case DT_UINT64: case DT_BOOL:
        return DOM_UNSIGNED;
    default: return DOM_NONE;
    }
}

float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf or NaN */
    } else if (exp == 0) {
        float f = (float)man * 0x1p-24f;        /* zero or subnormal: exact */
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* v rounded half to even to a 16-bit IEEE-style float with `man` stored
   mantissa bits and `expb` exponent bits: float16 (10, 5), bfloat16
   (7, 8). Overflow goes to infinity, NaN to the quiet NaN of v's sign. */
static uint16_t double_to_16bit_float(double v, int man, int expb)
{
    int bias = (1 << (expb - 1)) - 1;
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    uint16_t inf = (uint16_t)(((1 << expb) - 1) << man);
    double a = fabs(v);
    if (isnan(v))
        return sign | inf | (uint16_t)(1 << (man - 1));
    /* the largest finite is (2 - 2^-man) * 2^bias; from the tie above it
       on, values round to infinity (float16: 65520) */
    if (a >= ldexp(2.0 - ldexp(1.0, -man - 1), bias))
        return sign | inf;
    if (a < ldexp(1.0, 1 - bias)) {
        /* subnormal: units of 2^(1 - bias - man), round half to even */
        double q = nearbyint(ldexp(a, bias - 1 + man));
        return sign | (uint16_t)q; /* q == 2^man carries into the exponent */
    }
    int e;
    double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
    /* man + 1 significant bits: scale to [2^man, 2^(man+1)), round */
    double q = nearbyint(ldexp(m, man + 1));
    if (q == ldexp(1.0, man + 1)) {
        q = ldexp(1.0, man);
        e++;
    }
    int exp = e - 1 + bias; /* biased exponent of 1.xxx * 2^(e-1) */
    if (exp >= (1 << expb) - 1)
        return sign | inf;
    return sign | (uint16_t)(exp << man) | ((uint16_t)q & ((1 << man) - 1));
}

uint16_t double_to_half(double v)
{
    return double_to_16bit_float(v, 10, 5);
}

uint16_t double_to_bf16(double v)
{
    return double_to_16bit_float(v, 7, 8);
}

double round_to_dtype(int32_t dt, double v)
{
    switch (dt) {
    case DT_FLOAT: return (float)v;
    case DT_FLOAT16: return half_to_float(double_to_half(v));
    case DT_BFLOAT16: return bf16_to_float(double_to_bf16(v));
    default: return v;
    }
}

double elem_get_f(const Tensor *t, int64_t i)
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

/* double -> int64 without trapping: NaN 0, out of range saturates. */
static int64_t f_to_i64(double v)
{
    if (isnan(v)) return 0;
    if (v <= -0x1p63) return INT64_MIN;
    if (v >= 0x1p63) return INT64_MAX;
    return (int64_t)v;
}

int64_t elem_get_i(const Tensor *t, int64_t i)
{
    const void *d = t->data;
    switch (t->dtype) {
    case DT_INT64: return ((const int64_t *)d)[i];
    case DT_INT32: return ((const int32_t *)d)[i];
    case DT_INT16: return ((const int16_t *)d)[i];
    case DT_INT8: return ((const int8_t *)d)[i];
    case DT_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case DT_UINT32: return ((const uint32_t *)d)[i];
    case DT_UINT16: return ((const uint16_t *)d)[i];
    case DT_UINT8: case DT_BOOL: return ((const uint8_t *)d)[i];
    default: return f_to_i64(elem_get_f(t, i));
    }
}

void elem_set_f(Tensor *t, int64_t i, double v)
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
    /* float -> int conversion of an out-of-range value traps in wasm */
    if (isnan(v)) v = 0.0;
#define SAT(T, lo, hi) ((T *)d)[i] = v <= (double)(lo) ? (T)(lo) \
                     : v >= (double)(hi) ? (T)(hi) : (T)v
    switch (t->dtype) {
    case DT_INT64: SAT(int64_t, INT64_MIN, INT64_MAX); break;
    case DT_INT32: SAT(int32_t, INT32_MIN, INT32_MAX); break;
    case DT_INT16: SAT(int16_t, INT16_MIN, INT16_MAX); break;
    case DT_INT8: SAT(int8_t, INT8_MIN, INT8_MAX); break;
    case DT_UINT64: SAT(uint64_t, 0, UINT64_MAX); break;
    case DT_UINT32: SAT(uint32_t, 0, UINT32_MAX); break;
    case DT_UINT16: SAT(uint16_t, 0, UINT16_MAX); break;
    case DT_UINT8: SAT(uint8_t, 0, UINT8_MAX); break;
    default: break;
    }
#undef SAT
}

void elem_set_i(Tensor *t, int64_t i, int64_t v)
{
    void *d = t->data;
    switch (t->dtype) {
    case DT_INT64: case DT_UINT64: ((int64_t *)d)[i] = v; return;
    case DT_INT32: case DT_UINT32: ((uint32_t *)d)[i] = (uint32_t)v; return;
    case DT_INT16: case DT_UINT16: ((uint16_t *)d)[i] = (uint16_t)v; return;
    case DT_INT8: case DT_UINT8: ((uint8_t *)d)[i] = (uint8_t)v; return;
    case DT_BOOL: ((uint8_t *)d)[i] = v != 0; return;
    default: elem_set_f(t, i, (double)v); return;
    }
}

void elem_set_u(Tensor *t, int64_t i, uint64_t v)
{
    if (dtype_is_float(t->dtype))
        elem_set_f(t, i, (double)v);
    else
        elem_set_i(t, i, (int64_t)v);
}
