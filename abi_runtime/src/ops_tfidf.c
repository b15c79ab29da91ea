/*
 * ops_tfidf.c: TfIdfVectorizer, n-gram counts of int or string sequences.
 *
 * The pool of n-grams (pool_int64s or pool_strings, grouped by length
 * through ngram_counts) becomes a trie at load: each node is one item
 * following its parent (parent -1: the root), and a node that ends an
 * n-gram of the wanted lengths carries that n-gram's id (1-based; 0 for
 * none). Children are found through one hash table keyed by (parent, item).
 * Counting walks the trie from every start position of a row, once per
 * skip distance, as the ONNX reference does.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"

#define TF_MAX_OUTPUT (1 << 26) /* columns of Y */

typedef enum { TF_TF, TF_IDF, TF_TFIDF } TfMode;

typedef struct {
    int32_t parent;     /* node index, -1 for the root */
    int32_t ngram_id;   /* 1-based id of the n-gram ending here, 0 none */
    int64_t key;        /* int item */
    const char *skey;   /* string item (pool_strings), else NULL */
    uint32_t hash;
} TfNode;

typedef struct {
    int mode;           /* TfMode */
    int strings;        /* the pool holds strings */
    int64_t min_len, max_len, max_skip;
    int64_t output_size;
    int32_t n_ids;      /* n-grams in the pool: ngram_indexes has n_ids */
    const int64_t *index_of; /* ngram_indexes, read into params */
    const float *weights; /* per n-gram (n_ids), NULL when all 1 */
    int32_t n_nodes, cap_nodes;
    TfNode *nodes;
    uint32_t mask;      /* table size - 1 */
    int32_t *table;     /* node index + 1, 0 empty */
    int64_t *buf;       /* ngram_indexes */
    float *wbuf;        /* weights */
} TfParams;

/* Hash of an int item (Fibonacci multiply, both halves folded). */
static uint32_t tf_hash_int(int64_t v)
{
    uint64_t x = (uint64_t)v * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}

/* Hash of a string item (FNV-1a over its bytes). */
static uint32_t tf_hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* Slot of the (parent, item) pair in the table: its node + 1, or 0. */
static int32_t tf_find(const TfParams *p, int32_t parent, int64_t key,
                       const char *skey, uint32_t hash)
{
    uint32_t slot = (hash ^ ((uint32_t)parent * 0x85EBCA6Bu)) & p->mask;
    for (;; slot = (slot + 1) & p->mask) {
        int32_t k = p->table[slot];
        if (k == 0)
            return 0;
        const TfNode *t = &p->nodes[k - 1];
        if (t->parent == parent && t->hash == hash &&
            (skey ? !strcmp(t->skey, skey) : t->key == key))
            return k;
    }
}

/* The child of parent for the item, created when absent; -1 on OOM. */
static int32_t tf_child(TfParams *p, int32_t parent, int64_t key,
                        const char *skey)
{
    uint32_t hash = skey ? tf_hash_str(skey) : tf_hash_int(key);
    int32_t k = tf_find(p, parent, key, skey, hash);
    if (k)
        return k - 1;
    if (p->n_nodes == p->cap_nodes)
        return -1; /* sized for the whole pool at load */
    TfNode *t = &p->nodes[p->n_nodes];
    *t = (TfNode){parent, 0, key, skey, hash};
    uint32_t slot = (hash ^ ((uint32_t)parent * 0x85EBCA6Bu)) & p->mask;
    while (p->table[slot])
        slot = (slot + 1) & p->mask;
    p->table[slot] = ++p->n_nodes;
    return p->n_nodes - 1;
}

/* Free TfParams and its arrays (n->free_params of TfIdfVectorizer). */
static void free_tfidf(void *q)
{
    TfParams *p = q;
    if (!p)
        return;
    free(p->nodes);
    free(p->table);
    free(p->buf);
    free(p->wbuf);
    free(p);
}

