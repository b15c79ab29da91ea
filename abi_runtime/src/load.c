/*
 * load.c: plan bytes -> Model, checking every length, offset and index
 * before use (the manner of Lua's lundump.c). The layout is documented in
 * docs/plan-format.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "ops.h"

/* A bounds-checked cursor over the records section. */
typedef struct {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* one past the last byte */
    Model *m;
    Err *err;
} Reader;

static Status bad(Reader *r, const char *why)
{
    return fail(r->err, ST_BAD_FORMAT, "model: bad format (%s)", why);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* Read a u32 into *v, or fail with "truncated <what>". */
static Status read_u32(Reader *r, uint32_t *v, const char *what)
{
    if (r->end - r->p < 4) {
        char why[64];
        snprintf(why, sizeof why, "truncated %s", what);
        return bad(r, why);
    }
    *v = le32(r->p);
    r->p += 4;
    return ST_OK;
}

/* Borrow n bytes at the cursor, or fail. */
static Status read_bytes(Reader *r, const uint8_t **out, uint64_t n,
                         const char *what)
{
    if ((uint64_t)(r->end - r->p) < n) {
        char why[64];
        snprintf(why, sizeof why, "truncated %s", what);
        return bad(r, why);
    }
    *out = r->p;
    r->p += n;
    return ST_OK;
}

/* Read a string-table offset and resolve it to a C string. */
static Status read_str(Reader *r, const char **s, const char *what)
{
    uint32_t off;
    Status st = read_u32(r, &off, what);
    if (st != ST_OK)
        return st;
    if (off >= r->m->strings_size)
        return bad(r, "string offset out of range");
    *s = r->m->strings + off;
    return ST_OK;
}

#define TRY(x)                      \
    do {                            \
        Status st_ = (x);           \
        if (st_ != ST_OK)           \
            return st_;             \
    } while (0)

/*
 * A string constant's data holds one u32 string-table offset per element
 * (the same width as a pointer on wasm32): turn them into pointers, in a
 * copy owned by the model (freed by model_free).
 */
static Status resolve_strings(Reader *r, Tensor *t)
{
    const uint8_t *raw = t->data;
    const char **strs = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *strs);
    t->data = strs; /* from here on model_free frees it (NULL is fine) */
    if (!strs)
        return fail(r->err, ST_OOM, "model: out of memory");
    for (int64_t i = 0; i < t->numel; i++) {
        uint32_t off = le32(raw + 4 * i);
        if (off >= r->m->strings_size)
            return bad(r, "string constant offset out of range");
        strs[i] = r->m->strings + off;
    }
    return ST_OK;
}

