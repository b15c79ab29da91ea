/*
 * ops_control.c: control flow: If, Loop, Scan, SequenceMap (a body run once
 * per item of a sequence), and the one-input bodies of FlexAttention,
 * through body_call.
 *
 * A body is a graph of the plan (a GRAPH attribute holds its index). All
 * graphs share one array of value slots, so a body reads the values of
 * the enclosing graphs where they are; the loader made sure they are
 * computed before the node and freed only after it. The node owns the
 * slots of its body's inputs: it fills them before each run and empties
 * them afterwards. Body outputs are moved out when the body owns them and
 * copied otherwise (an outer value, a constant, an input passed through).
 */
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "ops.h"

/* Attributes resolved at load. The arrays of Scan follow the struct in the
   same allocation (freed as one with n->params). */
typedef struct {
    int32_t body[2];   /* If: then, else; Loop and Scan: body[0] */
    int32_t n_state;   /* Loop, Scan: loop-carried values N */
    int32_t n_scan_in; /* Scan: scanned inputs M */
    int32_t n_scan_out;/* Loop, Scan: scan outputs K */
    int32_t *in_axis, *in_rev, *out_axis, *out_rev; /* Scan: M, M, K, K */
    int32_t batched;   /* Scan of opset 8: sequence_lens first, batch axis 0 */
} ControlParams;

/* Op kernel column of the table: control-flow ops run via control_run. */
Status op_subgraph(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    (void)in;
    (void)out;
    return node_fail(n, err, ST_BAD_FORMAT, "control-flow op run outside a "
                     "graph");
}

/* Allocate params with room for extra int32 values after the struct. */
static ControlParams *new_params(Node *n, int32_t extra, Err *err)
{
    ControlParams *p = calloc(1, sizeof *p + sizeof(int32_t) * (size_t)extra);
    if (!p)
        fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    return p;
}

/* Graph index of GRAPH attribute name, checked to have n_in inputs and
   n_out outputs (-1 for any count). */
static Status body_attr(const Model *m, const Node *n, const char *name,
                        int32_t n_in, int32_t n_out, int32_t *gi, Err *err)
{
    const Attr *a = node_attr(n, name);
    if (!a || a->type != AT_GRAPH)
        return node_fail(n, err, ST_BAD_FORMAT, "graph attribute '%s' is "
                         "missing", name);
    int32_t g;
    memcpy(&g, a->raw, 4);
    const Graph *body = &m->graphs[g];
    if ((n_in >= 0 && body->n_inputs != n_in) ||
        (n_out >= 0 && body->n_outputs != n_out))
        return node_fail(n, err, ST_BAD_FORMAT, "body '%s' has %d inputs and "
                         "%d outputs, the node needs %d and %d", name,
                         (int)body->n_inputs, (int)body->n_outputs, (int)n_in,
                         (int)n_out);
    *gi = g;
    return ST_OK;
}

Status prep_if(const Model *m, Node *n, Err *err)
{
    ControlParams *p = new_params(n, 0, err);
    Status st;
    if (!p)
        return ST_OOM;
    if ((st = body_attr(m, n, "then_branch", 0, n->n_out, &p->body[0], err)))
        return st;
    return body_attr(m, n, "else_branch", 0, n->n_out, &p->body[1], err);
}

Status prep_loop(const Model *m, Node *n, Err *err)
{
    ControlParams *p = new_params(n, 0, err);
    if (!p)
        return ST_OOM;
    p->n_state = n->n_in - 2;
    p->n_scan_out = n->n_out - p->n_state;
    if (p->n_scan_out < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "%d loop-carried inputs but "
                         "only %d outputs", (int)p->n_state, (int)n->n_out);
    return body_attr(m, n, "body", n->n_in, n->n_out + 1, &p->body[0], err);
}

/* Read INTS attribute name into v[0..count) (0 when absent), checking its
   length and range [lo, hi]. */
