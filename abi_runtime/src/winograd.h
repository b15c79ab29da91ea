/*
 * winograd.h: 3x3 convolution with stride 1 by Winograd's F(2x2, 3x3).
 *
 * Each 2x2 block of outputs comes from a 4x4 block of input through 16
 * products instead of 36: the input and the weights are transformed, the 16
 * products of every (output channel, input channel) pair become 16 GEMMs
 * over the channels (gemm.h), and the results are transformed back. The
 * multiplications drop 2.25x; the transforms add a few additions per value.
 * Results differ from the direct sum by rounding only (the transforms'
 * coefficients are 0, +-1 and 1/2).
 */
#ifndef WX_WINOGRAD_H
#define WX_WINOGRAD_H

#include <stdint.h>

#include "status.h"

/* Y (m, oh, ow) = X (c, ih, iw) correlated with the 3x3 weights w (stride
   and dilation 1): w is (m, c * 9) row-major, or packed GEMM A panels
   (gemm.h) when w_packed. X is padded with zeros (pt rows on top, pl
   columns on the left, as many as (oh, ow) need at the other sides); the
   bias (m, or NULL) is added and the result clamped to [lo, hi]. */
Status winograd_conv(const float *w, int w_packed, int64_t m, int64_t c,
                     const float *x, int64_t ih, int64_t iw, int64_t pt,
                     int64_t pl, float *y, int64_t oh, int64_t ow,
                     const float *bias, float lo, float hi, Err *err);

#endif
