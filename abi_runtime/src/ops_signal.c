/*
 * ops_signal.c: window functions (HannWindow, HammingWindow,
 * BlackmanWindow), Fourier transforms (DFT, STFT) and MelWeightMatrix.
 *
 * Transforms compute in double whatever the tensor's float dtype: a radix-2
 * FFT for power-of-two lengths, a direct sum for short other lengths and
 * Bluestein's chirp-z algorithm (a power-of-two convolution) for long ones.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "numeric.h"
#include "ops.h"

#define PI 3.14159265358979323846

/* Y (size) = the window; periodic (default 1) divides by size, otherwise by
   size - 1; output_datatype selects the float dtype (default float32). */
Status op_window(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *sz = in[0];
    if (sz->numel != 1 || (sz->dtype != DT_INT64 && sz->dtype != DT_INT32))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "size must be an int "
                         "scalar");
    int64_t size = tensor_get_int(sz, 0);
    int32_t to = (int32_t)attr_int(n, "output_datatype", DT_FLOAT);
    if (size < 0 || dtype_domain(to) == DOM_NONE)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "size %lld or output dtype "
                         "%s is not supported", (long long)size, dtype_name(to));
    Status st = tensor_alloc(out[0], to, 1, &size, err);
    if (st != ST_OK)
        return st;
    double den = attr_int(n, "periodic", 1) ? (double)size : (double)(size - 1);
    for (int64_t i = 0; i < size; i++) {
        double t = 2.0 * PI * (double)i / den, v;
        if (n->op == OP_HannWindow)
            v = sin(PI * (double)i / den) * sin(PI * (double)i / den);
        else if (n->op == OP_HammingWindow)
            v = 25.0 / 46.0 - (1.0 - 25.0 / 46.0) * cos(t);
        else
            v = 0.42 - 0.5 * cos(t) + 0.08 * cos(2.0 * t);
        elem_set_f(out[0], i, v);
    }
    return ST_OK;
}

/* ---- Fourier transforms ------------------------------------------------ */

/* A complex number. */
typedef struct {
    double re, im;
} Cpx;

/* Lengths up to this use the direct O(n^2) sum when not a power of two. */
#define DFT_DIRECT_MAX 64

/* One transform length and direction, planned once per node run. */
typedef struct {
    int64_t n;    /* transform length */
    int sign;     /* -1 forward, +1 inverse (unscaled) */
    int64_t m;    /* power-of-two FFT length: n, or Bluestein's >= 2n-1 */
    Cpx *tw;      /* power of two / Bluestein: m/2 values e^(-2 pi i k/m);
                     direct: n values e^(sign 2 pi i k/n) */
    Cpx *chirp;   /* Bluestein: n values e^(sign pi i k^2/n), else NULL */
    Cpx *filt;    /* Bluestein: FFT of the conjugate chirp, m values */
    Cpx *work;    /* m (or n) values of scratch */
} DftPlan;

/* count complex values, or NULL when out of memory or too many. */
static Cpx *cpx_alloc(int64_t count)
{
    if (count < 1 || (uint64_t)count > SIZE_MAX / sizeof(Cpx))
        return NULL;
    return malloc((size_t)count * sizeof(Cpx));
}

static void dft_plan_free(DftPlan *p)
{
    free(p->tw);
    free(p->chirp);
    free(p->filt);
    free(p->work);
}

/* In-place radix-2 FFT of a[0..m) (m a power of two) with the forward
   twiddles tw[0..m/2); inverse conjugates them (no 1/m scaling). */
