/*
 * request.c: request text -> input tensors, checked against the model.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "decimal.h"
#include "json.h"
#include "numeric.h"
#include "pb.h"
#include "response.h"
#include "request.h"

#define NUM_TEXT_CAP 64  /* longest number token accepted */
#define NAME_CAP 256     /* longest input name or type string */

/* How the tensors of "input" are written ("type"). */
enum { FORM_JSON = 0, FORM_RAW = 1, FORM_PB = 2 };

/* The top-level keys of a request, as unparsed spans. */
typedef struct {
    Span input, type, shape, shapes, output_type;
    int has_input, has_type, has_shape, has_shapes, has_output_type;
    int type_alias, output_type_alias; /* set from inputType / outputType */
} Fields;

/* Format the declared shape of v, symbols by name: "(batch, 1, 224)". */
static const char *declared_str(const Model *m, const Value *v, char *buf,
                                int cap)
{
    if (v->rank < 0)
        return "(any shape)";
    int n = snprintf(buf, cap, "(");
    for (int32_t i = 0; i < v->rank && n < cap; i++) {
        const char *sep = i ? ", " : "";
        int32_t d = v->dims[i];
        n += DIM_IS_SYMBOL(d)
                 ? snprintf(buf + n, cap - n, "%s%s", sep, m->symbols[DIM_SYMBOL(d)])
             : d == DIM_UNKNOWN ? snprintf(buf + n, cap - n, "%s?", sep)
                                : snprintf(buf + n, cap - n, "%s%d", sep, (int)d);
    }
    if (n < cap)
        snprintf(buf + n, cap - n, v->rank == 1 ? ",)" : ")");
    return buf;
}

/* ---- nested lists ---------------------------------------------------- */

/* Collects the elements of one nested-list tensor, learning its shape. */
typedef struct {
    const Value *v;       /* the graph input */
    int32_t rank;         /* depth of the leaves; -1 until the first leaf */
    int32_t deepest;      /* deepest list seen, for all-empty lists */
    int64_t dims[MAX_RANK];
    int known[MAX_RANK];  /* dims[d] fixed by the first list at depth d */
    Buf data;             /* elements in the input's dtype */
    int64_t count;
} Builder;

static Status element_error(Json *j, const Builder *b, const char *expected)
{
    return fail(j->err, ST_BAD_REQUEST, "request: input '%s' element %lld: "
                "expected %s (%s input)", b->v->name, (long long)b->count,
                expected, dtype_name(b->v->dtype));
}

/*
 * Read a JSON string at the cursor into the string arena (escapes decoded);
 * *out stays valid until the end of the request.
 */
static Status read_arena_string(Json *j, const char **out, const char *what)
{
    Json save = *j;
    Span s;
    int escaped;
    size_t n;
    Status st = json_string_span(j, &s, &escaped);
    if (st != ST_OK)
        return st;
    /* decoded text is never longer than its escaped form */
    size_t cap = (size_t)(s.end - s.start) + 1;
    char *tmp = malloc(cap);
    if (!tmp)
        return fail(j->err, ST_OOM, "request: out of memory reading %s", what);
    *j = save;
    st = json_string(j, tmp, cap, &n);
    if (st == ST_OK && strlen(tmp) != n)
        st = fail(j->err, ST_BAD_REQUEST, "request: %s contains a NUL "
                  "character (\\u0000), which string tensors cannot hold", what);
    if (st == ST_OK && !(*out = str_dup(tmp, n)))
        st = fail(j->err, ST_OOM, "request: out of memory reading %s", what);
    free(tmp);
    return st;
}

