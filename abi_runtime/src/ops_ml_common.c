/*
 * ops_ml_common.c: post transforms, attribute copies and input checks
 * shared by the ai.onnx.ml kernels.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_ml.h"

Status ml_post_transform(const Node *n, int *pt, Err *err)
{
    static const char *const NAMES[] = {"NONE", "SOFTMAX", "LOGISTIC",
                                        "SOFTMAX_ZERO", "PROBIT"};
    const char *s = attr_string(n, "post_transform", "NONE");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, NAMES[i])) {
            *pt = i;
            return ST_OK;
        }
    return node_fail(n, err, ST_UNSUPPORTED_OP, "post_transform '%s' is not "
                     "one of NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT", s);
}

float ml_logistic(float v)
{
    float e = 1.0f / (1.0f + expf(-fabsf(v)));
    return v < 0 ? 1.0f - e : e;
}

/* Winitzki's approximation of erfinv (a = 0.147), as onnxruntime uses. */
static float erfinv_approx(float x)
{
    float sgn = x < 0 ? -1.0f : 1.0f;
    float l = logf((1.0f - x) * (1.0f + x));
    float v = 2.0f / (3.14159f * 0.147f) + 0.5f * l;
    float v2 = 1.0f / 0.147f * l;
    return sgn * sqrtf(-v + sqrtf(v * v - v2));
}

float ml_probit(float p)
{
    return 1.41421356f * erfinv_approx(2.0f * p - 1.0f);
}

void ml_transform_row(int pt, float *s, int64_t c)
{
    float mx = -INFINITY, sum = 0.0f;
    switch (pt) {
    case PT_LOGISTIC:
        for (int64_t i = 0; i < c; i++) s[i] = ml_logistic(s[i]);
        break;
    case PT_PROBIT:
        for (int64_t i = 0; i < c; i++) s[i] = ml_probit(s[i]);
        break;
    case PT_SOFTMAX:
        for (int64_t i = 0; i < c; i++) mx = s[i] > mx ? s[i] : mx;
        for (int64_t i = 0; i < c; i++) sum += (s[i] = expf(s[i] - mx));
        for (int64_t i = 0; i < c; i++) s[i] /= sum;
        break;
    case PT_SOFTMAX_ZERO: {
        /* exact zeros stay (near) zero: they mark absent classes */
        for (int64_t i = 0; i < c; i++) mx = s[i] > mx ? s[i] : mx;
        float e = expf(-mx);
        for (int64_t i = 0; i < c; i++) {
            if (s[i] > 1e-7f || s[i] < -1e-7f)
                sum += (s[i] = expf(s[i] - mx));
            else
                s[i] *= e;
        }
        for (int64_t i = 0; i < c; i++) s[i] /= sum;
        break;
    }
    default:
        break;
    }
}

double ml_get(const Tensor *t, int64_t i)
{
    switch (t->dtype) {
    case DT_FLOAT: return ((const float *)t->data)[i];
    case DT_DOUBLE: return ((const double *)t->data)[i];
    case DT_INT32: return ((const int32_t *)t->data)[i];
    case DT_INT64: return (double)((const int64_t *)t->data)[i];
    default: return 0.0;
    }
}

Status ml_require_numeric(const Node *n, const Tensor *t, Err *err)
{
    if (t->kind == TK_TENSOR && (t->dtype == DT_FLOAT || t->dtype == DT_DOUBLE ||
                                 t->dtype == DT_INT32 || t->dtype == DT_INT64))
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected "
                     "float32, float64, int32 or int64", dtype_name(t->dtype));
}

Status ml_rows_cols(const Node *n, const Tensor *x, int64_t *rows,
                    int64_t *cols, Err *err)
{
    char buf[96];
    if (x->ndim == 1) {
        *rows = 1;
        *cols = x->dims[0];
    } else if (x->ndim == 2) {
        *rows = x->dims[0];
        *cols = x->dims[1];
    } else {
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected a 1-D or 2-D "
                         "input, got shape %s",
                         shape_str(x->dims, x->ndim, buf, sizeof buf));
    }
    return ST_OK;
}

Status ml_doubles(const Model *m, const Node *n, const char *name,
                  const char *tensor_name, double **v, int64_t *count,
                  Err *err)
{
    const Attr *a = node_attr(n, name);
    const Attr *t = tensor_name ? node_attr(n, tensor_name) : NULL;
    *v = NULL;
    *count = -1;
    if (t && t->type == AT_TENSOR) {
        const Tensor *c = &m->values[attr_tensor(t)].constant;
        if (c->dtype != DT_FLOAT && c->dtype != DT_DOUBLE)
            return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must be a "
                             "float or double tensor, got %s", tensor_name,
                             dtype_name(c->dtype));
        *v = malloc((size_t)(c->numel ? c->numel : 1) * sizeof(double));
        if (!*v)
            return node_fail(n, err, ST_OOM, "out of memory");
        for (int64_t i = 0; i < c->numel; i++)
            (*v)[i] = ml_get(c, i);
        *count = c->numel;
        return ST_OK;
    }
    if (!a)
        return ST_OK;
    if (a->type != AT_FLOATS && a->type != AT_FLOAT)
        return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must be a "
                         "list of floats", name);
    *v = malloc((size_t)(a->count ? a->count : 1) * sizeof(double));
    if (!*v)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int32_t i = 0; i < a->count; i++)
        (*v)[i] = attr_floats_at(a, i);
    *count = a->count;
    return ST_OK;
}

Status ml_ints(const Model *m, const Node *n, const char *name,
               const char *tensor_name, int64_t **v, int64_t *count,
               Err *err)
{
    const Attr *a = node_attr(n, name);
    const Attr *t = tensor_name ? node_attr(n, tensor_name) : NULL;
    *v = NULL;
    *count = -1;
    if (t && t->type == AT_TENSOR) {
        const Tensor *c = &m->values[attr_tensor(t)].constant;
        if (c->dtype != DT_INT64 && c->dtype != DT_INT32 && c->dtype != DT_UINT8)
            return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must be an "
                             "integer tensor, got %s", tensor_name,
                             dtype_name(c->dtype));
        *v = malloc((size_t)(c->numel ? c->numel : 1) * sizeof(int64_t));
        if (!*v)
            return node_fail(n, err, ST_OOM, "out of memory");
        for (int64_t i = 0; i < c->numel; i++)
            (*v)[i] = c->dtype == DT_UINT8 ? ((const uint8_t *)c->data)[i]
                                           : tensor_get_int(c, i);
        *count = c->numel;
        return ST_OK;
    }
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS && a->type != AT_INT)
        return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must be a "
                         "list of integers", name);
    *v = malloc((size_t)(a->count ? a->count : 1) * sizeof(int64_t));
    if (!*v)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int32_t i = 0; i < a->count; i++)
        (*v)[i] = attr_ints_at(a, i);
    *count = a->count;
    return ST_OK;
}

const char *const *ml_strings(const Node *n, const char *name, int64_t *count)
{
    const Attr *a = node_attr(n, name);
    if (!a || a->type != AT_STRINGS) {
        *count = -1;
        return NULL;
    }
    *count = a->count;
    return a->strs;
}

Status ml_alloc_labels(Tensor *y, int strings, int64_t n, Err *err)
{
    return tensor_alloc(y, strings ? DT_STRING : DT_INT64, 1, &n, err);
}
