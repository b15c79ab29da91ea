/*
 * ops_math.c: dtype-generic elementwise math: unary functions and
 * activations, broadcasting binary arithmetic, comparisons, logic and
 * bitwise ops, variadic Min/Max/Sum/Mean, Where and Clip.
 *
 * Every kernel reads elements through the computation domains of
 * numeric.h (float16/32/64 as double, signed ints as int64, unsigned ints
 * and bool as uint64), so one kernel serves every dtype the spec allows.
 * The float32 fast paths of ops_elementwise.c stay the reference for
 * speed; this file is the reference for dtypes.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"
#include "simd.h"

/* ---- broadcasting over up to three inputs --------------------------- */

#define BC_MAX 3

/* Output shape and, per input, element strides (0 on broadcast axes). */
typedef struct {
    int32_t ndim;
    int64_t dims[MAX_RANK];
    int64_t st[BC_MAX][MAX_RANK];
} Bcast;

/* Numpy-style (multidirectional) broadcast of k shapes. */
static Status bcast_init(const Node *n, const Tensor *const *t, int k,
                         Bcast *bc, Err *err)
{
    char s0[96], s1[96];
    bc->ndim = 0;
    for (int j = 0; j < k; j++)
        bc->ndim = t[j]->ndim > bc->ndim ? t[j]->ndim : bc->ndim;
    for (int32_t i = 0; i < bc->ndim; i++) {
        bc->dims[i] = 1;
        for (int j = 0; j < k; j++) {
            int32_t ij = i - (bc->ndim - t[j]->ndim);
            int64_t d = ij >= 0 ? t[j]->dims[ij] : 1;
            if (d != 1 && bc->dims[i] != 1 && d != bc->dims[i])
                return node_fail(n, err, ST_SHAPE_MISMATCH, "cannot broadcast "
                                 "%s with %s",
                                 shape_str(t[0]->dims, t[0]->ndim, s0, 96),
                                 shape_str(t[j]->dims, t[j]->ndim, s1, 96));
            if (d != 1)
                bc->dims[i] = d;
        }
    }
    for (int j = 0; j < k; j++)
        for (int32_t i = 0; i < bc->ndim; i++) {
            int32_t ij = i - (bc->ndim - t[j]->ndim);
            bc->st[j][i] = (ij >= 0 && t[j]->dims[ij] != 1) ? t[j]->strides[ij]
                                                             : 0;
        }
    return ST_OK;
}

/* Advance the output index idx by one, keeping the k input offsets. */
static void bcast_next(const Bcast *bc, int k, int64_t *idx, int64_t *off)
{
    for (int32_t d = bc->ndim - 1; d >= 0; d--) {
        idx[d]++;
        for (int j = 0; j < k; j++)
            off[j] += bc->st[j][d];
        if (idx[d] < bc->dims[d])
            return;
        for (int j = 0; j < k; j++)
            off[j] -= bc->st[j][d] * bc->dims[d];
        idx[d] = 0;
    }
}

/* ---- unary ---------------------------------------------------------- */

/* Attributes of the parametrised activations, read once per run. */
typedef struct {
    double alpha, beta, gamma, lambd, bias;
    int tanh_gelu;
} ActArgs;

static ActArgs act_args(const Node *n)
{
    ActArgs a;
    double alpha = 0.0, beta = 0.0;
    switch (n->op) {
    case OP_LeakyRelu: alpha = 0.01; break;
    case OP_Elu: case OP_Celu: case OP_ThresholdedRelu: case OP_Swish:
        alpha = 1.0;
        break;
    case OP_Selu: alpha = 1.67326319217681884765625; break;
    case OP_HardSigmoid: alpha = 0.2; beta = 0.5; break;
    case OP_HardSwish: alpha = 1.0 / 6.0; beta = 0.5; break;
    default: break;
    }
    a.alpha = attr_float(n, "alpha", (float)alpha);
    a.beta = attr_float(n, "beta", (float)beta);
    if (n->op == OP_HardSwish) { /* fixed constants, no attributes */
        a.alpha = alpha;
        a.beta = beta;
    }
    a.gamma = attr_float(n, "gamma", 1.05070102214813232421875f);
    a.lambd = attr_float(n, "lambd", 0.5f);
    a.bias = attr_float(n, "bias", 0.0f);
    a.tanh_gelu = strcmp(attr_string(n, "approximate", "none"), "tanh") == 0;
    return a;
}

