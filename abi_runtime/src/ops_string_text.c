/*
 * ops_string_text.c: text ops on string tensors: StringConcat, StringSplit,
 * StringNormalizer and Equal on strings.
 *
 * Strings are NUL-terminated UTF-8 (tensor.h); the strings made here live
 * in the request's string arena (str_dup). Ops that look at code points
 * (whitespace splitting, case changes) refuse invalid UTF-8 with an error
 * naming the element and the byte offset.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "case_table.h"
#include "ops.h"
#include "utf8.h"

static const char EMPTY[] = "";

/* ---- two-input broadcasting ------------------------------------------ */

/* Output shape of a (op) b and, per input, element strides (0 where the
   input is broadcast), numpy style. */
typedef struct {
    int32_t ndim;
    int64_t dims[MAX_RANK];
    int64_t st[2][MAX_RANK];
} Bcast2;

/* Fill bc for a (op) b; fails naming both shapes when they do not
   broadcast. */
static Status bcast2_init(const Node *n, const Tensor *a, const Tensor *b,
                          Bcast2 *bc, Err *err)
{
    const Tensor *t[2] = {a, b};
    char s0[96], s1[96];
    bc->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int32_t i = 0; i < bc->ndim; i++) {
        int64_t d[2];
        for (int j = 0; j < 2; j++) {
            int32_t ij = i - (bc->ndim - t[j]->ndim);
            d[j] = ij >= 0 ? t[j]->dims[ij] : 1;
            bc->st[j][i] = (ij >= 0 && d[j] != 1) ? t[j]->strides[ij] : 0;
        }
        if (d[0] != d[1] && d[0] != 1 && d[1] != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast %s "
                             "with %s", shape_str(a->dims, a->ndim, s0, 96),
                             shape_str(b->dims, b->ndim, s1, 96));
        bc->dims[i] = d[0] == 1 ? d[1] : d[0];
    }
    return ST_OK;
}

/* Offsets into a and b of output element i. */
static void bcast2_offsets(const Bcast2 *bc, int64_t i, int64_t *oa,
                           int64_t *ob)
{
    *oa = *ob = 0;
    for (int32_t d = bc->ndim - 1; d >= 0; d--) {
        int64_t k = bc->dims[d] ? i % bc->dims[d] : 0;
        i = bc->dims[d] ? i / bc->dims[d] : 0;
        *oa += k * bc->st[0][d];
        *ob += k * bc->st[1][d];
    }
}

/* Fail unless input index of n is a string tensor. */
static Status require_string(const Node *n, const Tensor *t, int index,
                             Err *err)
{
    if (t->dtype == DT_STRING)
        return ST_OK;
    return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is %s, expected "
                     "string", index, dtype_name(t->dtype));
}

/* Fail naming element i when s is not valid UTF-8. */
static Status require_utf8(const Node *n, const char *s, int64_t i, Err *err)
{
    ptrdiff_t at = utf8_invalid_at(s, strlen(s));
    if (at < 0)
        return ST_OK;
    return node_fail(n, err, ST_BAD_REQUEST, "element %lld is not valid UTF-8 "
                     "(bad byte 0x%02x at offset %ld)", (long long)i,
                     (unsigned char)s[at], (long)at);
}

/* ---- StringConcat and Equal ------------------------------------------ */

/* Y[i] = A[i] + B[i] (text concatenation), broadcasting. */
Status op_string_concat(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    Status st;
    Bcast2 bc;
    if ((st = require_string(n, a, 0, err)) || (st = require_string(n, b, 1, err)) ||
        (st = bcast2_init(n, a, b, &bc, err)) ||
        (st = tensor_alloc(out[0], DT_STRING, bc.ndim, bc.dims, err)))
        return st;
    const char *const *as = a->data, *const *bs = b->data;
    const char **ys = out[0]->data;
    for (int64_t i = 0; i < out[0]->numel; i++) {
        int64_t oa, ob;
        bcast2_offsets(&bc, i, &oa, &ob);
        size_t la = strlen(as[oa]), lb = strlen(bs[ob]);
        char *text = malloc(la + lb + 1);
        if (!text)
            return node_fail(n, err, ST_OOM, "out of memory");
        memcpy(text, as[oa], la);
        memcpy(text + la, bs[ob], lb);
        ys[i] = str_dup(text, la + lb);
        free(text);
        if (!ys[i])
            return node_fail(n, err, ST_OOM, "out of memory");
    }
    return ST_OK;
}