static Status int_attr_list(const Node *n, const char *name, int32_t count,
                            int64_t lo, int64_t hi, int32_t *v, Err *err)
{
    const Attr *a = node_attr(n, name);
    for (int32_t i = 0; i < count; i++)
        v[i] = 0;
    if (!a)
        return ST_OK;
    if (a->type != AT_INTS || a->count != count)
        return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' must list %d "
                         "integers, got %d", name, (int)count, (int)a->count);
    for (int32_t i = 0; i < count; i++) {
        int64_t x = attr_ints_at(a, i);
        if (x < lo || x > hi)
            return node_fail(n, err, ST_BAD_FORMAT, "attribute '%s' value %lld "
                             "out of range [%lld, %lld]", name, (long long)x,
                             (long long)lo, (long long)hi);
        v[i] = (int32_t)x;
    }
    return ST_OK;
}

Status prep_scan(const Model *m, Node *n, Err *err)
{
    /* opset 8: (sequence_lens, states, scan inputs), all with a batch axis
       0, scanned along axis 1; the body sees one batch entry at a time */
    int32_t batched = n->opset < 9, first = batched ? 1 : 0;
    int64_t n_scan = attr_int(n, "num_scan_inputs", -1);
    if (n_scan < 1 || n_scan > n->n_in - first)
        return node_fail(n, err, ST_BAD_FORMAT, "num_scan_inputs must be in "
                         "[1, %d], got %lld", (int)(n->n_in - first),
                         (long long)n_scan);
    int32_t M = (int32_t)n_scan, N = n->n_in - first - M, K = n->n_out - N;
    if (K < 0)
        return node_fail(n, err, ST_BAD_FORMAT, "%d state inputs but only %d "
                         "outputs", (int)N, (int)n->n_out);
    ControlParams *p = new_params(n, 2 * M + 2 * K, err);
    Status st;
    if (!p)
        return ST_OOM;
    p->batched = batched;
    p->n_state = N;
    p->n_scan_in = M;
    p->n_scan_out = K;
    p->in_axis = (int32_t *)(p + 1);
    p->in_rev = p->in_axis + M;
    p->out_axis = p->in_rev + M;
    p->out_rev = p->out_axis + K;
    /* axes are normalised against the runtime ranks */
    if (batched)
        st = int_attr_list(n, "directions", M, 0, 1, p->in_rev, err);
    else if ((st = int_attr_list(n, "scan_input_axes", M, -MAX_RANK,
                                 MAX_RANK - 1, p->in_axis, err)) ||
             (st = int_attr_list(n, "scan_input_directions", M, 0, 1,
                                 p->in_rev, err)) ||
             (st = int_attr_list(n, "scan_output_axes", K, -MAX_RANK, MAX_RANK,
                                 p->out_axis, err)))
        return st;
    else
        st = int_attr_list(n, "scan_output_directions", K, 0, 1, p->out_rev,
                           err);
    if (st != ST_OK)
        return st;
    return body_attr(m, n, "body", n->n_in - first, n->n_out, &p->body[0],
                     err);
}

/* ---- moving values in and out of bodies -------------------------------- */

/* dst = a fresh copy of src (sequences item by item: tensor_copy). */
static Status copy_tensor(const Tensor *src, Tensor *dst, Err *err)
{
    return tensor_copy(dst, src, err);
}

/*
 * dst (empty) = output k of graph gi. The tensor moves when the body owns
 * it (its activation or input slot, owning its data) and no other output
 * is the same value; otherwise it is copied.
 */
static Status take_output(const Model *m, int32_t gi, int32_t k, Tensor *vals,
                          Tensor *dst, Err *err)
{
    const Graph *g = &m->graphs[gi];
    int32_t v = g->outputs[k];
    Tensor *src = &vals[v];
    int unique = 1;
    for (int32_t j = 0; j < g->n_outputs; j++)
        unique &= j == k || g->outputs[j] != v;
    if (m->values[v].graph == gi && m->values[v].kind != VK_CONSTANT &&
        src->owned && unique) {
        *dst = *src;
        memset(src, 0, sizeof *src);
        return ST_OK;
    }
    return copy_tensor(src, dst, err);
}

