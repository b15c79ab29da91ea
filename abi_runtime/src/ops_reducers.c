/*
 * ops_reducers.c: reductions over axes (ReduceSum ... ReduceLogSumExp),
 * ArgMax/ArgMin, CumSum, TopK and Hardmax, for float16/32/64 and the
 * integer dtypes the spec allows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "numeric.h"
#include "ops.h"
#include "sort.h"

/* ---- Reduce* -------------------------------------------------------- */

/* Read the reduced axes (attribute before opset 18, 13 for ReduceSum; input
   1 after) into mask[0..rank); *all when every axis reduces, *noop when an
   empty list leaves X as it is. */
static Status reduce_axes(const Node *n, Tensor *const *in, int32_t rank,
                          uint8_t *mask, int *noop, Err *err)
{
    int64_t axes[MAX_RANK];
    int32_t count = 0;
    int present = 0;
    int from_input = n->op == OP_ReduceSum ? n->opset >= 13 : n->opset >= 18;
    Status st = from_input
        ? int_list_arg(n, in, 1, "", axes, MAX_RANK, &count, &present, err)
        : int_list_arg(n, in, 99, "axes", axes, MAX_RANK, &count, &present,
                       err);
    if (st != ST_OK)
        return st;
    *noop = 0;
    memset(mask, 0, MAX_RANK);
    if (count == 0) {
        *noop = attr_int(n, "noop_with_empty_axes", 0) != 0;
        memset(mask, 1, MAX_RANK);
        return ST_OK;
    }
    for (int32_t i = 0; i < count; i++) {
        int32_t a;
        if ((st = norm_axis(n, axes[i], rank, &a, err)) != ST_OK)
            return st;
        mask[a] = 1;
    }
    return ST_OK;
}

/* Y = reduce(X) over the chosen axes; keepdims keeps them as size 1.
   Float dtypes accumulate in double; integer Sum/Prod/Max/Min in int64. */
