/*
 * ops_ml_misc.c: ai.onnx.ml encoders, maps and feature plumbing:
 * ArrayFeatureExtractor, CastMap, CategoryMapper, DictVectorizer,
 * FeatureVectorizer, Imputer, LabelEncoder, OneHotEncoder, ZipMap.
 *
 * Strings are `const char *` elements (see tensor.h); those an op makes
 * up go to the request's string arena, those it copies from attributes
 * point into the plan.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_ml.h"
#include "sort.h"

/* One key of a sorted index over a List: the key and its position. */
typedef struct {
    const char *s;
    int64_t i;
    double d;
    int64_t at;
} Entry;

/* A typed list: keys or values of a table (LabelEncoder, vocabularies). */
typedef struct {
    int32_t dtype;             /* DT_STRING, DT_INT64, DT_FLOAT, DT_DOUBLE */
    int64_t n;
    int32_t out_dtype;         /* as an output: the table's own dtype */
    const char *const *s;      /* strings (into the plan) */
    int64_t *i;                /* owned */
    double *d;                 /* owned; float values stored widened */
    Entry *index;              /* owned; keys sorted, or NULL: scan */
} List;

static void list_free(List *l)
{
    free(l->i);
    free(l->d);
    free(l->index);
}

/* Orders of index entries by key (NaN last, equal to NaN), then position. */
static int by_key_s(const void *a, const void *b)
{
    return strcmp(((const Entry *)a)->s, ((const Entry *)b)->s);
}

static int by_key_i(const void *a, const void *b)
{
    int64_t x = ((const Entry *)a)->i, y = ((const Entry *)b)->i;
    return x < y ? -1 : x > y;
}

static int by_key_d(const void *a, const void *b)
{
    double x = ((const Entry *)a)->d, y = ((const Entry *)b)->d;
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return x < y ? -1 : x > y;
}

static int (*key_order(int32_t dtype))(const void *, const void *)
{
    return dtype == DT_STRING ? by_key_s : dtype == DT_INT64 ? by_key_i : by_key_d;
}

static int by_key_then_pos(const void *a, const void *b, int32_t dtype)
{
    int c = key_order(dtype)(a, b);
    int64_t x = ((const Entry *)a)->at, y = ((const Entry *)b)->at;
    return c ? c : x < y ? -1 : x > y;
}

static int by_s_pos(const void *a, const void *b) { return by_key_then_pos(a, b, DT_STRING); }
static int by_i_pos(const void *a, const void *b) { return by_key_then_pos(a, b, DT_INT64); }
static int by_d_pos(const void *a, const void *b) { return by_key_then_pos(a, b, DT_DOUBLE); }

/* Build l->index: lookups become O(log n) instead of a scan. */
static Status list_index(const Node *n, List *l, Err *err)
{
    if (l->n <= 0)
        return ST_OK;
    l->index = malloc(sizeof(Entry) * (size_t)l->n);
    if (!l->index)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t j = 0; j < l->n; j++) {
        Entry *e = &l->index[j];
        memset(e, 0, sizeof *e);
        e->at = j;
        if (l->dtype == DT_STRING) e->s = l->s[j];
        else if (l->dtype == DT_INT64) e->i = l->i[j];
        else e->d = l->d[j];
    }
    wx_sort(l->index, (size_t)l->n, sizeof(Entry),
            l->dtype == DT_STRING ? by_s_pos : l->dtype == DT_INT64 ? by_i_pos : by_d_pos);
    return ST_OK;
}

/* Position of element k of x in l (the first, for repeated keys), or -1:
   a binary search in l->index, else a scan. */