/* Empty what graph gi left in its slots: outputs it owns, and inputs. */
static void release_body(const Model *m, int32_t gi, Tensor *vals)
{
    const Graph *g = &m->graphs[gi];
    for (int32_t k = 0; k < g->n_outputs; k++)
        if (m->values[g->outputs[k]].graph == gi &&
            m->values[g->outputs[k]].kind == VK_ACTIVATION)
            tensor_release(&vals[g->outputs[k]]);
    for (int32_t k = 0; k < g->n_inputs; k++)
        tensor_release(&vals[g->inputs[k]]);
}

/* A view of t that does not own its data (a body input of one run). */
static Tensor borrow(const Tensor *t)
{
    Tensor v = *t;
    v.owned = false;
    return v;
}

/* Read a one-element bool (or numeric) condition. */
static Status read_cond(const Node *n, const Tensor *t, const char *what,
                        int *cond, Err *err)
{
    if (t->kind != TK_TENSOR || t->numel != 1 ||
        (t->dtype != DT_BOOL && dtype_size(t->dtype) != 1))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be one bool, got "
                         "%s with %lld elements", what, dtype_name(t->dtype),
                         (long long)t->numel);
    *cond = ((const uint8_t *)t->data)[0] != 0;
    return ST_OK;
}

/* ---- If --------------------------------------------------------------- */

static Status run_if(const Model *m, const Node *n, Tensor *vals,
                     Tensor *const *in, Tensor *const *out, Err *err)
{
    const ControlParams *p = n->params;
    int cond;
    Status st = read_cond(n, in[0], "cond", &cond, err);
    if (st != ST_OK)
        return st;
    int32_t gi = p->body[cond ? 0 : 1];
    if ((st = graph_run(m, gi, vals, err)) != ST_OK)
        return st;
    for (int32_t k = 0; k < n->n_out && st == ST_OK; k++)
        if (out[k])
            st = take_output(m, gi, k, vals, out[k], err);
    release_body(m, gi, vals);
    return st;
}

/* ---- scan outputs: one tensor per iteration, stacked at the end --------- */

typedef struct {
    Tensor *items; /* one per iteration, all of one dtype and shape */
    int64_t count, cap;
} Stack;

static Status stack_push(const Node *n, Stack *s, Tensor *t, Err *err)
{
    char s0[96], s1[96];
    if (t->kind != TK_TENSOR)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "scan outputs must be "
                         "tensors, got a sequence or an optional");
    if (s->count > 0) {
        const Tensor *f = &s->items[0];
        if (f->dtype != t->dtype || f->ndim != t->ndim ||
            memcmp(f->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "scan output changes "
                             "from %s %s to %s %s between iterations",
                             dtype_name(f->dtype), shape_str(f->dims, f->ndim,
                             s0, 96), dtype_name(t->dtype),
                             shape_str(t->dims, t->ndim, s1, 96));
    }
    if (s->count == s->cap) {
        int64_t cap = s->cap ? 2 * s->cap : 16;
        Tensor *items = realloc(s->items, sizeof(Tensor) * (size_t)cap);
        if (!items)
            return fail(err, ST_OOM, "out of memory collecting scan outputs");
        s->items = items;
        s->cap = cap;
    }
    s->items[s->count++] = *t;
    memset(t, 0, sizeof *t);
    return ST_OK;
}