/* Step: one value record (name, dtype, kind, declared shape, data). */
static Status read_value(Reader *r, Value *v, const uint8_t *data,
                         uint32_t data_size)
{
    const uint8_t *head;
    TRY(read_str(r, &v->name, "value name"));
    TRY(read_bytes(r, &head, 4, "value header"));
    v->dtype = head[0];
    v->kind = head[1];
    v->rank = head[2] == RANK_UNKNOWN ? -1 : head[2];
    v->last_use = -1;
    v->graph = -1;
    /* flags: type kind in bits 0-3, a map's key dtype in bits 4-7 */
    v->type_kind = head[3] & 15;
    v->key_dtype = head[3] >> 4;
    /* size 0: undefined, or a code the runtime has no storage for (complex) */
    if (v->dtype >= DT_COUNT || dtype_size(v->dtype) == 0)
        return bad(r, "unknown dtype");
    /* sequences of tensors and optionals: kinds 1, 4 and 5, no key dtype
       (TK_NONE is a run-time state, never declared) */
    int is_map = v->type_kind == TK_MAP || v->type_kind == TK_SEQ_MAP;
    if (v->type_kind > TK_OPT_SEQ_TENSOR || (!is_map && v->key_dtype != 0) ||
        (is_map && v->key_dtype != DT_INT64 && v->key_dtype != DT_STRING))
        return bad(r, "unknown value type kind or map key dtype");
    if (v->type_kind != TK_TENSOR && v->kind == VK_CONSTANT)
        return bad(r, "a constant must be a tensor");
    if (v->kind > VK_INPUT)
        return bad(r, "unknown value kind");
    if (v->rank > MAX_RANK)
        return bad(r, "rank above the runtime's limit");
    for (int32_t i = 0; i < v->rank; i++) {
        uint32_t d;
        TRY(read_u32(r, &d, "dimension"));
        v->dims[i] = (int32_t)d;
        if (DIM_IS_SYMBOL(v->dims[i]) &&
            DIM_SYMBOL(v->dims[i]) >= r->m->n_symbols)
            return bad(r, "symbol index out of range");
    }
    if (v->kind == VK_ACTIVATION) {
        /* version 2: the node after which the value can go (-1: kept) */
        uint32_t last;
        TRY(read_u32(r, &last, "last use"));
        v->plan_last_use = (int32_t)last;
    }
    if (v->kind != VK_CONSTANT)
        return ST_OK;

    /* a constant: static shape, bytes inside the data section */
    uint32_t off, nbytes;
    TRY(read_u32(r, &off, "constant offset"));
    TRY(read_u32(r, &nbytes, "constant size"));
    int64_t dims[MAX_RANK];
    if (v->rank < 0)
        return bad(r, "constant without a shape");
    for (int32_t i = 0; i < v->rank; i++) {
        if (v->dims[i] < 0)
            return bad(r, "constant with a non-static dimension");
        dims[i] = v->dims[i];
    }
    TRY(tensor_set_shape(&v->constant, v->dtype, v->rank, dims, r->err));
    if ((uint64_t)off + nbytes > data_size)
        return bad(r, "constant data out of range");
    if (nbytes != (uint64_t)tensor_nbytes(&v->constant))
        return bad(r, "constant size does not match its shape");
    if (off % 8)
        return bad(r, "misaligned constant data");
    v->constant.data = (void *)(data + off);
    v->constant.owned = false;
    if (v->dtype == DT_STRING)
        return resolve_strings(r, &v->constant);
    return ST_OK;
}

/* Step: one attribute record; payload stays in the blob. */
static Status read_attr(Reader *r, Attr *a, int32_t graph)
{
    uint32_t type, count;
    TRY(read_str(r, &a->name, "attribute name"));
    TRY(read_u32(r, &type, "attribute type"));
    TRY(read_u32(r, &count, "attribute count"));
    a->type = (int32_t)type;
    a->count = (int32_t)count;
    uint64_t elem;
    switch (type) {
    case AT_FLOAT: case AT_STRING: case AT_TENSOR: case AT_GRAPH:
        elem = 4; if (count != 1) return bad(r, "scalar attribute count"); break;
    case AT_INT: elem = 8; if (count != 1) return bad(r, "scalar attribute count"); break;
    case AT_FLOATS: case AT_STRINGS: elem = 4; break;
    case AT_INTS: elem = 8; break;
    default: return bad(r, "unknown attribute type");
    }
    if (count > 0x1000000)
        return bad(r, "attribute too long");
    TRY(read_bytes(r, &a->raw, elem * count, "attribute payload"));
    if (type == AT_STRINGS) {
        a->strs = calloc(count ? count : 1, sizeof(char *));
        if (!a->strs)
            return fail(r->err, ST_OOM, "model: out of memory");
    }
    for (uint32_t i = 0; type == AT_STRINGS && i < count; i++) {
        if (le32(a->raw + 4 * i) >= r->m->strings_size)
            return bad(r, "string offset out of range");
        a->strs[i] = r->m->strings + le32(a->raw + 4 * i);
    }
    if (type == AT_STRING) {
        if (le32(a->raw) >= r->m->strings_size)
            return bad(r, "string offset out of range");
        a->s = r->m->strings + le32(a->raw);
    }
    if (type == AT_TENSOR && le32(a->raw) >= (uint32_t)r->m->n_values)
        return bad(r, "tensor attribute value index out of range");
    /* only later graphs, so that subgraph references cannot form a cycle */
    if (type == AT_GRAPH && (le32(a->raw) >= (uint32_t)r->m->n_graphs ||
                             (int32_t)le32(a->raw) <= graph))
        return bad(r, "graph attribute index out of range");
    return ST_OK;
}

