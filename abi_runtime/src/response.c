/*
 * response.c: formatting outputs as JSON.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "decimal.h"
#include "numeric.h"
#include "pb.h"
#include "response.h"

static int format_nonfinite(double v, char *buf)
{
    const char *s = isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    strcpy(buf, s);
    return (int)strlen(s);
}

/* Write the decimal m * 10^(e - (p - 1)) (m has p digits, no trailing
   zeros required) as %g would: fixed for -4 <= e < p, else d.ddde+XX. */
static int write_decimal(uint32_t m, int p, int e, int negative, char *buf)
{
    char dig[10];
    for (int i = p - 1; i >= 0; i--, m /= 10) dig[i] = (char)('0' + m % 10);
    while (p > 1 && dig[p - 1] == '0') p--;
    char *o = buf;
    if (negative) *o++ = '-';
    if (e < -4 || e >= (p > 6 ? p : 6)) {
        *o++ = dig[0];
        if (p > 1) {
            *o++ = '.';
            for (int i = 1; i < p; i++) *o++ = dig[i];
        }
        *o++ = 'e';
        *o++ = e < 0 ? '-' : '+';
        int a = e < 0 ? -e : e;
        if (a >= 10) *o++ = (char)('0' + a / 10);
        else *o++ = '0';
        *o++ = (char)('0' + a % 10);
    } else if (e < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = -1; i > e; i--) *o++ = '0';
        for (int i = 0; i < p; i++) *o++ = dig[i];
    } else {
        for (int i = 0; i <= e; i++) *o++ = i < p ? dig[i] : '0';
        if (p > e + 1) {
            *o++ = '.';
            for (int i = e + 1; i < p; i++) *o++ = dig[i];
        }
    }
    *o = 0;
    return (int)(o - buf);
}

/*
 * Shortest decimal (6 to 9 significant digits) that reads back as v, in
 * double arithmetic: m = round(|v| * 10^s), with 10^|s| exact, and m
 * accepted only when m * 10^-s lies clearly inside the interval of reals
 * that round to v (an ambiguous case near a rounding boundary is
 * rejected). Returns -1 when it cannot decide (very small or large
 * values, or no candidate accepted): the caller falls back to snprintf.
 */
static int format_f32_fast(float v, char *buf)
{
    double a = fabs((double)v);
    if (a == 0.0) {  /* "-0.0": JSON readers keep the sign of a float */
        strcpy(buf, signbit(v) ? "-0.0" : "0");
        return signbit(v) ? 4 : 1;
    }
    /* neighbours' midpoints bound the reals that round to |v| */
    float fa = fabsf(v), up = nextafterf(fa, INFINITY), dn = nextafterf(fa, 0.0f);
    double hi = isinf(up) ? a + (a - dn) / 2 : (a + up) / 2;
    double lo = (a + dn) / 2;
    /* decimal exponent from the binary one: never above floor(log10 a);
       one below is corrected in the loop */
    int e2;
    frexp(a, &e2);
    int e = (int)floor((e2 - 1) * 0.30102999566398120);
    for (int p = 6; p <= 9; p++) {
        int s = p - 1 - e;
        if (s > 22 || s < -22)
            return -1;
        double scaled = s >= 0 ? a * EXACT_POW10[s] : a / EXACT_POW10[-s];
        double m = nearbyint(scaled);
        if (m >= EXACT_POW10[p]) {  /* log10 rounded down too far, or 9.99..->10 */
            e++;
            p--;
            continue;
        }
        if (m < EXACT_POW10[p - 1])  /* log10 rounded up too far */
            return -1;
        double back = s >= 0 ? m / EXACT_POW10[s] : m * EXACT_POW10[-s];
        /* exact when an integer below 2^53: a tie then rounds to even */
        int exact = s <= 0 && back < 0x1p53;
        uint32_t bits;
        memcpy(&bits, &fa, 4);
        double tol = exact ? 0.0 : back * 0x1p-50;
        if ((back > lo + tol && back < hi - tol) ||
            (exact && (back == lo || back == hi) && bits % 2 == 0))
            return write_decimal((uint32_t)m, p, e, v < 0, buf);
    }
    return -1;
}

int format_f32(float v, char *buf)
{
    if (!isfinite(v))
        return format_nonfinite(v, buf);
    int n = format_f32_fast(v, buf);
    if (n >= 0)
        return n;
    /* 9 significant digits always read back to the same float32; most
       values need fewer, and %g drops trailing zeros */
    for (int digits = 6; digits <= 9; digits++) {
        n = snprintf(buf, 32, "%.*g", digits, (double)v);
        if (strtof(buf, NULL) == v)
            break;
    }
    return n;
}