static int64_t list_find(const List *l, const Tensor *x, int64_t k)
{
    if (l->index) {
        Entry probe = {0};
        if (l->dtype == DT_STRING)
            probe.s = ((const char *const *)x->data)[k];
        else if (l->dtype == DT_INT64)
            probe.i = x->dtype == DT_INT32 ? ((const int32_t *)x->data)[k]
                    : x->dtype == DT_INT16 ? ((const int16_t *)x->data)[k]
                                           : ((const int64_t *)x->data)[k];
        else
            probe.d = x->dtype == DT_FLOAT ? (double)((const float *)x->data)[k]
                                           : ml_get(x, k);
        int (*cmp)(const void *, const void *) = key_order(l->dtype);
        const Entry *hit = bsearch(&probe, l->index, (size_t)l->n, sizeof(Entry), cmp);
        if (!hit)
            return -1;
        while (hit > l->index && !cmp(hit - 1, &probe))
            hit--;
        return hit->at;
    }
    /* TODO: CategoryMapper and OneHotEncoder scan their tables per element */
    if (l->dtype == DT_STRING) {
        const char *v = ((const char *const *)x->data)[k];
        for (int64_t j = 0; j < l->n; j++)
            if (!strcmp(l->s[j], v))
                return j;
    } else if (l->dtype == DT_INT64) {
        int64_t v = x->dtype == DT_INT32 ? ((const int32_t *)x->data)[k]
                  : x->dtype == DT_INT16 ? ((const int16_t *)x->data)[k]
                                         : ((const int64_t *)x->data)[k];
        for (int64_t j = 0; j < l->n; j++)
            if (l->i[j] == v)
                return j;
    } else {
        double v = ml_get(x, k);
        if (x->dtype == DT_FLOAT)
            v = (float)v;
        for (int64_t j = 0; j < l->n; j++)
            if (l->d[j] == v || (isnan(v) && isnan(l->d[j])))
                return j;
    }
    return -1;
}

/* Write element j of l (or the default dflt, j < 0) to y[k]. */
static void list_put(const List *l, int64_t j, const List *dflt, Tensor *y,
                     int64_t k)
{
    const List *src = j >= 0 ? l : dflt;
    int64_t at = j >= 0 ? j : 0;
    switch (y->dtype) {
    case DT_STRING: ((const char **)y->data)[k] = src->s[at]; break;
    case DT_INT64: ((int64_t *)y->data)[k] = src->i[at]; break;
    case DT_INT32: ((int32_t *)y->data)[k] = (int32_t)src->i[at]; break;
    case DT_INT16: ((int16_t *)y->data)[k] = (int16_t)src->i[at]; break;
    case DT_FLOAT: ((float *)y->data)[k] = (float)src->d[at]; break;
    default: ((double *)y->data)[k] = src->d[at]; break;
    }
}

/* Fill l from a constant tensor (opset 4 keys_tensor / values_tensor). */
static Status list_from_tensor(const Node *n, const Tensor *c, List *l, Err *err)
{
    l->n = c->numel;
    l->out_dtype = c->dtype;
    l->dtype = c->dtype == DT_INT32 || c->dtype == DT_INT16 ? DT_INT64 : c->dtype;
    if (c->dtype == DT_STRING) {
        l->s = c->data;
        return ST_OK;
    }
    if (l->dtype == DT_INT64) {
        l->i = malloc(sizeof(int64_t) * (size_t)(c->numel + 1));
        for (int64_t k = 0; l->i && k < c->numel; k++)
            l->i[k] = c->dtype == DT_INT16 ? ((const int16_t *)c->data)[k]
                                           : tensor_get_int(c, k);
        return l->i ? ST_OK : node_fail(n, err, ST_OOM, "out of memory");
    }
    if (l->dtype != DT_FLOAT && l->dtype != DT_DOUBLE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "table of %s is not "
                         "supported", dtype_name(c->dtype));
    l->d = malloc(sizeof(double) * (size_t)(c->numel + 1));
    for (int64_t k = 0; l->d && k < c->numel; k++)
        l->d[k] = ml_get(c, k);
    return l->d ? ST_OK : node_fail(n, err, ST_OOM, "out of memory");
}

