/*
 * ops_einsum.c: Einsum by direct summation over the label space.
 *
 * The equation is parsed once per run (it is short): each operand's axes
 * get label ids (a-z, A-Z, then one id per broadcast ellipsis axis); the
 * output is the explicit right-hand side or, implicitly, the ellipsis axes
 * followed by the labels used exactly once, in ASCII order. Every output
 * element sums, over all values of the remaining labels, the product of
 * the operands' elements. Computed in double, stored in the inputs' dtype.
 * TODO: int64 sums beyond 2^53 lose precision; a GEMM path for large
 * contractions.
 */
#include <stdlib.h>
#include <string.h>

#include "ops_elem.h"

#define EIN_LETTERS 52
#define EIN_LABELS (EIN_LETTERS + MAX_RANK)
#define EIN_MAX_OPS 8

/* Label id of a letter, or -1. */
static int ein_label(char c)
{
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + c - 'A';
    return -1;
}

/* Parse one term s[0..len) against a tensor of rank ndim (rank < 0: the
   output, with ell ellipsis axes). Writes labels[0..*count). */
static int ein_term(const char *s, size_t len, int32_t ndim, int ell,
                    int *labels, int32_t *count)
{
    int32_t letters = 0, k = 0, dots = 0;
    for (size_t i = 0; i < len; i++)
        letters += ein_label(s[i]) >= 0;
    int32_t my_ell = ndim >= 0 ? ndim - letters : ell;
    if (my_ell < 0 || my_ell > MAX_RANK)
        return 0;
    for (size_t i = 0; i < len; i++) {
        int l = ein_label(s[i]);
        if (l >= 0) {
            if (k >= MAX_RANK) return 0;
            labels[k++] = l;
        } else if (s[i] == '.' && i + 2 < len && s[i + 1] == '.' &&
                   s[i + 2] == '.' && !dots) {
            dots = 1;
            if (k + my_ell > MAX_RANK) return 0;
            /* ellipsis axes align to the right across operands */
            for (int32_t e = 0; e < my_ell; e++)
                labels[k++] = EIN_LETTERS + (ell - my_ell) + e;
            i += 2;
        } else if (s[i] != ' ') {
            return 0;
        }
    }
    if (!dots && ndim >= 0 && my_ell != 0)
        return 0;
    *count = k;
    return 1;
}

