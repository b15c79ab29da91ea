/*
 * ops_ml_linear.c: ai.onnx.ml linear models, SVMs and row-wise scalers:
 * LinearClassifier, LinearRegressor, SVMClassifier, SVMRegressor,
 * Normalizer, Scaler, Binarizer.
 *
 * Features arrive as X (N, F) or (F,) in float, double, int32 or int64;
 * scores are float32, accumulated in double.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops_ml.h"

/* ---- shared: class labels ------------------------------------------- */

/* classlabels_ints or classlabels_strings of a classifier. */
typedef struct {
    int64_t n;                 /* number of labels, 0 when none */
    int64_t *ints;             /* owned, or NULL */
    const char *const *strs;   /* into the plan, or NULL */
} Labels;

static Status read_labels(const Model *m, const Node *n, Labels *l, Err *err)
{
    int64_t ns;
    l->strs = ml_strings(n, "classlabels_strings", &ns);
    Status st = ml_ints(m, n, "classlabels_ints", NULL, &l->ints, &l->n, err);
    if (st != ST_OK)
        return st;
    if (l->strs && ns > 0) {
        free(l->ints);
        l->ints = NULL;
        l->n = ns;
    } else {
        l->strs = NULL;
        if (l->n < 0)
            l->n = 0;
    }
    return ST_OK;
}

/* y[i] = label k (k < l->n), or the fallback integer / string. */
static void put_label(Tensor *y, const Labels *l, int64_t i, int64_t k,
                      int64_t fallback)
{
    if (l->strs)
        ((const char **)y->data)[i] = k >= 0 && k < l->n ? l->strs[k]
                                      : fallback ? "1" : "0";
    else
        ((int64_t *)y->data)[i] = k >= 0 && k < l->n ? l->ints[k] : fallback;
}

/* ---- LinearClassifier, LinearRegressor ------------------------------ */

typedef struct {
    int pt;
    int64_t targets, features;
    double *coef;        /* (targets, features) */
    double *intercepts;  /* (targets,) or NULL */
    Labels labels;
} LinearParams;

static void free_linear(void *p)
{
    LinearParams *lp = p;
    if (!lp)
        return;
    free(lp->coef);
    free(lp->intercepts);
    free(lp->labels.ints);
    free(lp);
}

Status prep_linear(const Model *m, Node *n, Err *err)
{
    LinearParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_linear;
    int64_t n_coef, n_int;
    Status st;
    if ((st = ml_post_transform(n, &p->pt, err)) ||
        (st = ml_doubles(m, n, "coefficients", NULL, &p->coef, &n_coef, err)) ||
        (st = ml_doubles(m, n, "intercepts", NULL, &p->intercepts, &n_int, err)))
        return st;
    int is_classifier = n->op == OPML_LinearClassifier;
    if (is_classifier && (st = read_labels(m, n, &p->labels, err)))
        return st;
    p->targets = is_classifier ? (n_int > 0 ? n_int : p->labels.n)
                               : attr_int(n, "targets", 1);
    if (n_coef <= 0 || p->targets <= 0 || n_coef % p->targets ||
        (n_int >= 0 && n_int != p->targets))
        return node_fail(n, err, ST_BAD_FORMAT, "%lld coefficients and %lld "
                         "intercepts do not fit %lld targets",
                         (long long)n_coef, (long long)n_int,
                         (long long)p->targets);
    if (is_classifier && p->labels.n == 0)
        return node_fail(n, err, ST_BAD_FORMAT, "classlabels_ints or "
                         "classlabels_strings is required");
    if (is_classifier && p->targets > 1 && p->labels.n < p->targets)
        return node_fail(n, err, ST_BAD_FORMAT, "%lld class labels for %lld "
                         "classes", (long long)p->labels.n,
                         (long long)p->targets);
    p->features = n_coef / p->targets;
    return ST_OK;
}

/* s (rows, targets) = X W^T + b, in float32. */
static Status linear_scores(const Node *n, const LinearParams *p,
                            const Tensor *x, float *s, int64_t rows)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < p->targets; t++) {
            double acc = p->intercepts ? p->intercepts[t] : 0.0;
            const double *w = p->coef + t * p->features;
            for (int64_t f = 0; f < p->features; f++)
                acc += (double)(float)ml_get(x, r * p->features + f) * w[f];
            s[r * p->targets + t] = (float)acc;
        }
    (void)n;
    return ST_OK;
}

