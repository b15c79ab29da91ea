/*
 * depthwise.h: convolution with one input channel per group (depthwise),
 * computed directly rather than as one-row GEMMs.
 */
#ifndef WX_DEPTHWISE_H
#define WX_DEPTHWISE_H

#include <stdint.h>

#include "status.h"

/* The geometry of one image: input and output planes, kernel, strides,
   dilations and the effective top / left padding (1-D: heights of 1). */
typedef struct {
    int64_t ih, iw, oh, ow;
    int64_t kh, kw;
    int64_t sy, sx, dy, dx;
    int64_t pt, pl;
} DwGeometry;

/* Write the kh * kw weights of output channel oc into taps. */
typedef void (*DwTaps)(const void *ctx, int64_t oc, float *taps);

/*
 * y (c * mg, oh, ow) = depthwise convolution of x (c, ih, iw): output
 * channel oc reads input channel oc / mg, adds bias[oc] (bias may be
 * NULL) and is clamped to [lo, hi]. Returns ST_OOM when its scratch plane
 * cannot be allocated.
 */
Status depthwise_conv(const DwGeometry *g, int64_t c, int64_t mg, const float *x,
                      DwTaps taps, const void *taps_ctx, const float *bias,
                      float lo, float hi, float *y, Err *err);

#endif