/* Parse one leaf value into the builder's buffer, in the input's dtype. */
static Status parse_leaf(Json *j, Builder *b)
{
    int32_t dt = b->v->dtype;
    int size = dtype_size(dt);
    char text[NUM_TEXT_CAP];
    int is_int;
    double d;
    Status st;
    char *slot = buf_reserve(&b->data, (size_t)size);
    if (!slot)
        return fail(j->err, ST_OOM, "request: out of memory reading input '%s'",
                    b->v->name);

    /* strings: a JSON string, kept in the request's string arena */
    if (dt == DT_STRING) {
        const char *text_ptr;
        if (json_peek(j) != '"')
            return element_error(j, b, "a string");
        if ((st = read_arena_string(j, &text_ptr, "a string element")))
            return st;
        memcpy(slot, &text_ptr, sizeof text_ptr);
        b->data.len += sizeof text_ptr;
        return ST_OK;
    }

    /* booleans: true/false, or the numbers 0 and 1 */
    if (dt == DT_BOOL) {
        if (json_literal(j, "true") || json_literal(j, "false")) {
            *slot = j->p[-1] == 'e' && j->p[-2] == 'u';
        } else {
            if ((st = json_number(j, text, sizeof text, &is_int)))
                return element_error(j, b, "true, false, 0 or 1");
            d = strtod(text, NULL);
            if (d != 0.0 && d != 1.0)
                return element_error(j, b, "true, false, 0 or 1");
            *slot = d != 0.0;
        }
        b->data.len += 1;
        return ST_OK;
    }

    /* floats: any number, or "NaN", "Infinity", "-Infinity" */
    if (dt == DT_FLOAT || dt == DT_DOUBLE || dtype_is_half(dt)) {
        if (json_peek(j) == '"') {
            char s[16];
            if (json_string(j, s, sizeof s, NULL) != ST_OK)
                return element_error(j, b, "a number, \"NaN\" or \"Infinity\"");
            d = !strcmp(s, "NaN") ? NAN : !strcmp(s, "Infinity") ? INFINITY
              : !strcmp(s, "-Infinity") ? -INFINITY : 0.0;
            if (d == 0.0)
                return element_error(j, b, "a number, \"NaN\" or \"Infinity\"");
        } else {
            if (json_number(j, text, sizeof text, &is_int) != ST_OK)
                return element_error(j, b, "a number");
            /* a float straight from the text: (float)decimal_to_double
               would round twice */
            d = dt == DT_FLOAT ? (double)decimal_to_float(text) : decimal_to_double(text);
        }
        if (dt == DT_FLOAT) {
            float f = (float)d;
            memcpy(slot, &f, 4);
        } else if (dtype_is_half(dt)) {
            /* one rounding, from the text */
            uint16_t h = dt == DT_FLOAT16 ? double_to_half(d) : double_to_bf16(d);
            memcpy(slot, &h, 2);
        } else {
            memcpy(slot, &d, 8);
        }
        b->data.len += (size_t)size;
        return ST_OK;
    }

    /* integers: exact decimal text, or an integral float below 2^53 */
    if (size == 0)
        return fail(j->err, ST_UNSUPPORTED_OP, "request: input '%s' has dtype "
                    "%s, which JSON requests do not support yet (send it as "
                    "\"type\": \"raw\")", b->v->name, dtype_name(dt));
    if (json_number(j, text, sizeof text, &is_int) != ST_OK)
        return element_error(j, b, "an integer");
    int is_unsigned = dt == DT_UINT8 || dt == DT_UINT16 || dt == DT_UINT32 ||
                      dt == DT_UINT64;
    int64_t iv = 0;
    uint64_t uv = 0;
    errno = 0;
    if (is_int && is_unsigned && text[0] != '-') {
        uv = strtoull(text, NULL, 10);
        iv = (int64_t)uv;
    } else if (is_int) {
        iv = strtoll(text, NULL, 10);
        uv = (uint64_t)iv;
    } else {
        d = strtod(text, NULL);
        if (d != floor(d) || fabs(d) > 9007199254740992.0)
            return element_error(j, b, "an integer");
        iv = (int64_t)d;
        uv = (uint64_t)iv;
    }
    int64_t lo = 0;
    uint64_t hi = 0;
    switch (dt) {
    case DT_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case DT_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case DT_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case DT_INT64: lo = INT64_MIN; hi = INT64_MAX; break;
    case DT_UINT8: hi = UINT8_MAX; break;
    case DT_UINT16: hi = UINT16_MAX; break;
    case DT_UINT32: hi = UINT32_MAX; break;
    default: hi = UINT64_MAX; break;
    }
    int in_range = errno != ERANGE &&
                   (is_unsigned ? (text[0] != '-' || iv == 0) && uv <= hi
                                : iv >= lo && (iv < 0 || (uint64_t)iv <= hi));
    if (!in_range)
        return element_error(j, b, "an integer in range");
    /* little-endian: the low bytes of the 64-bit value are the element */
    memcpy(slot, &uv, (size_t)size);
    b->data.len += (size_t)size;
    return ST_OK;
}

/* Parse a nested list (or a leaf) at depth into the builder. */
static Status parse_nested(Json *j, Builder *b, int32_t depth)
{
    Status st;
    if (json_peek(j) != '[') {
        if (b->rank < 0)
            b->rank = depth;
        if (depth != b->rank)
            return fail(j->err, ST_BAD_REQUEST, "request: input '%s' is "
                        "ragged (element %lld at nesting depth %d, earlier "
                        "ones at %d)", b->v->name, (long long)b->count,
                        (int)depth, (int)b->rank);
        if ((st = parse_leaf(j, b)))
            return st;
        b->count++;
        return ST_OK;
    }
    if (depth >= MAX_RANK || (b->rank >= 0 && depth >= b->rank))
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s' nests lists "
                    "deeper than %s", b->v->name,
                    depth >= MAX_RANK ? "the rank limit of 8" : "its elements");
    j->p++;
    if (depth > b->deepest)
        b->deepest = depth;
    int64_t len = 0;
    if (json_peek(j) == ']') {
        j->p++;
    } else {
        for (;;) {
            if ((st = parse_nested(j, b, depth + 1)))
                return st;
            len++;
            if (json_peek(j) == ',') {
                j->p++;
                continue;
            }
            if ((st = json_expect(j, ']', "',' or ']' in a list")))
                return st;
            break;
        }
    }
    if (!b->known[depth]) {
        b->known[depth] = 1;
        b->dims[depth] = len;
    } else if (b->dims[depth] != len) {
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s' is ragged "
                    "(a list at depth %d has %lld elements, an earlier one "
                    "%lld)", b->v->name, (int)depth, (long long)len,
                    (long long)b->dims[depth]);
    }
    return ST_OK;
}