static void fft_pow2(Cpx *a, int64_t m, const Cpx *tw, int inverse)
{
    for (int64_t i = 1, j = 0; i < m; i++) {
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j |= bit;
        if (i < j) {
            Cpx t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    for (int64_t len = 2; len <= m; len <<= 1) {
        int64_t half = len >> 1, step = m / len;
        for (int64_t i = 0; i < m; i += len)
            for (int64_t k = 0; k < half; k++) {
                Cpx w = tw[k * step], u = a[i + k], v = a[i + k + half];
                double wi = inverse ? -w.im : w.im;
                double vr = v.re * w.re - v.im * wi;
                double vi = v.re * wi + v.im * w.re;
                a[i + k] = (Cpx){u.re + vr, u.im + vi};
                a[i + k + half] = (Cpx){u.re - vr, u.im - vi};
            }
    }
}

/* Twiddles e^(-2 pi i k/m), k < count, from exact angles. */
static void fill_twiddles(Cpx *tw, int64_t count, int64_t m, double sign)
{
    for (int64_t k = 0; k < count; k++) {
        double t = sign * 2.0 * PI * (double)k / (double)m;
        tw[k] = (Cpx){cos(t), sin(t)};
    }
}

/* Plan a transform of length n (>= 1); ST_OOM when memory runs out. */
static Status dft_plan(const Node *nd, DftPlan *p, int64_t n, int sign,
                       Err *err)
{
    *p = (DftPlan){.n = n, .sign = sign, .m = n};
    int pow2 = (n & (n - 1)) == 0;
    if (pow2 || n <= DFT_DIRECT_MAX) {
        p->tw = cpx_alloc(pow2 ? (n > 1 ? n / 2 : 1) : n);
        p->work = cpx_alloc(n);
        if (!p->tw || !p->work)
            goto oom;
        if (pow2)
            fill_twiddles(p->tw, n / 2, n, -1.0);
        else
            fill_twiddles(p->tw, n, n, (double)sign);
        return ST_OK;
    }
    /* Bluestein: X_k = c_k sum_j (x_j c_j) conj(c_(k-j)), a convolution */
    int64_t m = 1;
    while (m < 2 * n - 1)
        m <<= 1;
    p->m = m;
    p->tw = cpx_alloc(m / 2);
    p->chirp = cpx_alloc(n);
    p->filt = cpx_alloc(m);
    p->work = cpx_alloc(m);
    if (!p->tw || !p->chirp || !p->filt || !p->work)
        goto oom;
    fill_twiddles(p->tw, m / 2, m, -1.0);
    for (int64_t k = 0; k < n; k++) {
        /* k^2 mod 2n keeps the angle small and exact */
        int64_t q = (int64_t)(((uint64_t)k * (uint64_t)k) % (uint64_t)(2 * n));
        double t = (double)sign * PI * (double)q / (double)n;
        p->chirp[k] = (Cpx){cos(t), sin(t)};
    }
    for (int64_t j = 0; j < m; j++)
        p->filt[j] = (Cpx){0.0, 0.0};
    for (int64_t k = 0; k < n; k++) {
        Cpx c = {p->chirp[k].re, -p->chirp[k].im};
        p->filt[k] = c;
        if (k > 0)
            p->filt[m - k] = c;
    }
    fft_pow2(p->filt, m, p->tw, 0);
    return ST_OK;
oom:
    dft_plan_free(p);
    return node_fail(nd, err, ST_OOM, "out of memory planning a transform of "
                     "length %lld", (long long)n);
}

/* x[0..n) = its transform (unscaled, direction of the plan). */
static void dft_run(DftPlan *p, Cpx *x)
{
    int64_t n = p->n, m = p->m;
    if ((n & (n - 1)) == 0) {
        fft_pow2(x, n, p->tw, p->sign > 0);
        return;
    }
    if (!p->chirp) {
        /* direct sum with the n-th roots of unity */
        for (int64_t k = 0; k < n; k++) {
            double re = 0.0, im = 0.0;
            for (int64_t j = 0, e = 0; j < n; j++, e = (e + k) % n) {
                Cpx w = p->tw[e];
                re += x[j].re * w.re - x[j].im * w.im;
                im += x[j].re * w.im + x[j].im * w.re;
            }
            p->work[k] = (Cpx){re, im};
        }
        for (int64_t k = 0; k < n; k++)
            x[k] = p->work[k];
        return;
    }
    Cpx *a = p->work; /* (m) the chirped input, then the convolution */
    for (int64_t j = 0; j < m; j++) {
        Cpx v = j < n ? x[j] : (Cpx){0.0, 0.0}, c = j < n ? p->chirp[j] : v;
        a[j] = (Cpx){v.re * c.re - v.im * c.im, v.re * c.im + v.im * c.re};
    }
    fft_pow2(a, m, p->tw, 0);
    for (int64_t j = 0; j < m; j++) {
        Cpx u = a[j], f = p->filt[j];
        a[j] = (Cpx){u.re * f.re - u.im * f.im, u.re * f.im + u.im * f.re};
    }
    fft_pow2(a, m, p->tw, 1);
    for (int64_t k = 0; k < n; k++) {
        Cpx u = {a[k].re / (double)m, a[k].im / (double)m}, c = p->chirp[k];
        x[k] = (Cpx){u.re * c.re - u.im * c.im, u.re * c.im + u.im * c.re};
    }
}

/* Read a scalar int input (int32 or int64, one value) into *v. */
static Status scalar_int(const Node *n, const Tensor *t, const char *what,
                         int64_t *v, Err *err)
{
    if ((t->dtype != DT_INT32 && t->dtype != DT_INT64) || t->numel != 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be one int32 or "
                         "int64 value, got %lld %s values", what,
                         (long long)t->numel, dtype_name(t->dtype));
    *v = tensor_get_int(t, 0);
    return ST_OK;
}

/*
 * Y = the DFT of X along axis. X (..., n, c): c = 1 real or 2 (re, im).
 * dft_length L (input 1; default n, or 2(n-1) for an inverse one-sided
 * transform) truncates or zero-pads the signal. Forward: Y (..., L or
 * L/2+1 when onesided, 2). Inverse: Y (..., L, 2) = ifft; inverse and
 * onesided: X holds bins 0..L/2 of a Hermitian spectrum and Y (..., L, 1)
 * is its real inverse. The axis is an attribute before opset 20 (default
 * 1), input 2 from opset 20 (default -2); it may not be the last axis.
 */
Status op_dft(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0];
    int inverse = attr_int(n, "inverse", 0) != 0;
    int onesided = attr_int(n, "onesided", 0) != 0;
    int64_t axis = n->opset < 20 ? attr_int(n, "axis", 1) : -2, len = 0;
    Status st;
    if (!dtype_is_float(x->dtype))
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input dtype %s is not "
                         "supported (float16, float32, float64)",
                         dtype_name(x->dtype));
    int32_t r = x->ndim;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "input must have rank >= 2 "
                         "and a last dimension of 1 (real) or 2 (complex), "
                         "got rank %d", (int)r);
    if (n->opset >= 20 && n->n_in > 2 && in[2] &&
        (st = scalar_int(n, in[2], "axis", &axis, err)))
        return st;
    if (axis < -r || axis >= r || (axis < 0 ? axis + r : axis) == r - 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "axis %lld is out of range "
                         "for rank %d (the last axis holds re, im)",
                         (long long)axis, (int)r);
    int32_t a = (int32_t)(axis < 0 ? axis + r : axis);
    int64_t n_in = x->dims[a], c = x->dims[r - 1];
    if (n->n_in > 1 && in[1]) {
        if ((st = scalar_int(n, in[1], "dft_length", &len, err)))
            return st;
    } else {
        len = inverse && onesided ? 2 * (n_in - 1) : n_in;
    }
    if (len < 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "dft_length must be >= 1, "
                         "got %lld", (long long)len);

    /* step 1: output (outer, bins, inner, c_out) */
    int irfft = inverse && onesided;
    int64_t bins = !inverse && onesided ? len / 2 + 1 : len;
    int64_t c_out = irfft ? 1 : 2, outer = 1, inner = 1, dims[MAX_RANK];
    for (int32_t d = 0; d < r; d++) {
        dims[d] = x->dims[d];
        if (d < a)
            outer *= x->dims[d];
        else if (d > a && d < r - 1)
            inner *= x->dims[d];
    }
    dims[a] = bins;
    dims[r - 1] = c_out;
    if ((st = tensor_alloc(out[0], x->dtype, r, dims, err)))
        return st;
    if (out[0]->numel == 0)
        return ST_OK;

    /* step 2: one transform per line along the axis */
    DftPlan p;
    if ((st = dft_plan(n, &p, len, inverse ? 1 : -1, err)))
        return st;
    Cpx *buf = cpx_alloc(len); /* (len) one line */
    if (!buf) {
        dft_plan_free(&p);
        return node_fail(n, err, ST_OOM, "out of memory for a line of %lld",
                         (long long)len);
    }
    int64_t take = irfft ? len / 2 + 1 : len;
    take = take < n_in ? take : n_in;
    double scale = inverse ? 1.0 / (double)len : 1.0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < len; j++) {
                int64_t at = ((o * n_in + j) * inner + i) * c;
                buf[j] = j >= take ? (Cpx){0.0, 0.0}
                       : (Cpx){elem_get_f(x, at), c == 2 ? elem_get_f(x, at + 1) : 0.0};
            }
            /* the negative frequencies of a real signal mirror the positive */
            for (int64_t j = len / 2 + 1; irfft && j < len; j++)
                buf[j] = (Cpx){buf[len - j].re, -buf[len - j].im};
            dft_run(&p, buf);
            for (int64_t k = 0; k < bins; k++) {
                int64_t at = ((o * bins + k) * inner + i) * c_out;
                elem_set_f(out[0], at, buf[k].re * scale);
                if (c_out == 2)
                    elem_set_f(out[0], at + 1, buf[k].im * scale);
            }
        }
    free(buf);
    dft_plan_free(&p);
    return ST_OK;
}