/* y = f(x) in double for a float op. */
static double unary_f(int32_t op, const ActArgs *a, double x)
{
    switch (op) {
    case OP_Abs: return fabs(x);
    case OP_Neg: return -x;
    case OP_Relu: return x > 0.0 ? x : 0.0;
    case OP_Sigmoid: return x >= 0.0 ? 1.0 / (1.0 + exp(-x))
                                     : exp(x) / (1.0 + exp(x));
    case OP_Tanh: return tanh(x);
    case OP_Exp: return exp(x);
    case OP_Log: return log(x);
    case OP_Sqrt: return sqrt(x);
    case OP_Erf: return erf(x);
    case OP_LeakyRelu: return x < 0.0 ? a->alpha * x : x;
    case OP_Sign: return x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x; /* keeps NaN, 0 */
    case OP_Floor: return floor(x);
    case OP_Ceil: return ceil(x);
    case OP_Round: return nearbyint(x); /* half to even */
    case OP_Reciprocal: return 1.0 / x;
    case OP_Sin: return sin(x);
    case OP_Cos: return cos(x);
    case OP_Tan: return tan(x);
    case OP_Asin: return asin(x);
    case OP_Acos: return acos(x);
    case OP_Atan: return atan(x);
    case OP_Sinh: return sinh(x);
    case OP_Cosh: return cosh(x);
    case OP_Asinh: return asinh(x);
    case OP_Acosh: return acosh(x);
    case OP_Atanh: return atanh(x);
    case OP_HardSigmoid: case OP_HardSwish: {
        double h = a->alpha * x + a->beta;
        h = h < 0.0 ? 0.0 : h > 1.0 ? 1.0 : h;
        return op == OP_HardSwish ? x * h : h;
    }
    case OP_Elu: return x < 0.0 ? a->alpha * (exp(x) - 1.0) : x;
    case OP_Selu: return x <= 0.0 ? a->gamma * a->alpha * (exp(x) - 1.0)
                                  : a->gamma * x;
    case OP_Celu: return (x > 0.0 ? x : 0.0) +
                         fmin(0.0, a->alpha * (exp(x / a->alpha) - 1.0));
    case OP_Softplus: return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
    case OP_Softsign: return x / (1.0 + fabs(x));
    case OP_ThresholdedRelu: return x > a->alpha ? x : 0.0;
    case OP_Gelu:
        if (a->tanh_gelu)
            return 0.5 * x * (1.0 + tanh(0.79788456080286536 * /* sqrt(2/pi) */
                                         (x + 0.044715 * x * x * x)));
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case OP_Mish: {
        double sp = x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
        return x * tanh(sp);
    }
    case OP_Shrink: return x < -a->lambd ? x + a->bias
                         : x > a->lambd ? x - a->bias : 0.0;
    case OP_Swish: {
        double z = a->alpha * x;
        return x * (z >= 0.0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)));
    }
    default: return NAN;
    }
}

/* y = f(x) for an integer op in the signed domain; *ok = 0 if none. */
static int64_t unary_i(int32_t op, const ActArgs *a, int64_t x, int *ok)
{
    uint64_t neg = 0 - (uint64_t)x; /* MIN stays MIN, as in numpy */
    switch (op) {
    case OP_Abs: return x < 0 ? (int64_t)neg : x;
    case OP_Neg: return (int64_t)neg;
    case OP_Relu: return x > 0 ? x : 0;
    case OP_Sign: return x > 0 ? 1 : x < 0 ? -1 : 0;
    case OP_BitwiseNot: return ~x;
    case OP_Shrink: {
        double v = (double)x;
        return (int64_t)(v < -a->lambd ? v + a->bias
                         : v > a->lambd ? v - a->bias : 0.0);
    }
    default: *ok = 0; return 0;
    }
}