Status op_reduce(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *x = in[0];
    Domain dom = dtype_domain(x->dtype);
    uint8_t mask[MAX_RANK];
    int noop;
    Status st = reduce_axes(n, in, x->ndim, mask, &noop, err);
    if (st != ST_OK)
        return st;
    /* bool: only ReduceMax (any) and ReduceMin (all), from opset 20 */
    if (dom == DOM_NONE || (x->dtype == DT_BOOL && n->op != OP_ReduceMax &&
                            n->op != OP_ReduceMin))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    if (noop) {
        if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
            return st;
        memcpy(out[0]->data, x->data, (size_t)tensor_nbytes(x));
        return ST_OK;
    }

    /* step 1: output shape and the output stride of each input axis */
    int keep = (int)attr_int(n, "keepdims", 1);
    int64_t dims[MAX_RANK], ostride[MAX_RANK], count = 1;
    int32_t nd = 0;
    for (int32_t i = 0; i < x->ndim; i++) {
        if (!mask[i]) dims[nd++] = x->dims[i];
        else if (keep) dims[nd++] = 1;
        if (mask[i]) count *= x->dims[i];
    }
    if ((st = tensor_alloc(out[0], x->dtype, nd, dims, err)) != ST_OK)
        return st;
    Tensor *y = out[0];
    for (int32_t i = x->ndim - 1, s = 1; i >= 0; i--) {
        ostride[i] = mask[i] ? 0 : s;
        s *= mask[i] ? 1 : x->dims[i];
    }

    /* step 2: accumulate; acc (numel of Y) in double, iacc in int64 */
    int op = n->op;
    int exact_int = dom != DOM_FLOAT && (op == OP_ReduceSum || op == OP_ReduceProd ||
                    op == OP_ReduceMax || op == OP_ReduceMin);
    double *acc = malloc(sizeof(double) * (y->numel ? y->numel : 1));
    double *mx = malloc(sizeof(double) * (y->numel ? y->numel : 1));
    int64_t *iacc = malloc(sizeof(int64_t) * (y->numel ? y->numel : 1));
    if (!acc || !mx || !iacc) {
        free(acc); free(mx); free(iacc);
        return node_fail(n, err, ST_OOM, "out of memory");
    }
    int uns = dom == DOM_UNSIGNED;
    for (int64_t j = 0; j < y->numel; j++) {
        acc[j] = op == OP_ReduceProd ? 1.0 : op == OP_ReduceMax ? -INFINITY
               : op == OP_ReduceMin ? INFINITY : 0.0;
        mx[j] = -INFINITY;
        iacc[j] = op == OP_ReduceProd ? 1
                : op == OP_ReduceMax ? (uns ? 0 : INT64_MIN)
                : op == OP_ReduceMin ? (uns ? -1 /* UINT64_MAX */ : INT64_MAX)
                : 0;
    }
    int64_t idx[MAX_RANK] = {0}, o = 0;
    if (op == OP_ReduceLogSumExp) /* pass 0: the max, for stability */
        for (int64_t i = 0; i < x->numel; i++) {
            double v = elem_get_f(x, i);
            mx[o] = v > mx[o] ? v : mx[o];
            for (int32_t d = x->ndim - 1; d >= 0; d--) {
                o += ostride[d];
                if (++idx[d] < x->dims[d]) break;
                o -= ostride[d] * x->dims[d];
                idx[d] = 0;
            }
        }
    o = 0;
    memset(idx, 0, sizeof idx);
    for (int64_t i = 0; i < x->numel; i++) {
        if (exact_int) {
            int64_t v = elem_get_i(x, i), *a = &iacc[o];
            switch (op) {
            case OP_ReduceSum: *a = (int64_t)((uint64_t)*a + (uint64_t)v); break;
            case OP_ReduceProd: *a = (int64_t)((uint64_t)*a * (uint64_t)v); break;
            case OP_ReduceMax:
                if (uns ? (uint64_t)v > (uint64_t)*a : v > *a) *a = v;
                break;
            default:
                if (uns ? (uint64_t)v < (uint64_t)*a : v < *a) *a = v;
                break;
            }
        } else {
            double v = elem_get_f(x, i), *a = &acc[o];
            switch (op) {
            case OP_ReduceSum: case OP_ReduceMean: case OP_ReduceLogSum:
                *a += v; break;
            case OP_ReduceProd: *a *= v; break;
            case OP_ReduceMax: *a = (isnan(v) || v > *a) ? v : *a; break;
            case OP_ReduceMin: *a = (isnan(v) || v < *a) ? v : *a; break;
            case OP_ReduceL1: *a += fabs(v); break;
            case OP_ReduceL2: case OP_ReduceSumSquare: *a += v * v; break;
            case OP_ReduceLogSumExp: *a += exp(v - mx[o]); break;
            default: break;
            }
        }
        for (int32_t d = x->ndim - 1; d >= 0; d--) {
            o += ostride[d];
            if (++idx[d] < x->dims[d]) break;
            o -= ostride[d] * x->dims[d];
            idx[d] = 0;
        }
    }

    /* step 3: finish and store */
    for (int64_t j = 0; j < y->numel; j++) {
        if (exact_int) {
            elem_set_i(y, j, iacc[j]);
            continue;
        }
        double v = acc[j];
        switch (op) {
        case OP_ReduceMean: v = v / (double)count; break;
        case OP_ReduceL2: v = sqrt(v); break;
        case OP_ReduceLogSum: v = log(v); break;
        case OP_ReduceLogSumExp:
            /* an empty or all -inf row gives -inf, a +inf entry +inf */
            v = count == 0 ? -INFINITY : isinf(mx[j]) ? mx[j] : mx[j] + log(v);
            break;
        default: break;
        }
        elem_set_f(y, j, v);
    }
    free(acc); free(mx); free(iacc);
    return ST_OK;
}

/* ---- ArgMax / ArgMin ------------------------------------------------ */

/* Y (int64) = index of the max (min) along axis; ties take the first
   index, or the last with select_last_index. */