/* Parse one input given as nested lists into t. */
static Status parse_json_tensor(Json *j, const Value *v, Tensor *t)
{
    Builder b;
    memset(&b, 0, sizeof b);
    b.v = v;
    b.rank = -1;
    b.deepest = -1;
    Status st = parse_nested(j, &b, 0);
    if (st == ST_OK && b.rank < 0)
        b.rank = b.deepest + 1; /* only empty lists: their depth is the rank */
    for (int32_t d = 0; st == ST_OK && d < MAX_RANK; d++)
        if (b.known[d] && d >= b.rank)
            st = fail(j->err, ST_BAD_REQUEST, "request: input '%s' is ragged "
                      "(lists and values at the same depth)", v->name);
    if (st == ST_OK)
        st = tensor_set_shape(t, v->dtype, b.rank, b.dims, j->err);
    if (st != ST_OK) {
        buf_free(&b.data);
        return st;
    }
    t->data = b.data.data ? b.data.data : malloc(1);
    t->owned = true;
    return t->data ? ST_OK : fail(j->err, ST_OOM, "request: out of memory");
}

/* ---- maps ------------------------------------------------------------ */

/*
 * Parse one map input given as a JSON object {"key": value, ...} into t
 * (kind TK_MAP). Keys are JSON strings; for int64 keys their text must be
 * a decimal integer ({"3": 0.5}). Values follow the value dtype.
 */
static Status parse_json_map(Json *j, const Value *v, Tensor *t)
{
    Builder b;
    memset(&b, 0, sizeof b);
    b.v = v;
    Buf keys = {0};
    int64_t n = 0;
    Status st = json_expect(j, '{', "a JSON object for a map input");
    for (; st == ST_OK && json_peek(j) != '}'; n++) {
        const char *key;
        if (n && (st = json_expect(j, ',', "',' or '}' in a map")))
            break;
        if ((st = read_arena_string(j, &key, "a map key")) ||
            (st = json_expect(j, ':', "':' after a map key")))
            break;
        char *slot = buf_reserve(&keys, 8);
        if (!slot) {
            st = fail(j->err, ST_OOM, "request: out of memory reading input "
                      "'%s'", v->name);
            break;
        }
        if (v->key_dtype == DT_STRING) {
            memcpy(slot, &key, sizeof key);
            keys.len += sizeof key;
        } else {
            char *end;
            errno = 0;
            long long k = strtoll(key, &end, 10);
            if (!key[0] || *end || errno == ERANGE) {
                st = fail(j->err, ST_BAD_REQUEST, "request: input '%s' is a "
                          "map with int64 keys, got key \"%.32s\"", v->name,
                          key);
                break;
            }
            int64_t k64 = k;
            memcpy(slot, &k64, 8);
            keys.len += 8;
        }
        b.count = n;
        st = parse_leaf(j, &b);
    }
    if (st == ST_OK)
        st = json_expect(j, '}', "'}' closing a map");
    if (st == ST_OK)
        st = tensor_set_shape(t, v->dtype, 1, &n, j->err);
    if (st != ST_OK) {
        buf_free(&b.data);
        buf_free(&keys);
        return st;
    }
    t->data = b.data.data ? b.data.data : malloc(1);
    t->owned = true;
    t->keys = keys.data ? keys.data : malloc(1);
    t->keys_owned = true;
    t->kind = TK_MAP;
    t->key_dtype = v->key_dtype;
    t->n_keys = n;
    return t->data && t->keys ? ST_OK
                              : fail(j->err, ST_OOM, "request: out of memory");
}

/* ---- raw base64 ------------------------------------------------------ */