/*
 * Y (batch, frames, bins, 2) = the DFT of each frame of X (batch, len, c)
 * times the window: frames = (len - frame_length) / frame_step + 1, bins =
 * frame_length / 2 + 1 when onesided (default) else frame_length. The
 * frame length comes from input 3, else the window's length, else len.
 */
Status op_stft(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const Tensor *x = in[0], *win = n->n_in > 2 ? in[2] : NULL;
    int64_t step = 0, flen = 0;
    Status st;
    if (!dtype_is_float(x->dtype) || x->ndim != 3 ||
        (x->dims[2] != 1 && x->dims[2] != 2))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "signal must be a float "
                         "(batch, length, 1 or 2) tensor, got %s of rank %d",
                         dtype_name(x->dtype), (int)x->ndim);
    if ((st = scalar_int(n, in[1], "frame_step", &step, err)))
        return st;
    if (n->n_in > 3 && in[3]) {
        if ((st = scalar_int(n, in[3], "frame_length", &flen, err)))
            return st;
    } else {
        flen = win ? win->numel : x->dims[1];
    }
    if (win && (!dtype_is_float(win->dtype) || win->ndim != 1 ||
                win->numel != flen))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "window must be a 1-D float "
                         "tensor of frame_length %lld values, got %lld",
                         (long long)flen, (long long)win->numel);
    int64_t len = x->dims[1], c = x->dims[2];
    if (step < 1 || flen < 1 || flen > len)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "need frame_step >= 1 and "
                         "1 <= frame_length <= signal length %lld, got %lld "
                         "and %lld", (long long)len, (long long)step,
                         (long long)flen);
    int64_t frames = (len - flen) / step + 1;
    int64_t bins = attr_int(n, "onesided", 1) ? flen / 2 + 1 : flen;
    int64_t dims[4] = {x->dims[0], frames, bins, 2};
    if ((st = tensor_alloc(out[0], x->dtype, 4, dims, err)))
        return st;
    if (out[0]->numel == 0)
        return ST_OK;
    DftPlan p;
    if ((st = dft_plan(n, &p, flen, -1, err)))
        return st;
    Cpx *buf = cpx_alloc(flen); /* (flen) one frame */
    if (!buf) {
        dft_plan_free(&p);
        return node_fail(n, err, ST_OOM, "out of memory for a frame of %lld",
                         (long long)flen);
    }
    for (int64_t b = 0; b < x->dims[0]; b++)
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t j = 0; j < flen; j++) {
                int64_t at = (b * len + f * step + j) * c;
                double w = win ? elem_get_f(win, j) : 1.0;
                buf[j] = (Cpx){elem_get_f(x, at) * w,
                               c == 2 ? elem_get_f(x, at + 1) * w : 0.0};
            }
            dft_run(&p, buf);
            for (int64_t k = 0; k < bins; k++) {
                int64_t at = ((b * frames + f) * bins + k) * 2;
                elem_set_f(out[0], at, buf[k].re);
                elem_set_f(out[0], at + 1, buf[k].im);
            }
        }
    free(buf);
    dft_plan_free(&p);
    return ST_OK;
}