/* Y = einsum(equation, inputs...). */
Status op_einsum(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const char *eq = attr_string(n, "equation", "");
    int32_t nops = n->n_in;
    if (nops > EIN_MAX_OPS)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "at most %d operands",
                         EIN_MAX_OPS);
    for (int32_t i = 0; i < nops; i++) {
        Status st = elem_require_fixed(n, in[i], i, err);
        if (st != ST_OK)
            return st;
        if (in[i]->dtype != in[0]->dtype)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "inputs must share "
                             "one dtype");
    }

    /* step 1: ellipsis rank = the largest over operands */
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    const char *terms[EIN_MAX_OPS];
    size_t lens[EIN_MAX_OPS];
    int32_t t = 0;
    for (const char *p = eq, *end = eq + lhs_len; t <= nops;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (t < EIN_MAX_OPS) {
            terms[t] = p;
            lens[t] = (size_t)((c ? c : end) - p);
        }
        t++;
        if (!c) break;
        p = c + 1;
    }
    if (t != nops)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "equation '%s' has %d "
                         "terms for %d inputs", eq, (int)t, (int)nops);
    int ell = 0;
    for (int32_t i = 0; i < nops; i++) {
        int32_t letters = 0;
        for (size_t j = 0; j < lens[i]; j++) letters += ein_label(terms[i][j]) >= 0;
        if (in[i]->ndim - letters > ell) ell = in[i]->ndim - letters;
    }

    /* step 2: labels of each operand and label sizes */
    int lab[EIN_MAX_OPS][MAX_RANK], olab[MAX_RANK];
    int32_t cnt[EIN_MAX_OPS], ocnt = 0;
    int64_t size[EIN_LABELS];
    int used[EIN_LABELS] = {0};
    for (int l = 0; l < EIN_LABELS; l++) size[l] = -1;
    for (int32_t i = 0; i < nops; i++) {
        if (!ein_term(terms[i], lens[i], in[i]->ndim, ell, lab[i], &cnt[i]) ||
            cnt[i] != in[i]->ndim)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "cannot parse term %d "
                             "of equation '%s' for an input of rank %d",
                             (int)i, eq, (int)in[i]->ndim);
        for (int32_t a = 0; a < cnt[i]; a++) {
            int l = lab[i][a];
            int64_t d = in[i]->dims[a];
            used[l]++;
            if (size[l] < 0 || size[l] == 1) size[l] = d;
            else if (d != size[l] && !(d == 1 && l >= EIN_LETTERS))
                return node_fail(n, err, ST_SHAPE_MISMATCH, "label '%c' has "
                                 "sizes %lld and %lld", l < 26 ? 'a' + l
                                 : l < 52 ? 'A' + l - 26 : '.',
                                 (long long)size[l], (long long)d);
        }
    }
    if (arrow) {
        if (!ein_term(arrow + 2, strlen(arrow + 2), -1, ell, olab, &ocnt))
            return node_fail(n, err, ST_UNSUPPORTED_OP, "cannot parse the "
                             "output of equation '%s'", eq);
    } else {
        for (int e = 0; e < ell; e++) olab[ocnt++] = EIN_LETTERS + e;
        /* ASCII order: upper case (ids 26..51) before lower case */
        for (int k = 0; k < EIN_LETTERS && ocnt < MAX_RANK; k++) {
            int l = k < 26 ? 26 + k : k - 26;
            if (used[l] == 1) olab[ocnt++] = l;
        }
    }
    int is_out[EIN_LABELS] = {0};
    int64_t dims[MAX_RANK];
    for (int32_t a = 0; a < ocnt; a++) {
        if (size[olab[a]] < 0 || is_out[olab[a]]++)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "output label %d of "
                             "'%s' is unknown or repeated", (int)a, eq);
        dims[a] = size[olab[a]];
    }

    /* step 3: summed labels, and each operand's stride per label */
    int sum_lab[EIN_LABELS];
    int32_t nsum = 0;
    int64_t sum_dims[EIN_LABELS], total_sum = 1;
    for (int l = 0; l < EIN_LABELS; l++)
        if (size[l] >= 0 && !is_out[l]) {
            sum_lab[nsum] = l;
            sum_dims[nsum++] = size[l];
            total_sum *= size[l];
        }
    int64_t stride[EIN_MAX_OPS][EIN_LABELS];
    memset(stride, 0, sizeof stride);
    for (int32_t i = 0; i < nops; i++)
        for (int32_t a = 0; a < cnt[i]; a++)
            if (in[i]->dims[a] != 1 || size[lab[i][a]] == 1)
                stride[i][lab[i][a]] += in[i]->strides[a];
    Status st = tensor_alloc(out[0], in[0]->dtype, ocnt, dims, err);
    if (st != ST_OK)
        return st;

    /* step 4: each output element sums products over the summed labels */
    int64_t oi[MAX_RANK], si[EIN_LABELS];
    for (int64_t e = 0; e < out[0]->numel; e++) {
        elem_unravel(e, dims, ocnt, oi);
        int64_t base[EIN_MAX_OPS] = {0};
        for (int32_t i = 0; i < nops; i++)
            for (int32_t a = 0; a < ocnt; a++) base[i] += oi[a] * stride[i][olab[a]];
        double acc = 0.0;
        for (int64_t s = 0; s < total_sum; s++) {
            elem_unravel(s, sum_dims, nsum, si);
            double prod = 1.0;
            for (int32_t i = 0; i < nops; i++) {
                int64_t off = base[i];
                for (int32_t k = 0; k < nsum; k++) off += si[k] * stride[i][sum_lab[k]];
                prod *= elem_get(in[i], off);
            }
            acc += prod;
        }
        elem_set(out[0], e, acc);
    }
    return ST_OK;
}