/* Parse a list of non-negative integers: a shape. */
static Status parse_shape(Json *j, int64_t *dims, int32_t *nd, const char *name)
{
    Status st = json_expect(j, '[', "a shape list");
    if (st != ST_OK)
        return st;
    *nd = 0;
    if (json_peek(j) == ']') {
        j->p++;
        return ST_OK;
    }
    for (;;) {
        char text[NUM_TEXT_CAP];
        int is_int;
        if ((st = json_number(j, text, sizeof text, &is_int)))
            return st;
        long long d = strtoll(text, NULL, 10);
        if (*nd >= MAX_RANK)
            return fail(j->err, ST_BAD_REQUEST, "request: shape of input '%s' "
                        "lists more than %d dims", name, MAX_RANK);
        if (!is_int || d < 0)
            return fail(j->err, ST_BAD_REQUEST, "request: shape of input '%s' "
                        "has %s at position %d; dims are non-negative integers",
                        name, text, (int)*nd);
        if (d > INT32_MAX)
            return fail(j->err, ST_BAD_REQUEST, "request: shape of input '%s' "
                        "has dim %s at position %d, above the largest supported "
                        "(%d)", name, text, (int)*nd, INT32_MAX);
        dims[(*nd)++] = d;
        if (json_peek(j) == ',') {
            j->p++;
            continue;
        }
        return json_expect(j, ']', "',' or ']' in a shape");
    }
}

/* Shape of a raw input: given, else declared (one unknown dim inferred
   from the byte count). */
static Status raw_shape(const Model *m, Json *j, const Value *v, Span *given,
                        size_t nbytes, int64_t *dims, int32_t *nd)
{
    char decl[128];
    if (given) {
        Json sj = {given->start, given->end, j->err};
        return parse_shape(&sj, dims, nd, v->name);
    }
    if (v->rank < 0)
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s' needs a "
                    "\"shape\" (its rank is not declared)", v->name);
    int32_t unknown = -1;
    int64_t known = 1;
    for (int32_t i = 0; i < v->rank; i++) {
        if (v->dims[i] >= 0) {
            known *= (dims[i] = v->dims[i]);
        } else if (unknown < 0) {
            unknown = i;
        } else {
            return fail(j->err, ST_BAD_REQUEST, "request: input '%s' has "
                        "several dynamic dims %s; give its \"shape\"", v->name,
                        declared_str(m, v, decl, sizeof decl));
        }
    }
    *nd = v->rank;
    size_t per = (size_t)known * (size_t)dtype_size(v->dtype);
    if (unknown >= 0)
        dims[unknown] = per ? (int64_t)(nbytes / per) : 0;
    return ST_OK;
}

/* Parse one input given as a base64 string of raw little-endian bytes. */
static Status parse_raw_tensor(const Model *m, Json *j, const Value *v,
                               Span *shape, Tensor *t)
{
    Span s;
    int escaped;
    Status st = json_string_span(j, &s, &escaped);
    if (st != ST_OK)
        return st;
    if (escaped)
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s': base64 text "
                    "must not contain escape sequences", v->name);
    if (!dtype_size(v->dtype) || v->dtype == DT_STRING)
        return fail(j->err, ST_UNSUPPORTED_OP, "request: input '%s' has dtype "
                    "%s, which raw requests do not support (send nested "
                    "JSON lists of strings)", v->name, dtype_name(v->dtype));
    size_t n = (size_t)(s.end - s.start);
    size_t nbytes = base64_decoded_size(s.start, n);
    int64_t dims[MAX_RANK];
    int32_t nd;
    char got[96];
    /* the byte count is checked before allocating: a hostile "shape" must
       not grow linear memory */
    if ((st = raw_shape(m, j, v, shape, nbytes, dims, &nd)) ||
        (st = tensor_set_shape(t, v->dtype, nd, dims, j->err)))
        return st;
    size_t bad = 0;
    if ((size_t)tensor_nbytes(t) != nbytes) {
        size_t need = (size_t)tensor_nbytes(t);
        memset(t, 0, sizeof *t);
        /* text that is not base64 at all is the better explanation */
        if (!base64_valid(s.start, n, &bad))
            return fail(j->err, ST_BAD_REQUEST, "request: input '%s': invalid "
                        "base64 at character %zu", v->name, bad);
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s': shape %s of "
                    "%s needs %zu bytes, the base64 text holds %zu", v->name,
                    shape_str(dims, nd, got, sizeof got), dtype_name(v->dtype),
                    need, nbytes);
    }
    if ((st = tensor_alloc(t, v->dtype, nd, dims, j->err)))
        return st;
    if (base64_decode(s.start, n, t->data, &bad) < 0) {
        tensor_release(t);
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s': invalid "
                    "base64 at character %zu", v->name, bad);
    }
    return ST_OK;
}

/* ---- ONNX TensorProto ("type": "pb") ----------------------------------- */