/* Read count value indices; -1 is allowed only where optional. */
static Status read_indices(Reader *r, const int32_t **out, uint32_t count,
                           int optional)
{
    const uint8_t *raw;
    TRY(read_bytes(r, &raw, 4ull * count, "value index list"));
    for (uint32_t i = 0; i < count; i++) {
        int32_t v = (int32_t)le32(raw + 4 * i);
        if (v < -1 || v >= r->m->n_values || (v == -1 && !optional))
            return bad(r, "value index out of range");
    }
    *out = (const int32_t *)raw; /* 4-aligned: records are word-aligned */
    return ST_OK;
}

/* Step: one node record: names, opset, inputs, outputs, attributes. */
static Status read_node(Reader *r, Node *n, int32_t graph)
{
    uint32_t opset, io, n_attrs;
    TRY(read_str(r, &n->name, "node name"));
    TRY(read_str(r, &n->op_type, "op type"));
    TRY(read_str(r, &n->domain, "domain"));
    TRY(read_u32(r, &opset, "opset"));
    TRY(read_u32(r, &io, "node input/output count"));
    TRY(read_u32(r, &n_attrs, "attribute count"));
    n->opset = (int32_t)opset;
    n->n_in = (int32_t)(io & 0xffff);
    n->n_out = (int32_t)(io >> 16);
    if (n->n_in > MAX_NODE_IO || n->n_out > MAX_NODE_IO || n_attrs > 1024)
        return bad(r, "too many inputs, outputs or attributes on a node");
    TRY(read_indices(r, &n->in, n->n_in, 1));
    TRY(read_indices(r, &n->out, n->n_out, 1));
    n->n_attrs = (int32_t)n_attrs;
    n->attrs = calloc(n_attrs ? n_attrs : 1, sizeof(Attr));
    if (!n->attrs)
        return fail(r->err, ST_OOM, "model: out of memory");
    for (uint32_t i = 0; i < n_attrs; i++)
        TRY(read_attr(r, &n->attrs[i], graph));
    return ST_OK;
}

/* Step: one graph: its nodes, then its inputs and outputs. */
static Status read_graph(Reader *r, Graph *g, int32_t index)
{
    uint32_t n_nodes, n_inputs, n_outputs;
    TRY(read_u32(r, &n_nodes, "node count"));
    TRY(read_u32(r, &n_inputs, "graph input count"));
    TRY(read_u32(r, &n_outputs, "graph output count"));
    /* every node takes at least 24 bytes, so this bounds the allocation */
    if (n_nodes > (uint32_t)(r->end - r->p) / 24 || n_inputs > 0xffff ||
        n_outputs > 0xffff)
        return bad(r, "graph counts exceed the plan size");
    g->n_nodes = (int32_t)n_nodes;
    g->nodes = calloc(n_nodes ? n_nodes : 1, sizeof(Node));
    if (!g->nodes)
        return fail(r->err, ST_OOM, "model: out of memory");
    for (uint32_t i = 0; i < n_nodes; i++)
        TRY(read_node(r, &g->nodes[i], index));
    g->n_inputs = (int32_t)n_inputs;
    g->n_outputs = (int32_t)n_outputs;
    TRY(read_indices(r, &g->inputs, n_inputs, 0));
    TRY(read_indices(r, &g->outputs, n_outputs, 0));
    return ST_OK;
}

/* Deepest nesting of subgraphs (a body inside a body ...) accepted. */
#define MAX_GRAPH_DEPTH 32

/* State of the walk that links graph 0 and, from the nodes holding them,
   every body: which values exist at this point of the walk, and which
   node each graph on the way down is at. */
typedef struct {
    Model *m;
    uint8_t *ready;   /* per value: computed before the current node */
    int32_t *cursor;  /* per graph: node being linked (graphs on the path) */
    uint8_t *linked;  /* per graph: reached from a node already */
    Err *err;
} Linker;

/* A read of value v now: a use by the node its defining graph is at (the
   node itself, or the node whose body reads it). */
static void note_read(Linker *l, int32_t v)
{
    Value *val = &l->m->values[v];
    if (val->graph >= 0)
        val->last_use = l->cursor[val->graph];
}

/* Step: per graph, the activations to release after each node: each
   defined activation at its last use, unless the graph returns it. */