/* Y (bool) = A == B by text, broadcasting (declared in ops.h). */
Status string_equal(const Node *n, const Tensor *a, const Tensor *b,
                    Tensor *y, Err *err)
{
    Status st;
    Bcast2 bc;
    if ((st = require_string(n, b, 1, err)) || (st = bcast2_init(n, a, b, &bc, err)) ||
        (st = tensor_alloc(y, DT_BOOL, bc.ndim, bc.dims, err)))
        return st;
    const char *const *as = a->data, *const *bs = b->data;
    uint8_t *ys = y->data;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t oa, ob;
        bcast2_offsets(&bc, i, &oa, &ob);
        ys[i] = strcmp(as[oa], bs[ob]) == 0;
    }
    return ST_OK;
}

/* ---- StringSplit ------------------------------------------------------ */

/* Length of the whitespace code point at s (str.split's set), else 0. */
static int space_len(const unsigned char *s, size_t n)
{
    int32_t cp;
    int len = utf8_decode(s, n, &cp);
    int space = (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) ||
                cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
                (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
                cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
    return len && space ? len : 0;
}

/* Length of the code point at s (valid UTF-8, checked by the caller). */
static size_t cp_len(const unsigned char *s, size_t n)
{
    int32_t cp;
    int len = utf8_decode(s, n, &cp);
    return len ? (size_t)len : 1;
}

/* Offset of the first d (dn > 0 bytes) in s[i..n), or -1. Linear in the
   distance to the hit (wasi-libc's strstr rescans the rest of s). */
static ptrdiff_t find_delim(const char *s, size_t i, size_t n, const char *d,
                            size_t dn)
{
    while (i + dn <= n) {
        const char *hit = memchr(s + i, d[0], n - i - dn + 1);
        if (!hit)
            return -1;
        i = (size_t)(hit - s);
        if (!memcmp(hit, d, dn))
            return (ptrdiff_t)i;
        i++;
    }
    return -1;
}

/*
 * Split s the way Python's str.split(delim, maxsplit) does: on each
 * occurrence of delim, or on runs of whitespace when delim is empty
 * (leading and trailing whitespace ignored). maxsplit < 0: no limit.
 * Writes up to cap pieces (begin offset and length) into at/len when at
 * is not NULL; returns the number of pieces.
 */
static int64_t split_text(const char *s, const char *delim, int64_t maxsplit,
                          int64_t *at, int64_t *len, int64_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), dn = strlen(delim), i = 0;
    int64_t count = 0, left = maxsplit < 0 ? INT64_MAX : maxsplit;
#define SPLIT_ADD(b, e)                                                       \
    do {                                                                      \
        if (at && count < cap) {                                              \
            at[count] = (int64_t)(b);                                         \
            len[count] = (int64_t)((e) - (b));                                \
        }                                                                     \
        count++;                                                              \
    } while (0)
    if (dn) {
        while (left-- > 0) {
            ptrdiff_t hit = find_delim(s, i, n, delim, dn);
            if (hit < 0)
                break;
            SPLIT_ADD(i, (size_t)hit);
            i = (size_t)hit + dn;
        }
        SPLIT_ADD(i, n);
        return count;
    }
    int w;
    while (left-- > 0) {
        while (i < n && (w = space_len(u + i, n - i)))
            i += (size_t)w;
        if (i == n)
            break;
        size_t j = i;
        while (i < n && !space_len(u + i, n - i))
            i += cp_len(u + i, n - i);
        SPLIT_ADD(j, i);
    }
    while (i < n && (w = space_len(u + i, n - i)))
        i += (size_t)w;
    if (i < n)
        SPLIT_ADD(i, n);
#undef SPLIT_ADD
    return count;
}

/* Substrings (x.shape + (k,)), padded with "" to the most pieces k, and
   Length (x.shape) int64, the number of pieces of each element. */