/* Parse one input given as base64 of a serialised TensorProto. */
static Status parse_pb_input(Json *j, const Value *v, Tensor *t)
{
    Span s;
    int escaped;
    Status st = json_string_span(j, &s, &escaped);
    if (st != ST_OK)
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s': expected a "
                    "base64 string (\"type\": \"pb\")", v->name);
    if (escaped)
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s': base64 text "
                    "must not contain escape sequences", v->name);
    size_t n = (size_t)(s.end - s.start), bad = 0;
    uint8_t *bytes = malloc(base64_decoded_size(s.start, n) + 1);
    if (!bytes)
        return fail(j->err, ST_OOM, "request: out of memory reading input '%s'",
                    v->name);
    long len = base64_decode(s.start, n, bytes, &bad);
    st = len < 0 ? fail(j->err, ST_BAD_REQUEST, "request: input '%s': invalid "
                        "base64 at character %zu", v->name, bad)
                 : pb_read_tensor(bytes, (size_t)len, v, t, j->err);
    free(bytes);
    return st;
}

/* ---- the request object ----------------------------------------------- */

/* Record the spans of the known top-level keys; skip the others. */
static Status read_fields(Json *j, Fields *f)
{
    Status st = json_expect(j, '{', "a JSON object {\"input\": ...}");
    if (st != ST_OK)
        return st;
    memset(f, 0, sizeof *f);
    if (json_peek(j) == '}') {
        j->p++;
        return ST_OK;
    }
    for (;;) {
        char key[32];
        size_t klen;
        /* long keys cannot be ours: skip them */
        Json save = *j;
        if (json_string(j, key, sizeof key, &klen) != ST_OK) {
            *j = save;
            Span s;
            int esc;
            if ((st = json_string_span(j, &s, &esc)))
                return st;
            key[0] = 0;
        }
        if ((st = json_expect(j, ':', "':' after a key")))
            return st;
        json_ws(j);
        Span *span = NULL;
        int *has = NULL;
        if (!strcmp(key, "input")) span = &f->input, has = &f->has_input;
        else if (!strcmp(key, "type"))
            span = &f->type, has = &f->has_type, f->type_alias = 0;
        else if (!strcmp(key, "shape")) span = &f->shape, has = &f->has_shape;
        else if (!strcmp(key, "shapes")) span = &f->shapes, has = &f->has_shapes;
        else if (!strcmp(key, "output_type"))
            span = &f->output_type, has = &f->has_output_type,
            f->output_type_alias = 0;
        /* aliases documented for the older ABI; "type" / "output_type" win */
        else if (!strcmp(key, "inputType") && (!f->has_type || f->type_alias))
            span = &f->type, has = &f->has_type, f->type_alias = 1;
        else if (!strcmp(key, "outputType") &&
                 (!f->has_output_type || f->output_type_alias))
            span = &f->output_type, has = &f->has_output_type,
            f->output_type_alias = 1;
        const char *start = j->p;
        if ((st = json_skip(j, 1)))
            return st;
        if (span) {
            span->start = start;
            span->end = j->p;
            *has = 1;
        }
        if (json_peek(j) == ',') {
            j->p++;
            continue;
        }
        if ((st = json_expect(j, '}', "',' or '}' after a value")))
            return st;
        break;
    }
    if (json_peek(j) != -1)
        return fail(j->err, ST_BAD_REQUEST, "request: invalid JSON (text after "
                    "the closing '}')");
    return ST_OK;
}

/* Read a string-valued field into out; "" when absent. */
static Status field_string(Json *j, const Span *s, int has, char *out,
                           size_t cap, const char *key)
{
    out[0] = 0;
    if (!has)
        return ST_OK;
    Json fj = {s->start, s->end, j->err};
    if (json_string(&fj, out, cap, NULL) != ST_OK)
        return fail(j->err, ST_BAD_REQUEST, "request: \"%s\" must be a short "
                    "string", key);
    return ST_OK;
}

/* Index of the graph input called name, or -1. */
static int32_t input_index(const Model *m, const char *name)
{
    const Graph *g = &m->graphs[0];
    for (int32_t i = 0; i < g->n_inputs; i++)
        if (!strcmp(m->values[g->inputs[i]].name, name))
            return i;
    return -1;
}

/* The element of a shapes list / object belonging to input i (or NULL). */
static Status shape_for(Json *j, const Fields *f, const Model *m, int32_t i,
                        Span *out, Span **res)
{
    *res = NULL;
    if (f->has_shape && m->graphs[0].n_inputs == 1) {
        *out = f->shape;
        *res = out;
        return ST_OK;
    }
    if (!f->has_shapes)
        return ST_OK;
    Json sj = {f->shapes.start, f->shapes.end, j->err};
    int named = json_peek(&sj) == '{';
    Status st = json_expect(&sj, named ? '{' : '[', "a list or object of shapes");
    const char *want = m->values[m->graphs[0].inputs[i]].name;
    for (int32_t k = 0; st == ST_OK && json_peek(&sj) != (named ? '}' : ']'); k++) {
        char key[NAME_CAP];
        if (k && (st = json_expect(&sj, ',', "','")))
            break;
        if (named && ((st = json_string(&sj, key, sizeof key, NULL)) ||
                      (st = json_expect(&sj, ':', "':'"))))
            break;
        json_ws(&sj);
        const char *start = sj.p;
        if ((st = json_skip(&sj, 1)))
            break;
        if (named ? !strcmp(key, want) : k == i) {
            out->start = start;
            out->end = sj.p;
            *res = out;
            return ST_OK;
        }
    }
    return st;
}