/* Fill l from the first present of <prefix>_strings / _int64s / _floats. */
static Status list_from_attrs(const Model *m, const Node *n, const char *prefix,
                              List *l, Err *err)
{
    char name[48];
    Status st;
    snprintf(name, sizeof name, "%s_strings", prefix);
    if ((l->s = ml_strings(n, name, &l->n))) {
        l->dtype = l->out_dtype = DT_STRING;
        return ST_OK;
    }
    snprintf(name, sizeof name, "%s_int64s", prefix);
    if ((st = ml_ints(m, n, name, NULL, &l->i, &l->n, err)))
        return st;
    if (l->n >= 0) {
        l->dtype = l->out_dtype = DT_INT64;
        return ST_OK;
    }
    snprintf(name, sizeof name, "%s_floats", prefix);
    if ((st = ml_doubles(m, n, name, NULL, &l->d, &l->n, err)))
        return st;
    l->dtype = l->out_dtype = DT_FLOAT;
    if (l->n < 0)
        l->n = 0, l->dtype = DT_UNDEFINED;
    return ST_OK;
}

/* ---- LabelEncoder ----------------------------------------------------- */

typedef struct {
    int v1;                /* opset 1: classes_strings, index <-> string */
    List keys, values, dflt_s, dflt_i, dflt_f;
    List dflt;             /* the default of the value type */
} EncoderParams;

static void free_encoder(void *q)
{
    EncoderParams *p = q;
    if (!p)
        return;
    list_free(&p->keys); list_free(&p->values); list_free(&p->dflt_s);
    list_free(&p->dflt_i); list_free(&p->dflt_f); list_free(&p->dflt);
    free(p);
}

/* One-element default lists from default_string / _int64 / _float. */
static Status encoder_defaults(const Node *n, EncoderParams *p, Err *err)
{
    static const char *const UNUSED[] = {"_Unused"};
    const Attr *ds = node_attr(n, "default_string");
    p->dflt_s = (List){DT_STRING, 1, DT_STRING, UNUSED, NULL, NULL, NULL};
    if (ds && ds->type == AT_STRING)
        p->dflt_s.s = &ds->s;
    p->dflt_i = (List){DT_INT64, 1, DT_INT64, NULL, malloc(sizeof(int64_t)), NULL, NULL};
    p->dflt_f = (List){DT_FLOAT, 1, DT_FLOAT, NULL, NULL, malloc(sizeof(double)), NULL};
    if (!p->dflt_i.i || !p->dflt_f.d)
        return node_fail(n, err, ST_OOM, "out of memory");
    p->dflt_i.i[0] = attr_int(n, "default_int64", -1);
    p->dflt_f.d[0] = attr_float(n, "default_float", -0.0f);
    return ST_OK;
}

Status prep_label_encoder(const Model *m, Node *n, Err *err)
{
    EncoderParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_encoder;
    Status st = encoder_defaults(n, p, err);
    if (st != ST_OK)
        return st;
    if (n->opset < 2) {
        p->v1 = 1;
        p->keys.s = ml_strings(n, "classes_strings", &p->keys.n);
        p->keys.dtype = DT_STRING;
        if (!p->keys.s)
            p->keys.n = 0;
        return list_index(n, &p->keys, err);
    }
    const Attr *kt = node_attr(n, "keys_tensor"), *vt = node_attr(n, "values_tensor");
    if (kt && kt->type == AT_TENSOR)
        st = list_from_tensor(n, &m->values[attr_tensor(kt)].constant, &p->keys, err);
    else
        st = list_from_attrs(m, n, "keys", &p->keys, err);
    if (st == ST_OK && vt && vt->type == AT_TENSOR)
        st = list_from_tensor(n, &m->values[attr_tensor(vt)].constant, &p->values, err);
    else if (st == ST_OK)
        st = list_from_attrs(m, n, "values", &p->values, err);
    if (st != ST_OK)
        return st;
    if (p->keys.n != p->values.n || p->keys.dtype == DT_UNDEFINED ||
        p->values.dtype == DT_UNDEFINED)
        return node_fail(n, err, ST_BAD_FORMAT, "%lld keys and %lld values",
                         (long long)p->keys.n, (long long)p->values.n);
    if ((st = list_index(n, &p->keys, err)))
        return st;
    /* default of the value type: default_tensor, else the typed default */
    const Attr *dt = node_attr(n, "default_tensor");
    if (dt && dt->type == AT_TENSOR) {
        const Tensor *c = &m->values[attr_tensor(dt)].constant;
        if ((st = list_from_tensor(n, c, &p->dflt, err)))
            return st;
        if (p->dflt.n < 1)
            return node_fail(n, err, ST_BAD_FORMAT, "empty default_tensor");
        return ST_OK;
    }
    const List *src = p->values.dtype == DT_STRING ? &p->dflt_s
                    : p->values.dtype == DT_INT64 ? &p->dflt_i : &p->dflt_f;
    p->dflt = (List){src->dtype, 1, src->dtype, src->s, NULL, NULL, NULL};
    if (src->i && (p->dflt.i = malloc(sizeof(int64_t))))
        p->dflt.i[0] = src->i[0];
    if (src->d && (p->dflt.d = malloc(sizeof(double))))
        p->dflt.d[0] = src->d[0];
    if ((src->i && !p->dflt.i) || (src->d && !p->dflt.d))
        return node_fail(n, err, ST_OOM, "out of memory");
    return ST_OK;
}