static void stack_free(Stack *s)
{
    for (int64_t i = 0; i < s->count; i++)
        tensor_release(&s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/*
 * y = the items of s stacked along a new axis (normalised against the
 * item rank + 1), item t at position t (rev: count - 1 - t). With no items
 * the shape comes from the declared dims of value v (unknown -> 0).
 */
static Status stack_join(const Node *n, const Model *m, int32_t v, Stack *s,
                         int32_t axis, int rev, Tensor *y, Err *err)
{
    const Tensor *f = s->count ? &s->items[0] : NULL;
    const Value *val = &m->values[v];
    int32_t rank = f ? f->ndim : (val->rank > 0 ? val->rank : 0);
    int64_t item[MAX_RANK], dims[MAX_RANK];
    for (int32_t i = 0; i < rank; i++)
        item[i] = f ? f->dims[i] : val->dims[i] > 0 ? val->dims[i] : 0;
    if (axis < 0)
        axis += rank + 1;
    if (axis < 0 || axis > rank || rank + 1 > MAX_RANK)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "scan output axis %d out "
                         "of range for items of rank %d", (int)axis, (int)rank);
    for (int32_t i = 0, j = 0; i <= rank; i++)
        dims[i] = i == axis ? s->count : item[j++];
    Status st = tensor_alloc(y, f ? f->dtype : val->dtype, rank + 1, dims, err);
    if (st != ST_OK || !f)
        return st;
    /* y viewed as (outer, count, inner); item t fills (., t, .) */
    int64_t outer = 1, inner = 1;
    for (int32_t i = 0; i < rank; i++)
        *(i < axis ? &outer : &inner) *= item[i];
    size_t chunk = (size_t)(inner * dtype_size(y->dtype));
    for (int64_t t = 0; t < s->count; t++) {
        int64_t pos = rev ? s->count - 1 - t : t;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)y->data + ((size_t)(o * s->count + pos)) * chunk,
                   (const char *)s->items[t].data + (size_t)o * chunk, chunk);
    }
    return ST_OK;
}

/* ---- Loop and Scan share the iteration state -------------------------- */

typedef struct {
    int32_t gi;        /* body graph */
    int32_t first;     /* body input of loop-carried value 0 */
    int32_t n_state;
    int32_t n_scan;
    Tensor *next;      /* (n_state) new loop-carried values */
    Stack *stacks;     /* (n_scan) */
} Iter;

static Status iter_init(Iter *it, int32_t gi, int32_t first, int32_t n_state,
                        int32_t n_scan, Err *err)
{
    it->gi = gi;
    it->first = first;
    it->n_state = n_state;
    it->n_scan = n_scan;
    it->next = calloc((size_t)n_state + 1, sizeof(Tensor));
    it->stacks = calloc((size_t)n_scan + 1, sizeof(Stack));
    if (!it->next || !it->stacks)
        return fail(err, ST_OOM, "out of memory starting a loop");
    return ST_OK;
}

/* After a body run: body outputs [skip, skip + n_state) become the next
   loop-carried values, the following n_scan are pushed onto the stacks. */
static Status iter_collect(const Model *m, const Node *n, Iter *it,
                           int32_t skip, Tensor *const *want, Tensor *vals,
                           Err *err)
{
    Status st = ST_OK;
    const Graph *g = &m->graphs[it->gi];
    for (int32_t k = 0; k < it->n_state && st == ST_OK; k++)
        st = take_output(m, it->gi, skip + k, vals, &it->next[k], err);
    for (int32_t k = 0; k < it->n_scan && st == ST_OK; k++) {
        if (!want[k])
            continue;
        Tensor t = {0};
        st = take_output(m, it->gi, skip + it->n_state + k, vals, &t, err);
        if (st == ST_OK)
            st = stack_push(n, &it->stacks[k], &t, err);
        tensor_release(&t);
    }
    release_body(m, it->gi, vals);
    /* the new loop-carried values go into the input slots */
    for (int32_t k = 0; k < it->n_state; k++) {
        vals[g->inputs[it->first + k]] = it->next[k];
        memset(&it->next[k], 0, sizeof(Tensor));
    }
    return st;
}

/* The final loop-carried values into out[0..n_state), owned. */
static Status iter_finish(const Model *m, Iter *it, Tensor *const *out,
                          Tensor *vals, Err *err)
{
    const Graph *g = &m->graphs[it->gi];
    Status st = ST_OK;
    for (int32_t k = 0; k < it->n_state && st == ST_OK; k++) {
        Tensor *slot = &vals[g->inputs[it->first + k]];
        if (!out[k])
            continue;
        if (slot->owned) {
            *out[k] = *slot;
            memset(slot, 0, sizeof *slot);
        } else {
            st = copy_tensor(slot, out[k], err);
        }
    }
    return st;
}

static void iter_free(const Model *m, Iter *it, Tensor *vals)
{
    for (int32_t k = 0; it->next && k < it->n_state; k++)
        tensor_release(&it->next[k]);
    for (int32_t k = 0; it->stacks && k < it->n_scan; k++)
        stack_free(&it->stacks[k]);
    free(it->next);
    free(it->stacks);
    release_body(m, it->gi, vals);
}

