/*
 * ops_string.c: string tensors in Cast. Strings are `const char *`
 * elements (tensor.h); the text made here lives in the request's string
 * arena.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

/* Element i of a numeric tensor as text, the way onnxruntime prints it. */
static int number_text(const Tensor *x, int64_t i, char *buf, int cap)
{
    double d;
    switch (x->dtype) {
    case DT_FLOAT: d = ((const float *)x->data)[i]; break;
    case DT_DOUBLE: d = ((const double *)x->data)[i]; break;
    case DT_BOOL: return snprintf(buf, cap, "%d", ((const uint8_t *)x->data)[i] != 0);
    case DT_UINT64:
        return snprintf(buf, cap, "%llu",
                        (unsigned long long)((const uint64_t *)x->data)[i]);
    case DT_UINT32: return snprintf(buf, cap, "%u", ((const uint32_t *)x->data)[i]);
    case DT_UINT16: return snprintf(buf, cap, "%u", ((const uint16_t *)x->data)[i]);
    case DT_UINT8: return snprintf(buf, cap, "%u", ((const uint8_t *)x->data)[i]);
    case DT_INT64:
        return snprintf(buf, cap, "%lld", (long long)((const int64_t *)x->data)[i]);
    case DT_INT32: return snprintf(buf, cap, "%d", ((const int32_t *)x->data)[i]);
    case DT_INT16: return snprintf(buf, cap, "%d", ((const int16_t *)x->data)[i]);
    default: return snprintf(buf, cap, "%d", ((const int8_t *)x->data)[i]);
    }
    if (isnan(d))
        return snprintf(buf, cap, "NaN");
    if (isinf(d))
        return snprintf(buf, cap, d < 0 ? "-INF" : "INF");
    /* onnxruntime prints 8 significant digits for float and double alike */
    return snprintf(buf, cap, "%.8g", d);
}

/* Parse the whole of s as a number into element i of y; 0 on bad text. */
static int parse_number(const char *s, Tensor *y, int64_t i)
{
    char *end;
    errno = 0;
    if (y->dtype == DT_FLOAT || y->dtype == DT_DOUBLE) {
        double d = strtod(s, &end);
        if (end == s || *end)
            return 0;
        if (y->dtype == DT_FLOAT)
            ((float *)y->data)[i] = (float)d;
        else
            ((double *)y->data)[i] = d;
        return 1;
    }
    int is_unsigned = y->dtype == DT_UINT8 || y->dtype == DT_UINT16 ||
                      y->dtype == DT_UINT32 || y->dtype == DT_UINT64;
    long long v = 0;
    unsigned long long u = 0;
    if (is_unsigned)
        u = strtoull(s, &end, 10);
    else
        v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || (is_unsigned && s[0] == '-'))
        return 0;
    switch (y->dtype) {
    case DT_INT64: ((int64_t *)y->data)[i] = v; return 1;
    case DT_INT32: ((int32_t *)y->data)[i] = (int32_t)v; return v == (int32_t)v;
    case DT_INT16: ((int16_t *)y->data)[i] = (int16_t)v; return v == (int16_t)v;
    case DT_INT8: ((int8_t *)y->data)[i] = (int8_t)v; return v == (int8_t)v;
    case DT_UINT64: ((uint64_t *)y->data)[i] = u; return 1;
    case DT_UINT32: ((uint32_t *)y->data)[i] = (uint32_t)u; return u == (uint32_t)u;
    case DT_UINT16: ((uint16_t *)y->data)[i] = (uint16_t)u; return u == (uint16_t)u;
    case DT_UINT8: ((uint8_t *)y->data)[i] = (uint8_t)u; return u == (uint8_t)u;
    default: return 0;
    }
}

Status cast_strings(const Node *n, const Tensor *x, int32_t to, Tensor *y,
                    Err *err)
{
    if (to <= DT_UNDEFINED || to >= DT_COUNT || !dtype_size(to) || to == DT_BOOL ||
        (x->dtype == DT_STRING && (to == DT_FLOAT16 || to == DT_BFLOAT16)))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "cast from %s to %s is "
                         "not supported", dtype_name(x->dtype), dtype_name(to));
    Status st = tensor_alloc(y, to, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    const char *const *xs = x->data;
    for (int64_t i = 0; i < x->numel; i++) {
        if (to == DT_STRING && x->dtype == DT_STRING) {
            ((const char **)y->data)[i] = xs[i];
        } else if (to == DT_STRING) {
            char text[64];
            int len = number_text(x, i, text, sizeof text);
            const char *s = str_dup(text, (size_t)len);
            if (!s)
                return node_fail(n, err, ST_OOM, "out of memory");
            ((const char **)y->data)[i] = s;
        } else if (!parse_number(xs[i], y, i)) {
            return node_fail(n, err, ST_BAD_REQUEST, "element %lld \"%.40s\" is "
                             "not a %s number", (long long)i, xs[i],
                             dtype_name(to));
        }
    }
    return ST_OK;
}
