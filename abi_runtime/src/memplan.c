/*
 * memplan.c: the static memory plan of the main graph's activations.
 *
 * Planning (once per set of input dims):
 *   1. bind the symbols of the declared input dims to the request's dims;
 *   2. size every tensor activation of graph 0 from its declared dims;
 *      its lifetime runs from the node writing it to its last use (the
 *      end of the graph for graph outputs), both from the plan;
 *   3. place the values largest first, each at the lowest offset that
 *      overlaps no placed value whose lifetime overlaps its own;
 *   4. grow the arena to the highest end.
 * Running: tensor_alloc asks memplan_claim for the bytes of a slot.
 */
#include "memplan.h"
#include "sort.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_BYTES 65536
#define ARENA_ALIGN 64 /* every slot starts on a cache line */
#define KEY_DIMS (MAX_RANK + 1) /* per input: rank, then dims */

typedef struct {
    int64_t off, size; /* bytes in the arena; off -1: not planned */
    int32_t def, end;  /* lifetime: nodes [def, end] of graph 0 */
} Slot;

static struct {
    const Model *m;   /* the model planned for, NULL before the first run */
    Slot *slots;      /* per value */
    int64_t *key;     /* input dims of the plan: n_inputs * KEY_DIMS */
    uint8_t *arena;   /* cap bytes from pages_alloc */
    size_t cap;
    Tensor *vals;     /* the running graph's slots; NULL outside a run */
} P;

void *pages_alloc(size_t bytes)
{
    size_t pages = (bytes + PAGE_BYTES - 1) / PAGE_BYTES;
    if (bytes > SIZE_MAX - PAGE_BYTES)
        return NULL;
    size_t old = __builtin_wasm_memory_grow(0, pages);
    return old == SIZE_MAX ? NULL : (void *)(old * PAGE_BYTES);
}

/* Step 1: the dims of every input, as the key of a plan. */
static void input_key(const Model *m, const Tensor *vals, int64_t *key)
{
    const Graph *g = &m->graphs[0];
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const Tensor *t = &vals[g->inputs[i]];
        int64_t *k = key + (size_t)i * KEY_DIMS;
        memset(k, 0, sizeof(int64_t) * KEY_DIMS);
        k[0] = t->ndim;
        for (int32_t d = 0; d < t->ndim && d < MAX_RANK; d++)
            k[1 + d] = t->dims[d];
    }
}

/* Step 2: bytes of value v from its declared dims; -1 when unknown. */
static int64_t value_bytes(const Model *m, const Value *v, const int64_t *bound)
{
    if (v->rank < 0 || v->type_kind != TK_TENSOR || !dtype_size(v->dtype))
        return -1;
    int64_t n = dtype_size(v->dtype);
    for (int32_t d = 0; d < v->rank; d++) {
        int64_t dim = v->dims[d] >= 0 ? v->dims[d]
                    : DIM_IS_SYMBOL(v->dims[d]) ? bound[DIM_SYMBOL(v->dims[d])]
                    : -1;
        if (dim < 0)
            return -1;
        if (dim > 0 && n > ((int64_t)1 << 31) / dim)
            return -1; /* too large to plan: tensor_alloc reports it */
        n *= dim;
    }
    return n;
}

/* Symbols bound by the inputs' dims (-1 unbound) into bound. */
static void bind_symbols(const Model *m, const Tensor *vals, int64_t *bound)
{
    const Graph *g = &m->graphs[0];
    for (int32_t s = 0; s < m->n_symbols; s++)
        bound[s] = -1;
    for (int32_t i = 0; i < g->n_inputs; i++) {
        const Value *v = &m->values[g->inputs[i]];
        const Tensor *t = &vals[g->inputs[i]];
        for (int32_t d = 0; d < v->rank && d < t->ndim; d++)
            if (DIM_IS_SYMBOL(v->dims[d]))
                bound[DIM_SYMBOL(v->dims[d])] = t->dims[d];
    }
}

/* Values placed so far, by offset: the order of a first-fit scan. */
static const Slot *SORT_SLOTS;

static int by_size_desc(const void *a, const void *b)
{
    const Slot *x = &SORT_SLOTS[*(const int32_t *)a];
    const Slot *y = &SORT_SLOTS[*(const int32_t *)b];
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->def - y->def;
}

static int by_offset(const void *a, const void *b)
{
    const Slot *x = &SORT_SLOTS[*(const int32_t *)a];
    const Slot *y = &SORT_SLOTS[*(const int32_t *)b];
    return (x->off > y->off) - (x->off < y->off);
}

/* Step 3: offsets for the n values of order (largest first); returns the
   arena size. near is scratch for n indices. */
