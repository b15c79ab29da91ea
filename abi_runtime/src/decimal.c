/*
 * decimal.c: JSON number text to double and float.
 *
 * wasi-libc's strtod / strtof are correct but slow (~1 us a number in
 * wasmtime), and Python's json.dumps of a float32 array's tolist() writes
 * 17 significant digits, past every fast path of a double parser. Both
 * conversions here read the digits into a 64-bit integer m and the decimal
 * exponent e, then:
 *   double: when m < 2^53 and |e| <= 22, m and 10^|e| are exact doubles and
 *           one multiply or divide rounds once: correctly rounded (Clinger).
 *   float:  when m has at most 19 digits and |e| <= 22, d = m * 10^e in
 *           double is within 2 double ulps of the exact value (two
 *           roundings of 2^-53 each). Rounding d to float gives the
 *           correctly rounded float unless a float rounding boundary (the
 *           midpoint of two floats) lies within those 2 ulps; the 29 low
 *           mantissa bits of d, the ones a float drops, show how far d is
 *           from the nearest midpoint (pattern 1 << 28).
 * Anything else (more digits, larger exponents, d near a midpoint) goes to
 * strtod / strtof.
 */
#include "decimal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const double EXACT_POW10[23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define MAX_DIGITS 19 /* 10^19 - 1 < 2^64 */
#define MAX_EXP10 22

/* A number token as sign * m * 10^exp10; digits counts the significant
   digits (leading zeros skipped), up to MAX_DIGITS + 1. */
typedef struct {
    int negative, digits, exp10;
    uint64_t m;
} Decimal;

/* The digits at p into d (after the point when fraction is 1). Locals,
   not d's fields, in the loop: a store through d could alias the text. */
static const char *scan_digits(const char *p, Decimal *d, int fraction)
{
    uint64_t m = d->m;
    int digits = d->digits, exp10 = d->exp10;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned digit = (unsigned)(*p - '0');
        exp10 -= fraction;
        if (digits == 0 && digit == 0)
            continue; /* a leading zero */
        if (digits <= MAX_DIGITS)
            m = m * 10 + digit;
        digits++;
    }
    d->m = m;
    d->digits = digits;
    d->exp10 = exp10;
    return p;
}

/* 1 when text is within the fast paths' reach: at most MAX_DIGITS
   significant digits and |exp10| <= MAX_EXP10. */
static int scan(const char *text, Decimal *d)
{
    memset(d, 0, sizeof *d);
    const char *p = text;
    d->negative = *p == '-';
    p = scan_digits(p + d->negative, d, 0);
    if (*p == '.')
        p = scan_digits(p + 1, d, 1);
    if (*p == 'e' || *p == 'E') {
        p++;
        int negative = *p == '-', e = 0;
        p += *p == '-' || *p == '+';
        for (; *p >= '0' && *p <= '9'; p++)
            if (e < 10000)
                e = e * 10 + (*p - '0');
        d->exp10 += negative ? -e : e;
    }
    if (d->m == 0) /* zero, whatever its exponent */
        d->exp10 = 0;
    return *p == 0 && d->digits <= MAX_DIGITS && d->exp10 >= -MAX_EXP10 &&
           d->exp10 <= MAX_EXP10;
}

/* m * 10^exp10 in double (|exp10| <= MAX_EXP10): one rounding of the
   product plus the rounding of m when m >= 2^53. */
static double scaled(const Decimal *d)
{
    double v = (double)d->m;
    v = d->exp10 < 0 ? v / EXACT_POW10[-d->exp10] : v * EXACT_POW10[d->exp10];
    return d->negative ? -v : v;
}

double decimal_to_double(const char *text)
{
    Decimal d;
    if (!scan(text, &d) || d.m > ((uint64_t)1 << 53))
        return strtod(text, NULL);
    return scaled(&d);
}

float decimal_to_float(const char *text)
{
    Decimal d;
    if (!scan(text, &d))
        return strtof(text, NULL);
    double v = scaled(&d);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    /* the dropped bits against the midpoint pattern; 4 ulps of margin
       for the 2 of error. Every such d is a normal float or beyond
       FLT_MAX (10^-22 <= |d| < 10^42), where the pattern holds too. */
    int64_t dropped = (int64_t)(bits & ((1u << 29) - 1));
    int64_t from_midpoint = dropped - (1 << 28);
    if (from_midpoint >= -4 && from_midpoint <= 4)
        return strtof(text, NULL);
    return (float)v;
}