/* ---- sequences and optionals (docs/abi.md) ---------------------------- */

/* True for the declared kinds read by parse_container. */
static int is_container_kind(int32_t kind)
{
    return kind == TK_SEQ_TENSOR || kind == TK_OPT_TENSOR ||
           kind == TK_OPT_SEQ_TENSOR;
}

/* One tensor of the element type v at the cursor, in form (raw: of the
   shape at span shape, or NULL). */
static Status parse_tensor_value(const Model *m, Json *j, int form,
                                 const Value *v, Span *shape, Tensor *t)
{
    if (form == FORM_JSON)
        return parse_json_tensor(j, v, t);
    if (form == FORM_PB)
        return parse_pb_input(j, v, t);
    return parse_raw_tensor(m, j, v, shape, t);
}

/* *res = entry k of the list of shapes at span list (NULL: no list). */
static Status shape_entry(Json *j, const Value *v, const Span *list, int64_t k,
                          Span *out, Span **res)
{
    *res = NULL;
    if (!list)
        return ST_OK;
    Json lj = {list->start, list->end, j->err};
    if (json_peek(&lj) != '[')
        return fail(j->err, ST_BAD_REQUEST, "request: the shape of sequence "
                    "input '%s' must be a list of shapes, one per tensor",
                    v->name);
    lj.p++;
    for (int64_t i = 0; json_peek(&lj) != ']'; i++) {
        Status st;
        if (i && (st = json_expect(&lj, ',', "',' in a list of shapes")))
            return st;
        json_ws(&lj);
        const char *start = lj.p;
        if ((st = json_skip(&lj, 1)))
            return st;
        if (i == k) {
            out->start = start;
            out->end = lj.p;
            *res = out;
            return ST_OK;
        }
    }
    return fail(j->err, ST_BAD_REQUEST, "request: sequence input '%s' has no "
                "shape for its tensor %lld", v->name, (long long)k);
}

/*
 * A sequence or optional input v at the cursor: null for an empty
 * optional; the held tensor for an optional tensor; a JSON list of
 * tensors for a sequence, each in the request's form (raw: shape is a
 * list of shapes, one per tensor). Items may have any shape.
 */
static Status parse_container(const Model *m, Json *j, int form,
                              const Value *v, Span *shape, Tensor *t)
{
    Value elem = *v;
    elem.type_kind = TK_TENSOR;
    if (v->type_kind != TK_SEQ_TENSOR && json_peek(j) == 'n') {
        if (!json_literal(j, "null"))
            return fail(j->err, ST_BAD_REQUEST, "request: input '%s': invalid "
                        "JSON", v->name);
        memset(t, 0, sizeof *t);
        t->kind = TK_NONE;
        return ST_OK;
    }
    if (v->type_kind == TK_OPT_TENSOR)
        return parse_tensor_value(m, j, form, &elem, shape, t);

    /* a sequence: count the items, then parse each into its slot */
    elem.rank = -1;
    Json cj = *j;
    int64_t count = 0;
    Status st = json_expect(&cj, '[', "a list of tensors for a sequence input");
    for (; st == ST_OK && json_peek(&cj) != ']'; count++)
        if (!(count && (st = json_expect(&cj, ',', "',' or ']' in a list"))))
            st = json_skip(&cj, 1);
    if (st == ST_OK)
        st = seq_alloc(t, v->dtype, count, j->err);
    if (st == ST_OK)
        st = json_expect(j, '[', "'['");
    for (int64_t k = 0; k < count && st == ST_OK; k++) {
        Span es, *eshape = NULL;
        if ((k && (st = json_expect(j, ',', "','"))) ||
            (form == FORM_RAW && (st = shape_entry(j, v, shape, k, &es, &eshape))))
            break;
        st = parse_tensor_value(m, j, form, &elem, eshape, &((Tensor *)t->data)[k]);
    }
    if (st == ST_OK)
        st = json_expect(j, ']', "']' closing a sequence");
    if (st != ST_OK)
        tensor_release(t);
    return st;
}

