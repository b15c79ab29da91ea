/*
 * ops_rnn.c: the recurrent layers RNN, GRU and LSTM (ONNX semantics, all
 * attributes: direction, activations with alpha/beta, clip, input_forget,
 * linear_before_reset, layout; optional B, sequence_lens, initial_h,
 * initial_c, P and optional outputs Y, Y_h, Y_c).
 *
 * Per direction the input projection of every step is one GEMM,
 *   XW (G*H, S*B) = W (G*H, I) X^T (I, S*B) + bias,
 * and each step multiplies the packed recurrence weights by the state,
 *   HR (G*H, B) = R (G*H, H) H^T (H, B),
 * so the weights are packed once and only the small state is packed per
 * step (below GEMM_NR batch entries, a step is a row-by-row product with
 * R^T instead, which wastes no padding). G is the number of gates (1, 3, 4), H hidden_size, S the sequence
 * length, B the batch, I input_size. Gate rows follow ONNX: RNN (i), GRU
 * (z, r, h), LSTM (i, o, f, c); peepholes P: (i, o, f).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gemm.h"
#include "ops.h"

typedef enum {
    ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_AFFINE, ACT_LEAKYRELU,
    ACT_THRESHOLDEDRELU, ACT_SCALEDTANH, ACT_HARDSIGMOID, ACT_ELU,
    ACT_SOFTSIGN, ACT_SOFTPLUS, ACT_COUNT
} ActKind;

/* Name, whether it takes alpha / beta, and their ONNX defaults. */
static const struct {
    const char *name;
    int has_alpha, has_beta;
    float alpha, beta;
} ACTS[ACT_COUNT] = {
    [ACT_RELU] = {"Relu", 0, 0, 0, 0},
    [ACT_TANH] = {"Tanh", 0, 0, 0, 0},
    [ACT_SIGMOID] = {"Sigmoid", 0, 0, 0, 0},
    [ACT_AFFINE] = {"Affine", 1, 1, 1.0f, 0.0f},
    [ACT_LEAKYRELU] = {"LeakyRelu", 1, 0, 0.01f, 0},
    [ACT_THRESHOLDEDRELU] = {"ThresholdedRelu", 1, 0, 1.0f, 0},
    [ACT_SCALEDTANH] = {"ScaledTanh", 1, 1, 1.0f, 1.0f},
    [ACT_HARDSIGMOID] = {"HardSigmoid", 1, 1, 0.2f, 0.5f},
    [ACT_ELU] = {"Elu", 1, 0, 1.0f, 0},
    [ACT_SOFTSIGN] = {"Softsign", 0, 0, 0, 0},
    [ACT_SOFTPLUS] = {"Softplus", 0, 0, 0, 0},
};

typedef struct {
    int32_t kind; /* ActKind */
    float alpha, beta;
} Act;

typedef struct {
    int32_t gates;      /* G: 1 RNN, 3 GRU, 4 LSTM */
    int32_t n_act;      /* activations per direction: 1, 2, 3 */
    int64_t hidden;     /* H */
    int32_t n_dir;      /* 1 or 2 */
    int32_t reverse;    /* direction "reverse" (one direction) */
    int32_t layout;     /* 0: (S, B, .), 1: (B, S, .) */
    int32_t input_forget, linear_before_reset;
    float clip;         /* <= 0: none */
    Act act[2][3];      /* per direction: f, g, h */
} RnnParams;

/* y = the activation a of x. */
static float act_apply(const Act *a, float x)
{
    switch (a->kind) {
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_TANH: return tanhf(x);
    case ACT_SIGMOID: {
        /* split by sign so that expf never overflows */
        float e = expf(-fabsf(x));
        return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    }
    case ACT_AFFINE: return a->alpha * x + a->beta;
    case ACT_LEAKYRELU: return x < 0.0f ? a->alpha * x : x;
    case ACT_THRESHOLDEDRELU: return x > a->alpha ? x : 0.0f;
    case ACT_SCALEDTANH: return a->alpha * tanhf(a->beta * x);
    case ACT_HARDSIGMOID: {
        float y = a->alpha * x + a->beta;
        return y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
    }
    case ACT_ELU: return x >= 0.0f ? x : a->alpha * (expf(x) - 1.0f);
    case ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case ACT_SOFTPLUS:
        return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    default: return x;
    }
}