/* Y[i] = values[j] where keys[j] == X[i], else the default. Opset 1 maps
   strings to their index in classes_strings and indices back to strings. */
Status op_label_encoder(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err)
{
    const EncoderParams *p = n->params;
    const Tensor *x = in[0];
    Status st;
    if (p->v1) {
        int to_int = x->dtype == DT_STRING;
        if (!to_int && x->dtype != DT_INT64)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected "
                             "string or int64", dtype_name(x->dtype));
        if ((st = tensor_alloc(out[0], to_int ? DT_INT64 : DT_STRING, x->ndim,
                               x->dims, err)))
            return st;
        for (int64_t k = 0; k < x->numel; k++) {
            if (to_int) {
                int64_t j = list_find(&p->keys, x, k);
                ((int64_t *)out[0]->data)[k] = j >= 0 ? j : p->dflt_i.i[0];
            } else {
                int64_t j = ((const int64_t *)x->data)[k];
                ((const char **)out[0]->data)[k] = j >= 0 && j < p->keys.n
                                                   ? p->keys.s[j] : p->dflt_s.s[0];
            }
        }
        return ST_OK;
    }
    int x_kind = x->dtype == DT_INT32 || x->dtype == DT_INT16 ? DT_INT64 : x->dtype;
    if (x_kind != p->keys.dtype && !(x_kind == DT_DOUBLE && p->keys.dtype == DT_FLOAT) &&
        !(x_kind == DT_FLOAT && p->keys.dtype == DT_DOUBLE))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input is %s, the keys are "
                         "%s", dtype_name(x->dtype), dtype_name(p->keys.dtype));
    if ((st = tensor_alloc(out[0], p->values.out_dtype, x->ndim, x->dims, err)))
        return st;
    for (int64_t k = 0; k < x->numel; k++)
        list_put(&p->values, list_find(&p->keys, x, k), &p->dflt, out[0], k);
    return ST_OK;
}

/* ---- CategoryMapper, OneHotEncoder ----------------------------------- */

/* Y = cats_int64s[j] where cats_strings[j] == X (or the reverse). */
Status op_category_mapper(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const Tensor *x = in[0];
    const Attr *ca = node_attr(n, "cats_int64s");
    List strs = {DT_STRING, 0, DT_STRING, NULL, NULL, NULL, NULL};
    strs.s = ml_strings(n, "cats_strings", &strs.n);
    if (!strs.s || !ca || ca->type != AT_INTS || ca->count != strs.n)
        return node_fail(n, err, ST_BAD_FORMAT, "cats_strings and cats_int64s "
                         "must have the same length");
    int to_int = x->dtype == DT_STRING;
    if (!to_int && x->dtype != DT_INT64)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected "
                         "string or int64", dtype_name(x->dtype));
    Status st = tensor_alloc(out[0], to_int ? DT_INT64 : DT_STRING, x->ndim,
                             x->dims, err);
    if (st != ST_OK)
        return st;
    int64_t dflt_i = attr_int(n, "default_int64", -1);
    const char *dflt_s = attr_string(n, "default_string", "_Unused");
    for (int64_t k = 0; k < x->numel; k++) {
        if (to_int) {
            int64_t j = list_find(&strs, x, k);
            ((int64_t *)out[0]->data)[k] = j >= 0 ? attr_ints_at(ca, (int32_t)j)
                                                  : dflt_i;
        } else {
            int64_t v = ((const int64_t *)x->data)[k], j = -1;
            for (int32_t c = 0; c < ca->count && j < 0; c++)
                if (attr_ints_at(ca, c) == v)
                    j = c;
            ((const char **)out[0]->data)[k] = j >= 0 ? strs.s[j] : dflt_s;
        }
    }
    return ST_OK;
}