/* y = f(x) for an unsigned (or bool) op; *ok = 0 if none. */
static uint64_t unary_u(int32_t op, const ActArgs *a, uint64_t x, int *ok)
{
    switch (op) {
    case OP_Abs: case OP_Relu: return x;
    case OP_Neg: return 0 - x;
    case OP_Sign: return x > 0;
    case OP_BitwiseNot: return ~x;
    case OP_Not: return !x;
    case OP_Shrink: {
        double v = (double)x;
        return (uint64_t)(v > a->lambd ? v - a->bias : 0.0);
    }
    default: *ok = 0; return 0;
    }
}

/* Y = f(X) elementwise for every dtype the op allows; IsNaN and IsInf
   answer bool. Refuses a dtype outside the op's domain. */
Status op_math_unary(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const Tensor *x = in[0];
    Tensor *y = out[0];
    Domain dom = dtype_domain(x->dtype);
    int to_bool = n->op == OP_IsNaN || n->op == OP_IsInf;
    int float_only = n->op != OP_Abs && n->op != OP_Neg && n->op != OP_Relu &&
                     n->op != OP_Sign && n->op != OP_BitwiseNot &&
                     n->op != OP_Not && n->op != OP_Shrink;
    if (dom == DOM_NONE || (float_only && dom != DOM_FLOAT) ||
        ((n->op == OP_BitwiseNot || n->op == OP_Not) && dom == DOM_FLOAT) ||
        (n->op == OP_Not) != (x->dtype == DT_BOOL))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    Status st = tensor_alloc(y, to_bool ? DT_BOOL : x->dtype, x->ndim, x->dims,
                             err);
    if (st != ST_OK)
        return st;
    ActArgs a = act_args(n);
    int ok = 1;
    if (to_bool) {
        int neg = (int)attr_int(n, "detect_negative", 1);
        int pos = (int)attr_int(n, "detect_positive", 1);
        uint8_t *yb = y->data;
        for (int64_t i = 0; i < x->numel; i++) {
            double v = elem_get_f(x, i);
            yb[i] = n->op == OP_IsNaN ? isnan(v)
                  : isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
        }
        return ST_OK;
    }
    for (int64_t i = 0; i < x->numel && ok; i++) {
        if (dom == DOM_FLOAT)
            elem_set_f(y, i, unary_f(n->op, &a, elem_get_f(x, i)));
        else if (dom == DOM_SIGNED)
            elem_set_i(y, i, unary_i(n->op, &a, elem_get_i(x, i), &ok));
        else
            elem_set_u(y, i, unary_u(n->op, &a, (uint64_t)elem_get_i(x, i),
                                     &ok));
    }
    if (!ok)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    return ST_OK;
}

/* ---- binary --------------------------------------------------------- */

typedef enum {
    B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MOD, B_MIN, B_MAX, B_PRELU,
    B_EQ, B_LT, B_LE, B_GT, B_GE, B_AND, B_OR, B_XOR,
    B_BAND, B_BOR, B_BXOR, B_SHL, B_SHR, B_NONE
} BinOp;

static BinOp bin_op(const Node *n)
{
    switch (n->op) {
    case OP_Add: case OP_Sum: case OP_Mean: return B_ADD;
    case OP_Sub: return B_SUB;
    case OP_Mul: return B_MUL;
    case OP_Div: return B_DIV;
    case OP_Pow: return B_POW;
    case OP_Mod: return B_MOD;
    case OP_Min: return B_MIN;
    case OP_Max: return B_MAX;
    case OP_PRelu: return B_PRELU;
    case OP_Equal: return B_EQ;
    case OP_Less: return B_LT;
    case OP_LessOrEqual: return B_LE;
    case OP_Greater: return B_GT;
    case OP_GreaterOrEqual: return B_GE;
    case OP_And: return B_AND;
    case OP_Or: return B_OR;
    case OP_Xor: return B_XOR;
    case OP_BitwiseAnd: return B_BAND;
    case OP_BitwiseOr: return B_BOR;
    case OP_BitwiseXor: return B_BXOR;
    case OP_BitShift:
        return strcmp(attr_string(n, "direction", ""), "LEFT") == 0 ? B_SHL
                                                                     : B_SHR;
    default: return B_NONE;
    }
}

static int is_compare(BinOp b) { return b >= B_EQ && b <= B_GE; }
static int is_logic(BinOp b) { return b >= B_AND && b <= B_XOR; }