/* Step: activations (names, then alpha and beta consumed in order by the
   functions that take them, ONNX defaults once the lists run out). */
static Status read_activations(Node *n, RnnParams *p, Err *err)
{
    static const int32_t DEFAULTS[3][3] = {
        {ACT_TANH}, {ACT_SIGMOID, ACT_TANH}, {ACT_SIGMOID, ACT_TANH, ACT_TANH}};
    const int32_t *dflt = DEFAULTS[p->n_act - 1];
    const Attr *names = node_attr(n, "activations");
    const Attr *alphas = node_attr(n, "activation_alpha");
    const Attr *betas = node_attr(n, "activation_beta");
    int32_t total = p->n_act * p->n_dir, ia = 0, ib = 0;
    if (names && (names->type != AT_STRINGS || names->count != total))
        return node_fail(n, err, ST_BAD_FORMAT, "activations must list %d "
                         "functions, got %d", (int)total, (int)names->count);
    if ((alphas && alphas->type != AT_FLOATS) || (betas && betas->type != AT_FLOATS))
        return node_fail(n, err, ST_BAD_FORMAT, "activation_alpha and "
                         "activation_beta must be lists of floats");
    for (int32_t i = 0; i < total; i++) {
        Act *a = &p->act[i / p->n_act][i % p->n_act];
        a->kind = dflt[i % p->n_act];
        if (names) {
            a->kind = -1;
            for (int32_t k = 0; k < ACT_COUNT; k++)
                if (!strcasecmp(names->strs[i], ACTS[k].name))
                    a->kind = k;
            if (a->kind < 0)
                return node_fail(n, err, ST_UNSUPPORTED_OP, "activation '%s' "
                                 "is not supported", names->strs[i]);
        }
        a->alpha = ACTS[a->kind].alpha;
        a->beta = ACTS[a->kind].beta;
        if (ACTS[a->kind].has_alpha && alphas && ia < alphas->count)
            a->alpha = attr_floats_at(alphas, ia++);
        if (ACTS[a->kind].has_beta && betas && ib < betas->count)
            a->beta = attr_floats_at(betas, ib++);
    }
    return ST_OK;
}

Status prep_rnn(const Model *m, Node *n, Err *err)
{
    (void)m;
    RnnParams *p = calloc(1, sizeof *p);
    if (!p)
        return fail(err, ST_OOM, "model: out of memory");
    n->params = p;
    p->gates = n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1;
    p->n_act = n->op == OP_LSTM ? 3 : n->op == OP_GRU ? 2 : 1;
    p->hidden = attr_int(n, "hidden_size", 0);
    if (p->hidden < 1 || p->hidden > (1 << 20))
        return node_fail(n, err, ST_BAD_FORMAT, "hidden_size must be in [1, "
                         "2^20], got %lld", (long long)p->hidden);
    const char *dir = attr_string(n, "direction", "forward");
    p->n_dir = !strcmp(dir, "bidirectional") ? 2 : 1;
    p->reverse = !strcmp(dir, "reverse");
    if (p->n_dir == 1 && !p->reverse && strcmp(dir, "forward"))
        return node_fail(n, err, ST_BAD_FORMAT, "direction '%s' is not "
                         "forward, reverse or bidirectional", dir);
    p->layout = (int32_t)attr_int(n, "layout", 0);
    if (p->layout != 0 && p->layout != 1)
        return node_fail(n, err, ST_BAD_FORMAT, "layout must be 0 or 1, got "
                         "%d", (int)p->layout);
    p->input_forget = attr_int(n, "input_forget", 0) != 0;
    p->linear_before_reset = attr_int(n, "linear_before_reset", 0) != 0;
    p->clip = attr_float(n, "clip", 0.0f);
    if (node_attr(n, "clip") && !(p->clip > 0.0f))
        return node_fail(n, err, ST_BAD_FORMAT, "clip must be positive");
    return read_activations(n, p, err);
}

