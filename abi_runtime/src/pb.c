/*
 * pb.c: ONNX TensorProto (protobuf wire format) -> tensor, bounds-checked.
 *
 * Two passes over the message: the first checks every field and counts the
 * elements of each data field, the second (typed fields only) converts
 * them into the tensor. raw_data is copied as is (little-endian).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb.h"

/* Protobuf wire types. */
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* TensorProto field numbers. */
enum {
    F_DIMS = 1, F_DATA_TYPE = 2, F_SEGMENT = 3, F_FLOAT = 4, F_INT32 = 5,
    F_STRING = 6, F_INT64 = 7, F_NAME = 8, F_RAW = 9, F_DOUBLE = 10,
    F_UINT64 = 11, F_EXTERNAL = 13, F_LOCATION = 14, F_MAX = 16
};

static const char *const FIELD_NAMES[F_MAX] = {
    [F_DIMS] = "dims", [F_DATA_TYPE] = "data_type", [F_SEGMENT] = "segment",
    [F_FLOAT] = "float_data", [F_INT32] = "int32_data",
    [F_STRING] = "string_data", [F_INT64] = "int64_data", [F_NAME] = "name",
    [F_RAW] = "raw_data", [F_DOUBLE] = "double_data",
    [F_UINT64] = "uint64_data", [F_EXTERNAL] = "external_data",
    [F_LOCATION] = "data_location",
};

typedef struct {
    const uint8_t *p, *end;
} Reader;

/* What the first pass learns. */
typedef struct {
    int32_t data_type;         /* 0 when absent */
    int32_t ndim;
    int64_t dims[MAX_RANK];
    const uint8_t *raw;        /* raw_data, when present */
    size_t raw_len;
    int has_raw;
    int64_t count[F_MAX];      /* elements seen per data field */
} Scan;