/* ---- Loop ------------------------------------------------------------- */

static Status run_loop(const Model *m, const Node *n, Tensor *vals,
                       Tensor *const *in, Tensor *const *out, Err *err)
{
    const ControlParams *p = n->params;
    const Graph *g = &m->graphs[p->body[0]];
    int64_t trip = INT64_MAX;
    int cond = 1, has_m = in[0] != NULL;
    Status st = ST_OK;

    /* step 1: trip count and condition, both optional (without either, the
       loop runs until the body's cond is false) */
    if (has_m && (in[0]->kind != TK_TENSOR ||
                  (in[0]->dtype != DT_INT64 && in[0]->dtype != DT_INT32) ||
                  in[0]->numel != 1))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "M must be one int64, got "
                         "%s with %lld elements", dtype_name(in[0]->dtype),
                         (long long)in[0]->numel);
    if (has_m)
        trip = tensor_get_int(in[0], 0);
    if (in[1] && (st = read_cond(n, in[1], "cond", &cond, err)))
        return st;

    /* step 2: body inputs: loop-carried values (borrowed at first) */
    Iter it = {0};
    Tensor *iter_slot = &vals[g->inputs[0]], *cond_slot = &vals[g->inputs[1]];
    if ((st = iter_init(&it, p->body[0], 2, p->n_state, p->n_scan_out, err))) {
        iter_free(m, &it, vals);
        return st;
    }
    for (int32_t k = 0; k < p->n_state; k++)
        vals[g->inputs[2 + k]] = borrow(in[2 + k]);

    /* step 3: iterate; iter_collect empties the iteration and cond slots */
    for (int64_t i = 0; i < trip && cond; i++) {
        if ((st = tensor_alloc(iter_slot, DT_INT64, 0, NULL, err)) ||
            (st = tensor_alloc(cond_slot, DT_BOOL, 0, NULL, err)))
            break;
        *(int64_t *)iter_slot->data = i;
        *(uint8_t *)cond_slot->data = (uint8_t)cond;
        if ((st = graph_run(m, p->body[0], vals, err)) != ST_OK)
            break;
        int next_cond;
        if ((st = read_cond(n, &vals[g->outputs[0]], "body output cond",
                            &next_cond, err)))
            break;
        if ((st = iter_collect(m, n, &it, 1, out + p->n_state, vals, err)))
            break;
        /* NOTE: the ONNX text says the body's cond is ignored when the
           cond input is absent; onnxruntime (the verifier's reference)
           stops on it all the same, and so do we */
        cond = next_cond;
    }

    /* step 4: final loop-carried values, stacked scan outputs */
    if (st == ST_OK)
        st = iter_finish(m, &it, out, vals, err);
    for (int32_t k = 0; k < p->n_scan_out && st == ST_OK; k++)
        if (out[p->n_state + k])
            st = stack_join(n, m, g->outputs[1 + p->n_state + k],
                            &it.stacks[k], 0, 0, out[p->n_state + k], err);
    iter_free(m, &it, vals);
    return st;
}

/* ---- Scan ------------------------------------------------------------- */

/* y = slice t of x along axis (that axis removed): a view when axis is 0,
   else a copy. */
static Status scan_slice(const Tensor *x, int32_t axis, int64_t t, Tensor *y,
                         Err *err)
{
    int64_t dims[MAX_RANK];
    for (int32_t i = 0, j = 0; i < x->ndim; i++)
        if (i != axis)
            dims[j++] = x->dims[i];
    int size = dtype_size(x->dtype);
    if (axis == 0) {
        Status st = tensor_set_shape(y, x->dtype, x->ndim - 1, dims, err);
        y->data = (char *)x->data + (size_t)(t * x->strides[0] * size);
        y->owned = false;
        return st;
    }
    Status st = tensor_alloc(y, x->dtype, x->ndim - 1, dims, err);
    if (st != ST_OK)
        return st;
    /* x viewed as (outer, len, inner): take (., t, .) */
    int64_t outer = 1, inner = x->strides[axis];
    for (int32_t i = 0; i < axis; i++) outer *= x->dims[i];
    size_t chunk = (size_t)(inner * size);
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)y->data + o * chunk,
               (const char *)x->data + ((size_t)(o * x->dims[axis] + t)) * chunk,
               chunk);
    return ST_OK;
}