static Status build_frees(Model *m, Graph *g, int32_t gi, Err *err)
{
    g->free_at = calloc((size_t)g->n_nodes + 2, sizeof(int32_t));
    int32_t total = 0;
    if (!g->free_at)
        return fail(err, ST_OOM, "model: out of memory");
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t i = 0; i < g->n_nodes; i++)
            for (int32_t k = 0; k < g->nodes[i].n_out; k++) {
                int32_t v = g->nodes[i].out[k];
                const Value *val = v >= 0 ? &m->values[v] : NULL;
                if (!val || val->graph != gi || val->is_output)
                    continue;
                if (pass == 0)
                    g->free_at[val->last_use + 1]++;
                else
                    g->frees[g->free_at[val->last_use]++] = v;
            }
        if (pass == 0) {
            /* counts at i + 1 -> start of node i at i; pass 1 moves each
               start to the end of its node */
            for (int32_t i = 0; i < g->n_nodes; i++)
                g->free_at[i + 1] += g->free_at[i];
            total = g->free_at[g->n_nodes];
            g->frees = calloc((size_t)total + 1, sizeof(int32_t));
            if (!g->frees)
                return fail(err, ST_OOM, "model: out of memory");
        }
    }
    /* ends of node i at i -> starts: node i frees [free_at[i], free_at[i+1]) */
    for (int32_t i = g->n_nodes; i > 0; i--)
        g->free_at[i] = g->free_at[i - 1];
    g->free_at[0] = 0;
    return ST_OK;
}

/* Step: the packager's last uses of the activations of graph gi: kept
   (-1) exactly for the graph's outputs, else no earlier than the last read
   seen here (or the memory plan could reuse bytes still to be read). */
static Status check_last_uses(Model *m, const Graph *g, int32_t gi, Err *err)
{
    for (int32_t i = 0; i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_out; k++) {
            int32_t v = g->nodes[i].out[k];
            if (v < 0 || m->values[v].graph != gi)
                continue;
            Value *val = &m->values[v];
            int32_t last = val->plan_last_use;
            if (val->is_output ? last != -1
                               : last < val->last_use || last >= g->n_nodes)
                return fail(err, ST_BAD_FORMAT, "model: bad format (value "
                            "'%s': last use %d, the graph reads it until node "
                            "%d)", val->name, (int)last,
                            val->is_output ? -1 : (int)val->last_use);
            if (!val->is_output)
                val->last_use = last;
        }
    return ST_OK;
}

/*
 * Step: check that graph gi reads only values that exist when they are
 * read (its own, or those of the enclosing graphs at the node holding it),
 * link the bodies of its nodes in place, and record last uses.
 */
static Status link_graph(Linker *l, int32_t gi, int32_t depth)
{
    Model *m = l->m;
    Graph *g = &m->graphs[gi];
    Err *err = l->err;
    if (depth > MAX_GRAPH_DEPTH)
        return fail(err, ST_UNSUPPORTED_OP, "model: subgraphs nested deeper "
                    "than %d levels", MAX_GRAPH_DEPTH);
    for (int32_t i = 0; i < g->n_inputs; i++) {
        Value *v = &m->values[g->inputs[i]];
        if (v->kind != VK_INPUT || l->ready[g->inputs[i]])
            return fail(err, ST_BAD_FORMAT, "model: bad format (graph %d input "
                        "'%s' is not a fresh input value)", (int)gi, v->name);
        l->ready[g->inputs[i]] = 1;
        v->graph = gi;
    }
    for (int32_t i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        l->cursor[gi] = i;
        for (int32_t k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0)
                continue;
            if (!l->ready[n->in[k]])
                return node_fail(n, err, ST_BAD_FORMAT, "input '%s' is read "
                                 "before it is computed", m->values[n->in[k]].name);
            note_read(l, n->in[k]);
        }
        for (int32_t k = 0; k < n->n_attrs; k++) {
            if (n->attrs[k].type != AT_GRAPH)
                continue;
            int32_t sub = (int32_t)le32(n->attrs[k].raw);
            if (l->linked[sub])
                return node_fail(n, err, ST_BAD_FORMAT, "graph %d is the body "
                                 "of two attributes", (int)sub);
            l->linked[sub] = 1;
            m->graphs[sub].parent = gi;
            TRY(link_graph(l, sub, depth + 1));
        }
        for (int32_t k = 0; k < n->n_out; k++) {
            int32_t v = n->out[k];
            if (v < 0)
                continue;
            if (l->ready[v] || m->values[v].kind != VK_ACTIVATION)
                return node_fail(n, err, ST_BAD_FORMAT, "output '%s' is "
                                 "written twice", m->values[v].name);
            l->ready[v] = 1;
            m->values[v].graph = gi;
            m->values[v].last_use = i; /* freed at once when nobody reads it */
        }
    }
    l->cursor[gi] = g->n_nodes; /* outputs are read after the last node */
    for (int32_t i = 0; i < g->n_outputs; i++) {
        Value *v = &m->values[g->outputs[i]];
        if (!l->ready[g->outputs[i]])
            return fail(err, ST_BAD_FORMAT, "model: bad format (graph %d output "
                        "'%s' is never computed)", (int)gi, v->name);
        if (v->graph == gi)
            v->is_output = 1;
        else
            note_read(l, g->outputs[i]);
    }
    TRY(check_last_uses(m, g, gi, err));
    TRY(build_frees(m, g, gi, err));

    /* a body's values exist only inside it */
    for (int32_t i = 0; gi > 0 && i < g->n_inputs; i++)
        l->ready[g->inputs[i]] = 0;
    for (int32_t i = 0; gi > 0 && i < g->n_nodes; i++)
        for (int32_t k = 0; k < g->nodes[i].n_out; k++)
            if (g->nodes[i].out[k] >= 0)
                l->ready[g->nodes[i].out[k]] = 0;
    return ST_OK;
}

