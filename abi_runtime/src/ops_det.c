/*
 * ops_det.c: Det, the determinant of square matrices, by LU factorisation
 * with partial pivoting in double precision.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "numeric.h"
#include "ops.h"

/* The determinant of the (m, m) row-major matrix a, destroyed on the way:
   Gaussian elimination choosing the largest pivot of each column. */
static double lu_det(double *a, int64_t m)
{
    double det = 1.0;
    for (int64_t k = 0; k < m; k++) {
        int64_t piv = k;
        for (int64_t i = k + 1; i < m; i++)
            if (fabs(a[i * m + k]) > fabs(a[piv * m + k]))
                piv = i;
        if (a[piv * m + k] == 0.0)
            return 0.0;
        if (piv != k) {
            for (int64_t j = 0; j < m; j++) {
                double t = a[k * m + j];
                a[k * m + j] = a[piv * m + j];
                a[piv * m + j] = t;
            }
            det = -det;
        }
        double p = a[k * m + k];
        det *= p;
        for (int64_t i = k + 1; i < m; i++) {
            double f = a[i * m + k] / p;
            for (int64_t j = k + 1; j < m; j++)
                a[i * m + j] -= f * a[k * m + j];
        }
    }
    return det;
}

/* Y (...) = det(X[...]) for X (..., m, m) of a float dtype; Y has X's
   dtype and its batch dims (a scalar for a 2-D X); det of 0x0 is 1. */
Status op_det(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    if (!dtype_is_float(x->dtype))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input dtype %s is not "
                         "supported (float16, float32, float64)",
                         dtype_name(x->dtype));
    int32_t r = x->ndim;
    char buf[96];
    if (r < 2 || x->dims[r - 1] != x->dims[r - 2])
        return node_fail(n, err, ST_SHAPE_MISMATCH, "expected (..., M, M) "
                         "square matrices, got shape %s",
                         shape_str(x->dims, r, buf, (int)sizeof buf));
    int64_t m = x->dims[r - 1];
    Status st = tensor_alloc(out[0], x->dtype, r - 2, x->dims, err);
    if (st != ST_OK)
        return st;
    /* m * m doubles may exceed the 32-bit address space for a float16 x */
    double *a = (uint64_t)m * (uint64_t)m > SIZE_MAX / sizeof(double) ? NULL
              : malloc((size_t)(m * m > 0 ? m * m : 1) * sizeof *a); /* (m, m) */
    if (!a)
        return node_fail(n, err, ST_OOM, "out of memory for a %lld x %lld "
                         "matrix", (long long)m, (long long)m);
    for (int64_t b = 0; b < out[0]->numel; b++) {
        for (int64_t i = 0; i < m * m; i++)
            a[i] = elem_get_f(x, b * m * m + i);
        elem_set_f(out[0], b, lu_det(a, m));
    }
    free(a);
    return ST_OK;
}