/*
 * One scan of len steps: states from st_in[0..N), scanned inputs sc_in[0..M)
 * sliced along axes[]; final states and stacked scan outputs into
 * out[0..N+K) (NULL: not wanted).
 */
static Status scan_once(const Model *m, const Node *n, Tensor *vals,
                        Tensor *const *st_in, Tensor *const *sc_in,
                        const int32_t *axes, int64_t len, Tensor *const *out,
                        Err *err)
{
    const ControlParams *p = n->params;
    const Graph *g = &m->graphs[p->body[0]];
    int32_t N = p->n_state, M = p->n_scan_in;
    Iter it = {0};
    Status st = iter_init(&it, p->body[0], 0, N, p->n_scan_out, err);

    /* states and slices in, states and scan items out */
    for (int32_t k = 0; k < N && st == ST_OK; k++)
        vals[g->inputs[k]] = borrow(st_in[k]);
    for (int64_t t = 0; t < len && st == ST_OK; t++) {
        for (int32_t j = 0; j < M && st == ST_OK; j++)
            st = scan_slice(sc_in[j], axes[j], p->in_rev[j] ? len - 1 - t : t,
                            &vals[g->inputs[N + j]], err);
        if (st == ST_OK)
            st = graph_run(m, p->body[0], vals, err);
        if (st == ST_OK)
            st = iter_collect(m, n, &it, 0, out + N, vals, err);
    }

    /* final states, stacked scan outputs */
    if (st == ST_OK)
        st = iter_finish(m, &it, out, vals, err);
    for (int32_t k = 0; k < p->n_scan_out && st == ST_OK; k++)
        if (out[N + k])
            st = stack_join(n, m, g->outputs[N + k], &it.stacks[k],
                            p->out_axis[k], p->out_rev[k], out[N + k], err);
    iter_free(m, &it, vals);
    return st;
}

static Status run_scan(const Model *m, const Node *n, Tensor *vals,
                       Tensor *const *in, Tensor *const *out, Err *err)
{
    const ControlParams *p = n->params;
    int32_t N = p->n_state, M = p->n_scan_in, axes[MAX_NODE_IO];
    int64_t len = -1;
    Status st;

    /* the scanned axis of every scan input, all of one length */
    for (int32_t j = 0; j < M; j++) {
        const Tensor *x = in[N + j];
        if (!x || x->ndim < 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "scan input %d must "
                             "have rank >= 1", (int)j);
        if ((st = norm_axis(n, p->in_axis[j], x->ndim, &axes[j], err)))
            return st;
        if (len >= 0 && x->dims[axes[j]] != len)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "scan inputs have "
                             "different lengths (%lld and %lld)", (long long)len,
                             (long long)x->dims[axes[j]]);
        len = x->dims[axes[j]];
    }
    return scan_once(m, n, vals, in, in + N, axes, len, out, err);
}