/* Parse the value for graph input i at the cursor, per the type. */
static Status parse_input(const Model *m, Json *j, const Fields *f, int form,
                          int32_t i, Tensor *t)
{
    const Value *v = &m->values[m->graphs[0].inputs[i]];
    if (value_present(t))
        return fail(j->err, ST_BAD_REQUEST, "request: input '%s' given twice",
                    v->name);
    if (v->type_kind == TK_MAP && form == FORM_JSON)
        return parse_json_map(j, v, t);
    if (is_container_kind(v->type_kind)) {
        Span s, *shape = NULL;
        Status st = form == FORM_RAW ? shape_for(j, f, m, i, &s, &shape) : ST_OK;
        return st ? st : parse_container(m, j, form, v, shape, t);
    }
    if (v->type_kind != TK_TENSOR) {
        char tn[64];
        /* TODO: sequence-of-maps inputs */
        return fail(j->err, ST_UNSUPPORTED_OP, "request: input '%s' has type "
                    "%s, which %s requests do not support", v->name,
                    type_name(v->type_kind, v->dtype, v->key_dtype, tn, 64),
                    form == FORM_JSON ? "JSON" : form == FORM_RAW ? "raw" : "pb");
    }
    if (form == FORM_JSON)
        return parse_json_tensor(j, v, t);
    if (form == FORM_PB)
        return parse_pb_input(j, v, t);
    Span s, *shape;
    Status st = shape_for(j, f, m, i, &s, &shape);
    return st ? st : parse_raw_tensor(m, j, v, shape, t);
}

/* Step: the "input" value in any of its forms. */
static Status parse_inputs(const Model *m, Json *j, const Fields *f, int form,
                           Tensor *inputs)
{
    const Graph *g = &m->graphs[0];
    Json ij = {f->input.start, f->input.end, j->err};
    int c = json_peek(&ij);
    Status st;
    /* a lone map input: {"input": {"k": v, ..}} is the map itself unless
       its first key is the input's name ({"input": {"x": {..}}}) */
    if (c == '{' && g->n_inputs == 1 &&
        m->values[g->inputs[0]].type_kind == TK_MAP) {
        Json kj = ij;
        char key[NAME_CAP];
        kj.p++;
        if (json_peek(&kj) != '"' || json_string(&kj, key, sizeof key, NULL) ||
            strcmp(key, m->values[g->inputs[0]].name))
            return parse_input(m, &ij, f, form, 0, &inputs[0]);
    }
    if (c == '{') {
        /* by name */
        ij.p++;
        for (int k = 0; json_peek(&ij) != '}'; k++) {
            char name[NAME_CAP];
            if ((k && (st = json_expect(&ij, ',', "',' or '}'"))) ||
                (st = json_string(&ij, name, sizeof name, NULL)) ||
                (st = json_expect(&ij, ':', "':'")))
                return st;
            int32_t i = input_index(m, name);
            if (i < 0) {
                Buf names = {0};
                for (int32_t q = 0; q < g->n_inputs; q++) {
                    buf_puts(&names, q ? "', '" : "'");
                    buf_puts(&names, m->values[g->inputs[q]].name);
                }
                st = fail(j->err, ST_BAD_REQUEST, "request: the model has no "
                          "input '%s' (its inputs: %s')", name,
                          names.data ? names.data : "");
                buf_free(&names);
                return st;
            }
            if ((st = parse_input(m, &ij, f, form, i, &inputs[i])))
                return st;
        }
        return ST_OK;
    }
    /* a single base64 input may also come as a one-element list */
    if (g->n_inputs == 1 && (form == FORM_JSON || c != '['))
        return parse_input(m, &ij, f, form, 0, &inputs[0]);
    /* a lone sequence input in raw or pb form: ["<b64>", ..] (or []) is
       the sequence itself; [[..]] or [null] is the list of inputs */
    if (g->n_inputs == 1 && is_container_kind(m->values[g->inputs[0]].type_kind)) {
        Json kj = ij;
        kj.p++;
        if (json_peek(&kj) != '[' && json_peek(&kj) != 'n')
            return parse_input(m, &ij, f, form, 0, &inputs[0]);
    }
    /* several inputs, positional */
    if ((st = json_expect(&ij, '[', "a list with one entry per input")))
        return st;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        if ((i && (st = json_expect(&ij, ',', "one entry per input"))) ||
            (st = parse_input(m, &ij, f, form, i, &inputs[i])))
            return st;
    }
    if (json_peek(&ij) != ']')
        return fail(j->err, ST_BAD_REQUEST, "request: \"input\" lists more "
                    "entries than the model's %d inputs", (int)g->n_inputs);
    return ST_OK;
}

/* Step: every input present, of its declared rank and dims; symbols bind
   to one size across all inputs. */
