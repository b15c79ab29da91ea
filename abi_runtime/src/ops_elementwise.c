/*
 * ops_elementwise.c: unary and broadcasting binary elementwise ops.
 */
#include <math.h>
#include <string.h>

#include "numeric.h" /* Dropout reads its ratio */
#include "ops.h"

/* ---- unary ---------------------------------------------------------- */

/* y[i] = f(x[i]) over n float32 elements, for the op of n. */
static void unary_f32(int32_t op, float alpha, const float *x, float *y,
                      int64_t count)
{
    switch (op) {
    case OP_Relu:
        for (int64_t i = 0; i < count; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case OP_LeakyRelu:
        for (int64_t i = 0; i < count; i++) y[i] = x[i] < 0.0f ? alpha * x[i] : x[i];
        break;
    case OP_Abs: for (int64_t i = 0; i < count; i++) y[i] = fabsf(x[i]); break;
    case OP_Neg: for (int64_t i = 0; i < count; i++) y[i] = -x[i]; break;
    case OP_Exp: for (int64_t i = 0; i < count; i++) y[i] = expf(x[i]); break;
    case OP_Log: for (int64_t i = 0; i < count; i++) y[i] = logf(x[i]); break;
    case OP_Sqrt: for (int64_t i = 0; i < count; i++) y[i] = sqrtf(x[i]); break;
    case OP_Erf: for (int64_t i = 0; i < count; i++) y[i] = erff(x[i]); break;
    case OP_Tanh: for (int64_t i = 0; i < count; i++) y[i] = tanhf(x[i]); break;
    case OP_Sigmoid:
        /* split by sign so that expf never overflows */
        for (int64_t i = 0; i < count; i++) {
            float e = expf(-fabsf(x[i]));
            y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        }
        break;
    default: ASSERT(0);
    }
}

/* Y = f(X) elementwise; float32, and int64/int32 for Abs, Neg, Relu. */
Status op_unary(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    Tensor *y = out[0];
    /* other dtypes: the dtype-generic kernel of ops_math.c */
    if (x->dtype != DT_FLOAT)
        return op_math_unary(n, in, out, err);
    Status st = tensor_alloc_like(y, x, err);
    if (st != ST_OK)
        return st;
    if (x->dtype == DT_FLOAT) {
        unary_f32(n->op, attr_float(n, "alpha", 0.01f), x->data, y->data,
                  x->numel);
        return ST_OK;
    }
    int integer_op = n->op == OP_Abs || n->op == OP_Neg || n->op == OP_Relu;
    if (x->dtype == DT_INT64 && integer_op) {
        const int64_t *a = x->data;
        int64_t *b = y->data;
        for (int64_t i = 0; i < x->numel; i++) {
            /* unsigned negation: INT64_MIN stays itself, as in numpy */
            uint64_t neg = 0 - (uint64_t)a[i];
            b[i] = n->op == OP_Relu ? (a[i] > 0 ? a[i] : 0)
                 : n->op == OP_Neg || a[i] < 0 ? (int64_t)neg : a[i];
        }
        return ST_OK;
    }
    return require_float(n, x, 0, err);
}

/* ---- broadcasting binary ---------------------------------------------- */

/* The broadcast of two shapes: output dims and per-input strides (0 on a
   broadcast axis), right-aligned numpy style. */
typedef struct {
    int32_t ndim;
    int64_t dims[MAX_RANK];
    int64_t sa[MAX_RANK], sb[MAX_RANK];
} Broadcast;

static Status broadcast(const Node *n, const Tensor *a, const Tensor *b,
                        Broadcast *bc, Err *err)
{
    char sa[96], sb[96];
    bc->ndim = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int32_t i = 0; i < bc->ndim; i++) {
        int32_t ia = i - (bc->ndim - a->ndim), ib = i - (bc->ndim - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast "
                             "%s with %s", shape_str(a->dims, a->ndim, sa, 96),
                             shape_str(b->dims, b->ndim, sb, 96));
        bc->dims[i] = da == 1 ? db : da;
        bc->sa[i] = (ia >= 0 && da != 1) ? a->strides[ia] : 0;
        bc->sb[i] = (ib >= 0 && db != 1) ? b->strides[ib] : 0;
    }
    return ST_OK;
}