Status op_string_split(const Node *n, Tensor *const *in, Tensor *const *out,
                       Err *err)
{
    const Tensor *x = in[0];
    const char *delim = attr_string(n, "delimiter", EMPTY);
    int64_t maxsplit = attr_int(n, "maxsplit", -1);
    Status st = require_string(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (x->ndim >= MAX_RANK)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input rank %d leaves no "
                         "room for the pieces axis (rank limit %d)",
                         (int)x->ndim, MAX_RANK);

    /* step 1: count the pieces of every element */
    const char *const *xs = x->data;
    int64_t most = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (!delim[0] && (st = require_utf8(n, xs[i], i, err)))
            return st;
        int64_t k = split_text(xs[i], delim, maxsplit, NULL, NULL, 0);
        most = k > most ? k : most;
    }

    /* step 2: allocate Substrings (..., most) and Length (...) */
    int64_t dims[MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[x->ndim] = most;
    if ((st = tensor_alloc(out[0], DT_STRING, x->ndim + 1, dims, err)))
        return st;
    Tensor *lengths = n->n_out > 1 ? out[1] : NULL; /* NULL: not wanted */
    if (lengths && (st = tensor_alloc(lengths, DT_INT64, x->ndim, x->dims, err)))
        return st;
    /* calloc: fails rather than wraps when the size overflows size_t */
    int64_t *at = calloc((size_t)(2 * most + 1), sizeof(int64_t));
    if (!at)
        return node_fail(n, err, ST_OOM, "out of memory");
    int64_t *len = at + most;

    /* step 3: cut each element, pad with "" */
    const char **ys = out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = split_text(xs[i], delim, maxsplit, at, len, most);
        for (int64_t p = 0; p < most; p++) {
            ys[i * most + p] = p < k ? str_dup(xs[i] + at[p], (size_t)len[p]) : EMPTY;
            if (!ys[i * most + p]) {
                free(at);
                return node_fail(n, err, ST_OOM, "out of memory");
            }
        }
        if (lengths)
            ((int64_t *)lengths->data)[i] = k;
    }
    free(at);
    return ST_OK;
}

/* ---- StringNormalizer ------------------------------------------------- */

typedef enum { CASE_NONE, CASE_LOWER, CASE_UPPER } CaseAction;

typedef struct {
    int action;           /* CaseAction */
    int case_sensitive;
    int ascii_only;       /* the "C" locale changes ASCII letters only */
    int32_t n_stops;
    const char **stops;   /* as given, or lower-cased when insensitive */
} NormParams;

/* cp in upper (or lower) case by the simple mappings of case_table.h. */
static int32_t case_map_cp(int32_t cp, int upper)
{
    const CaseRun *runs = upper ? CASE_TO_UPPER : CASE_TO_LOWER;
    int lo = 0, hi = upper ? (int)(sizeof CASE_TO_UPPER / sizeof *runs)
                           : (int)(sizeof CASE_TO_LOWER / sizeof *runs);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cp < runs[mid].lo)
            hi = mid;
        else if (cp > runs[mid].hi)
            lo = mid + 1;
        else
            return (cp - runs[mid].lo) % runs[mid].step ? cp : cp + runs[mid].delta;
    }
    return cp;
}

/*
 * Write s (valid UTF-8, n bytes) with every code point changed to upper or
 * lower case into dst, which holds at least 2 * n + 1 bytes (a simple
 * mapping grows a code point by one byte at most, from 2 to 3 bytes).
 * Returns the length written (no NUL).
 */
static size_t case_change(const char *s, size_t n, int upper, int ascii_only,
                          char *dst)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        int len = utf8_decode(u + i, n - i, &cp);
        if (!len) { /* unreachable for checked input; copy the byte */
            dst[o++] = s[i++];
            continue;
        }
        i += (size_t)len;
        if (ascii_only)
            cp = cp >= 0x80 ? cp
               : upper ? (cp >= 'a' && cp <= 'z' ? cp - 32 : cp)
                       : (cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        else
            cp = case_map_cp(cp, upper);
        o += (size_t)utf8_encode(cp, dst + o);
    }
    return o;
}

/* Free NormParams and the stopwords it lower-cased. */
static void free_norm_params(void *p)
{
    NormParams *np = p;
    if (!np)
        return;
    if (!np->case_sensitive)
        for (int32_t i = 0; i < np->n_stops; i++)
            free((char *)np->stops[i]);
    free(np->stops);
    free(np);
}

/* Turkic locales map i and I to dotted and dotless forms. */
static int is_turkic(const char *loc)
{
    return (!strncmp(loc, "tr", 2) || !strncmp(loc, "az", 2)) &&
           (loc[2] == 0 || loc[2] == '_' || loc[2] == '-' || loc[2] == '.');
}