int format_f64(double v, char *buf)
{
    if (!isfinite(v))
        return format_nonfinite(v, buf);
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(buf, 32, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return n;
}

/* Append element i of t as JSON text. */
static void put_element(Buf *b, const Tensor *t, int64_t i)
{
    char text[32];
    int n;
    switch (t->dtype) {
    case DT_FLOAT: n = format_f32(((const float *)t->data)[i], text); break;
    /* every float16 and bfloat16 is exactly a float32: its shortest float32
       text reads back to the same 16-bit value */
    case DT_FLOAT16:
        n = format_f32(half_to_float(((const uint16_t *)t->data)[i]), text);
        break;
    case DT_BFLOAT16:
        n = format_f32(bf16_to_float(((const uint16_t *)t->data)[i]), text);
        break;
    case DT_DOUBLE: n = format_f64(((const double *)t->data)[i], text); break;
    case DT_BOOL:
        n = snprintf(text, sizeof text, "%s",
                     ((const uint8_t *)t->data)[i] ? "true" : "false");
        break;
    case DT_UINT64:
        n = snprintf(text, sizeof text, "%llu",
                     (unsigned long long)((const uint64_t *)t->data)[i]);
        break;
    case DT_UINT32:
        n = snprintf(text, sizeof text, "%u", ((const uint32_t *)t->data)[i]);
        break;
    case DT_INT64: case DT_INT32:
        n = snprintf(text, sizeof text, "%lld", (long long)tensor_get_int(t, i));
        break;
    case DT_INT16: n = snprintf(text, sizeof text, "%d", ((const int16_t *)t->data)[i]); break;
    case DT_INT8: n = snprintf(text, sizeof text, "%d", ((const int8_t *)t->data)[i]); break;
    case DT_UINT16: n = snprintf(text, sizeof text, "%u", ((const uint16_t *)t->data)[i]); break;
    case DT_UINT8: n = snprintf(text, sizeof text, "%u", ((const uint8_t *)t->data)[i]); break;
    case DT_STRING: buf_put_json_string(b, ((const char *const *)t->data)[i]); return;
    default: n = snprintf(text, sizeof text, "null"); break;
    }
    buf_put(b, text, (size_t)n);
}

/* Append t as nested lists, one level per dimension. */
static void put_nested(Buf *b, const Tensor *t, int32_t depth, int64_t *pos)
{
    if (depth == t->ndim) {
        put_element(b, t, (*pos)++);
        return;
    }
    buf_put(b, "[", 1);
    for (int64_t i = 0; i < t->dims[depth] && !b->oom; i++) {
        if (i)
            buf_put(b, ",", 1);
        put_nested(b, t, depth + 1, pos);
    }
    buf_put(b, "]", 1);
}

/* Append key k of a map as a JSON object key (int64 keys as "123"). */
static void put_key(Buf *b, const Tensor *t, int64_t k)
{
    char text[32];
    if (t->key_dtype == DT_STRING) {
        buf_put_json_string(b, ((const char *const *)t->keys)[k]);
    } else {
        int n = snprintf(text, sizeof text, "\"%lld\"",
                         (long long)((const int64_t *)t->keys)[k]);
        buf_put(b, text, (size_t)n);
    }
    buf_put(b, ":", 1);
}

/* Append the map whose values start at element row * n_keys of t. */
static void put_map(Buf *b, const Tensor *t, int64_t row)
{
    buf_put(b, "{", 1);
    for (int64_t k = 0; k < t->n_keys && !b->oom; k++) {
        if (k)
            buf_put(b, ",", 1);
        put_key(b, t, k);
        put_element(b, t, row * t->n_keys + k);
    }
    buf_put(b, "}", 1);
}

/* Append any value as JSON: nested lists, a map object, or a list of maps
   (the form onnxruntime's Python API returns: a list of dicts). */
static void put_json_value(Buf *b, const Tensor *t)
{
    int64_t pos = 0;
    if (t->kind == TK_MAP) {
        put_map(b, t, 0);
    } else if (t->kind == TK_SEQ_MAP) {
        int64_t rows = t->n_keys ? t->numel / t->n_keys : 0;
        buf_put(b, "[", 1);
        for (int64_t r = 0; r < rows && !b->oom; r++) {
            if (r)
                buf_put(b, ",", 1);
            put_map(b, t, r);
        }
        buf_put(b, "]", 1);
    } else if (t->kind == TK_SEQ_TENSOR) {
        /* a sequence: a list of its tensors; an empty optional: null */
        buf_put(b, "[", 1);
        for (int64_t i = 0; i < t->numel && !b->oom; i++) {
            if (i)
                buf_put(b, ",", 1);
            put_json_value(b, &((const Tensor *)t->data)[i]);
        }
        buf_put(b, "]", 1);
    } else if (t->kind == TK_NONE) {
        buf_puts(b, "null");
    } else {
        put_nested(b, t, 0, &pos);
    }
}

static void put_shape(Buf *b, const Tensor *t)
{
    char text[24];
    /* a sequence: one shape per tensor; an empty optional: null */
    if (t->kind == TK_NONE) {
        buf_puts(b, "null");
        return;
    }
    if (t->kind == TK_SEQ_TENSOR) {
        buf_put(b, "[", 1);
        for (int64_t i = 0; i < t->numel; i++) {
            if (i)
                buf_put(b, ",", 1);
            put_shape(b, &((const Tensor *)t->data)[i]);
        }
        buf_put(b, "]", 1);
        return;
    }
    buf_put(b, "[", 1);
    for (int32_t d = 0; d < t->ndim; d++) {
        int n = snprintf(text, sizeof text, d ? ",%lld" : "%lld",
                         (long long)t->dims[d]);
        buf_put(b, text, (size_t)n);
    }
    buf_put(b, "]", 1);
}

static void put_base64(Buf *b, const Tensor *t)
{
    size_t n = (size_t)tensor_nbytes(t), k = base64_encoded_size(n);
    buf_put(b, "\"", 1);
    char *d = buf_reserve(b, k);
    if (d) {
        base64_encode(t->data, n, d);
        b->len += k;
    }
    buf_put(b, "\"", 1);
}

/* Append t as base64 of a serialised TensorProto ("output_type": "pb"). */
static void put_pb(Buf *b, const Tensor *t, const char *name)
{
    size_t n = pb_write_tensor(t, name, NULL), k = base64_encoded_size(n);
    uint8_t *bytes = malloc(n);
    char *d = bytes ? buf_reserve(b, k + 2) : NULL;
    if (!d) {
        b->oom = 1;
        free(bytes);
        return;
    }
    pb_write_tensor(t, name, bytes);
    d[0] = '"';
    base64_encode(bytes, n, d + 1);
    d[k + 1] = '"';
    b->len += k + 2;
    b->data[b->len] = 0;
    free(bytes);
}

/* Output t in the pb form: a TensorProto; a sequence as a list of them;
   an empty optional as null. */
static void put_pb_value(Buf *b, const Tensor *t, const char *name)
{
    if (t->kind == TK_NONE) {
        buf_puts(b, "null");
    } else if (t->kind == TK_SEQ_TENSOR) {
        buf_put(b, "[", 1);
        for (int64_t i = 0; i < t->numel && !b->oom; i++) {
            if (i)
                buf_put(b, ",", 1);
            put_pb(b, &((const Tensor *)t->data)[i], name);
        }
        buf_put(b, "]", 1);
    } else {
        put_pb(b, t, name);
    }
}

/* Output t in the raw form: base64 bytes; a sequence as a list of them;
   strings, maps and empty optionals as JSON. */
static void put_raw_value(Buf *b, const Tensor *t)
{
    if (t->kind == TK_SEQ_TENSOR && t->dtype != DT_STRING) {
        buf_put(b, "[", 1);
        for (int64_t i = 0; i < t->numel && !b->oom; i++) {
            if (i)
                buf_put(b, ",", 1);
            put_base64(b, &((const Tensor *)t->data)[i]);
        }
        buf_put(b, "]", 1);
    } else if (t->kind == TK_TENSOR && t->dtype != DT_STRING) {
        put_base64(b, t);
    } else {
        put_json_value(b, t);
    }
}

/* {"output": "<b64>", "type": "pb"}, or a list of them for several. */
static void response_write_pb(const Model *m, const Tensor *outputs, Buf *b)
{
    const Graph *g = &m->graphs[0];
    buf_puts(b, g->n_outputs != 1 ? "{\"output\":[" : "{\"output\":");
    for (int32_t i = 0; i < g->n_outputs; i++) {
        if (i)
            buf_put(b, ",", 1);
        put_pb_value(b, &outputs[i], m->values[g->outputs[i]].name);
    }
    buf_puts(b, g->n_outputs != 1 ? "],\"type\":\"pb\"}" : ",\"type\":\"pb\"}");
}

void response_write(const Model *m, const Tensor *outputs, int raw, Buf *b)
{
    if (raw == RESPONSE_PB) {
        response_write_pb(m, outputs, b);
        return;
    }
    int32_t n = m->graphs[0].n_outputs;
    int several = n != 1;
    buf_puts(b, "{\"output\":");
    if (several)
        buf_put(b, "[", 1);
    for (int32_t i = 0; i < n; i++) {
        if (i)
            buf_put(b, ",", 1);
        /* strings and maps have no raw bytes: JSON even in raw answers */
        if (raw)
            put_raw_value(b, &outputs[i]);
        else
            put_json_value(b, &outputs[i]);
    }
    if (several)
        buf_put(b, "]", 1);
    if (raw) {
        buf_puts(b, ",\"type\":\"raw\",");
        buf_puts(b, several ? "\"shapes\":[" : "\"shape\":");
        for (int32_t i = 0; i < n; i++) {
            if (i)
                buf_put(b, ",", 1);
            put_shape(b, &outputs[i]);
        }
        buf_puts(b, several ? "],\"dtypes\":[" : ",\"dtype\":");
        for (int32_t i = 0; i < n; i++) {
            if (i)
                buf_put(b, ",", 1);
            char tn[64];
            /* an empty optional has no dtype: null */
            if (outputs[i].kind == TK_NONE)
                buf_puts(b, "null");
            else
                buf_put_json_string(b, type_name(outputs[i].kind,
                                                 outputs[i].dtype,
                                                 outputs[i].key_dtype, tn, 64));
        }
        if (several)
            buf_put(b, "]", 1);
    }
    buf_put(b, "}", 1);
}

void response_error(Buf *b, const char *msg)
{
    buf_puts(b, "{\"error\":");
    buf_put_json_string(b, msg);
    buf_put(b, "}", 1);
}