Status op_argminmax(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    int32_t axis;
    Status st = norm_axis(n, attr_int(n, "axis", 0), x->ndim, &axis, err);
    if (st != ST_OK)
        return st;
    if (dtype_domain(x->dtype) == DOM_NONE || x->ndim == 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s (rank %d) is "
                         "not supported", dtype_name(x->dtype), (int)x->ndim);
    int keep = (int)attr_int(n, "keepdims", 1);
    int last = (int)attr_int(n, "select_last_index", 0);
    int is_max = n->op == OP_ArgMax;
    int64_t dims[MAX_RANK], outer = 1, len = x->dims[axis], inner = 1;
    int32_t nd = 0;
    for (int32_t i = 0; i < x->ndim; i++) {
        if (i != axis) dims[nd++] = x->dims[i];
        else if (keep) dims[nd++] = 1;
        if (i < axis) outer *= x->dims[i];
        if (i > axis) inner *= x->dims[i];
    }
    if ((st = tensor_alloc(out[0], DT_INT64, nd, dims, err)) != ST_OK)
        return st;
    int64_t *y = out[0]->data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0, base = o * len * inner + i;
            double bv = len ? elem_get_f(x, base) : 0.0;
            for (int64_t k = 1; k < len; k++) {
                double v = elem_get_f(x, base + k * inner);
                int better = is_max ? (v > bv || (last && v == bv))
                                    : (v < bv || (last && v == bv));
                if (better) { bv = v; best = k; }
            }
            y[o * inner + i] = best;
        }
    return ST_OK;
}

/* ---- CumSum --------------------------------------------------------- */

/* One step of a running sum or product, float and integer (wrapping). */
static void accumulate(int prod, double *fs, int64_t *is, double fv,
                       int64_t iv)
{
    if (prod) {
        *fs *= fv;
        *is = (int64_t)((uint64_t)*is * (uint64_t)iv);
    } else {
        *fs += fv;
        *is = (int64_t)((uint64_t)*is + (uint64_t)iv);
    }
}

/* Y = running sum (CumProd: product) of X along axis (input 1, a scalar);
   exclusive shifts by one, reverse runs from the end. */