/* Read case_change_action, is_case_sensitive, locale and stopwords. */
Status prep_string_normalizer(const Model *m, Node *n, Err *err)
{
    const char *action = attr_string(n, "case_change_action", "NONE");
    const char *loc = attr_string(n, "locale", "");
    int act = !strcmp(action, "NONE") ? CASE_NONE : !strcmp(action, "LOWER")
              ? CASE_LOWER : !strcmp(action, "UPPER") ? CASE_UPPER : -1;
    if (act < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "case_change_action '%.40s' "
                         "is not NONE, LOWER or UPPER", action);
    if (is_turkic(loc))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "locale '%.40s' is not "
                         "supported (Turkic dotted/dotless i casing)", loc);
    NormParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_norm_params;
    p->action = act;
    p->case_sensitive = attr_int(n, "is_case_sensitive", 0) != 0;
    p->ascii_only = !strcmp(loc, "C") || !strcmp(loc, "POSIX");
    const Attr *a = node_attr(n, "stopwords");
    if (!a || a->count == 0)
        return ST_OK;
    if (a->type != AT_STRINGS)
        return node_fail(n, err, ST_BAD_FORMAT, "stopwords must be strings");
    p->stops = calloc((size_t)a->count, sizeof *p->stops);
    if (!p->stops)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int32_t i = 0; i < a->count; i++) {
        const char *w = a->strs[i];
        size_t len = strlen(w);
        if (utf8_invalid_at(w, len) >= 0)
            return node_fail(n, err, ST_BAD_FORMAT, "stopword %d is not valid "
                             "UTF-8", (int)i);
        if (p->case_sensitive) {
            p->stops[p->n_stops++] = w;
            continue;
        }
        char *low = len < SIZE_MAX / 2 ? malloc(2 * len + 1) : NULL;
        if (!low)
            return node_fail(n, err, ST_OOM, "out of memory");
        low[case_change(w, len, 0, p->ascii_only, low)] = 0;
        p->stops[p->n_stops++] = low;
    }
    return ST_OK;
}

/* 1 when s is one of the stopwords (lower-cased first when insensitive);
   tmp holds at least 2 * strlen(s) + 1 bytes. */
static int is_stopword(const NormParams *p, const char *s, char *tmp)
{
    if (!p->n_stops)
        return 0;
    if (!p->case_sensitive) {
        tmp[case_change(s, strlen(s), 0, p->ascii_only, tmp)] = 0;
        s = tmp;
    }
    for (int32_t k = 0; k < p->n_stops; k++)
        if (!strcmp(s, p->stops[k]))
            return 1;
    return 0;
}

/* Y = the elements of X ((C,) or (1, C)) that are not stopwords, case
   changed; a single "" when none is left. */
Status op_string_normalizer(const Node *n, Tensor *const *in,
                            Tensor *const *out, Err *err)
{
    const NormParams *p = n->params;
    const Tensor *x = in[0];
    char shape[96];
    Status st = require_string(n, x, 0, err);
    if (st != ST_OK)
        return st;
    if (!(x->ndim == 1 || (x->ndim == 2 && x->dims[0] == 1)))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected input shape (C,) "
                         "or (1, C), got %s",
                         shape_str(x->dims, x->ndim, shape, sizeof shape));
    const char *const *xs = x->data;
    size_t longest = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        size_t len = strlen(xs[i]);
        longest = len > longest ? len : longest;
        if ((p->action != CASE_NONE || !p->case_sensitive) &&
            (st = require_utf8(n, xs[i], i, err)))
            return st;
    }
    char *tmp = longest < SIZE_MAX / 2 ? malloc(2 * longest + 1) : NULL;
    int64_t *keep = calloc((size_t)x->numel + 1, sizeof(int64_t));
    if (!tmp || !keep) {
        free(tmp);
        free(keep);
        return node_fail(n, err, ST_OOM, "out of memory");
    }

    /* step 1: the elements that are not stopwords */
    int64_t kept = 0;
    for (int64_t i = 0; i < x->numel; i++)
        if (!is_stopword(p, xs[i], tmp))
            keep[kept++] = i;

    /* step 2: Y, case changed */
    int64_t dims[2] = {1, kept ? kept : 1};
    st = tensor_alloc(out[0], DT_STRING, x->ndim, x->ndim == 2 ? dims : dims + 1,
                      err);
    const char **ys = st == ST_OK ? out[0]->data : NULL;
    if (ys && !kept)
        ys[0] = EMPTY;
    for (int64_t k = 0; ys && k < kept; k++) {
        const char *s = xs[keep[k]];
        if (p->action == CASE_NONE) {
            ys[k] = s;
            continue;
        }
        size_t len = case_change(s, strlen(s), p->action == CASE_UPPER,
                                 p->ascii_only, tmp);
        if (!(ys[k] = str_dup(tmp, len))) {
            st = node_fail(n, err, ST_OOM, "out of memory");
            break;
        }
    }
    free(tmp);
    free(keep);
    return st;
}