static int64_t place(Slot *slots, int32_t *order, int32_t n, int32_t *near)
{
    int64_t top = 0;
    SORT_SLOTS = slots;
    wx_sort(order, (size_t)n, sizeof *order, by_size_desc);
    for (int32_t i = 0; i < n; i++) {
        Slot *s = &slots[order[i]];
        /* placed values alive at the same time, by offset */
        int32_t nn = 0;
        for (int32_t j = 0; j < i; j++) {
            const Slot *o = &slots[order[j]];
            if (o->def <= s->end && s->def <= o->end)
                near[nn++] = order[j];
        }
        wx_sort(near, (size_t)nn, sizeof *near, by_offset);
        /* the lowest gap that holds s */
        int64_t off = 0;
        for (int32_t j = 0; j < nn; j++) {
            const Slot *o = &slots[near[j]];
            if (o->off >= off + s->size)
                break;
            int64_t end = o->off + o->size;
            end = (end + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
            if (end > off)
                off = end;
        }
        s->off = off;
        if (off + s->size > top)
            top = off + s->size;
    }
    return top;
}

/* Step 4: an arena of at least bytes: grown in place when it ends at the
   end of linear memory, else taken anew. */
static Status grow_arena(size_t bytes, Err *err)
{
    if (bytes <= P.cap)
        return ST_OK;
    size_t memory_end = __builtin_wasm_memory_size(0) * PAGE_BYTES;
    if (P.arena && (size_t)(P.arena + P.cap) == memory_end) {
        size_t more = bytes - P.cap;
        if (pages_alloc(more)) {
            P.cap += (more + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
            return ST_OK;
        }
    } else {
        /* TODO: the old arena stays unused once memory grew past it */
        uint8_t *arena = pages_alloc(bytes);
        if (arena) {
            P.arena = arena;
            P.cap = (bytes + PAGE_BYTES - 1) / PAGE_BYTES * PAGE_BYTES;
            return ST_OK;
        }
    }
    return fail(err, ST_OOM, "runtime: out of memory for a %zu-byte "
                "activation arena", bytes);
}

/* Plan the activations of graph 0 for the dims of the inputs in vals. */
static Status plan(const Model *m, const Tensor *vals, Err *err)
{
    const Graph *g = &m->graphs[0];
    int64_t *bound = calloc((size_t)m->n_symbols + 1, sizeof(int64_t));
    int32_t *order = calloc((size_t)m->n_values + 1, sizeof(int32_t));
    int32_t *near = calloc((size_t)m->n_values + 1, sizeof(int32_t));
    Status st = bound && order && near ? ST_OK
              : fail(err, ST_OOM, "runtime: out of memory planning memory");
    int32_t n = 0;
    for (int32_t v = 0; v < m->n_values; v++)
        P.slots[v] = (Slot){-1, 0, 0, 0};
    if (st == ST_OK) {
        bind_symbols(m, vals, bound);
        for (int32_t i = 0; i < g->n_nodes; i++)
            for (int32_t k = 0; k < g->nodes[i].n_out; k++) {
                int32_t v = g->nodes[i].out[k];
                const Value *val = v >= 0 ? &m->values[v] : NULL;
                int64_t bytes = val && val->kind == VK_ACTIVATION && val->graph == 0
                                    ? value_bytes(m, val, bound) : -1;
                if (bytes < 0 || P.slots[v].size)
                    continue;
                P.slots[v] = (Slot){0, bytes ? bytes : 1, i,
                                    val->is_output ? g->n_nodes : val->last_use};
                order[n++] = v;
            }
        st = grow_arena((size_t)place(P.slots, order, n, near), err);
    }
    if (st != ST_OK)
        for (int32_t v = 0; v < m->n_values; v++)
            P.slots[v].off = -1;
    free(bound);
    free(order);
    free(near);
    return st;
}

Status memplan_begin(const Model *m, Tensor *vals, Err *err)
{
    size_t key_len = (size_t)m->graphs[0].n_inputs * KEY_DIMS;
    int64_t *key = calloc(key_len + 1, sizeof(int64_t));
    if (!key)
        return fail(err, ST_OOM, "runtime: out of memory planning memory");
    input_key(m, vals, key);
    if (P.m == m && memcmp(key, P.key, sizeof(int64_t) * key_len) == 0) {
        free(key);
        P.vals = vals;
        return ST_OK;
    }
    /* new input dims (or the first run): plan again */
    free(P.key);
    P.key = key;
    P.m = NULL;
    if (!P.slots)
        P.slots = calloc((size_t)m->n_values + 1, sizeof(Slot));
    if (!P.slots)
        return fail(err, ST_OOM, "runtime: out of memory planning memory");
    Status st = plan(m, vals, err);
    if (st != ST_OK)
        return st;
    P.m = m;
    P.vals = vals;
    return ST_OK;
}

void memplan_end(void)
{
    P.vals = NULL;
}

void *memplan_claim(const Tensor *t, size_t nbytes)
{
    if (!P.vals)
        return NULL;
    uintptr_t at = (uintptr_t)t, lo = (uintptr_t)P.vals;
    if (at < lo || at >= lo + sizeof(Tensor) * (size_t)P.m->n_values)
        return NULL;
    const Slot *s = &P.slots[(at - lo) / sizeof(Tensor)];
    if (s->off < 0 || nbytes > (size_t)s->size)
        return NULL;
    return P.arena + s->off;
}