/* Check X against the model's feature count; rows out. */
static Status check_features(const Node *n, const Tensor *x, int64_t features,
                             int64_t *rows, Err *err)
{
    int64_t cols;
    Status st = ml_require_numeric(n, x, err);
    if (st == ST_OK)
        st = ml_rows_cols(n, x, rows, &cols, err);
    if (st == ST_OK && cols != features)
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "expected %lld features, "
                       "got %lld", (long long)features, (long long)cols);
    return st;
}

/* Y labels (N,), Z scores (N, C); binary models with one weight row and two
   labels answer (N, 2) as [1 - s, s] (onnxruntime's convention). */
Status op_linear_classifier(const Node *n, Tensor *const *in,
                            Tensor *const *out, Err *err)
{
    const LinearParams *p = n->params;
    int64_t rows;
    Status st = check_features(n, in[0], p->features, &rows, err);
    if (st != ST_OK)
        return st;
    int64_t c = p->targets;
    int second = c == 1 && p->labels.n == 2;
    int64_t zdims[2] = {rows, second ? 2 : c};
    Tensor z = {0};
    if ((st = ml_alloc_labels(out[0], p->labels.strs != NULL, rows, err)) ||
        (st = tensor_alloc(&z, DT_FLOAT, 2, zdims, err)))
        return st;
    float *s = z.data; /* (rows, zdims[1]); raw scores packed first */
    linear_scores(n, p, in[0], s, rows);
    for (int64_t r = rows - 1; c == 1 && r >= 0; r--) {
        float v = s[r];
        /* two labels: pick one by the sign; else 1 / 0 ("1" / "0") */
        put_label(out[0], &p->labels, r, second ? v > 0 : -1, v > 0);
        if (second) {
            float q = p->pt == PT_LOGISTIC ? ml_logistic(v) : v;
            s[2 * r] = p->pt == PT_PROBIT ? ml_probit(v) : 1.0f - q;
            s[2 * r + 1] = p->pt == PT_PROBIT ? 0.0f : q;
        } else if (p->pt == PT_PROBIT || p->pt == PT_LOGISTIC) {
            s[r] = p->pt == PT_PROBIT ? ml_probit(v) : ml_logistic(v);
        }
    }
    for (int64_t r = 0; c > 1 && r < rows; r++) {
        float *row = s + r * c;
        int64_t best = 0;
        for (int64_t k = 1; k < c; k++)
            if (row[k] > row[best])
                best = k;
        put_label(out[0], &p->labels, r, best, 0);
        ml_transform_row(p->pt, row, c);
    }
    if (out[1])
        *out[1] = z;
    else
        tensor_release(&z);
    return ST_OK;
}