/* Step: link graph 0 and, through it, every subgraph (each used once). */
static Status link_graphs(Model *m, Err *err)
{
    Linker l = {m, calloc((size_t)m->n_values + 1, 1),
                calloc((size_t)m->n_graphs + 1, sizeof(int32_t)),
                calloc((size_t)m->n_graphs + 1, 1), err};
    Status st = l.ready && l.cursor && l.linked ? ST_OK
              : fail(err, ST_OOM, "model: out of memory");
    for (int32_t v = 0; st == ST_OK && v < m->n_values; v++)
        l.ready[v] = m->values[v].kind == VK_CONSTANT;
    if (st == ST_OK) {
        m->graphs[0].parent = -1;
        l.linked[0] = 1;
        st = link_graph(&l, 0, 0);
    }
    for (int32_t gi = 1; st == ST_OK && gi < m->n_graphs; gi++)
        if (!l.linked[gi])
            st = fail(err, ST_BAD_FORMAT, "model: bad format (graph %d is "
                      "not the body of any node)", (int)gi);
    free(l.ready);
    free(l.cursor);
    free(l.linked);
    return st;
}

/* Step: resolve each node's op_type to an op and let it read attributes. */
static Status prepare_nodes(Model *m, Err *err)
{
    for (int32_t gi = 0; gi < m->n_graphs; gi++) {
        Graph *g = &m->graphs[gi];
        for (int32_t i = 0; i < g->n_nodes; i++)
            TRY(op_prepare(m, &g->nodes[i], err));
    }
    return ST_OK;
}