/* Y (..., |cats|) float: 1 at the category of each element of X. */
Status op_one_hot_encoder(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const Tensor *x = in[0];
    List cats = {DT_STRING, 0, DT_STRING, NULL, NULL, NULL, NULL};
    const Attr *ci = node_attr(n, "cats_int64s");
    cats.s = ml_strings(n, "cats_strings", &cats.n);
    if (!cats.s) {
        if (!ci || ci->type != AT_INTS)
            return node_fail(n, err, ST_BAD_FORMAT, "cats_int64s or cats_strings "
                             "is required");
        cats.n = ci->count;
    }
    if ((cats.s != NULL) != (x->dtype == DT_STRING) ||
        (!cats.s && x->dtype != DT_INT64 && x->dtype != DT_INT32 &&
         x->dtype != DT_FLOAT && x->dtype != DT_DOUBLE))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input is %s, the "
                         "categories are %s", dtype_name(x->dtype),
                         cats.s ? "strings" : "int64");
    int64_t dims[MAX_RANK];
    if (x->ndim >= MAX_RANK)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input rank %d is too high",
                         (int)x->ndim);
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[x->ndim] = cats.n;
    Status st = tensor_alloc(out[0], DT_FLOAT, x->ndim + 1, dims, err);
    if (st != ST_OK)
        return st;
    float *y = out[0]->data;
    memset(y, 0, (size_t)tensor_nbytes(out[0]));
    int zeros = (int)attr_int(n, "zeros", 1);
    for (int64_t k = 0; k < x->numel; k++) {
        int64_t j = -1;
        if (cats.s) {
            j = list_find(&cats, x, k);
        } else {
            /* numbers compare as int64, the way onnxruntime casts them */
            double d = ml_get(x, k);
            int64_t v = isnan(d) || fabs(d) > 9.2e18 ? INT64_MIN : (int64_t)d;
            for (int32_t c = 0; c < ci->count && j < 0; c++)
                if (attr_ints_at(ci, c) == v)
                    j = c;
        }
        if (j >= 0)
            y[k * cats.n + j] = 1.0f;
        else if (!zeros)
            return node_fail(n, err, ST_BAD_REQUEST, "element %lld is not one of "
                             "the categories (zeros=0)", (long long)k);
    }
    return ST_OK;
}

/* ---- ArrayFeatureExtractor, FeatureVectorizer, Imputer --------------- */

/* Y = X[..., Y] along the last axis; a 1-D X gives (1, |indices|). */
Status op_array_feature_extractor(const Node *n, Tensor *const *in,
                                  Tensor *const *out, Err *err)
{
    const Tensor *x = in[0], *ix = in[1];
    if (ix->dtype != DT_INT64 && ix->dtype != DT_INT32)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "indices are %s, expected "
                         "int64", dtype_name(ix->dtype));
    if (x->ndim < 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "X must have at least one "
                         "dimension");
    int64_t last = x->dims[x->ndim - 1], k = ix->numel, dims[MAX_RANK];
    int32_t nd = x->ndim;
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)nd);
    if (nd == 1) {
        dims[0] = 1;
        nd = 2;
    }
    dims[nd - 1] = k;
    for (int64_t j = 0; j < k; j++) {
        int64_t c = tensor_get_int(ix, j);
        if (c < 0 || c >= last)
            return node_fail(n, err, ST_BAD_REQUEST, "index %lld out of range "
                             "for a last dimension of %lld", (long long)c,
                             (long long)last);
    }
    Status st = tensor_alloc(out[0], x->dtype, nd, dims, err);
    if (st != ST_OK)
        return st;
    int size = dtype_size(x->dtype);
    int64_t rows = last ? x->numel / last : 0;
    char *y = out[0]->data;
    const char *xs = x->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++)
            memcpy(y + (r * k + j) * size,
                   xs + (r * last + tensor_get_int(ix, j)) * size, (size_t)size);
    return ST_OK;
}