/* Y (N, targets) = X W^T + b, then the post transform. */
Status op_linear_regressor(const Node *n, Tensor *const *in,
                           Tensor *const *out, Err *err)
{
    const LinearParams *p = n->params;
    int64_t rows;
    Status st = check_features(n, in[0], p->features, &rows, err);
    int64_t dims[2] = {rows, p->targets};
    if (st != ST_OK || (st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    float *s = out[0]->data;
    linear_scores(n, p, in[0], s, rows);
    for (int64_t r = 0; r < rows; r++) {
        if (p->targets > 1)
            ml_transform_row(p->pt, s + r * p->targets, p->targets);
        else if (p->pt == PT_PROBIT)
            s[r] = ml_probit(s[r]);
    }
    return ST_OK;
}

/* ---- SVMClassifier, SVMRegressor ------------------------------------ */

enum { K_LINEAR, K_POLY, K_RBF, K_SIGMOID };

typedef struct {
    int pt, kernel, svc, one_class, all_positive;
    double gamma, coef0;
    int degree;
    int64_t classes, vectors, features;
    double *coef, *sv, *rho, *proba, *probb;
    int64_t n_coef, n_rho, n_prob;
    int64_t *per_class, *start; /* support vectors of each class */
    Labels labels;
} SvmParams;

static void free_svm(void *q)
{
    SvmParams *p = q;
    if (!p)
        return;
    free(p->coef); free(p->sv); free(p->rho); free(p->proba); free(p->probb);
    free(p->per_class); free(p->start); free(p->labels.ints);
    free(p);
}

Status prep_svm(const Model *m, Node *n, Err *err)
{
    SvmParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_svm;
    static const char *const KERNELS[] = {"LINEAR", "POLY", "RBF", "SIGMOID"};
    const char *k = attr_string(n, "kernel_type", "LINEAR");
    p->kernel = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(k, KERNELS[i]))
            p->kernel = i;
    if (p->kernel < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "kernel_type '%s' is not "
                         "LINEAR, POLY, RBF or SIGMOID", k);
    double *kp = NULL;
    int64_t n_kp, n_sv, n_pb, n_pc;
    Status st;
    if ((st = ml_post_transform(n, &p->pt, err)) ||
        (st = ml_doubles(m, n, "kernel_params", NULL, &kp, &n_kp, err)))
        return st;
    if (n_kp >= 3) {
        p->gamma = kp[0];
        p->coef0 = kp[1];
        /* a float -> int conversion out of range would trap */
        p->degree = kp[2] >= 0 && kp[2] <= 64 ? (int)kp[2] : -1;
    }
    if (p->degree < 0) {
        free(kp);
        return node_fail(n, err, ST_BAD_FORMAT, "kernel_params degree must be "
                         "between 0 and 64");
    }
    free(kp);
    if ((st = ml_doubles(m, n, "coefficients", NULL, &p->coef, &p->n_coef, err)) ||
        (st = ml_doubles(m, n, "support_vectors", NULL, &p->sv, &n_sv, err)) ||
        (st = ml_doubles(m, n, "rho", NULL, &p->rho, &p->n_rho, err)) ||
        (st = ml_doubles(m, n, "prob_a", NULL, &p->proba, &p->n_prob, err)) ||
        (st = ml_doubles(m, n, "prob_b", NULL, &p->probb, &n_pb, err)) ||
        (st = ml_ints(m, n, "vectors_per_class", NULL, &p->per_class, &n_pc, err)))
        return st;
    if (p->n_coef <= 0 || p->n_rho <= 0 || p->n_prob != n_pb)
        return node_fail(n, err, ST_BAD_FORMAT, "coefficients and rho are "
                         "required; prob_a and prob_b must have one size");
    if (p->n_prob < 0)
        p->n_prob = 0;
    int classifier = n->op == OPML_SVMClassifier;
    p->one_class = (int)attr_int(n, "one_class", 0);
    if (classifier && (st = read_labels(m, n, &p->labels, err)))
        return st;
    p->classes = classifier ? p->labels.n : 1;
    if (classifier && (p->classes < 1 || p->classes > 65535))
        return node_fail(n, err, ST_BAD_FORMAT, "%lld class labels",
                         (long long)p->classes);

    /* support vectors, grouped by class (classifier) or one group */
    int64_t groups = classifier ? (n_pc > 0 ? n_pc : 0) : 0;
    p->vectors = classifier ? 0 : attr_int(n, "n_supports", 0);
    p->start = calloc((size_t)(groups > 0 ? groups : 1), sizeof(int64_t));
    if (!p->start)
        return node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t i = 0; i < groups; i++) {
        if (p->per_class[i] < 0 || p->per_class[i] > (1 << 24))
            return node_fail(n, err, ST_BAD_FORMAT, "bad vectors_per_class");
        p->start[i] = p->vectors;
        p->vectors += p->per_class[i];
    }
    p->svc = p->vectors > 0;
    if (p->svc) {
        if (n_sv <= 0 || n_sv % p->vectors)
            return node_fail(n, err, ST_BAD_FORMAT, "%lld support vector "
                             "values for %lld vectors", (long long)n_sv,
                             (long long)p->vectors);
        p->features = n_sv / p->vectors;
        int64_t pairs = p->classes * (p->classes - 1) / 2;
        if (classifier && (groups != p->classes ||
                           p->n_coef < (p->classes - 1) * p->vectors ||
                           p->n_rho < pairs ||
                           (p->n_prob && p->n_prob < pairs)))
            return node_fail(n, err, ST_BAD_FORMAT, "coefficients, rho, prob_a "
                             "or vectors_per_class do not fit %lld classes",
                             (long long)p->classes);
        if (!classifier && p->n_coef < p->vectors)
            return node_fail(n, err, ST_BAD_FORMAT, "%lld coefficients for "
                             "%lld support vectors", (long long)p->n_coef,
                             (long long)p->vectors);
    } else {
        p->kernel = K_LINEAR;
        if (p->n_coef % p->classes)
            return node_fail(n, err, ST_BAD_FORMAT, "%lld coefficients for "
                             "%lld classes", (long long)p->n_coef,
                             (long long)p->classes);
        p->features = p->n_coef / p->classes;
    }
    p->all_positive = 1;
    for (int64_t i = 0; i < p->n_coef; i++)
        if (p->coef[i] < 0)
            p->all_positive = 0;
    return ST_OK;
}