/* Whether domain dom (of dtype dt) supports b. */
static int bin_allowed(BinOp b, Domain dom, int32_t dt)
{
    if (dom == DOM_NONE)
        return 0;
    if (is_logic(b))
        return dt == DT_BOOL;
    if (b >= B_BAND && b <= B_BXOR)
        return dom != DOM_FLOAT;
    if (b == B_SHL || b == B_SHR)
        return dom != DOM_FLOAT && dt != DT_BOOL;
    if (is_compare(b))
        return 1;
    return dt != DT_BOOL; /* arithmetic */
}

static double bin_f(BinOp b, double x, double y, int fmod_)
{
    switch (b) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_POW: return pow(x, y);
    case B_MOD: {
        double r = fmod(x, y);
        if (!fmod_ && r != 0.0 && ((r < 0.0) != (y < 0.0)))
            r += y; /* sign of the divisor, as numpy's mod */
        return r;
    }
    case B_MIN: return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case B_MAX: return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case B_PRELU: return x < 0.0 ? y * x : x;
    case B_EQ: return x == y;
    case B_LT: return x < y;
    case B_LE: return x <= y;
    case B_GT: return x > y;
    case B_GE: return x >= y;
    default: return NAN;
    }
}

/* Signed op; the caller has ruled out zero divisors for Div and Mod. */
static int64_t bin_i(BinOp b, int64_t x, int64_t y, int fmod_)
{
    switch (b) {
    case B_ADD: return (int64_t)((uint64_t)x + (uint64_t)y);
    case B_SUB: return (int64_t)((uint64_t)x - (uint64_t)y);
    case B_MUL: return (int64_t)((uint64_t)x * (uint64_t)y);
    case B_DIV: return y == -1 ? (int64_t)(0 - (uint64_t)x) : x / y;
    case B_MOD: {
        int64_t r = y == -1 ? 0 : x % y;
        if (!fmod_ && r != 0 && ((r < 0) != (y < 0)))
            r += y;
        return r;
    }
    case B_MIN: return x < y ? x : y;
    case B_MAX: return x > y ? x : y;
    case B_PRELU: return x < 0 ? (int64_t)((uint64_t)x * (uint64_t)y) : x;
    case B_EQ: return x == y;
    case B_LT: return x < y;
    case B_LE: return x <= y;
    case B_GT: return x > y;
    case B_GE: return x >= y;
    case B_BAND: return x & y;
    case B_BOR: return x | y;
    case B_BXOR: return x ^ y;
    /* a shift out of [0, width) gives 0, or -1 shifting a negative right;
       a left shift in range keeps the low bits (the store truncates) */
    case B_SHL: return y < 0 || y >= 64 ? 0 : (int64_t)((uint64_t)x << y);
    case B_SHR: return x >> (y < 0 || y > 63 ? 63 : y);
    default: return 0;
    }
}

static uint64_t bin_u(BinOp b, uint64_t x, uint64_t y)
{
    switch (b) {
    case B_ADD: return x + y;
    case B_SUB: return x - y;
    case B_MUL: return x * y;
    case B_DIV: return x / y;
    case B_MOD: return x % y;
    case B_MIN: return x < y ? x : y;
    case B_MAX: return x > y ? x : y;
    case B_PRELU: return x;
    case B_EQ: return x == y;
    case B_LT: return x < y;
    case B_LE: return x <= y;
    case B_GT: return x > y;
    case B_GE: return x >= y;
    case B_AND: return x && y;
    case B_OR: return x || y;
    case B_XOR: return !x != !y;
    case B_BAND: return x & y;
    case B_BOR: return x | y;
    case B_BXOR: return x ^ y;
    case B_SHL: return y >= 64 ? 0 : x << y;
    case B_SHR: return y >= 64 ? 0 : x >> y;
    default: return 0;
    }
}

/* Y = A b B with numpy broadcasting into a new tensor y. PRelu broadcasts
   its slope to X; Pow accepts a different exponent dtype. */