/* Y (N, sum inputdimensions) float: each input's columns, cut or padded to
   its declared width. */
Status op_feature_vectorizer(const Node *n, Tensor *const *in,
                             Tensor *const *out, Err *err)
{
    const Attr *dims_a = node_attr(n, "inputdimensions");
    if (!dims_a || dims_a->type != AT_INTS || dims_a->count != n->n_in)
        return node_fail(n, err, ST_BAD_FORMAT, "inputdimensions must list one "
                         "width per input");
    int64_t rows = -1, total = 0;
    Status st;
    for (int32_t i = 0; i < n->n_in; i++) {
        int64_t r = in[i]->ndim <= 1 ? 1 : in[i]->dims[0];
        int64_t w = attr_ints_at(dims_a, i);
        if ((st = ml_require_numeric(n, in[i], err)))
            return st;
        if (w < 0 || w > (1 << 24) || (rows >= 0 && r != rows))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d has %lld rows "
                             "or a bad width %lld", (int)i, (long long)r,
                             (long long)w);
        rows = r;
        total += w;
    }
    int64_t dims[2] = {rows, total};
    if ((st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    float *y = out[0]->data;
    memset(y, 0, (size_t)tensor_nbytes(out[0]));
    int64_t col = 0;
    for (int32_t i = 0; i < n->n_in; i++) {
        const Tensor *x = in[i];
        int64_t w = attr_ints_at(dims_a, i);
        int64_t c = rows ? x->numel / rows : 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < w && j < c; j++)
                y[r * total + col + j] = (float)ml_get(x, r * c + j);
        col += w;
    }
    return ST_OK;
}

/* Y = X with the missing marker (replaced_value_*, NaN by default for
   floats) replaced by imputed_value_* (one value, or one per feature). */
Status op_imputer(const Node *n, Tensor *const *in, Tensor *const *out,
                  Err *err)
{
    const Tensor *x = in[0];
    int is_float = x->dtype == DT_FLOAT || x->dtype == DT_DOUBLE;
    const Attr *v = node_attr(n, is_float ? "imputed_value_floats"
                                          : "imputed_value_int64s");
    if (!is_float && x->dtype != DT_INT64 && x->dtype != DT_INT32)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected "
                         "float or int64", dtype_name(x->dtype));
    int64_t f = x->ndim ? x->dims[x->ndim - 1] : 1;
    if (!v || v->count < 1 || (v->count > 1 && v->count != f))
        return node_fail(n, err, ST_BAD_FORMAT, "imputed values must be one "
                         "value or one per feature (%lld)", (long long)f);
    Status st = tensor_alloc_like(out[0], x, err);
    if (st != ST_OK)
        return st;
    double rf = attr_float(n, "replaced_value_float", 0.0f);
    int64_t ri = attr_int(n, "replaced_value_int64", 0);
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    for (int64_t k = 0; k < x->numel; k++) {
        int32_t c = v->count > 1 ? (int32_t)(k % f) : 0;
        if (is_float) {
            double e = ml_get(x, k);
            if (!(isnan(rf) ? isnan(e) : e == rf))
                continue;
            if (x->dtype == DT_FLOAT)
                ((float *)out[0]->data)[k] = attr_floats_at(v, c);
            else
                ((double *)out[0]->data)[k] = attr_floats_at(v, c);
        } else if ((x->dtype == DT_INT64 ? ((const int64_t *)x->data)[k]
                                           : ((const int32_t *)x->data)[k]) == ri) {
            if (x->dtype == DT_INT64)
                ((int64_t *)out[0]->data)[k] = attr_ints_at(v, c);
            else
                ((int32_t *)out[0]->data)[k] = (int32_t)attr_ints_at(v, c);
        }
    }
    return ST_OK;
}