/* Read and check the attributes (sizes of groups, indexes, weights). */
static Status tf_read_attrs(const Node *n, TfParams *p, const Attr **pool,
                            const Attr **counts, Err *err)
{
    const char *mode = attr_string(n, "mode", "");
    p->mode = !strcmp(mode, "TF") ? TF_TF : !strcmp(mode, "IDF") ? TF_IDF
              : !strcmp(mode, "TFIDF") ? TF_TFIDF : -1;
    if (p->mode < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "mode '%.20s' is not TF, "
                         "IDF or TFIDF", mode);
    p->min_len = attr_int(n, "min_gram_length", 0);
    p->max_len = attr_int(n, "max_gram_length", 0);
    p->max_skip = attr_int(n, "max_skip_count", 0);
    if (p->min_len < 1 || p->max_len < p->min_len || p->max_skip < 0 ||
        p->max_skip > INT32_MAX)
        return node_fail(n, err, ST_BAD_FORMAT, "expected 1 <= min_gram_length "
                         "<= max_gram_length and max_skip_count >= 0, got %lld, "
                         "%lld, %lld", (long long)p->min_len,
                         (long long)p->max_len, (long long)p->max_skip);
    const Attr *ints = node_attr(n, "pool_int64s");
    const Attr *strs = node_attr(n, "pool_strings");
    if ((ints && ints->count == 0) || (ints && ints->type != AT_INTS))
        ints = NULL;
    if ((strs && strs->count == 0) || (strs && strs->type != AT_STRINGS))
        strs = NULL;
    if ((ints != NULL) == (strs != NULL))
        return node_fail(n, err, ST_BAD_FORMAT, "expected exactly one of "
                         "pool_int64s and pool_strings");
    *pool = ints ? ints : strs;
    p->strings = strs != NULL;
    *counts = node_attr(n, "ngram_counts");
    const Attr *idx = node_attr(n, "ngram_indexes");
    if (!*counts || (*counts)->type != AT_INTS || !idx || idx->type != AT_INTS ||
        idx->count == 0)
        return node_fail(n, err, ST_BAD_FORMAT, "missing INTS attributes "
                         "ngram_counts and ngram_indexes");
    p->n_ids = idx->count;
    p->buf = malloc(sizeof(int64_t) * (size_t)idx->count);
    if (!p->buf)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int32_t i = 0; i < idx->count; i++) {
        p->buf[i] = attr_ints_at(idx, i);
        if (p->buf[i] < 0 || p->buf[i] >= TF_MAX_OUTPUT)
            return node_fail(n, err, ST_BAD_FORMAT, "ngram_indexes[%d] = %lld "
                             "is outside [0, %d)", (int)i, (long long)p->buf[i],
                             TF_MAX_OUTPUT);
        if (p->buf[i] + 1 > p->output_size)
            p->output_size = p->buf[i] + 1;
    }
    p->index_of = p->buf;
    /* weights: one per n-gram of the pool, as ngram_indexes */
    const Attr *w = node_attr(n, "weights");
    if (w && w->count > 0) {
        if (w->type != AT_FLOATS || w->count != idx->count)
            return node_fail(n, err, ST_BAD_FORMAT, "weights must be floats, "
                             "one per n-gram (%d), got %d", (int)idx->count,
                             (int)w->count);
        p->wbuf = malloc(sizeof(float) * (size_t)w->count);
        if (!p->wbuf)
            return node_fail(n, err, ST_OOM, "out of memory");
        for (int32_t i = 0; i < w->count; i++)
            p->wbuf[i] = attr_floats_at(w, i);
        p->weights = p->wbuf;
    }
    return ST_OK;
}

/* Build the trie of the n-grams of the pool whose length is wanted. */
Status prep_tfidf(const Model *m, Node *n, Err *err)
{
    TfParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_tfidf;
    const Attr *pool, *counts;
    Status st = tf_read_attrs(n, p, &pool, &counts, err);
    if (st != ST_OK)
        return st;

    /* step 1: room for one node per pool item, a table twice as large */
    int32_t total = pool->count;
    uint32_t size = 16;
    while (size < 2u * (uint32_t)total + 2)
        size *= 2;
    p->cap_nodes = total;
    p->nodes = calloc((size_t)(total ? total : 1), sizeof(TfNode));
    p->table = calloc(size, sizeof(int32_t));
    p->mask = size - 1;
    if (!p->nodes || !p->table)
        return node_fail(n, err, ST_OOM, "out of memory");

    /* no n-gram is longer than the number of groups: bounding max_len keeps
       the skip arithmetic of tf_count_row far from overflow */
    if (p->max_len > counts->count)
        p->max_len = counts->count;

    /* step 2: group g of the pool holds n-grams of length g + 1 */
    int64_t id = 1;
    for (int32_t g = 0; g < counts->count; g++) {
        int64_t begin = attr_ints_at(counts, g);
        int64_t end = g + 1 < counts->count ? attr_ints_at(counts, g + 1) : total;
        int64_t len = g + 1;
        if (begin < 0 || end < begin || end > total || (end - begin) % len)
            return node_fail(n, err, ST_BAD_FORMAT, "ngram_counts[%d] = %lld: "
                             "group [%lld, %lld) does not split the pool of %d "
                             "into %lld-grams", (int)g, (long long)begin,
                             (long long)begin, (long long)end, (int)total,
                             (long long)len);
        int64_t grams = (end - begin) / len;
        if (len < p->min_len || len > p->max_len) {
            id += grams;
            continue;
        }
        for (int64_t k = 0; k < grams; k++, id++) {
            if (id > p->n_ids)
                return node_fail(n, err, ST_BAD_FORMAT, "the pool has more "
                                 "n-grams than ngram_indexes (%d)",
                                 (int)p->n_ids);
            int32_t node = -1;
            for (int64_t j = 0; j < len; j++) {
                int32_t item = (int32_t)(begin + k * len + j);
                node = p->strings ? tf_child(p, node, 0, pool->strs[item])
                                  : tf_child(p, node, attr_ints_at(pool, item),
                                             NULL);
                if (node < 0)
                    return node_fail(n, err, ST_OOM, "out of memory");
            }
            p->nodes[node].ngram_id = (int32_t)id;
        }
    }
    return ST_OK;
}