static Status binary_into(const Node *n, BinOp b, const Tensor *a,
                          const Tensor *bt, Tensor *y, Err *err)
{
    Domain dom = dtype_domain(a->dtype);
    if (b != B_POW && a->dtype != bt->dtype)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input dtypes differ: %s "
                         "and %s", dtype_name(a->dtype), dtype_name(bt->dtype));
    if (!bin_allowed(b, dom, a->dtype) ||
        (b == B_POW && dtype_domain(bt->dtype) == DOM_NONE))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(a->dtype));
    int fmod_ = (int)attr_int(n, "fmod", 0);
    if ((b == B_DIV || b == B_MOD) && dom != DOM_FLOAT)
        for (int64_t i = 0; i < bt->numel; i++)
            if (elem_get_i(bt, i) == 0)
                return node_fail(n, err, ST_BAD_REQUEST, "integer %s by zero",
                                 b == B_DIV ? "division" : "modulo");
    const Tensor *ts[2] = {a, bt};
    Bcast bc;
    Status st = bcast_init(n, ts, 2, &bc, err);
    if (st != ST_OK)
        return st;
    int32_t dt = is_compare(b) || is_logic(b) ? DT_BOOL : a->dtype;
    if ((st = tensor_alloc(y, dt, bc.ndim, bc.dims, err)) != ST_OK)
        return st;
    int64_t idx[MAX_RANK] = {0}, off[2] = {0, 0};
    for (int64_t i = 0; i < y->numel; i++, bcast_next(&bc, 2, idx, off)) {
        if (b == B_POW || dom == DOM_FLOAT) {
            double v = bin_f(b, elem_get_f(a, off[0]), elem_get_f(bt, off[1]),
                             fmod_);
            elem_set_f(y, i, v);
        } else if (dom == DOM_SIGNED) {
            elem_set_i(y, i, bin_i(b, elem_get_i(a, off[0]),
                                   elem_get_i(bt, off[1]), fmod_));
        } else {
            elem_set_u(y, i, bin_u(b, (uint64_t)elem_get_i(a, off[0]),
                                   (uint64_t)elem_get_i(bt, off[1])));
        }
    }
    return ST_OK;
}

/* C = A op B (broadcasting) for every dtype the op allows; variadic Min,
   Max, Sum and Mean fold their inputs left to right. */
Status op_math_binary(const Node *n, Tensor *const *in, Tensor *const *out,
                      Err *err)
{
    BinOp b = bin_op(n);
    Status st;
    if (n->n_in == 1) { /* a variadic op of one input: a copy */
        if (dtype_domain(in[0]->dtype) == DOM_NONE)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                             "supported", dtype_name(in[0]->dtype));
        if ((st = tensor_alloc_like(out[0], in[0], err)) != ST_OK)
            return st;
        memcpy(out[0]->data, in[0]->data, (size_t)tensor_nbytes(in[0]));
        return ST_OK;
    }
    /* strings compare by text (ops_string_text.c) */
    if (n->op == OP_Equal && in[0]->dtype == DT_STRING)
        return string_equal(n, in[0], in[1], out[0], err);
    if ((st = binary_into(n, b, in[0], in[1], out[0], err)) != ST_OK)
        return st;
    for (int32_t k = 2; k < n->n_in; k++) {
        Tensor acc = *out[0];
        memset(out[0], 0, sizeof *out[0]);
        st = binary_into(n, b, &acc, in[k], out[0], err);
        tensor_release(&acc);
        if (st != ST_OK)
            return st;
    }
    if (n->op == OP_Mean) {
        if (dtype_domain(out[0]->dtype) != DOM_FLOAT)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                             "supported", dtype_name(out[0]->dtype));
        for (int64_t i = 0; i < out[0]->numel; i++)
            elem_set_f(out[0], i, elem_get_f(out[0], i) / n->n_in);
    }
    return ST_OK;
}

/* ---- Where and Clip ------------------------------------------------- */

/* Y = cond ? X : Y elementwise with broadcasting over all three. */
Status op_where(const Node *n, Tensor *const *in, Tensor *const *out,
                Err *err)
{
    const Tensor *c = in[0], *x = in[1], *y = in[2];
    if (c->dtype != DT_BOOL || x->dtype != y->dtype || !dtype_size(x->dtype))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "expected bool condition "
                         "and two inputs of one numeric dtype, got %s, %s, %s",
                         dtype_name(c->dtype), dtype_name(x->dtype),
                         dtype_name(y->dtype));
    const Tensor *ts[3] = {c, x, y};
    Bcast bc;
    Status st = bcast_init(n, ts, 3, &bc, err);
    if (st != ST_OK ||
        (st = tensor_alloc(out[0], x->dtype, bc.ndim, bc.dims, err)) != ST_OK)
        return st;
    int size = dtype_size(x->dtype);
    const uint8_t *cv = c->data;
    char *dst = out[0]->data;
    int64_t idx[MAX_RANK] = {0}, off[3] = {0, 0, 0};
    for (int64_t i = 0; i < out[0]->numel; i++, bcast_next(&bc, 3, idx, off)) {
        const char *src = cv[off[0]] ? (const char *)x->data + off[1] * size
                                     : (const char *)y->data + off[2] * size;
        memcpy(dst + i * size, src, size);
    }
    return ST_OK;
}