/* A varint of at most 10 bytes whose value fits in 64 bits; 0 if bad. */
static int read_varint(Reader *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return 0;
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return 0; /* bits beyond 64 */
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

static Status bad(Err *err, const Value *v, const char *why, int field)
{
    const char *fname = field > 0 && field < F_MAX && FIELD_NAMES[field]
                            ? FIELD_NAMES[field] : "field";
    if (field == 0)
        return fail(err, ST_BAD_REQUEST, "request: input '%s': invalid "
                    "TensorProto (%s)", v->name, why);
    return fail(err, ST_BAD_REQUEST, "request: input '%s': invalid TensorProto "
                "(%s in %s, field %d)", v->name, why, fname, field);
}

/* The data field that carries elements of dtype in a TensorProto. */
static int data_field(int32_t dtype)
{
    switch (dtype) {
    case DT_FLOAT: return F_FLOAT;
    case DT_DOUBLE: return F_DOUBLE;
    case DT_INT64: return F_INT64;
    case DT_UINT32: case DT_UINT64: return F_UINT64;
    case DT_INT32: case DT_INT16: case DT_INT8: case DT_UINT16: case DT_UINT8:
    case DT_BOOL: case DT_FLOAT16: case DT_BFLOAT16: return F_INT32;
    default: return 0;
    }
}

/* Store element *pos of t from a wire value: bits of a float / double, or
   the integer of a varint field. Fails when it does not fit the dtype. */
static Status store(Tensor *t, int64_t *pos, uint64_t w, const Value *v,
                    Err *err)
{
    int64_t i = (*pos)++;
    int64_t s = (int64_t)w;
    uint8_t *d = (uint8_t *)t->data;
    int ok = 1;
    switch (t->dtype) {
    case DT_FLOAT: { uint32_t b = (uint32_t)w; memcpy(d + 4 * i, &b, 4); break; }
    case DT_DOUBLE: case DT_INT64: case DT_UINT64: memcpy(d + 8 * i, &w, 8); break;
    case DT_UINT32: ok = w <= UINT32_MAX; if (ok) { uint32_t u = (uint32_t)w;
                    memcpy(d + 4 * i, &u, 4); } break;
    case DT_INT32: ok = s >= INT32_MIN && s <= INT32_MAX; if (ok) { int32_t x =
                   (int32_t)s; memcpy(d + 4 * i, &x, 4); } break;
    case DT_INT16: ok = s >= INT16_MIN && s <= INT16_MAX; if (ok) { int16_t x =
                   (int16_t)s; memcpy(d + 2 * i, &x, 2); } break;
    case DT_UINT16: case DT_FLOAT16: case DT_BFLOAT16:
                    ok = s >= 0 && s <= UINT16_MAX; if (ok) {
                    uint16_t x = (uint16_t)s; memcpy(d + 2 * i, &x, 2); } break;
    case DT_INT8: ok = s >= INT8_MIN && s <= INT8_MAX; if (ok) d[i] = (uint8_t)s; break;
    case DT_UINT8: ok = s >= 0 && s <= UINT8_MAX; if (ok) d[i] = (uint8_t)s; break;
    case DT_BOOL: ok = s == 0 || s == 1; if (ok) d[i] = (uint8_t)s; break;
    default: ok = 0; break;
    }
    if (!ok)
        return fail(err, ST_BAD_REQUEST, "request: input '%s': TensorProto "
                    "element %lld (%lld) is out of range for %s", v->name,
                    (long long)i, (long long)s, dtype_name(t->dtype));
    return ST_OK;
}

/* One element of a repeated numeric field, from a packed payload or a
   single field of wire type wt. */
static int read_element(Reader *r, int wt, uint64_t *w)
{
    if (wt == WT_VARINT)
        return read_varint(r, w);
    size_t k = wt == WT_FIXED32 ? 4 : 8;
    if ((size_t)(r->end - r->p) < k)
        return 0;
    uint64_t x = 0;
    for (size_t b = 0; b < k; b++)
        x |= (uint64_t)r->p[b] << (8 * b);
    r->p += k;
    *w = x;
    return 1;
}

/* Element wire type of a repeated numeric field (0 for other fields). */
static int element_wire_type(int field)
{
    switch (field) {
    case F_FLOAT: return WT_FIXED32;
    case F_DOUBLE: return WT_FIXED64;
    case F_DIMS: case F_INT32: case F_INT64: case F_UINT64: return WT_VARINT;
    default: return -1;
    }
}

/*
 * Walk the message once. Without t (first pass): check each field, fill
 * sc. With t (second pass): convert the elements of field `want` into t.
 */
static Status walk(const uint8_t *bytes, size_t n, const Value *v, Scan *sc,
                   Tensor *t, int want, Err *err)
{
    Reader r = {bytes, bytes + n};
    int64_t pos = 0;
    Status st;
    while (r.p < r.end) {
        uint64_t key, w;
        if (!read_varint(&r, &key) || key >> 3 == 0 || key >> 3 > 0x1fffffff)
            return bad(err, v, "bad field key", 0);
        int field = (int)(key >> 3), wt = (int)(key & 7);
        int ewt = element_wire_type(field);
        Reader body = r;

        /* step 1: the field's extent, by wire type */
        if (wt == WT_VARINT) {
            if (!read_varint(&r, &w))
                return bad(err, v, "truncated varint", field);
        } else if (wt == WT_FIXED64 || wt == WT_FIXED32) {
            if (!read_element(&r, wt, &w))
                return bad(err, v, "truncated value", field);
        } else if (wt == WT_LEN) {
            if (!read_varint(&r, &w) || w > (uint64_t)(r.end - r.p))
                return bad(err, v, "length past the end", field);
            body.p = r.p;
            body.end = r.p + w;
            r.p += w;
        } else {
            return bad(err, v, "unsupported wire type", field);
        }

        /* step 2: repeated numbers, packed (WT_LEN) or one per field */
        if (ewt >= 0) {
            if (wt != ewt && wt != WT_LEN)
                return bad(err, v, "wrong wire type", field);
            Reader e = body;
            if (wt != WT_LEN)
                e.end = r.p;
            while (e.p < e.end) {
                if (!read_element(&e, ewt, &w))
                    return bad(err, v, "truncated packed value", field);
                if (t && field == want) {
                    if ((st = store(t, &pos, w, v, err)))
                        return st;
                } else if (!t && field == F_DIMS) {
                    if (sc->ndim >= MAX_RANK)
                        return fail(err, ST_BAD_REQUEST, "request: input '%s': "
                                    "TensorProto has more than %d dims",
                                    v->name, MAX_RANK);
                    if ((int64_t)w < 0)
                        return bad(err, v, "negative dimension", field);
                    sc->dims[sc->ndim++] = (int64_t)w;
                } else if (!t) {
                    sc->count[field]++;
                }
            }
            continue;
        }
        if (t)
            continue;

        /* step 3: the other fields (first pass only) */
        switch (field) {
        case F_DATA_TYPE:
            if (wt != WT_VARINT || w > 0x7fffffff)
                return bad(err, v, "bad value", field);
            sc->data_type = (int32_t)w;
            break;
        case F_NAME:
            if (wt != WT_LEN)
                return bad(err, v, "wrong wire type", field);
            break;
        case F_RAW:
            if (wt != WT_LEN)
                return bad(err, v, "wrong wire type", field);
            sc->raw = body.p;
            sc->raw_len = (size_t)(body.end - body.p);
            sc->has_raw = 1;
            break;
        case F_LOCATION:
            if (wt == WT_VARINT && w == 0)
                break;
            /* fall through: external data */
        case F_SEGMENT: case F_STRING: case F_EXTERNAL:
            return fail(err, ST_BAD_REQUEST, "request: input '%s': TensorProto "
                        "field %s is not supported in requests (send the data "
                        "inline, in raw_data or a typed field)", v->name,
                        FIELD_NAMES[field]);
        default:
            break; /* doc_string, metadata_props, future fields */
        }
    }
    return ST_OK;
}

Status pb_read_tensor(const uint8_t *bytes, size_t n, const Value *v,
                      Tensor *t, Err *err)
{
    Scan sc;
    memset(&sc, 0, sizeof sc);
    Status st = walk(bytes, n, v, &sc, NULL, 0, err);
    if (st != ST_OK)
        return st;

    /* step 1: the dtype */
    if (sc.data_type != v->dtype) {
        char got[32];
        if (sc.data_type > 0 && sc.data_type < DT_COUNT &&
            dtype_size(sc.data_type))
            snprintf(got, sizeof got, "%s", dtype_name(sc.data_type));
        else
            snprintf(got, sizeof got, "data_type %d", (int)sc.data_type);
        return fail(err, ST_BAD_REQUEST, "request: input '%s': TensorProto "
                    "holds %s, the input takes %s", v->name,
                    sc.data_type ? got : "no data_type", dtype_name(v->dtype));
    }
    int want = data_field(v->dtype);
    if (!want)
        return fail(err, ST_UNSUPPORTED_OP, "request: input '%s' has dtype %s, "
                    "which \"pb\" requests do not support", v->name,
                    dtype_name(v->dtype));

    /* step 2: exactly one place holds the data, with one element per cell */
    for (int f = 0; f < F_MAX; f++)
        if (sc.count[f] && (f != want || sc.has_raw))
            return fail(err, ST_BAD_REQUEST, "request: input '%s': TensorProto "
                        "of %s has data in %s%s", v->name, dtype_name(v->dtype),
                        FIELD_NAMES[f], f == want ? " and raw_data" : "");
    /* shape and count first: a hostile dims list must not allocate */
    if ((st = tensor_set_shape(t, v->dtype, sc.ndim, sc.dims, err))) {
        char msg[ERR_CAP];
        snprintf(msg, sizeof msg, "%s", err->msg);
        memset(t, 0, sizeof *t);
        return fail(err, st, "request: input '%s': TensorProto %s", v->name, msg);
    }
    int size = dtype_size(v->dtype);
    int64_t numel = t->numel;
    int64_t have = sc.has_raw ? (int64_t)sc.raw_len : sc.count[want];
    int64_t need = sc.has_raw ? numel * size : numel;
    if (have != need) {
        char dims[96];
        shape_str(t->dims, t->ndim, dims, sizeof dims);
        memset(t, 0, sizeof *t);
        return fail(err, ST_BAD_REQUEST, "request: input '%s': TensorProto dims "
                    "%s of %s need %lld %s, its %s holds %lld", v->name, dims,
                    dtype_name(v->dtype), (long long)need,
                    sc.has_raw ? "bytes" : "elements",
                    sc.has_raw ? "raw_data" : FIELD_NAMES[want], (long long)have);
    }
    if ((st = tensor_alloc(t, v->dtype, sc.ndim, sc.dims, err))) {
        memset(t, 0, sizeof *t);
        return fail(err, st, "request: out of memory reading input '%s'", v->name);
    }

    /* step 3: the elements */
    if (sc.has_raw) {
        if (sc.raw_len)
            memcpy(t->data, sc.raw, sc.raw_len);
        return ST_OK;
    }
    if ((st = walk(bytes, n, v, &sc, t, want, err)))
        tensor_release(t);
    return st;
}

/* ---- writing ------------------------------------------------------------ */

/* Append varint x at out + n (when out is set); returns the new n. */
static size_t put_varint(uint8_t *out, size_t n, uint64_t x)
{
    do {
        uint8_t b = (uint8_t)(x & 0x7f);
        x >>= 7;
        if (out)
            out[n] = (uint8_t)(b | (x ? 0x80 : 0));
        n++;
    } while (x);
    return n;
}

/* Append a length-delimited field: key, length, bytes. */
static size_t put_bytes(uint8_t *out, size_t n, int field, const void *p,
                        size_t len)
{
    n = put_varint(out, n, (uint64_t)field << 3 | WT_LEN);
    n = put_varint(out, n, len);
    if (out && len)
        memcpy(out + n, p, len);
    return n + len;
}

size_t pb_write_tensor(const Tensor *t, const char *name, uint8_t *out)
{
    size_t n = 0;
    for (int32_t d = 0; d < t->ndim; d++) {
        n = put_varint(out, n, F_DIMS << 3 | WT_VARINT);
        n = put_varint(out, n, (uint64_t)t->dims[d]);
    }
    n = put_varint(out, n, F_DATA_TYPE << 3 | WT_VARINT);
    n = put_varint(out, n, (uint64_t)t->dtype);
    n = put_bytes(out, n, F_NAME, name, strlen(name));
    return put_bytes(out, n, F_RAW, t->data, (size_t)tensor_nbytes(t));
}