/* Apply one occurrence of n-gram id (1-based) to its column of y. */
static void tf_hit(const TfParams *p, int32_t id, float *y)
{
    float w = p->weights ? p->weights[id - 1] : 1.0f;
    float *dst = &y[p->index_of[id - 1]];
    *dst = p->mode == TF_TF ? *dst + 1.0f : p->mode == TF_IDF ? w : *dst + w;
}

/* Apply the n-grams of one row (c items of x from element first) to y
   (output_size,), in the order onnxruntime visits them. */
static void tf_count_row(const TfParams *p, const Tensor *x, int64_t first,
                         int64_t c, float *y)
{
    const char *const *xs = x->dtype == DT_STRING ? x->data : NULL;
    int64_t start_len = p->min_len;
    if (start_len > p->max_len)
        return; /* no n-gram of the pool is long enough */
    for (int64_t skip = 1; skip <= p->max_skip + 1; skip++) {
        for (int64_t s = 0; s < c; s++) {
            /* too close to the end for an n-gram of the smallest length */
            if (s + skip * (start_len - 1) >= c)
                break;
            int32_t node = -1;
            for (int64_t len = 1, at = s; len <= p->max_len && at < c;
                 len++, at += skip) {
                int64_t key = xs ? 0 : tensor_get_int(x, first + at);
                const char *skey = xs ? xs[first + at] : NULL;
                uint32_t h = skey ? tf_hash_str(skey) : tf_hash_int(key);
                int32_t k = tf_find(p, node, key, skey, h);
                if (!k)
                    break;
                node = k - 1;
                int32_t id = p->nodes[node].ngram_id;
                if (len >= start_len && id != 0)
                    tf_hit(p, id, y);
            }
        }
        /* unigrams do not depend on the skip: count them once */
        if (start_len == 1) {
            start_len = 2;
            if (start_len > p->max_len)
                break;
        }
    }
}

/*
 * Y (B, output_size) or (output_size,) float32: the n-grams of each row of
 * X ((B, C) or (C,), int32, int64 or string) counted into their columns
 * ngram_indexes[id]: TF adds 1 per occurrence, TFIDF adds the n-gram's
 * weight, IDF sets it (on a column shared by several n-grams the last
 * occurrence wins), as onnxruntime does.
 */
Status op_tfidf(const Node *n, Tensor *const *in, Tensor *const *out,
                Err *err)
{
    const TfParams *p = n->params;
    const Tensor *x = in[0];
    int want_str = p->strings;
    if ((want_str && x->dtype != DT_STRING) ||
        (!want_str && x->dtype != DT_INT32 && x->dtype != DT_INT64))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input is %s, the pool "
                         "holds %s", dtype_name(x->dtype),
                         want_str ? "strings" : "int64s (input int32 or int64)");
    if (x->ndim > 2)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected input rank 1 or "
                         "2, got %d", (int)x->ndim);
    int64_t rows = x->ndim == 2 ? x->dims[0] : 1;
    int64_t c = x->ndim == 0 ? 1 : x->dims[x->ndim - 1];
    int64_t dims[2] = {rows, p->output_size};
    Status st = x->ndim == 2 ? tensor_alloc(out[0], DT_FLOAT, 2, dims, err)
                             : tensor_alloc(out[0], DT_FLOAT, 1, dims + 1, err);
    if (st != ST_OK)
        return st;
    float *y = out[0]->data; /* (rows, output_size) */
    memset(y, 0, (size_t)tensor_nbytes(out[0]));
    for (int64_t r = 0; r < rows; r++)
        tf_count_row(p, x, r * c, c, y + r * p->output_size);
    return ST_OK;
}
