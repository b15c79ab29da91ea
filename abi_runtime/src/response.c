/*
 * response.c: formatting outputs as JSON.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "response.h"

static int format_nonfinite(double v, char *buf)
{
    const char *s = isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    strcpy(buf, s);
    return (int)strlen(s);
}

int format_f32(float v, char *buf)
{
    if (!isfinite(v))
        return format_nonfinite(v, buf);
    /* 9 significant digits always read back to the same float32; most
       values need fewer, and %g drops trailing zeros */
    int n = 0;
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
    } else {
        put_nested(b, t, 0, &pos);
    }
}

static void put_shape(Buf *b, const Tensor *t)
{
    char text[24];
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

void response_write(const Model *m, const Tensor *outputs, int raw, Buf *b)
{
    int32_t n = m->graphs[0].n_outputs;
    int several = n != 1;
    buf_puts(b, "{\"output\":");
    if (several)
        buf_put(b, "[", 1);
    for (int32_t i = 0; i < n; i++) {
        if (i)
            buf_put(b, ",", 1);
        /* strings and maps have no raw bytes: JSON even in raw answers */
        if (raw && outputs[i].kind == TK_TENSOR && outputs[i].dtype != DT_STRING)
            put_base64(b, &outputs[i]);
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
            buf_put_json_string(b, type_name(outputs[i].kind, outputs[i].dtype,
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