Status op_cumsum(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *x = in[0], *ax = in[1];
    Domain dom = dtype_domain(x->dtype);
    if (ax->numel != 1 || (ax->dtype != DT_INT64 && ax->dtype != DT_INT32))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "axis must be an int "
                         "scalar");
    if (dom == DOM_NONE || x->dtype == DT_BOOL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    int32_t axis;
    Status st = norm_axis(n, tensor_get_int(ax, 0), x->ndim, &axis, err);
    if (st != ST_OK || (st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    int excl = (int)attr_int(n, "exclusive", 0);
    int rev = (int)attr_int(n, "reverse", 0);
    int64_t outer, len, inner;
    split_at_axis(x, axis, 0, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int prod = n->op == OP_CumProd;
            double fs = prod ? 1.0 : 0.0;
            int64_t is = prod ? 1 : 0;
            for (int64_t s = 0; s < len; s++) {
                int64_t k = rev ? len - 1 - s : s;
                int64_t at = (o * len + k) * inner + i;
                double fv = dom == DOM_FLOAT ? elem_get_f(x, at) : 0.0;
                int64_t iv = dom == DOM_FLOAT ? 0 : elem_get_i(x, at);
                if (!excl) accumulate(prod, &fs, &is, fv, iv);
                if (dom == DOM_FLOAT) elem_set_f(out[0], at, fs);
                else elem_set_i(out[0], at, is);
                if (excl) accumulate(prod, &fs, &is, fv, iv);
            }
        }
    return ST_OK;
}

/* ---- TopK ----------------------------------------------------------- */

typedef struct {
    double v;
    int64_t i;
} Ranked;

/* Larger value first; equal values by smaller index. */
static int rank_desc(const void *a, const void *b)
{
    const Ranked *p = a, *q = b;
    if (p->v != q->v) return p->v > q->v ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

/* Smaller value first; equal values by smaller index. */
static int rank_asc(const void *a, const void *b)
{
    const Ranked *p = a, *q = b;
    if (p->v != q->v) return p->v < q->v ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

/* Values and int64 indices of the k largest (smallest) along axis, sorted,
   ties by index. K is input 1 (opset >= 10) or attribute k. */
Status op_topk(const Node *n, Tensor *const *in, Tensor *const *out,
               Err *err)
{
    const Tensor *x = in[0];
    int64_t k = n->opset >= 10 && n->n_in > 1 && in[1] && in[1]->numel == 1 &&
                (in[1]->dtype == DT_INT64 || in[1]->dtype == DT_INT32)
                ? tensor_get_int(in[1], 0) : attr_int(n, "k", -1);
    int32_t axis;
    Status st = norm_axis(n, attr_int(n, "axis", -1), x->ndim, &axis, err);
    if (st != ST_OK)
        return st;
    if (dtype_domain(x->dtype) == DOM_NONE || x->dtype == DT_BOOL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    int64_t len = x->ndim ? x->dims[axis] : 1;
    if (k < 0 || k > len)
        return node_fail(n, err, ST_BAD_REQUEST, "k = %lld out of range for an "
                         "axis of %lld", (long long)k, (long long)len);
    int largest = (int)attr_int(n, "largest", 1);
    int64_t dims[MAX_RANK], outer = 1, inner = 1;
    for (int32_t i = 0; i < x->ndim; i++) {
        dims[i] = i == axis ? k : x->dims[i];
        if (i < axis) outer *= x->dims[i];
        if (i > axis) inner *= x->dims[i];
    }
    if ((st = tensor_alloc(out[0], x->dtype, x->ndim, dims, err)) != ST_OK)
        return st;
    Tensor idx_tmp = {0};
    Tensor *yi = n->n_out > 1 && out[1] ? out[1] : &idx_tmp;
    if ((st = tensor_alloc(yi, DT_INT64, x->ndim, dims, err)) != ST_OK)
        return st;
    Ranked *r = malloc(sizeof(Ranked) * (len ? len : 1));
    if (!r) {
        tensor_release(&idx_tmp);
        return node_fail(n, err, ST_OOM, "out of memory");
    }
    int size = dtype_size(x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t s = 0; s < len; s++) {
                r[s].v = elem_get_f(x, (o * len + s) * inner + i);
                r[s].i = s;
            }
            wx_sort(r, (size_t)len, sizeof *r, largest ? rank_desc : rank_asc);
            for (int64_t s = 0; s < k; s++) {
                int64_t src = (o * len + r[s].i) * inner + i;
                int64_t dst = (o * k + s) * inner + i;
                memcpy((char *)out[0]->data + dst * size,
                       (const char *)x->data + src * size, size);
                ((int64_t *)yi->data)[dst] = r[s].i;
            }
        }
    free(r);
    tensor_release(&idx_tmp);
    return ST_OK;
}

/* ---- Hardmax -------------------------------------------------------- */

/* Y = 1 at the first maximum of each row, 0 elsewhere; rows are the axis
   (opset >= 13) or everything from axis on, flattened (opset < 13). */
Status op_hardmax(const Node *n, Tensor *const *in, Tensor *const *out,
                  Err *err)
{
    const Tensor *x = in[0];
    int flatten = n->opset < 13;
    int32_t axis;
    Status st = norm_axis(n, attr_int(n, "axis", flatten ? 1 : -1), x->ndim,
                          &axis, err);
    if (st != ST_OK)
        return st;
    if (dtype_domain(x->dtype) != DOM_FLOAT)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "dtype %s is not "
                         "supported", dtype_name(x->dtype));
    if ((st = tensor_alloc_like(out[0], x, err)) != ST_OK)
        return st;
    int64_t outer, len, inner;
    split_at_axis(x, axis, flatten, &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0, base = o * len * inner + i;
            for (int64_t s = 1; s < len; s++)
                if (elem_get_f(x, base + s * inner) >
                    elem_get_f(x, base + best * inner))
                    best = s;
            for (int64_t s = 0; s < len; s++)
                elem_set_f(out[0], base + s * inner, s == best ? 1.0 : 0.0);
        }
    return ST_OK;
}