/*
 * K(x, v) for the model's kernel. SVMs compute in double, as libsvm does:
 * probability estimates iterate to a tolerance, so float32 rounding would
 * move them by up to ~1e-3 (onnxruntime's float32 kernels differ from
 * scikit-learn by that much).
 */
static double svm_kernel(const SvmParams *p, const Tensor *x, int64_t xoff,
                         const double *v, double bias)
{
    double acc = 0.0;
    if (p->kernel == K_RBF) {
        for (int64_t f = 0; f < p->features; f++) {
            double d = ml_get(x, xoff + f) - v[f];
            acc += d * d;
        }
        return exp(-(double)p->gamma * acc);
    }
    for (int64_t f = 0; f < p->features; f++)
        acc += ml_get(x, xoff + f) * v[f];
    acc += bias;
    switch (p->kernel) {
    case K_POLY: return pow((double)p->gamma * acc + p->coef0, (double)p->degree);
    case K_SIGMOID: return tanh((double)p->gamma * acc + p->coef0);
    default: return acc;
    }
}

/* Pairwise coupling of probabilities (Wu, Lin and Weng 2004, method 2):
   r (k, k) pairwise estimates -> p (k,), with libsvm's iteration limit
   (max(100, k)) and tolerance (0.005 / k). */
static void couple_probabilities(int64_t k, const double *r, double *p, double *q,
                                 double *qp)
{
    for (int64_t i = 0; i < k; i++) {
        p[i] = 1.0 / (double)k;
        q[i * k + i] = 0.0;
        for (int64_t j = 0; j < i; j++) {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = q[j * k + i];
        }
        for (int64_t j = i + 1; j < k; j++) {
            q[i * k + i] += r[j * k + i] * r[j * k + i];
            q[i * k + j] = -r[j * k + i] * r[i * k + j];
        }
    }
    double eps = 0.005 / (double)k;
    int64_t iters = k > 100 ? k : 100;
    for (int64_t iter = 0; iter < iters; iter++) {
        double pqp = 0.0, max_error = 0.0;
        for (int64_t i = 0; i < k; i++) {
            qp[i] = 0.0;
            for (int64_t j = 0; j < k; j++)
                qp[i] += q[i * k + j] * p[j];
            pqp += p[i] * qp[i];
        }
        for (int64_t i = 0; i < k; i++) {
            double e = fabs(qp[i] - pqp);
            max_error = e > max_error ? e : max_error;
        }
        if (max_error < eps)
            break;
        for (int64_t i = 0; i < k; i++) {
            double diff = (-qp[i] + pqp) / q[i * k + i];
            p[i] += diff;
            pqp = (pqp + diff * (diff * q[i * k + i] + 2 * qp[i])) / (1 + diff) /
                  (1 + diff);
            for (int64_t j = 0; j < k; j++) {
                qp[j] = (qp[j] + diff * q[i * k + j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
}

/* Scratch buffers of one SVMClassifier run. */
typedef struct {
    double *kern;     /* (vectors,) kernel values of one row */
    double *pair;     /* (pairs,) decision values */
    int64_t *votes;   /* (classes,) */
    double *r, *q, *qp, *prob; /* coupling: (k, k), (k, k), (k,), (k,) */
} SvmScratch;

/* One row of an SVC model: decision values, votes, probabilities. */
static void svc_row(const SvmParams *p, const Tensor *x, int64_t row,
                    SvmScratch *w, float *z, int64_t *best)
{
    int64_t k = p->classes, v = p->vectors, idx = 0;
    for (int64_t s = 0; s < v; s++)
        w->kern[s] = svm_kernel(p, x, row * p->features, p->sv + s * p->features, 0);
    memset(w->votes, 0, (size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < k - 1; i++)
        for (int64_t j = i + 1; j < k; j++) {
            double sum = p->rho[idx];
            const double *ci = p->coef + (j - 1) * v, *cj = p->coef + i * v;
            for (int64_t s = 0; s < p->per_class[i]; s++)
                sum += ci[p->start[i] + s] * w->kern[p->start[i] + s];
            for (int64_t s = 0; s < p->per_class[j]; s++)
                sum += cj[p->start[j] + s] * w->kern[p->start[j] + s];
            w->pair[idx++] = sum;
            w->votes[sum > 0 ? i : j]++;
        }
    *best = 0;
    for (int64_t i = 1; i < k; i++)
        if (w->votes[i] > w->votes[*best])
            *best = i;
    if (!p->n_prob) {
        for (int64_t i = 0; i < idx; i++)
            z[i] = (float)w->pair[i];
        return;
    }
    memset(w->r, 0, (size_t)(k * k) * sizeof(double));
    idx = 0;
    for (int64_t i = 0; i < k - 1; i++)
        for (int64_t j = i + 1; j < k; j++, idx++) {
            /* libsvm's sigmoid: P(i beats j) = 1 / (1 + e^(A f + B)) */
            double a = 1.0 / (1.0 + exp(w->pair[idx] * p->proba[idx] + p->probb[idx]));
            a = a < 1e-7 ? 1e-7 : a > 1 - 1e-7 ? 1 - 1e-7 : a;
            w->r[i * k + j] = a;
            w->r[j * k + i] = 1 - a;
        }
    couple_probabilities(k, w->r, w->prob, w->q, w->qp);
    for (int64_t i = 0; i < k; i++)
        z[i] = (float)w->prob[i];
}

/* Y labels (N,), Z (N, classes) probabilities or (N, pairs) decision values
   (two-class models without probabilities: (N, 2)). */
Status op_svm_classifier(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const SvmParams *p = n->params;
    int64_t rows, k = p->classes, pairs = k * (k - 1) / 2;
    Status st = check_features(n, in[0], p->features, &rows, err);
    if (st != ST_OK)
        return st;
    int64_t width = !p->svc || p->n_prob ? k : k > 2 ? pairs : 2;
    int64_t zdims[2] = {rows, width};
    Tensor z = {0};
    if ((st = ml_alloc_labels(out[0], p->labels.strs != NULL, rows, err)) ||
        (st = tensor_alloc(&z, DT_FLOAT, 2, zdims, err)))
        return st;
    SvmScratch w = {0};
    size_t kk = (size_t)(k * k);
    w.kern = malloc(sizeof(double) * (size_t)(p->vectors + 1));
    w.pair = malloc(sizeof(double) * (size_t)(pairs + 1));
    w.votes = malloc(sizeof(int64_t) * (size_t)k);
    w.r = malloc(sizeof(double) * kk);
    w.q = malloc(sizeof(double) * kk);
    w.qp = malloc(sizeof(double) * (size_t)k);
    w.prob = malloc(sizeof(double) * (size_t)k);
    if (!w.kern || !w.pair || !w.votes || !w.r || !w.q || !w.qp || !w.prob)
        st = node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t r = 0; st == ST_OK && r < rows; r++) {
        float *zr = (float *)z.data + r * width, max_w = 0.0f;
        int64_t best = 0;
        if (p->svc) {
            svc_row(p, in[0], r, &w, zr, &best);
        } else {
            for (int64_t c = 0; c < k; c++)
                zr[c] = (float)svm_kernel(p, in[0], r * p->features,
                                          p->coef + c * p->features, p->rho[0]);
            for (int64_t c = 1; c < k; c++)
                if (zr[c] > zr[best])
                    best = c;
            max_w = zr[best];
        }
        /* label: two classes without probabilities follow the weight sign */
        if (pairs == 1 && !p->n_prob &&
            ((p->all_positive && max_w >= 0.5f) || (!p->all_positive && max_w > 0)))
            best = 1;
        put_label(out[0], &p->labels, r, best, 0);
        /* scores: the post transform; binary SVCs expand to two columns */
        if (p->svc && !p->n_prob && k <= 2) {
            float s = zr[0];
            if (p->pt == PT_PROBIT) {
                zr[0] = ml_probit(s);
                zr[1] = 0.0f;
            } else {
                zr[0] = p->pt == PT_NONE ? -s : 1.0f - s;
                zr[1] = s;
            }
        } else if (width > 1) {
            ml_transform_row(p->pt, zr, width);
        } else if (p->pt == PT_PROBIT) {
            zr[0] = ml_probit(zr[0]);
        }
    }
    free(w.kern); free(w.pair); free(w.votes); free(w.r); free(w.q); free(w.qp);
    free(w.prob);
    if (st != ST_OK) {
        tensor_release(&z);
        return st;
    }
    if (out[1])
        *out[1] = z;
    else
        tensor_release(&z);
    return ST_OK;
}

/* Y (N, 1) = sum_s coef_s K(x, sv_s) + rho (or the linear form). */
Status op_svm_regressor(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err)
{
    const SvmParams *p = n->params;
    int64_t rows;
    Status st = check_features(n, in[0], p->features, &rows, err);
    int64_t dims[2] = {rows, 1};
    if (st != ST_OK || (st = tensor_alloc(out[0], DT_FLOAT, 2, dims, err)))
        return st;
    float *y = out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        float s;
        if (p->svc) {
            double acc = p->rho[0];
            for (int64_t v = 0; v < p->vectors; v++)
                acc += p->coef[v] *
                       svm_kernel(p, in[0], r * p->features, p->sv + v * p->features, 0);
            s = (float)acc;
        } else {
            s = (float)svm_kernel(p, in[0], r * p->features, p->coef, p->rho[0]);
        }
        if (p->one_class)
            s = s > 0 ? 1.0f : -1.0f;
        else if (p->pt == PT_PROBIT)
            s = ml_probit(s);
        y[r] = s;
    }
    return ST_OK;
}

/* ---- Normalizer, Scaler, Binarizer ---------------------------------- */

/* Y (N, F) float = each row divided by its MAX, L1 or L2 norm. */
Status op_normalizer(const Node *n, Tensor *const *in, Tensor *const *out,
                     Err *err)
{
    const Tensor *x = in[0];
    const char *norm = attr_string(n, "norm", "MAX");
    int kind = !strcmp(norm, "MAX") ? 0 : !strcmp(norm, "L1") ? 1
             : !strcmp(norm, "L2") ? 2 : -1;
    int64_t rows, cols;
    Status st;
    if (kind < 0)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "norm '%s' is not MAX, L1 "
                         "or L2", norm);
    if ((st = ml_require_numeric(n, x, err)) ||
        (st = ml_rows_cols(n, x, &rows, &cols, err)) ||
        (st = tensor_alloc(out[0], DT_FLOAT, x->ndim, x->dims, err)))
        return st;
    float *y = out[0]->data;
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * cols;
        float acc = kind == 0 ? -INFINITY : 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            float v = row[c] = (float)ml_get(x, r * cols + c);
            acc = kind == 0 ? (v > acc ? v : acc) : kind == 1 ? acc + fabsf(v)
                : acc + v * v;
        }
        if (kind == 2)
            acc = sqrtf(acc);
        for (int64_t c = 0; c < cols; c++)
            row[c] /= acc;
    }
    return ST_OK;
}

/* Y float = (X - offset) * scale; offset and scale have 1 or F values
   (F = the last dimension). */
Status op_scaler(const Node *n, Tensor *const *in, Tensor *const *out,
                 Err *err)
{
    const Tensor *x = in[0];
    const Attr *off = node_attr(n, "offset"), *sc = node_attr(n, "scale");
    int64_t f = x->ndim ? x->dims[x->ndim - 1] : 1;
    int32_t no = off ? off->count : 0, ns = sc ? sc->count : 0;
    Status st = ml_require_numeric(n, x, err);
    if (st != ST_OK)
        return st;
    if ((no > 1 && no != f) || (ns > 1 && ns != f))
        return node_fail(n, err, ST_SHAPE_MISMATCH, "offset has %d and scale "
                         "%d values, expected 1 or %lld", (int)no, (int)ns,
                         (long long)f);
    if ((st = tensor_alloc(out[0], DT_FLOAT, x->ndim, x->dims, err)))
        return st;
    float *y = out[0]->data;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t c = f ? i % f : 0;
        float o = no ? attr_floats_at(off, no > 1 ? (int32_t)c : 0) : 0.0f;
        float s = ns ? attr_floats_at(sc, ns > 1 ? (int32_t)c : 0) : 1.0f;
        y[i] = ((float)ml_get(x, i) - o) * s;
    }
    return ST_OK;
}

/* Y = X > threshold ? 1 : 0, in the dtype of X. */
Status op_binarizer(const Node *n, Tensor *const *in, Tensor *const *out,
                    Err *err)
{
    const Tensor *x = in[0];
    double th = attr_float(n, "threshold", 0.0f);
    Status st = ml_require_numeric(n, x, err);
    if (st != ST_OK || (st = tensor_alloc_like(out[0], x, err)))
        return st;
    for (int64_t i = 0; i < x->numel; i++) {
        int on = ml_get(x, i) > th;
        switch (x->dtype) {
        case DT_FLOAT: ((float *)out[0]->data)[i] = (float)on; break;
        case DT_DOUBLE: ((double *)out[0]->data)[i] = on; break;
        case DT_INT32: ((int32_t *)out[0]->data)[i] = on; break;
        default: ((int64_t *)out[0]->data)[i] = on; break;
        }
    }
    return ST_OK;
}