/* ---- the kernel ------------------------------------------------------- */

/* Largest scratch buffer, in floats (wasm32 linear memory is 4 GiB). */
#define MAX_SCRATCH_FLOATS ((int64_t)1 << 29)

/* Shapes of one call, read from the inputs. */
typedef struct {
    int64_t S, B, I, H, G, D;
    const float *x, *w, *r, *bias, *h0, *c0, *peep; /* NULL when absent */
    int64_t *len;     /* (B) valid steps per batch entry, or NULL */
} Dims;

/* Fail unless t is float32 with the given rank and dims (-1: any). */
static Status check_shape(const Node *n, const Tensor *t, const char *what,
                          int32_t rank, const int64_t *dims, Err *err)
{
    char st[96], want[96];
    int ok = t->dtype == DT_FLOAT && t->ndim == rank;
    for (int32_t i = 0; ok && i < rank; i++)
        ok = dims[i] < 0 || t->dims[i] == dims[i];
    if (ok)
        return ST_OK;
    return node_fail(n, err, ST_SHAPE_MISMATCH, "%s must be float32 of shape "
                     "%s (-1: any), got %s %s", what,
                     shape_str(dims, rank, want, 96), dtype_name(t->dtype),
                     shape_str(t->dims, t->ndim, st, 96));
}

/* Step: check every input against X, W and hidden_size. */
static Status read_dims(const Node *n, const RnnParams *p, Tensor *const *in,
                        Dims *d, Err *err)
{
    const Tensor *x = in[0];
    Status st;
    int64_t any3[3] = {-1, -1, -1};
    if ((st = check_shape(n, x, "X", 3, any3, err)))
        return st;
    d->S = x->dims[p->layout ? 1 : 0];
    d->B = x->dims[p->layout ? 0 : 1];
    d->I = x->dims[2];
    /* X may be empty (I = 0) with any S and B: bound them before use */
    if (d->S > MAX_SCRATCH_FLOATS || d->B > (1 << 26) ||
        d->S * d->B > MAX_SCRATCH_FLOATS)
        return node_fail(n, err, ST_OOM, "sequence %lld x batch %lld is too "
                         "large", (long long)d->S, (long long)d->B);
    d->H = p->hidden;
    d->G = p->gates;
    d->D = p->n_dir;
    int64_t wd[3] = {d->D, d->G * d->H, d->I}, rd[3] = {d->D, d->G * d->H, d->H};
    int64_t bd[2] = {d->D, 2 * d->G * d->H}, pd[2] = {d->D, 3 * d->H};
    int64_t hd[3] = {p->layout ? d->B : d->D, p->layout ? d->D : d->B, d->H};
    if ((st = check_shape(n, in[1], "W", 3, wd, err)) ||
        (st = check_shape(n, in[2], "R", 3, rd, err)) ||
        (n->n_in > 3 && in[3] && (st = check_shape(n, in[3], "B", 2, bd, err))) ||
        (n->n_in > 5 && in[5] &&
         (st = check_shape(n, in[5], "initial_h", 3, hd, err))) ||
        (n->n_in > 6 && in[6] &&
         (st = check_shape(n, in[6], "initial_c", 3, hd, err))) ||
        (n->n_in > 7 && in[7] && (st = check_shape(n, in[7], "P", 2, pd, err))))
        return st;
    d->x = x->data;
    d->w = in[1]->data;
    d->r = in[2]->data;
    d->bias = n->n_in > 3 && in[3] ? in[3]->data : NULL;
    d->h0 = n->n_in > 5 && in[5] ? in[5]->data : NULL;
    d->c0 = n->n_in > 6 && in[6] ? in[6]->data : NULL;
    d->peep = n->n_in > 7 && in[7] ? in[7]->data : NULL;
    d->len = NULL;
    if (n->n_in > 4 && in[4]) {
        const Tensor *sl = in[4];
        if ((sl->dtype != DT_INT32 && sl->dtype != DT_INT64) || sl->ndim != 1 ||
            sl->dims[0] != d->B)
            return node_fail(n, err, ST_SHAPE_MISMATCH, "sequence_lens must be "
                             "int32 of shape (%lld,)", (long long)d->B);
        d->len = malloc(sizeof(int64_t) * (size_t)(d->B + 1));
        if (!d->len)
            return fail(err, ST_OOM, "out of memory");
        for (int64_t b = 0; b < d->B; b++) {
            d->len[b] = tensor_get_int(sl, b);
            if (d->len[b] < 0 || d->len[b] > d->S)
                return node_fail(n, err, ST_BAD_REQUEST, "sequence_lens[%lld] "
                                 "= %lld is outside [0, %lld]", (long long)b,
                                 (long long)d->len[b], (long long)d->S);
        }
    }
    return ST_OK;
}