/* ---- maps: ZipMap, DictVectorizer, CastMap --------------------------- */

typedef struct {
    int64_t n;
    int32_t key_dtype;
    void *keys;          /* int64_t[n] (owned copy) or const char *[n] */
    int owned;
} ZipParams;

static void free_zip(void *q)
{
    ZipParams *p = q;
    if (p && p->owned)
        free(p->keys);
    free(p);
}

Status prep_zip_map(const Model *m, Node *n, Err *err)
{
    ZipParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_zip;
    const char *const *s = ml_strings(n, "classlabels_strings", &p->n);
    if (s) {
        p->key_dtype = DT_STRING;
        p->keys = (void *)s;
        return ST_OK;
    }
    int64_t *ints;
    Status st = ml_ints(m, n, "classlabels_int64s", NULL, &ints, &p->n, err);
    if (st != ST_OK)
        return st;
    if (p->n < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "classlabels_int64s or "
                         "classlabels_strings is required");
    p->key_dtype = DT_INT64;
    p->keys = ints;
    p->owned = 1;
    return ST_OK;
}

/* X (N, C) float -> N maps {label_c: X[n, c]} (kind TK_SEQ_MAP). */
Status op_zip_map(const Node *n, Tensor *const *in, Tensor *const *out,
                  Err *err)
{
    const ZipParams *p = n->params;
    const Tensor *x = in[0];
    int64_t rows, cols;
    Status st;
    if (x->dtype != DT_FLOAT)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, expected "
                         "float32", dtype_name(x->dtype));
    if ((st = ml_rows_cols(n, x, &rows, &cols, err)))
        return st;
    if (cols != p->n)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%lld columns for %lld "
                         "class labels", (long long)cols, (long long)p->n);
    int64_t dims[2] = {rows, cols};
    if ((st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
    out[0]->kind = TK_SEQ_MAP;
    out[0]->key_dtype = p->key_dtype;
    out[0]->n_keys = p->n;
    out[0]->keys = p->keys; /* borrowed from the node */
    out[0]->keys_owned = false;
    return ST_OK;
}

/* Fail unless x is a map with keys of dtype key (0: either). */
static Status require_map(const Node *n, const Tensor *x, int32_t key, Err *err)
{
    if (x->kind == TK_MAP && (!key || x->key_dtype == key))
        return ST_OK;
    char tn[64];
    return node_fail(n, err, ST_SHAPE_MISMATCH, "input is %s, expected a map%s",
                     type_name(x->kind, x->dtype, x->key_dtype, tn, 64),
                     key == DT_INT64 ? " with int64 keys" : "");
}

/* Y (1, |vocabulary|): the map's values at the positions of their keys in
   string_vocabulary or int64_vocabulary, 0 elsewhere. */
Status op_dict_vectorizer(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const Tensor *x = in[0];
    Status st = require_map(n, x, 0, err);
    if (st != ST_OK)
        return st;
    int64_t nv;
    const char *const *sv = ml_strings(n, "string_vocabulary", &nv);
    const Attr *iv = node_attr(n, "int64_vocabulary");
    if (!sv)
        nv = iv && iv->type == AT_INTS ? iv->count : 0;
    if ((sv != NULL) != (x->key_dtype == DT_STRING))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "map keys are %s, the "
                         "vocabulary is not", dtype_name(x->key_dtype));
    int64_t dims[2] = {1, nv};
    if ((st = tensor_alloc(out[0], x->dtype, 2, dims, err)))
        return st;
    int size = dtype_size(x->dtype);
    memset(out[0]->data, 0, (size_t)tensor_nbytes(out[0]));
    for (int64_t j = 0; x->dtype == DT_STRING && j < nv; j++)
        ((const char **)out[0]->data)[j] = "";
    for (int64_t k = 0; k < x->n_keys; k++) {
        int64_t j = -1;
        for (int64_t c = 0; c < nv && j < 0; c++)
            if (sv ? !strcmp(sv[c], ((const char *const *)x->keys)[k])
                   : attr_ints_at(iv, (int32_t)c) == ((const int64_t *)x->keys)[k])
                j = c;
        if (j >= 0)
            memcpy((char *)out[0]->data + j * size, (const char *)x->data + k * size,
                   (size_t)size);
    }
    return ST_OK;
}