/* Inner loops: c[i] = a[i*sa] OP b[i*sb] for i < count. */
#define INNER(name, T, EXPR)                                                  \
    static void name(const T *a, int64_t sa, const T *b, int64_t sb, T *c,    \
                     int64_t count)                                           \
    {                                                                         \
        if (sa == 1 && sb == 1)                                               \
            for (int64_t i = 0; i < count; i++) {                             \
                T x = a[i], y = b[i];                                         \
                c[i] = (EXPR);                                                \
            }                                                                 \
        else                                                                  \
            for (int64_t i = 0; i < count; i++) {                             \
                T x = a[i * sa], y = b[i * sb];                               \
                c[i] = (EXPR);                                                \
            }                                                                 \
    }

INNER(add_f32, float, x + y)
INNER(sub_f32, float, x - y)
INNER(mul_f32, float, x * y)
INNER(div_f32, float, x / y)
INNER(pow_f32, float, powf(x, y))
/* integers wrap on overflow, computed unsigned to stay defined C */
INNER(add_i64, int64_t, (int64_t)((uint64_t)x + (uint64_t)y))
INNER(sub_i64, int64_t, (int64_t)((uint64_t)x - (uint64_t)y))
INNER(mul_i64, int64_t, (int64_t)((uint64_t)x * (uint64_t)y))
INNER(add_i32, int32_t, (int32_t)((uint32_t)x + (uint32_t)y))
INNER(sub_i32, int32_t, (int32_t)((uint32_t)x - (uint32_t)y))
INNER(mul_i32, int32_t, (int32_t)((uint32_t)x * (uint32_t)y))

/* Integer division truncates toward zero like C and onnxruntime; the
   caller has ruled out zero divisors and INT_MIN / -1 (both trap in wasm). */
INNER(div_i64, int64_t, x / y)
INNER(div_i32, int32_t, x / y)

typedef void (*InnerFn)(const void *, int64_t, const void *, int64_t, void *,
                        int64_t);

static InnerFn pick_inner(int32_t op, int32_t dtype)
{
#define PICK(f) ((InnerFn)(void (*)(void))(f))
    if (dtype == DT_FLOAT) switch (op) {
        case OP_Add: return PICK(add_f32); case OP_Sub: return PICK(sub_f32);
        case OP_Mul: return PICK(mul_f32); case OP_Div: return PICK(div_f32);
        case OP_Pow: return PICK(pow_f32);
    }
    if (dtype == DT_INT64) switch (op) {
        case OP_Add: return PICK(add_i64); case OP_Sub: return PICK(sub_i64);
        case OP_Mul: return PICK(mul_i64); case OP_Div: return PICK(div_i64);
    }
    if (dtype == DT_INT32) switch (op) {
        case OP_Add: return PICK(add_i32); case OP_Sub: return PICK(sub_i32);
        case OP_Mul: return PICK(mul_i32); case OP_Div: return PICK(div_i32);
    }
    return NULL;
#undef PICK
}

/* Refuse divisors that would trap the module instead of answering. */
static Status check_int_divisor(const Node *n, const Tensor *a,
                                const Tensor *b, Err *err)
{
    int64_t min = b->dtype == DT_INT64 ? INT64_MIN : INT32_MIN;
    int has_min = 0;
    for (int64_t i = 0; i < a->numel; i++)
        has_min |= tensor_get_int(a, i) == min;
    for (int64_t i = 0; i < b->numel; i++) {
        int64_t d = tensor_get_int(b, i);
        if (d == 0 || (d == -1 && has_min))
            return node_fail(n, err, ST_BAD_REQUEST, "integer division %s",
                             d == 0 ? "by zero" : "overflow (MIN / -1)");
    }
    return ST_OK;
}