/* Scratch of one direction; sizes in floats in the comments. */
typedef struct {
    float *xw;    /* (G*H, S*B) input projections plus bias */
    float *hr;    /* (G*H, B) recurrence products of one step */
    float *gh;    /* (H, B) GRU: Rh (r . H)^T of one step */
    float *h, *c; /* (B, H) state */
    float *rh;    /* (B, H) GRU: r . H; also z */
    float *z;     /* (B, H) GRU update gate */
    float *pw;    /* packed W (G*H, I) */
    float *pr;    /* packed R (G*H, H), or R_zr (2H, H) for GRU lbr = 0 */
    float *prh;   /* packed R_h (H, H) for GRU lbr = 0 */
    float *rt;    /* small batch: R^T (H, G*H), or R_zr^T (H, 2H) */
    float *rht;   /* small batch: R_h^T (H, H) for GRU lbr = 0 */
    float *row;   /* small batch: (G*H) one product row */
    float *bias;  /* (G*H) bias folded into xw */
    float *rbh;   /* (H) GRU lbr = 1: Rbh, added before the reset gate */
} Scratch;

static void scratch_free(Scratch *s)
{
    free(s->xw); free(s->hr); free(s->gh); free(s->h); free(s->c);
    free(s->rh); free(s->z); free(s->pw); free(s->pr); free(s->prh);
    free(s->rt); free(s->rht); free(s->row);
    free(s->bias); free(s->rbh);
    memset(s, 0, sizeof *s);
}

static Status scratch_alloc(const Dims *d, Scratch *s, Err *err)
{
    /* every factor is a dimension of an input that exists, but products of
       two of them may not fit in 32-bit size_t: check them in 64 bits */
    int64_t big = d->G * d->H * (d->S * d->B > d->I ? d->S * d->B : d->I);
    if (d->G * d->H * d->H > MAX_SCRATCH_FLOATS || big > MAX_SCRATCH_FLOATS ||
        d->G * d->H * d->B > MAX_SCRATCH_FLOATS)
        return fail(err, ST_OOM, "recurrent layer too large: %lld gates x "
                    "%lld steps x %lld batch", (long long)(d->G * d->H),
                    (long long)d->S, (long long)d->B);
    size_t GH = (size_t)(d->G * d->H), SB = (size_t)(d->S * d->B);
    size_t BH = (size_t)(d->B * d->H);
    s->xw = malloc(sizeof(float) * (GH * SB + 1));
    s->hr = malloc(sizeof(float) * (GH * (size_t)d->B + 1));
    s->gh = malloc(sizeof(float) * (BH + 1));
    s->h = malloc(sizeof(float) * (BH + 1));
    s->c = malloc(sizeof(float) * (BH + 1));
    s->rh = malloc(sizeof(float) * (BH + 1));
    s->z = malloc(sizeof(float) * (BH + 1));
    s->pw = malloc(sizeof(float) * (size_t)(gemm_packed_a_size(d->G * d->H, d->I) + 1));
    s->pr = malloc(sizeof(float) * (size_t)(gemm_packed_a_size(d->G * d->H, d->H) + 1));
    s->prh = malloc(sizeof(float) * (size_t)(gemm_packed_a_size(d->H, d->H) + 1));
    s->rt = malloc(sizeof(float) * (GH * (size_t)d->H + 1));
    s->rht = malloc(sizeof(float) * ((size_t)(d->H * d->H) + 1));
    s->row = malloc(sizeof(float) * (GH + 1));
    s->bias = calloc(GH + 1, sizeof(float));
    s->rbh = calloc((size_t)d->H + 1, sizeof(float));
    if (!s->xw || !s->hr || !s->gh || !s->h || !s->c || !s->rh || !s->z ||
        !s->pw || !s->pr || !s->prh || !s->bias || !s->rbh || !s->rt ||
        !s->rht || !s->row)
        return fail(err, ST_OOM, "out of memory for recurrent state");
    return ST_OK;
}