/*
 * Y (dft_length/2 + 1, num_mel_bins) = triangular filters, equally spaced
 * on the mel scale mel(f) = 2595 log10(1 + f/700) between the two edge
 * frequencies, each peaking at 1; in output_datatype (default float32).
 * The num_mel_bins + 2 edges map to spectrogram bins
 * floor((dft_length + 1) f / sample_rate), as the ONNX reference does.
 */
Status op_mel_weight_matrix(const Node *n, Tensor *const *in,
                            Tensor *const *out, Err *err)
{
    int64_t mels, dft_len, rate;
    Status st;
    if ((st = scalar_int(n, in[0], "num_mel_bins", &mels, err)) ||
        (st = scalar_int(n, in[1], "dft_length", &dft_len, err)) ||
        (st = scalar_int(n, in[2], "sample_rate", &rate, err)))
        return st;
    if (!dtype_is_float(in[3]->dtype) || in[3]->numel != 1 ||
        !dtype_is_float(in[4]->dtype) || in[4]->numel != 1)
        return node_fail(n, err, ST_SHAPE_MISMATCH, "lower_edge_hertz and "
                         "upper_edge_hertz must be float scalars");
    double lo = elem_get_f(in[3], 0), hi = elem_get_f(in[4], 0);
    int32_t to = (int32_t)attr_int(n, "output_datatype", DT_FLOAT);
    if (mels < 1 || dft_len < 1 || rate < 1 || !(lo >= 0.0) || !(hi >= lo))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "need num_mel_bins, "
                         "dft_length, sample_rate >= 1 and 0 <= lower_edge_hertz "
                         "<= upper_edge_hertz");
    if (dtype_domain(to) == DOM_NONE || to == DT_BOOL)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "output_datatype %s is not "
                         "supported", dtype_name(to));
    int64_t nsb = dft_len / 2 + 1, dims[2] = {nsb, mels};
    if ((st = tensor_alloc(out[0], to, 2, dims, err)))
        return st;
    for (int64_t i = 0; i < out[0]->numel; i++)
        elem_set_f(out[0], i, 0.0);

    /* step 1: the edges as spectrogram bins; each must index a row */
    int64_t *edge = malloc((size_t)(mels + 2) * sizeof *edge); /* (mels+2) */
    if (!edge)
        return node_fail(n, err, ST_OOM, "out of memory");
    double mlo = 2595.0 * log1p(lo / 700.0) / log(10.0);
    double mhi = 2595.0 * log1p(hi / 700.0) / log(10.0);
    double mstep = (mhi - mlo) / (double)(mels + 2);
    for (int64_t k = 0; k < mels + 2; k++) {
        double hz = 700.0 * expm1(((double)k * mstep + mlo) / 2595.0 * log(10.0));
        double b = floor((double)(dft_len + 1) * hz / (double)rate);
        /* the last edge only bounds the last triangle: it may be nsb */
        if (!(b >= 0.0) || b > (double)(k == mels + 1 ? nsb : nsb - 1)) {
            free(edge);
            return node_fail(n, err, ST_SHAPE_MISMATCH, "upper_edge_hertz %g maps "
                             "past the last of %lld spectrogram bins (at most "
                             "sample_rate / 2)", hi, (long long)nsb);
        }
        edge[k] = (int64_t)b;
    }

    /* step 2: rising then falling edge of each triangle */
    for (int64_t i = 0; i < mels; i++) {
        int64_t l = edge[i], cen = edge[i + 1], h = edge[i + 2];
        if (cen == l)
            elem_set_f(out[0], cen * mels + i, 1.0);
        for (int64_t j = l; cen > l && j <= cen; j++)
            elem_set_f(out[0], j * mels + i, (double)(j - l) / (double)(cen - l));
        for (int64_t j = cen; h > cen && j < h; j++)
            elem_set_f(out[0], j * mels + i, (double)(h - j) / (double)(h - cen));
    }
    free(edge);
    return ST_OK;
}