Status model_load(Model *m, uint8_t *blob, uint32_t size, Err *err)
{
    memset(m, 0, sizeof *m);
    m->blob = blob;
    m->blob_size = size;
    Reader r = {blob, blob + size, m, err};

    /* step 1: header */
    if (size < PLAN_HEADER_SIZE)
        return bad(&r, "truncated header");
    if (memcmp(blob, PLAN_MAGIC, 8) != 0)
        return bad(&r, "not a wasmexport plan");
    uint32_t h[12];
    for (int i = 0; i < 12; i++)
        h[i] = le32(blob + 8 + 4 * i);
    uint32_t version = h[0], total = h[1], str_off = h[2], str_size = h[3];
    uint32_t rec_off = h[4], rec_size = h[5], data_off = h[6];
    uint32_t data_size = h[7];
    if (version != PLAN_VERSION)
        return fail(err, ST_BAD_FORMAT, "model: plan version %u, this runtime "
                    "reads version %d (re-export with a matching wasmexport)",
                    version, PLAN_VERSION);
    if (total != size)
        return bad(&r, "plan size does not match its header");
    if ((uint64_t)str_off + str_size > size || (uint64_t)rec_off + rec_size > size ||
        (uint64_t)data_off + data_size > size || rec_off % 4 || data_off % PLAN_DATA_ALIGN)
        return bad(&r, "section out of range or misaligned");
    if (str_size == 0 || blob[str_off + str_size - 1] != 0)
        return bad(&r, "string table not terminated");
    m->strings = (const char *)blob + str_off;
    m->strings_size = str_size;
    if (h[8] > 0xffff || h[9] > rec_size / 8 || h[10] == 0 || h[10] > 0xffff)
        return bad(&r, "counts exceed the plan size");
    m->n_symbols = (int32_t)h[8];
    m->n_values = (int32_t)h[9];
    m->n_graphs = (int32_t)h[10];

    /* step 2: symbols, values, graphs, in this order */
    r.p = blob + rec_off;
    r.end = blob + rec_off + rec_size;
    m->symbols = calloc(m->n_symbols + 1, sizeof(char *));
    m->values = calloc(m->n_values + 1, sizeof(Value));
    m->graphs = calloc(m->n_graphs, sizeof(Graph));
    if (!m->symbols || !m->values || !m->graphs)
        return fail(err, ST_OOM, "model: out of memory");
    for (int32_t i = 0; i < m->n_symbols; i++)
        TRY(read_str(&r, &m->symbols[i], "symbol"));
    for (int32_t i = 0; i < m->n_values; i++)
        TRY(read_value(&r, &m->values[i], blob + data_off, data_size));
    for (int32_t i = 0; i < m->n_graphs; i++)
        TRY(read_graph(&r, &m->graphs[i], i));
    if (r.p != r.end)
        return bad(&r, "trailing bytes after the last graph");

    /* step 3: link and prepare */
    TRY(link_graphs(m, err));
    return prepare_nodes(m, err);
}

void model_free(Model *m)
{
    for (int32_t gi = 0; m->graphs && gi < m->n_graphs; gi++) {
        Graph *g = &m->graphs[gi];
        for (int32_t i = 0; g->nodes && i < g->n_nodes; i++) {
            for (int32_t k = 0; g->nodes[i].attrs && k < g->nodes[i].n_attrs; k++)
                free(g->nodes[i].attrs[k].strs);
            free(g->nodes[i].attrs);
            if (g->nodes[i].free_params)
                g->nodes[i].free_params(g->nodes[i].params);
            else
                free(g->nodes[i].params);
        }
        free(g->nodes);
        free(g->free_at);
        free(g->frees);
    }
    free(m->graphs);
    /* string constants own their pointer arrays (resolve_strings) */
    for (int32_t v = 0; m->values && v < m->n_values; v++)
        if (m->values[v].kind == VK_CONSTANT && m->values[v].dtype == DT_STRING)
            free(m->values[v].constant.data);
    free(m->values);
    free(m->symbols);
    if (!m->blob_in_pages)
        free(m->blob);
    memset(m, 0, sizeof *m);
}

const Attr *node_attr(const Node *n, const char *name)
{
    for (int32_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int32_t attr_tensor(const Attr *a)
{
    return (int32_t)le32(a->raw);
}

int64_t attr_ints_at(const Attr *a, int32_t i)
{
    int64_t v;
    memcpy(&v, a->raw + 8 * (size_t)i, 8);
    return v;
}

float attr_floats_at(const Attr *a, int32_t i)
{
    float v;
    memcpy(&v, a->raw + 4 * (size_t)i, 4);
    return v;
}

Status attr_ints_exact(const Node *n, const char *name, int64_t *v, int want,
                       Err *err)
{
    const Attr *a = node_attr(n, name);
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS || a->count != want)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "attribute '%s' must list "
                         "%d integers, got %d", name, want, (int)a->count);
    for (int i = 0; i < want; i++)
        v[i] = attr_ints_at(a, i);
    return ST_OK;
}

int64_t attr_int(const Node *n, const char *name, int64_t dflt)
{
    const Attr *a = node_attr(n, name);
    return (a && a->type == AT_INT) ? attr_ints_at(a, 0) : dflt;
}

float attr_float(const Node *n, const char *name, float dflt)
{
    const Attr *a = node_attr(n, name);
    return (a && a->type == AT_FLOAT) ? attr_floats_at(a, 0) : dflt;
}

const char *attr_string(const Node *n, const char *name, const char *dflt)
{
    const Attr *a = node_attr(n, name);
    return (a && a->type == AT_STRING) ? a->s : dflt;
}