static float clip_to(float x, float clip)
{
    return clip <= 0.0f ? x : x > clip ? clip : x < -clip ? -clip : x;
}

/* Below this batch size a step multiplies by R^T row by row (axpy, which
   the compiler vectorises) instead of padding the state to a GEMM panel. */
#define SMALL_BATCH GEMM_NR

/* Weights of one step product: packed (GEMM) or transposed (small batch). */
typedef struct {
    const float *packed; /* packed A (m, k) */
    const float *t;      /* (k, m) row-major */
} StepWeights;

/* C (m, B) = A (m, k) times the state (B, k)^T; row is (m) scratch. */
static Status times_state(int64_t m, int64_t k, int64_t B, StepWeights a,
                          const float *state, float *c, float *row, Err *err)
{
    if (B >= SMALL_BATCH) {
        StridedB sb = {state, k, 1, k};
        GemmB gb = {NULL, gemm_pack_b_strided, &sb};
        Epilogue ep = gemm_no_epilogue();
        GemmA ga = gemm_a_packed(a.packed);
        return gemm_run(m, B, k, &ga, &gb, c, B, &ep, err);
    }
    for (int64_t b = 0; b < B; b++) {
        float *restrict y = row;
        memset(y, 0, sizeof(float) * (size_t)m);
        for (int64_t p = 0; p < k; p++) {
            const float *restrict w = a.t + p * m;
            float h = state[b * k + p];
            for (int64_t j = 0; j < m; j++)
                y[j] += h * w[j];
        }
        for (int64_t j = 0; j < m; j++)
            c[j * B + b] = y[j];
    }
    return ST_OK;
}

/* Prepare rows [r0, r0 + m) of R (rows of k) for times_state. */
static void step_weights(const float *r, int64_t m, int64_t k, int64_t B,
                         float *packed, float *t, StepWeights *out)
{
    out->packed = packed;
    out->t = t;
    if (B >= SMALL_BATCH) {
        gemm_pack_a(m, k, r, k, 1, packed);
        return;
    }
    for (int64_t j = 0; j < m; j++)
        for (int64_t p = 0; p < k; p++)
            t[p * m + j] = r[j * k + p];
}

/* Row of X (and column of xw) of step t, batch entry b. */
static int64_t x_row(const RnnParams *p, const Dims *d, int64_t t, int64_t b)
{
    return p->layout ? b * d->S + t : t * d->B + b;
}

/* Step: the cell update of one step for every batch entry still running;
   h and c hold the previous state on entry, the new one on return. */