/* C = A op B with numpy broadcasting; float32, int64, int32. */
Status op_binary(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *a = in[0], *b = in[1];
    InnerFn inner = pick_inner(n->op, a->dtype);
    /* other dtypes (and Pow's mixed ones): the generic kernel of ops_math.c */
    if (a->dtype != b->dtype || !inner)
        return op_math_binary(n, in, out, err);
    Status st;
    if (n->op == OP_Div && a->dtype != DT_FLOAT &&
        (st = check_int_divisor(n, a, b, err)) != ST_OK)
        return st;
    Broadcast bc;
    if ((st = broadcast(n, a, b, &bc, err)) != ST_OK)
        return st;
    if ((st = tensor_alloc(out[0], a->dtype, bc.ndim, bc.dims, err)) != ST_OK)
        return st;

    /* walk every index but the last; the inner loop covers the last axis */
    int size = dtype_size(a->dtype);
    const char *pa = a->data, *pb = b->data;
    char *pc = out[0]->data;
    int32_t last = bc.ndim - 1;
    int64_t inner_n = bc.ndim ? bc.dims[last] : 1;
    int64_t isa = bc.ndim ? bc.sa[last] : 0, isb = bc.ndim ? bc.sb[last] : 0;
    if (out[0]->numel == 0)
        return ST_OK;
    /* same shapes: one flat loop */
    if (a->numel == b->numel && a->numel == out[0]->numel &&
        a->ndim == b->ndim && !memcmp(a->dims, b->dims, 8 * a->ndim)) {
        inner(pa, 1, pb, 1, pc, out[0]->numel);
        return ST_OK;
    }
    int64_t idx[MAX_RANK] = {0};
    int64_t oa = 0, ob = 0;
    for (int64_t oc = 0; oc < out[0]->numel; oc += inner_n) {
        inner(pa + oa * size, isa, pb + ob * size, isb, pc + oc * size, inner_n);
        for (int32_t d = last - 1; d >= 0; d--) {
            idx[d]++;
            oa += bc.sa[d];
            ob += bc.sb[d];
            if (idx[d] < bc.dims[d])
                break;
            oa -= bc.sa[d] * bc.dims[d];
            ob -= bc.sb[d] * bc.dims[d];
            idx[d] = 0;
        }
    }
    return ST_OK;
}

/* Y = X (also Dropout at inference: the optional mask output is all true). */
Status op_identity(const Node *n, Tensor *const *in, Tensor *const *out,
                   Err *err)
{
    /* training mode draws a random mask unless the ratio is 0 (default
       0.5): the draw is not reproducible, so it is refused */
    if (n->op == OP_Dropout && n->n_in > 2 && in[2] && in[2]->numel &&
        in[2]->dtype == DT_BOOL && ((const uint8_t *)in[2]->data)[0]) {
        const Tensor *r = n->n_in > 1 ? in[1] : NULL;
        double ratio = r && r->numel == 1 && dtype_is_float(r->dtype)
                     ? elem_get_f(r, 0) : 0.5;
        if (ratio != 0.0)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "training_mode = true "
                             "with ratio %g draws a random mask, which is not "
                             "supported (only ratio 0 is deterministic)", ratio);
    }
    /* a sequence of tensors or an empty optional: a deep copy */
    if (in[0]->kind == TK_SEQ_TENSOR || in[0]->kind == TK_NONE)
        return tensor_copy(out[0], in[0], err);
    Status st = tensor_alloc_like(out[0], in[0], err);
    if (st != ST_OK)
        return st;
    memcpy(out[0]->data, in[0]->data, (size_t)tensor_nbytes(in[0]));
    /* maps (e.g. ZipMap's output renamed) keep their keys */
    if (in[0]->kind != TK_TENSOR && (st = tensor_copy_keys(out[0], in[0], err)))
        return st;
    if (n->n_out > 1 && out[1]) {
        if ((st = tensor_alloc(out[1], DT_BOOL, in[0]->ndim, in[0]->dims, err)))
            return st;
        memset(out[1]->data, 1, (size_t)out[1]->numel);
    }
    return ST_OK;
}