/* Order of keys for CastMap: ascending int64. */
static int cmp_index_by_key(const void *a, const void *b, const int64_t *keys)
{
    int64_t x = keys[*(const int64_t *)a], y = keys[*(const int64_t *)b];
    return x < y ? -1 : x > y;
}

/* Y (1, n) from a map with int64 keys, values in ascending key order
   (DENSE), or at their key positions below max_map (SPARSE). */
Status op_cast_map(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    const Tensor *x = in[0];
    Status st = require_map(n, x, DT_INT64, err);
    if (st != ST_OK)
        return st;
    const char *to = attr_string(n, "cast_to", "TO_FLOAT");
    const char *form = attr_string(n, "map_form", "DENSE");
    int32_t dt = !strcmp(to, "TO_FLOAT") ? DT_FLOAT : !strcmp(to, "TO_STRING")
               ? DT_STRING : !strcmp(to, "TO_INT64") ? DT_INT64 : 0;
    int sparse = !strcmp(form, "SPARSE");
    if (!dt || (!sparse && strcmp(form, "DENSE")))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "cast_to '%s' / map_form "
                         "'%s' not supported", to, form);
    if (x->dtype != DT_FLOAT && x->dtype != DT_STRING)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "map values are %s, "
                         "expected float or string", dtype_name(x->dtype));
    int64_t width = sparse ? attr_int(n, "max_map", 1) : x->n_keys;
    int64_t dims[2] = {1, width};
    const int64_t *keys = x->keys;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(x->n_keys + 1));
    if (!order)
        return node_fail(n, err, ST_OOM, "out of memory");
    /* insertion sort: maps are small and the sort has no context argument */
    for (int64_t i = 0; i < x->n_keys; i++) {
        int64_t j = i;
        for (; j > 0 && cmp_index_by_key(&i, &order[j - 1], keys) < 0; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    if ((st = tensor_alloc(out[0], dt, 2, dims, err))) {
        free(order);
        return st;
    }
    for (int64_t j = 0; j < width; j++) {
        if (dt == DT_STRING) ((const char **)out[0]->data)[j] = "0";
        else if (dt == DT_FLOAT) ((float *)out[0]->data)[j] = 0.0f;
        else ((int64_t *)out[0]->data)[j] = 0;
    }
    for (int64_t i = 0; i < x->n_keys && st == ST_OK; i++) {
        int64_t k = order[i], pos = sparse ? keys[k] : i;
        if (pos < 0 || pos >= width)
            continue;
        double d;
        const char *s = NULL;
        if (x->dtype == DT_STRING) {
            s = ((const char *const *)x->data)[k];
            d = strtod(s, NULL);
        } else {
            d = ((const float *)x->data)[k];
        }
        if (dt == DT_FLOAT) {
            ((float *)out[0]->data)[pos] = (float)d;
        } else if (dt == DT_INT64) {
            ((int64_t *)out[0]->data)[pos] = isnan(d) || fabs(d) > 9.2e18 ? 0 : (int64_t)d;
        } else {
            char text[64];
            if (!s) {
                int len = snprintf(text, sizeof text, "%f", d);
                s = str_dup(text, (size_t)len);
            }
            if (!s)
                st = node_fail(n, err, ST_OOM, "out of memory");
            else
                ((const char **)out[0]->data)[pos] = s;
        }
    }
    free(order);
    return st;
}