static Status cell_step(const Node *n, const RnnParams *p, const Dims *d,
                        int32_t dir, int64_t t, Scratch *s, StepWeights wr,
                        StepWeights wrh, Err *err)
{
    int64_t H = d->H, B = d->B, SB = d->S * d->B;
    const Act *act = p->act[dir];
    const float *peep = d->peep ? d->peep + dir * 3 * H : NULL;
    float clip = p->clip;
    Status st;
    (void)n;
    if ((st = times_state(n->op == OP_GRU && !p->linear_before_reset
                              ? 2 * H : d->G * H,
                          H, B, wr, s->h, s->hr, s->row, err)))
        return st;
    for (int64_t b = 0; b < B; b++) {
        if (d->len && t >= d->len[b])
            continue;
        const float *xw = s->xw + x_row(p, d, t, b);
        float *h = s->h + b * H, *c = s->c + b * H;
        for (int64_t u = 0; u < H; u++) {
#define XW(g) xw[((g) * H + u) * SB]
#define HR(g) s->hr[((g) * H + u) * B + b]
            if (n->op == OP_RNN) {
                h[u] = act_apply(&act[0], clip_to(XW(0) + HR(0), clip));
            } else if (n->op == OP_LSTM) {
                float cp = c[u];
                float ai = XW(0) + HR(0) + (peep ? peep[u] * cp : 0.0f);
                float af = XW(2) + HR(2) + (peep ? peep[2 * H + u] * cp : 0.0f);
                float gi = act_apply(&act[0], clip_to(ai, clip));
                float gf = p->input_forget ? 1.0f - gi
                                           : act_apply(&act[0], clip_to(af, clip));
                float gc = act_apply(&act[1], clip_to(XW(3) + HR(3), clip));
                c[u] = gf * cp + gi * gc;
                float ao = XW(1) + HR(1) + (peep ? peep[H + u] * c[u] : 0.0f);
                float go = act_apply(&act[0], clip_to(ao, clip));
                h[u] = go * act_apply(&act[2], c[u]);
            } else {
                float z = act_apply(&act[0], clip_to(XW(0) + HR(0), clip));
                float r = act_apply(&act[0], clip_to(XW(1) + HR(1), clip));
                s->z[b * H + u] = z;
                if (p->linear_before_reset) {
                    float ah = XW(2) + r * (HR(2) + s->rbh[u]);
                    float hh = act_apply(&act[1], clip_to(ah, clip));
                    h[u] = (1.0f - z) * hh + z * h[u];
                } else {
                    s->rh[b * H + u] = r * h[u];
                }
            }
        }
    }
    if (n->op != OP_GRU || p->linear_before_reset)
        return ST_OK;

    /* GRU without linear_before_reset: h~ needs Rh (r . H) first */
    for (int64_t b = 0; b < B; b++)
        if (d->len && t >= d->len[b])
            memset(s->rh + b * H, 0, sizeof(float) * (size_t)H);
    if ((st = times_state(H, H, B, wrh, s->rh, s->gh, s->row, err)))
        return st;
    for (int64_t b = 0; b < B; b++) {
        if (d->len && t >= d->len[b])
            continue;
        const float *xw = s->xw + x_row(p, d, t, b);
        float *h = s->h + b * H;
        for (int64_t u = 0; u < H; u++) {
            float ah = XW(2) + s->gh[u * B + b];
            float hh = act_apply(&act[1], clip_to(ah, clip));
            float z = s->z[b * H + u];
            h[u] = (1.0f - z) * hh + z * h[u];
        }
    }
#undef XW
#undef HR
    return ST_OK;
}