/* t (len, ...) -> (seq, ...), zero past len (Scan 8 with sequence_lens). */
static Status pad_steps(Tensor *t, int64_t seq, Err *err)
{
    if (t->ndim < 1 || t->dims[0] >= seq)
        return ST_OK;
    int64_t dims[MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    dims[0] = seq;
    Tensor y = {0};
    Status st = tensor_alloc(&y, t->dtype, t->ndim, dims, err);
    if (st != ST_OK)
        return st;
    memset(y.data, 0, (size_t)tensor_nbytes(&y));
    memcpy(y.data, t->data, (size_t)tensor_nbytes(t));
    tensor_release(t);
    *t = y;
    return ST_OK;
}

/* Scan of opset 8: one scan per batch entry (of sequence_lens[b] steps),
   results stacked along the batch axis. */
static Status run_scan8(const Model *m, const Node *n, Tensor *vals,
                        Tensor *const *in, Tensor *const *out, Err *err)
{
    const ControlParams *p = n->params;
    const Graph *g = &m->graphs[p->body[0]];
    int32_t N = p->n_state, M = p->n_scan_in, NK = n->n_out;
    Tensor *const *x = in + 1; /* states, then scan inputs */
    int64_t batch = x[0]->ndim ? x[0]->dims[0] : -1, seq = -1;
    int32_t axes[MAX_NODE_IO] = {0};
    Status st = ST_OK;

    /* step 1: shapes: batch first everywhere, steps second in scan inputs */
    for (int32_t k = 0; k < N + M; k++)
        if (!x[k] || x[k]->ndim < (k < N ? 1 : 2) || x[k]->dims[0] != batch ||
            (k >= N && seq >= 0 && x[k]->dims[1] != seq))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d must have "
                             "batch %lld first%s", (int)k + 1, (long long)batch,
                             k >= N ? " and the steps of the others second" : "");
        else if (k >= N)
            seq = x[k]->dims[1];
    const Tensor *lens = in[0];
    if (lens && (lens->dtype != DT_INT64 || lens->numel != batch))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "sequence_lens must be "
                         "int64 of shape (%lld,)", (long long)batch);
    for (int64_t b = 0; lens && b < batch; b++)
        if (tensor_get_int(lens, b) < 0 || tensor_get_int(lens, b) > seq)
            return node_fail(n, err, ST_BAD_REQUEST, "sequence_lens[%lld] = "
                             "%lld is outside [0, %lld]", (long long)b,
                             (long long)tensor_get_int(lens, b), (long long)seq);

    /* step 2: per batch entry: views in, results onto per-output stacks */
    Stack *stacks = calloc((size_t)NK + 1, sizeof(Stack));
    Tensor *views = calloc((size_t)(N + M) + 1, sizeof(Tensor));
    Tensor *res = calloc((size_t)NK + 1, sizeof(Tensor));
    Tensor **vp = calloc((size_t)(N + M + NK) + 1, sizeof(Tensor *));
    if (!stacks || !views || !res || !vp)
        st = fail(err, ST_OOM, "out of memory running Scan");
    for (int64_t b = 0; b < batch && st == ST_OK; b++) {
        for (int32_t k = 0; k < N + M && st == ST_OK; k++) {
            st = scan_slice(x[k], 0, b, &views[k], err);
            vp[k] = &views[k];
        }
        for (int32_t k = 0; k < NK; k++)
            vp[N + M + k] = out[k] ? &res[k] : NULL;
        if (st == ST_OK)
            st = scan_once(m, n, vals, vp, vp + N, axes,
                           lens ? tensor_get_int(lens, b) : seq, vp + N + M,
                           err);
        for (int32_t k = 0; k < NK && st == ST_OK; k++)
            if (out[k] && (k < N || (st = pad_steps(&res[k], seq, err)) == ST_OK))
                st = stack_push(n, &stacks[k], &res[k], err);
        for (int32_t k = 0; k < NK; k++)
            tensor_release(&res[k]);
    }

    /* step 3: stack along the batch axis */
    for (int32_t k = 0; k < NK && st == ST_OK; k++)
        if (out[k])
            st = stack_join(n, m, g->outputs[k], &stacks[k], 0, 0, out[k], err);
    for (int32_t k = 0; stacks && k < NK; k++)
        stack_free(&stacks[k]);
    free(stacks);
    free(views);
    free(res);
    free(vp);
    return st;
}

/* ---- SequenceMap ------------------------------------------------------ */

Status prep_sequence_map(const Model *m, Node *n, Err *err)
{
    ControlParams *p = new_params(n, 0, err);
    if (!p)
        return ST_OOM;
    return body_attr(m, n, "body", n->n_in, n->n_out, &p->body[0], err);
}

/*
 * out[k] = [body(items i of the sequence inputs, the tensor inputs)_k for
 * each i]: input 0 is a sequence; the others are sequences of the same
 * length or tensors passed whole. Items and tensors go in borrowed; body
 * outputs must be tensors and become the items of the output sequences.
 */