static Status check_inputs(const Model *m, Tensor *inputs, Err *err)
{
    const Graph *g = &m->graphs[0];
    int64_t bound[0x100];
    const char *bound_by[0x100];
    char decl[128], got[128];
    for (int32_t s = 0; s < 0x100; s++) bound[s] = -1;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const Value *v = &m->values[g->inputs[i]];
        const Tensor *t = &inputs[i];
        if (!value_present(t))
            return fail(err, ST_BAD_REQUEST, "request: input '%s' is missing",
                        v->name);
        /* sequences and empty optionals: items may have any shape */
        if (t->kind == TK_SEQ_TENSOR || t->kind == TK_NONE)
            continue;
        int ok = v->rank < 0 || v->rank == t->ndim;
        for (int32_t d = 0; ok && v->rank >= 0 && d < v->rank; d++) {
            int32_t dd = v->dims[d];
            if (dd >= 0) {
                ok = dd == t->dims[d];
            } else if (DIM_IS_SYMBOL(dd) && DIM_SYMBOL(dd) < 0x100) {
                int32_t s = DIM_SYMBOL(dd);
                if (bound[s] >= 0 && bound[s] != t->dims[d])
                    return fail(err, ST_BAD_REQUEST, "request: dimension "
                                "'%s' is %lld for input '%s' but %lld for "
                                "input '%s'", m->symbols[s],
                                (long long)t->dims[d], v->name,
                                (long long)bound[s], bound_by[s]);
                bound[s] = t->dims[d];
                bound_by[s] = v->name;
            }
        }
        if (!ok)
            return fail(err, ST_BAD_REQUEST, "request: input '%s' expects "
                        "shape %s, got %s", v->name,
                        declared_str(m, v, decl, sizeof decl),
                        shape_str(t->dims, t->ndim, got, sizeof got));
    }
    return ST_OK;
}

/* Without a "type": is "input" base64 TensorProto text, as hosts of the
   older ABI send it? True for a bare string, and for a list or object whose
   first entry is a string that is neither a float word ("NaN", ...) nor an
   element of a string input. */
static int default_is_pb(const Model *m, const Fields *f, Err *err)
{
    Json ij = {f->input.start, f->input.end, err};
    int c = json_peek(&ij), entry = 0;
    if (c == '"')
        return 1;
    if (c != '[' && c != '{')
        return 0;
    ij.p++;
    if (c == '{') {
        char name[NAME_CAP];
        if (json_string(&ij, name, sizeof name, NULL) != ST_OK ||
            json_expect(&ij, ':', "':'") != ST_OK ||
            (entry = input_index(m, name)) < 0)
            return 0;
    }
    char word[16];
    if (json_peek(&ij) != '"' ||
        m->values[m->graphs[0].inputs[entry]].dtype == DT_STRING)
        return 0;
    if (json_string(&ij, word, sizeof word, NULL) == ST_OK &&
        (!strcmp(word, "NaN") || !strcmp(word, "Infinity") ||
         !strcmp(word, "-Infinity")))
        return 0;
    return 1;
}

Status request_parse(const Model *m, const char *text, size_t len,
                     Tensor *inputs, RequestOptions *opt, Err *err)
{
    Json j = {text, text + len, err};
    Fields f;
    char type[NAME_CAP], out_type[NAME_CAP];
    const Graph *g = &m->graphs[0];
    memset(opt, 0, sizeof *opt);

    /* step 1: the object and its fields */
    Status st = read_fields(&j, &f);
    if (st == ST_OK && !f.has_input)
        st = fail(err, ST_BAD_REQUEST, "request: missing key \"input\" "
                  "(expected {\"input\": ...})");
    if (st == ST_OK)
        st = field_string(&j, &f.type, f.has_type, type, sizeof type, "type");
    if (st == ST_OK)
        st = field_string(&j, &f.output_type, f.has_output_type, out_type,
                          sizeof out_type, "output_type");

    /* step 2: which form */
    int pb_default = st == ST_OK && !type[0] && default_is_pb(m, &f, err);
    int form = !strcmp(type, "raw") ? FORM_RAW
             : !strcmp(type, "pb") || (!type[0] && pb_default) ? FORM_PB
                                                               : FORM_JSON;
    if (st == ST_OK && type[0] && strcmp(type, "raw") && strcmp(type, "json") &&
        strcmp(type, "pb"))
        st = fail(err, ST_BAD_REQUEST, "request: unknown \"type\": \"%s\" "
                  "(expected \"raw\", \"pb\" or \"json\")", type);
    if (st == ST_OK && out_type[0] && strcmp(out_type, "raw") &&
        strcmp(out_type, "json") && strcmp(out_type, "pb"))
        st = fail(err, ST_BAD_REQUEST, "request: unknown \"output_type\": "
                  "\"%s\" (expected \"raw\", \"pb\" or \"json\")", out_type);
    opt->raw_output = !strcmp(out_type, "raw") ? RESPONSE_RAW
                    : !strcmp(out_type, "pb") ? RESPONSE_PB : RESPONSE_JSON;

    /* step 3: the tensors, then the checks */
    if (st == ST_OK)
        st = parse_inputs(m, &j, &f, form, inputs);
    if (st == ST_OK)
        st = check_inputs(m, inputs, err);
    if (st != ST_OK)
        for (int32_t i = 0; i < g->n_inputs; i++)
            tensor_release(&inputs[i]);
    return st;
}
