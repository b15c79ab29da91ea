/*
 * model.h: the in-memory form of a plan (see docs/plan-format.md).
 *
 * A model owns one blob (the plan bytes). Strings, attribute payloads and
 * constant tensors point into that blob; nothing is copied out of it.
 * Values (the edges of the graph) are numbered globally; graph 0 is the
 * main graph, further graphs are bodies of control-flow ops.
 */
#ifndef WX_MODEL_H
#define WX_MODEL_H

#include <stdint.h>

#include "status.h"
#include "tensor.h"

#define PLAN_MAGIC "WXPLAN\0\0"
#define PLAN_VERSION 3
#define PLAN_HEADER_SIZE 56
#define PLAN_DATA_ALIGN 64
#define RANK_UNKNOWN 255
#define MAX_NODE_IO 256 /* inputs or outputs of one node */

/* How a value gets its tensor. */
typedef enum {
    VK_ACTIVATION = 0, /* computed by a node, freed after its last use */
    VK_CONSTANT = 1,   /* initializer: borrowed from the blob */
    VK_INPUT = 2       /* graph input: comes with the request */
} ValueKind;

/* A declared dimension: >= 0 static, DIM_UNKNOWN, or a symbol. */
#define DIM_UNKNOWN (-1)
#define DIM_IS_SYMBOL(d) ((d) <= -2)
#define DIM_SYMBOL(d) (-(d) - 2) /* symbol index of a symbolic dimension */

typedef struct {
    const char *name;
    int32_t dtype;
    int32_t kind;            /* ValueKind */
    int32_t rank;            /* declared rank, -1 when unknown */
    int32_t dims[MAX_RANK];  /* declared dimensions, see DIM_* */
    Tensor constant;         /* VK_CONSTANT: borrowed view into the blob */
    int32_t last_use;        /* last node of its graph reading it, -1 none */
    int32_t is_output;       /* an output of its graph: never freed early */
    int32_t plan_last_use;   /* activations: last_use as the plan states it
                                (-1 kept to the end), checked at link */
    /* subgraphs: the graph that defines the value (-1 constants and dead
       values); last_use and is_output refer to that graph, and a read
       from inside a body counts as a read by the node holding the body */
    int32_t graph;
    int32_t type_kind;       /* TypeKind (tensor, map, sequence of maps) */
    int32_t key_dtype;       /* maps: DT_INT64 or DT_STRING */
} Value;

/* ONNX AttributeProto.AttributeType codes. */
typedef enum {
    AT_FLOAT = 1, AT_INT = 2, AT_STRING = 3, AT_TENSOR = 4, AT_GRAPH = 5,
    AT_FLOATS = 6, AT_INTS = 7, AT_STRINGS = 8
} AttrType;

typedef struct {
    const char *name;
    int32_t type;        /* AttrType */
    int32_t count;       /* elements of a list; 1 for a scalar */
    const uint8_t *raw;  /* payload in the blob (unaligned, little-endian) */
    const char *s;       /* AT_STRING, resolved at load */
    const char **strs;   /* AT_STRINGS, resolved at load (owned) */
} Attr;

typedef struct {
    const char *name;
    const char *op_type;
    const char *domain;  /* "" for ai.onnx */
    int32_t opset;       /* the model's opset of that domain */
    int32_t op;          /* OpCode, resolved at load */
    int32_t n_in, n_out, n_attrs;
    const int32_t *in;   /* value indices, -1 for an absent optional input */
    const int32_t *out;
    Attr *attrs;
    void *params;        /* op-specific, filled by the op's prepare */
    void (*free_params)(void *params); /* NULL: params is one free() block */
} Node;

typedef struct {
    int32_t n_nodes, n_inputs, n_outputs;
    Node *nodes;
    const int32_t *inputs;   /* value indices */
    const int32_t *outputs;
    /* filled by the loader: after node i, release the activations
       frees[free_at[i] .. free_at[i + 1]) (owned arrays) */
    int32_t *free_at;        /* n_nodes + 1 */
    int32_t *frees;
    int32_t parent;          /* graph of the node holding it, -1 graph 0 */
} Graph;

typedef struct {
    uint8_t *blob;           /* the plan, owned */
    uint32_t blob_size;
    int32_t blob_in_pages;   /* blob from pages_alloc: model_free keeps it */
    const char *strings;     /* NUL-terminated strings, back to back */
    uint32_t strings_size;
    int32_t n_symbols;
    const char **symbols;    /* names of symbolic dimensions */
    int32_t n_values;
    Value *values;
    int32_t n_graphs;
    Graph *graphs;
} Model;

/*
 * Parse and validate a plan of size bytes. Takes ownership of blob (freed
 * by model_free even on failure). Every offset, length and index is checked
 * before use; on failure err reads "model: bad format (<reason>)".
 */
Status model_load(Model *m, uint8_t *blob, uint32_t size, Err *err);

void model_free(Model *m);

/* Attribute lookup by name; NULL when absent. */
const Attr *node_attr(const Node *n, const char *name);

/* Typed attribute readers with a default for an absent attribute. */
int64_t attr_int(const Node *n, const char *name, int64_t dflt);
float attr_float(const Node *n, const char *name, float dflt);
const char *attr_string(const Node *n, const char *name, const char *dflt);

/* Value index of a TENSOR attribute (a constant of the model). */
int32_t attr_tensor(const Attr *a);

/* Copy an INTS attribute of exactly want values into v; v keeps its
   defaults when the attribute is absent. Fails naming the attribute when
   it is not INTS or has another length. */
Status attr_ints_exact(const Node *n, const char *name, int64_t *v, int want,
                       Err *err);

/* Element i of an INTS / FLOATS attribute. */
int64_t attr_ints_at(const Attr *a, int32_t i);
float attr_floats_at(const Attr *a, int32_t i);

/* Write "node '<name>' (<op_type>): <message>" into err. */
Status node_fail(const Node *n, Err *err, Status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