static Status run_sequence_map(const Model *m, const Node *n, Tensor *vals,
                               Tensor *const *in, Tensor *const *out,
                               Err *err)
{
    const ControlParams *p = n->params;
    int32_t gi = p->body[0];
    const Graph *g = &m->graphs[gi];
    Status st = ST_OK;

    /* step 1: the length, shared by every sequence input */
    if (!in[0] || in[0]->kind != TK_SEQ_TENSOR)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input 0 must be a "
                         "sequence of tensors");
    int64_t len = in[0]->numel;
    for (int32_t j = 1; j < n->n_in; j++)
        if (!in[j] || (in[j]->kind != TK_TENSOR && in[j]->kind != TK_SEQ_TENSOR))
            return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d must be a "
                             "sequence or a tensor", (int)j);
        else if (in[j]->kind == TK_SEQ_TENSOR && in[j]->numel != len)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d has %lld "
                             "items, input 0 has %lld", (int)j,
                             (long long)in[j]->numel, (long long)len);

    /* step 2: the output sequences (dtype from the first item, else the
       declared one) */
    for (int32_t k = 0; k < n->n_out && st == ST_OK; k++)
        if (out[k])
            st = seq_alloc(out[k], n->out[k] >= 0 ? m->values[n->out[k]].dtype
                                                  : DT_FLOAT, len, err);

    /* step 3: one body run per item */
    for (int64_t i = 0; i < len && st == ST_OK; i++) {
        for (int32_t j = 0; j < n->n_in; j++)
            vals[g->inputs[j]] = borrow(in[j]->kind == TK_SEQ_TENSOR
                                            ? &((Tensor *)in[j]->data)[i]
                                            : in[j]);
        st = graph_run(m, gi, vals, err);
        for (int32_t k = 0; k < n->n_out && st == ST_OK; k++) {
            if (!out[k])
                continue;
            Tensor *item = &((Tensor *)out[k]->data)[i];
            st = take_output(m, gi, k, vals, item, err);
            if (st == ST_OK && item->kind != TK_TENSOR)
                st = node_fail(n, err, ST_UNSUPPORTED_OP, "body output %d "
                               "must be a tensor", (int)k);
            else if (st == ST_OK && i > 0 && item->dtype != out[k]->dtype)
                st = node_fail(n, err, ST_SHAPE_MISMATCH, "body output %d "
                               "changes dtype from %s to %s", (int)k,
                               dtype_name(out[k]->dtype),
                               dtype_name(item->dtype));
            out[k]->dtype = item->dtype;
        }
        release_body(m, gi, vals);
    }
    for (int32_t k = 0; k < n->n_out && st != ST_OK; k++)
        if (out[k])
            tensor_release(out[k]);
    return st;
}

Status control_run(const Model *m, const Node *n, Tensor *vals,
                   Tensor *const *in, Tensor *const *out, Err *err)
{
    switch (n->op) {
    case OP_If: return run_if(m, n, vals, in, out, err);
    case OP_Loop: return run_loop(m, n, vals, in, out, err);
    case OP_SequenceMap: return run_sequence_map(m, n, vals, in, out, err);
    case OP_Scan:
        return ((const ControlParams *)n->params)->batched
                   ? run_scan8(m, n, vals, in, out, err)
                   : run_scan(m, n, vals, in, out, err);
    case OPPV_FlexAttention:
        return flex_attention_run(m, n, vals, in, out, err);
    default: return op_subgraph(n, in, out, err);
    }
}

/* ---- one-input bodies (FlexAttention's score_mod / prob_mod) ----------- */

Status body_call(const Model *m, const Node *n, int32_t gi, Tensor *vals,
                 const Tensor *x, Tensor *y, Err *err)
{
    const Graph *g = &m->graphs[gi];
    if (g->n_inputs != 1 || g->n_outputs != 1)
        return node_fail(n, err, ST_BAD_FORMAT, "body graph %d must have 1 "
                         "input and 1 output, has %d and %d", (int)gi,
                         (int)g->n_inputs, (int)g->n_outputs);
    vals[g->inputs[0]] = borrow(x);
    Status st = graph_run(m, gi, vals, err);
    if (st == ST_OK)
        st = take_output(m, gi, 0, vals, y, err);
    release_body(m, gi, vals);
    return st;
}