/* Step: one direction: weights, projections, steps, outputs. */
static Status run_direction(const Node *n, const RnnParams *p, const Dims *d,
                            int32_t dir, Tensor *const *out, Scratch *s,
                            Err *err)
{
    int64_t G = d->G, H = d->H, I = d->I, B = d->B, S = d->S, D = d->D;
    int reverse = p->reverse || dir == 1;
    Status st;

    /* 1: pack W and R once; fold biases (GRU lbr = 1 keeps Rbh apart) */
    const float *w = d->w + dir * G * H * I, *r = d->r + dir * G * H * H;
    StepWeights wr, wrh = {0};
    gemm_pack_a(G * H, I, w, I, 1, s->pw);
    if (n->op == OP_GRU && !p->linear_before_reset) {
        step_weights(r, 2 * H, H, B, s->pr, s->rt, &wr);
        step_weights(r + 2 * H * H, H, H, B, s->prh, s->rht, &wrh);
    } else {
        step_weights(r, G * H, H, B, s->pr, s->rt, &wr);
    }
    for (int64_t j = 0; j < G * H; j++) {
        const float *bias = d->bias ? d->bias + dir * 2 * G * H : NULL;
        int apart = n->op == OP_GRU && p->linear_before_reset && j >= 2 * H;
        s->bias[j] = bias ? bias[j] + (apart ? 0.0f : bias[G * H + j]) : 0.0f;
        if (apart)
            s->rbh[j - 2 * H] = bias ? bias[G * H + j] : 0.0f;
    }

    /* 2: XW (G*H, S*B) = W X^T + bias, all steps at once */
    StridedB sx = {d->x, I, 1, I};
    GemmB gx = {NULL, gemm_pack_b_strided, &sx};
    Epilogue ex = gemm_no_epilogue();
    ex.bias_row = s->bias;
    GemmA wa = gemm_a_packed(s->pw);
    if (S * B > 0 && (st = gemm_run(G * H, S * B, I, &wa, &gx, s->xw, S * B, &ex, err)))
        return st;

    /* 3: initial state (B, H) */
    for (int64_t b = 0; b < B; b++) {
        int64_t at = (p->layout ? b * D + dir : dir * B + b) * H;
        for (int64_t u = 0; u < H; u++) {
            s->h[b * H + u] = d->h0 ? d->h0[at + u] : 0.0f;
            s->c[b * H + u] = d->c0 ? d->c0[at + u] : 0.0f;
        }
    }

    /* 4: steps; Y is zero past a batch entry's sequence length */
    float *y = out[0] ? out[0]->data : NULL;
    for (int64_t k = 0; k < S; k++) {
        int64_t t = reverse ? S - 1 - k : k;
        if ((st = cell_step(n, p, d, dir, t, s, wr, wrh, err)))
            return st;
        for (int64_t b = 0; y && b < B; b++) {
            float *dst = y + (p->layout ? (b * S + t) * D + dir
                                        : (t * D + dir) * B + b) * H;
            if (d->len && t >= d->len[b])
                memset(dst, 0, sizeof(float) * (size_t)H);
            else
                memcpy(dst, s->h + b * H, sizeof(float) * (size_t)H);
        }
    }

    /* 5: final states */
    for (int32_t o = 1; o <= 2; o++) {
        if (n->n_out <= o || !out[o])
            continue;
        const float *src = o == 1 ? s->h : s->c;
        for (int64_t b = 0; b < B; b++)
            memcpy((float *)out[o]->data +
                       (p->layout ? b * D + dir : dir * B + b) * H,
                   src + b * H, sizeof(float) * (size_t)H);
    }
    return ST_OK;
}

/* Y, Y_h (and Y_c) of RNN, GRU or LSTM; see the file comment. */
Status op_rnn(const Node *n, Tensor *const *in, Tensor *const *out, Err *err)
{
    const RnnParams *p = n->params;
    Dims d = {0};
    Scratch s = {0};
    Status st = read_dims(n, p, in, &d, err);

    /* outputs: Y (S, D, B, H) or (B, S, D, H); Y_h, Y_c (D, B, H) or
       (B, D, H) */
    int64_t ydims[4] = {d.S, d.D, d.B, d.H}, hdims[3] = {d.D, d.B, d.H};
    if (p->layout) {
        ydims[0] = d.B; ydims[1] = d.S; ydims[2] = d.D;
        hdims[0] = d.B; hdims[1] = d.D;
    }
    if (st == ST_OK && out[0])
        st = tensor_alloc(out[0], DT_FLOAT, 4, ydims, err);
    for (int32_t o = 1; o < n->n_out && st == ST_OK; o++)
        if (out[o])
            st = tensor_alloc(out[o], DT_FLOAT, 3, hdims, err);
    if (st == ST_OK)
        st = scratch_alloc(&d, &s, err);
    for (int32_t dir = 0; dir < p->n_dir && st == ST_OK; dir++)
        st = run_direction(n, p, &d, dir, out, &s, err);
    scratch_free(&s);
    free(d.len);
    return st;
}
