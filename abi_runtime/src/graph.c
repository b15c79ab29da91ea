/*
 * graph.c: running a graph of a model (the main graph, or the body of a
 * control-flow node), node after node.
 */
#include <stdio.h>
#include <string.h>

#include "graph.h"
#include "memplan.h"
#include "ops.h"

/* Release the activations of graph gi (of every graph when gi is 0);
   inputs and constants stay. */
static void release_activations(const Model *m, int32_t gi, Tensor *vals)
{
    for (int32_t v = 0; v < m->n_values; v++)
        if (m->values[v].kind == VK_ACTIVATION &&
            (gi == 0 || m->values[v].graph == gi))
            tensor_release(&vals[v]);
}

/* Sequences of tensors and empty optionals reach only the ops that take
   them (ops.h: OP_TAKES_SEQUENCES). */
static int is_seq_input(const Node *n, const Tensor *t)
{
    return (t->kind == TK_SEQ_TENSOR || t->kind == TK_NONE) &&
           OP_TAKES_SEQUENCES(n->op);
}

/* What a non-tensor value is, for errors. */
static const char *kind_noun(int32_t kind)
{
    return kind == TK_SEQ_TENSOR ? "a sequence of tensors"
         : kind == TK_NONE       ? "an empty optional"
                                 : "a map or a sequence of maps";
}

#ifdef INTERP_TRACE
static void trace_node(const Model *m, const Node *n, Tensor *vals)
{
    char buf[96];
    fprintf(stderr, "%-24s %-14s", n->name, n->op_type);
    for (int32_t k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0)
            fprintf(stderr, " -> %s %s", dtype_name(vals[n->out[k]].dtype),
                    shape_str(vals[n->out[k]].dims, vals[n->out[k]].ndim, buf,
                              sizeof buf));
    fprintf(stderr, "\n");
    (void)m;
}
#endif

/* Run the nodes of graph gi (graph_run without the memory plan). */
static Status run_nodes(const Model *m, int32_t gi, Tensor *vals, Err *err)
{
    const Graph *g = &m->graphs[gi];
    Tensor *in[MAX_NODE_IO], *out[MAX_NODE_IO];

    /* constants are borrowed views into the blob (set once per request) */
    for (int32_t v = 0; gi == 0 && v < m->n_values; v++)
        if (m->values[v].kind == VK_CONSTANT)
            vals[v] = m->values[v].constant;

    for (int32_t i = 0; i < g->n_nodes; i++) {
        const Node *n = &g->nodes[i];
        for (int32_t k = 0; k < n->n_in; k++)
            in[k] = n->in[k] >= 0 ? &vals[n->in[k]] : NULL;
        /* maps reach only the ops that read them (a kernel for tensors
           would drop the keys) */
        for (int32_t k = 0; k < n->n_in; k++)
            if (in[k] && in[k]->kind != TK_TENSOR && n->op != OP_Identity &&
                n->op != OPML_DictVectorizer && n->op != OPML_CastMap &&
                !is_seq_input(n, in[k])) {
                release_activations(m, gi, vals);
                return node_fail(n, err, ST_UNSUPPORTED_OP, "input %d is "
                                 "%s, which %s does not take", (int)k,
                                 kind_noun(in[k]->kind), n->op_type);
            }
        for (int32_t k = 0; k < n->n_out; k++)
            out[k] = n->out[k] >= 0 ? &vals[n->out[k]] : NULL;

        /* control-flow ops run their bodies on the same value slots */
        Status st = OP_HAS_SUBGRAPH(n->op)
                        ? control_run(m, n, vals, in, out, err)
                        : OP_TABLE[n->op].run(n, in, out, err);
        if (st != ST_OK) {
            release_activations(m, gi, vals);
            return st;
        }
#ifdef INTERP_TRACE
        trace_node(m, n, vals);
#endif
        /* free what no later node (nor body of a later node) reads: the
           loader listed them per node */
        for (int32_t j = g->free_at[i]; j < g->free_at[i + 1]; j++)
            tensor_release(&vals[g->frees[j]]);
    }
    return ST_OK;
}

Status graph_run(const Model *m, int32_t gi, Tensor *vals, Err *err)
{
    if (gi != 0)
        return run_nodes(m, gi, vals, err);
    /* the activations of graph 0 take their planned places (memplan.c) */
    Status st = memplan_begin(m, vals, err);
    if (st == ST_OK)
        st = run_nodes(m, 0, vals, err);
    memplan_end();
    return st;
}