/* y = min(max(x, lo), hi) over count float32s, four at a time: pmax and
   pmin keep a NaN of x, as the scalar comparisons do. */
static void clip_f32(const float *x, float *y, int64_t count, float lo, float hi)
{
    int64_t i = 0;
#ifdef __wasm_simd128__
    v128_t vlo = f32x4_splat(lo), vhi = f32x4_splat(hi);
    for (; i + 4 <= count; i += 4)
        v128_store(y + i, f32x4_pmin(f32x4_pmax(v128_load(x + i), vlo), vhi));
#endif
    for (; i < count; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

/* Y = min(max(X, lo), hi); lo/hi are attributes before opset 11 and
   optional scalar inputs from 11 on (absent: unbounded). */
Status op_clip(const Node *n, Tensor *const *in, Tensor *const *out,
               Err *err)
{
    const Tensor *x = in[0];
    const Tensor *lo = n->n_in > 1 ? in[1] : NULL;
    const Tensor *hi = n->n_in > 2 ? in[2] : NULL;
    Domain dom = dtype_domain(x->dtype);
    if (dom == DOM_NONE || x->dtype == DT_BOOL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    for (int k = 1; k < n->n_in; k++)
        if (in[k] && (in[k]->numel != 1 || in[k]->dtype != x->dtype))
            return node_fail(n, err, ST_SHAPE_MISMATCH, "input %d must be a "
                             "%s scalar", k, dtype_name(x->dtype));
    Status st = tensor_alloc_like(out[0], x, err);
    if (st != ST_OK)
        return st;
    Tensor *y = out[0];
    if (dom == DOM_FLOAT) {
        /* an absent bound is the dtype's numeric_limits lowest() / max():
           infinities are clipped to the largest finite values */
        double big = x->dtype == DT_DOUBLE ? DBL_MAX : x->dtype == DT_FLOAT16 ? 65504.0
                   : x->dtype == DT_BFLOAT16 ? 0x1.fep127 : FLT_MAX;
        double l = lo ? elem_get_f(lo, 0) : -big;
        double h = hi ? elem_get_f(hi, 0) : big;
        if (n->opset < 11) {
            /* attributes, float whatever the dtype */
            l = attr_float(n, "min", -FLT_MAX);
            h = attr_float(n, "max", FLT_MAX);
        }
        if (x->dtype == DT_FLOAT) { /* the bounds are float32 values */
            clip_f32(x->data, y->data, x->numel, (float)l, (float)h);
            return ST_OK;
        }
        for (int64_t i = 0; i < x->numel; i++) {
            double v = elem_get_f(x, i);
            v = v < l ? l : v;
            elem_set_f(y, i, v > h ? h : v);
        }
    } else if (dom == DOM_SIGNED) {
        int64_t l = lo ? elem_get_i(lo, 0) : INT64_MIN;
        int64_t h = hi ? elem_get_i(hi, 0) : INT64_MAX;
        for (int64_t i = 0; i < x->numel; i++) {
            int64_t v = elem_get_i(x, i);
            v = v < l ? l : v;
            elem_set_i(y, i, v > h ? h : v);
        }
    } else {
        uint64_t l = lo ? (uint64_t)elem_get_i(lo, 0) : 0;
        uint64_t h = hi ? (uint64_t)elem_get_i(hi, 0) : UINT64_MAX;
        for (int64_t i = 0; i < x->numel; i++) {
            uint64_t v = (uint64_t)elem_get_i(x, i);
            v = v < l ? l : v;
            elem_set_u(y, i, v > h ? h : v);
        }
    }
    return ST_OK;
}
