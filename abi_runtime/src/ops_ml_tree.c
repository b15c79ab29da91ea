/*
 * ops_ml_tree.c: ai.onnx.ml tree ensembles: TreeEnsembleClassifier and
 * TreeEnsembleRegressor (opsets 1 and 3, float or double thresholds) and
 * TreeEnsemble (opset 5). All three compile at load time into one flat
 * form: internal nodes and leaves in one array, children by index, leaf
 * weights in one list.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_ml.h"
#include "sort.h"

enum { M_LEQ, M_LT, M_GTE, M_GT, M_EQ, M_NEQ, M_MEMBER, M_LEAF };
enum { AGG_AVERAGE, AGG_SUM, AGG_MIN, AGG_MAX };

typedef struct {
    double value;          /* threshold */
    int32_t feature;
    int32_t mode;          /* M_* */
    int32_t missing_true;  /* NaN goes to the true branch */
    int32_t t, f;          /* children: node indices */
    int32_t w_lo, w_hi;    /* leaves: range of weights; M_MEMBER: of members */
} TNode;

typedef struct {
    int classifier, pt, agg, binary_case, all_positive;
    int out_double;        /* TreeEnsembleRegressor: declared double output */
    int use_double;        /* double thresholds: sums in double, else float */
    int32_t n_nodes, n_trees, n_w;
    TNode *nodes;
    int32_t *roots;        /* (n_trees,) */
    int32_t *w_target;     /* (n_w,) target or class of each weight */
    double *w_value;       /* (n_w,) */
    int64_t n_targets;     /* targets, or classes */
    double *base;          /* (n_base,) or NULL */
    int64_t n_base;
    int64_t *label_ints;   /* classifier labels */
    const char *const *label_strs;
    int32_t max_feature;
    double *members;       /* sets of M_MEMBER nodes, back to back */
} TreeParams;

static void free_tree(void *q)
{
    TreeParams *p = q;
    if (!p)
        return;
    free(p->nodes); free(p->roots); free(p->w_target); free(p->w_value);
    free(p->base); free(p->label_ints); free(p->members);
    free(p);
}

/* (tree id, node id) -> index, for resolving references. */
typedef struct {
    int64_t tree, id;
    int32_t index;
} NodeKey;

static int key_cmp(const void *a, const void *b)
{
    const NodeKey *x = a, *y = b;
    if (x->tree != y->tree)
        return x->tree < y->tree ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t find_node(const NodeKey *keys, int32_t n, int64_t tree,
                         int64_t id)
{
    NodeKey k = {tree, id, 0};
    const NodeKey *hit = bsearch(&k, keys, (size_t)n, sizeof k, key_cmp);
    return hit ? hit->index : -1;
}

static int mode_code(const char *s)
{
    static const char *const NAMES[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE",
                                        "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
                                        "BRANCH_MEMBER", "LEAF"};
    for (int i = 0; i < 8; i++)
        if (!strcmp(s, NAMES[i]))
            return i;
    return -1;
}

/* Attributes of opsets 1 and 3, all copied out of the plan. */
typedef struct {
    int64_t *tree, *id, *feat, *tid, *fid, *miss, *wt, *wn, *wk;
    double *val, *wv;
    int64_t n, n_tid, n_fid, n_miss, n_feat, n_val, n_w, n_wn, n_wk, n_wv;
} TreeAttrs;

static void free_attrs(TreeAttrs *a)
{
    free(a->tree); free(a->id); free(a->feat); free(a->tid); free(a->fid);
    free(a->miss); free(a->wt); free(a->wn); free(a->wk); free(a->val);
    free(a->wv);
}

static Status read_tree_attrs(const Model *m, const Node *n, TreeAttrs *a,
                              int classifier, Err *err)
{
    const char *wp = classifier ? "class_" : "target_";
    char tn[32], nn[32], kn[32], wn[32], wnt[48];
    snprintf(tn, sizeof tn, "%streeids", wp);
    snprintf(nn, sizeof nn, "%snodeids", wp);
    snprintf(kn, sizeof kn, "%sids", wp);
    snprintf(wn, sizeof wn, "%sweights", wp);
    snprintf(wnt, sizeof wnt, "%sweights_as_tensor", wp);
    int64_t n_id;
    Status st;
    if ((st = ml_ints(m, n, "nodes_treeids", NULL, &a->tree, &a->n, err)) ||
        (st = ml_ints(m, n, "nodes_nodeids", NULL, &a->id, &n_id, err)) ||
        (st = ml_ints(m, n, "nodes_featureids", NULL, &a->feat, &a->n_feat, err)) ||
        (st = ml_ints(m, n, "nodes_truenodeids", NULL, &a->tid, &a->n_tid, err)) ||
        (st = ml_ints(m, n, "nodes_falsenodeids", NULL, &a->fid, &a->n_fid, err)) ||
        (st = ml_ints(m, n, "nodes_missing_value_tracks_true", NULL, &a->miss,
                      &a->n_miss, err)) ||
        (st = ml_doubles(m, n, "nodes_values", "nodes_values_as_tensor", &a->val,
                         &a->n_val, err)) ||
        (st = ml_ints(m, n, tn, NULL, &a->wt, &a->n_w, err)) ||
        (st = ml_ints(m, n, nn, NULL, &a->wn, &a->n_wn, err)) ||
        (st = ml_ints(m, n, kn, NULL, &a->wk, &a->n_wk, err)) ||
        (st = ml_doubles(m, n, wn, wnt, &a->wv, &a->n_wv, err)))
        return st;
    if (a->n <= 0 || n_id != a->n || a->n_feat != a->n || a->n_tid != a->n ||
        a->n_fid != a->n || (a->n_val >= 0 && a->n_val != a->n) ||
        (a->n_miss > 0 && a->n_miss != a->n) || a->n_w < 0 ||
        a->n_wn != a->n_w || a->n_wk != a->n_w || a->n_wv != a->n_w ||
        a->n > (1 << 26))
        return node_fail(n, err, ST_BAD_FORMAT, "node or weight attribute "
                         "lists of different lengths");
    return ST_OK;
}

/* Build nodes, roots and weights from opset 1/3 attributes. */
static Status build_v3(const Node *n, TreeParams *p, TreeAttrs *a, Err *err)
{
    const Attr *modes = node_attr(n, "nodes_modes");
    if (!modes || modes->type != AT_STRINGS || modes->count != a->n)
        return node_fail(n, err, ST_BAD_FORMAT, "nodes_modes must list one "
                         "mode per node");
    int32_t nn = (int32_t)a->n;
    NodeKey *keys = malloc(sizeof *keys * (size_t)nn);
    p->nodes = calloc((size_t)nn, sizeof(TNode));
    p->roots = malloc(sizeof(int32_t) * (size_t)nn);
    p->w_target = malloc(sizeof(int32_t) * (size_t)(a->n_w + 1));
    p->w_value = malloc(sizeof(double) * (size_t)(a->n_w + 1));
    int32_t *order = malloc(sizeof(int32_t) * (size_t)(a->n_w + 1));
    Status st = ST_OK;
    if (!keys || !p->nodes || !p->roots || !p->w_target || !p->w_value || !order)
        st = node_fail(n, err, ST_OOM, "out of memory");
    for (int32_t i = 0; st == ST_OK && i < nn; i++) {
        keys[i] = (NodeKey){a->tree[i], a->id[i], i};
        TNode *t = &p->nodes[i];
        t->mode = mode_code(modes->strs[i]);
        t->feature = (int32_t)a->feat[i];
        t->value = a->val ? a->val[i] : 0.0;
        t->missing_true = a->miss ? a->miss[i] != 0 : 0;
        if (t->mode < 0 || t->mode == M_MEMBER)
            st = node_fail(n, err, ST_UNSUPPORTED_OP, "node mode '%s' is not "
                           "supported", modes->strs[i]);
        else if (t->mode != M_LEAF && (a->feat[i] < 0 || a->feat[i] > INT32_MAX))
            st = node_fail(n, err, ST_BAD_FORMAT, "negative feature id");
        if (t->mode != M_LEAF && t->feature > p->max_feature)
            p->max_feature = t->feature;
    }
    if (st == ST_OK)
        wx_sort(keys, (size_t)nn, sizeof *keys, key_cmp);
    for (int32_t i = 0; st == ST_OK && i + 1 < nn; i++)
        if (!key_cmp(&keys[i], &keys[i + 1]))
            st = node_fail(n, err, ST_BAD_FORMAT, "node (%lld, %lld) defined "
                           "twice", (long long)keys[i].tree, (long long)keys[i].id);
    /* children; the first node of each tree is its root */
    for (int32_t i = 0; st == ST_OK && i < nn; i++) {
        TNode *t = &p->nodes[i];
        if (i == 0 || a->tree[i] != a->tree[i - 1]) {
            int new_tree = 1;
            for (int32_t k = 0; k < p->n_trees && new_tree; k++)
                new_tree = a->tree[p->roots[k]] != a->tree[i];
            if (new_tree)
                p->roots[p->n_trees++] = i;
        }
        if (t->mode == M_LEAF)
            continue;
        t->t = find_node(keys, nn, a->tree[i], a->tid[i]);
        t->f = find_node(keys, nn, a->tree[i], a->fid[i]);
        if (t->t < 0 || t->f < 0)
            st = node_fail(n, err, ST_BAD_FORMAT, "node (%lld, %lld) points to "
                           "a missing child", (long long)a->tree[i],
                           (long long)a->id[i]);
    }
    /* weights, grouped by leaf in their original order */
    int32_t *leaf_of = order;
    for (int64_t w = 0; st == ST_OK && w < a->n_w; w++) {
        leaf_of[w] = find_node(keys, nn, a->wt[w], a->wn[w]);
        if (leaf_of[w] < 0 || p->nodes[leaf_of[w]].mode != M_LEAF ||
            a->wk[w] < 0 || a->wk[w] >= p->n_targets)
            st = node_fail(n, err, ST_BAD_FORMAT, "weight %lld names a missing "
                           "leaf or target %lld of %lld", (long long)w,
                           (long long)a->wk[w], (long long)p->n_targets);
    }
    if (st == ST_OK) {
        /* counting sort by leaf: w_lo/w_hi first count, then delimit */
        for (int64_t w = 0; w < a->n_w; w++)
            p->nodes[leaf_of[w]].w_hi++;
        int32_t k = 0;
        for (int32_t i = 0; i < nn; i++) {
            p->nodes[i].w_lo = k;
            k += p->nodes[i].w_hi;
            p->nodes[i].w_hi = p->nodes[i].w_lo;
        }
        for (int64_t w = 0; w < a->n_w; w++) {
            TNode *leaf = &p->nodes[leaf_of[w]];
            p->w_target[leaf->w_hi] = (int32_t)a->wk[w];
            p->w_value[leaf->w_hi++] = a->wv[w];
        }
        p->n_w = k;
        p->n_nodes = nn;
    }
    free(keys);
    free(order);
    return st;
}

Status prep_tree(const Model *m, Node *n, Err *err)
{
    TreeParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_tree;
    p->classifier = n->op == OPML_TreeEnsembleClassifier;
    Status st = ml_post_transform(n, &p->pt, err);
    if (st != ST_OK)
        return st;
    if (p->classifier) {
        int64_t ns;
        p->label_strs = ml_strings(n, "classlabels_strings", &ns);
        if ((st = ml_ints(m, n, "classlabels_int64s", NULL, &p->label_ints,
                          &p->n_targets, err)))
            return st;
        if (p->label_strs && ns > 0)
            p->n_targets = ns;
        else
            p->label_strs = NULL;
        if (p->n_targets <= 0)
            return node_fail(n, err, ST_BAD_FORMAT, "classlabels_int64s or "
                             "classlabels_strings is required");
        p->agg = AGG_SUM;
    } else {
        const char *agg = attr_string(n, "aggregate_function", "SUM");
        p->agg = !strcmp(agg, "AVERAGE") ? AGG_AVERAGE : !strcmp(agg, "SUM")
               ? AGG_SUM : !strcmp(agg, "MIN") ? AGG_MIN : !strcmp(agg, "MAX")
               ? AGG_MAX : -1;
        if (p->agg < 0)
            return node_fail(n, err, ST_UNSUPPORTED_OP, "aggregate_function "
                             "'%s' is not AVERAGE, SUM, MIN or MAX", agg);
        p->n_targets = attr_int(n, "n_targets", 1);
        if (p->n_targets <= 0 || p->n_targets > (1 << 20))
            return node_fail(n, err, ST_BAD_FORMAT, "n_targets %lld",
                             (long long)p->n_targets);
    }
    if ((st = ml_doubles(m, n, "base_values", "base_values_as_tensor", &p->base,
                         &p->n_base, err)))
        return st;
    if (p->n_base > 0 && p->n_base != p->n_targets &&
        !(p->classifier && p->n_base == 1))
        return node_fail(n, err, ST_BAD_FORMAT, "%lld base values for %lld "
                         "targets", (long long)p->n_base, (long long)p->n_targets);
    /* the spec says float; converters that declare a double output get one */
    p->out_double = m->values[n->out[0]].dtype == DT_DOUBLE;
    TreeAttrs a;
    memset(&a, 0, sizeof a);
    const Attr *vt = node_attr(n, "nodes_values_as_tensor");
    p->use_double = vt && vt->type == AT_TENSOR &&
                    m->values[attr_tensor(vt)].constant.dtype == DT_DOUBLE;
    st = read_tree_attrs(m, n, &a, p->classifier, err);
    if (st == ST_OK)
        st = build_v3(n, p, &a, err);
    /* a two-class model whose weights all vote for one class */
    p->all_positive = 1;
    for (int32_t w = 0; st == ST_OK && w < p->n_w; w++) {
        if (p->w_value[w] < 0)
            p->all_positive = 0;
        if (w == 0)
            p->binary_case = p->n_targets == 2;
        else if (p->w_target[w] != p->w_target[0])
            p->binary_case = 0;
    }
    free_attrs(&a);
    return st;
}

/* ---- opset 5: TreeEnsemble ------------------------------------------- */

Status prep_tree5(const Model *m, Node *n, Err *err)
{
    TreeParams *p = calloc(1, sizeof *p);
    if (!p)
        return node_fail(n, err, ST_OOM, "out of memory");
    n->params = p;
    n->free_params = free_tree;
    p->pt = (int)attr_int(n, "post_transform", 0);
    int64_t agg = attr_int(n, "aggregate_function", 1);
    p->agg = (int)agg;
    p->n_targets = attr_int(n, "n_targets", 1);
    if (p->pt < 0 || p->pt > PT_PROBIT || agg < 0 || agg > AGG_MAX ||
        p->n_targets <= 0 || p->n_targets > (1 << 20))
        return node_fail(n, err, ST_BAD_FORMAT, "bad post_transform, "
                         "aggregate_function or n_targets");
    int64_t *feat = NULL, *tid = NULL, *fid = NULL, *tleaf = NULL, *fleaf = NULL;
    int64_t *miss = NULL, *roots = NULL, *ltarget = NULL, *modes = NULL;
    double *splits = NULL, *lw = NULL;
    int64_t nf, nt, nfl, ntl, nfal, nm, nr, nlt, nmo, ns, nlw, nmv, mv = 0;
    Status st;
    if ((st = ml_ints(m, n, "nodes_featureids", NULL, &feat, &nf, err)) ||
        (st = ml_ints(m, n, "nodes_truenodeids", NULL, &tid, &nt, err)) ||
        (st = ml_ints(m, n, "nodes_falsenodeids", NULL, &fid, &nfl, err)) ||
        (st = ml_ints(m, n, "nodes_trueleafs", NULL, &tleaf, &ntl, err)) ||
        (st = ml_ints(m, n, "nodes_falseleafs", NULL, &fleaf, &nfal, err)) ||
        (st = ml_ints(m, n, "nodes_missing_value_tracks_true", NULL, &miss, &nm, err)) ||
        (st = ml_ints(m, n, "tree_roots", NULL, &roots, &nr, err)) ||
        (st = ml_ints(m, n, "leaf_targetids", NULL, &ltarget, &nlt, err)) ||
        (st = ml_ints(m, n, "nodes_modes", "nodes_modes", &modes, &nmo, err)) ||
        (st = ml_doubles(m, n, "nodes_splits", "nodes_splits", &splits, &ns, err)) ||
        (st = ml_doubles(m, n, "leaf_weights", "leaf_weights", &lw, &nlw, err)) ||
        (st = ml_doubles(m, n, "membership_values", "membership_values", &p->members,
                         &nmv, err)))
        goto done;
    const Attr *sa = node_attr(n, "nodes_splits");
    p->use_double = sa && sa->type == AT_TENSOR &&
                    m->values[attr_tensor(sa)].constant.dtype == DT_DOUBLE;
    if (nf <= 0 || nt != nf || nfl != nf || ntl != nf || nfal != nf ||
        ns != nf || (nmo >= 0 && nmo != nf) || (nm > 0 && nm != nf) ||
        nr <= 0 || nlt <= 0 || nlw != nlt || nf + nlt > (1 << 26)) {
        st = node_fail(n, err, ST_BAD_FORMAT, "node or leaf attribute lists of "
                       "different lengths");
        goto done;
    }
    /* internal nodes first, then one pseudo-node per leaf */
    p->n_nodes = (int32_t)(nf + nlt);
    p->n_trees = (int32_t)nr;
    p->n_w = (int32_t)nlt;
    p->nodes = calloc((size_t)p->n_nodes, sizeof(TNode));
    p->roots = malloc(sizeof(int32_t) * (size_t)nr);
    p->w_target = malloc(sizeof(int32_t) * (size_t)nlt);
    p->w_value = malloc(sizeof(double) * (size_t)nlt);
    if (!p->nodes || !p->roots || !p->w_target || !p->w_value) {
        st = node_fail(n, err, ST_OOM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; st == ST_OK && i < nf; i++) {
        TNode *t = &p->nodes[i];
        t->mode = modes ? (int32_t)modes[i] : M_LEQ;
        t->feature = (int32_t)feat[i];
        t->value = splits[i];
        t->missing_true = miss ? miss[i] != 0 : 0;
        t->t = (int32_t)(tleaf[i] ? nf + tid[i] : tid[i]);
        t->f = (int32_t)(fleaf[i] ? nf + fid[i] : fid[i]);
        if (t->mode == M_MEMBER) {
            /* the next NaN-terminated run of membership_values, in node order */
            t->w_lo = t->w_hi = (int32_t)mv;
            while (mv < nmv && !isnan(p->members[mv]))
                t->w_hi = (int32_t)++mv;
            if (mv++ >= nmv && t->w_lo == t->w_hi)
                st = node_fail(n, err, ST_BAD_FORMAT, "node %lld: set membership "
                               "without membership_values", (long long)i);
        }
        if (st != ST_OK)
            break;
        if (t->mode < 0 || t->mode > M_MEMBER)
            st = node_fail(n, err, ST_UNSUPPORTED_OP, "node mode %d is not "
                           "supported", (int)t->mode);
        else if (feat[i] < 0 || feat[i] > INT32_MAX || tid[i] < 0 || fid[i] < 0 ||
                 (tleaf[i] ? tid[i] >= nlt : tid[i] >= nf) ||
                 (fleaf[i] ? fid[i] >= nlt : fid[i] >= nf))
            st = node_fail(n, err, ST_BAD_FORMAT, "node %lld: feature or child "
                           "index out of range", (long long)i);
        else if (t->feature > p->max_feature)
            p->max_feature = t->feature;
    }
    for (int64_t l = 0; st == ST_OK && l < nlt; l++) {
        TNode *t = &p->nodes[nf + l];
        t->mode = M_LEAF;
        t->w_lo = (int32_t)l;
        t->w_hi = (int32_t)l + 1;
        p->w_value[l] = lw[l];
        p->w_target[l] = (int32_t)ltarget[l];
        if (ltarget[l] < 0 || ltarget[l] >= p->n_targets)
            st = node_fail(n, err, ST_BAD_FORMAT, "leaf %lld: target %lld out of "
                           "range", (long long)l, (long long)ltarget[l]);
    }
    for (int64_t r = 0; st == ST_OK && r < nr; r++) {
        int64_t i = roots[r];
        if (i < 0 || i >= nf) {
            st = node_fail(n, err, ST_BAD_FORMAT, "tree root %lld out of range",
                           (long long)i);
            break;
        }
        /* a tree that is a single leaf: both branches name the same leaf */
        p->roots[r] = tleaf[i] && fleaf[i] && tid[i] == fid[i] ? (int32_t)(nf + tid[i])
                                                               : (int32_t)i;
    }
done:
    free(feat); free(tid); free(fid); free(tleaf); free(fleaf); free(miss);
    free(roots); free(ltarget); free(modes); free(splits); free(lw);
    return st;
}

/* ---- evaluation ------------------------------------------------------- */

/* The leaf that row x (cols features) reaches in the tree at root. */
static const TNode *walk(const TreeParams *p, const Tensor *x, int64_t off,
                         int32_t root)
{
    const TNode *t = &p->nodes[root];
    /* at most n_nodes steps: a malformed plan cannot loop forever */
    for (int32_t step = 0; t->mode != M_LEAF && step <= p->n_nodes; step++) {
        double v = ml_get(x, off + t->feature);
        int go;
        if (isnan(v) && t->missing_true) {
            go = 1;
        } else {
            switch (t->mode) {
            case M_LEQ: go = v <= t->value; break;
            case M_LT: go = v < t->value; break;
            case M_GTE: go = v >= t->value; break;
            case M_GT: go = v > t->value; break;
            case M_EQ: go = v == t->value; break;
            case M_NEQ: go = v != t->value; break;
            default:
                go = 0;
                for (int32_t k = t->w_lo; k < t->w_hi && !go; k++)
                    go = v == p->members[k];
                break;
            }
        }
        t = &p->nodes[go ? t->t : t->f];
    }
    return t->mode == M_LEAF ? t : NULL;
}

/* a + b in the precision of the thresholds (float unless they are double),
   so that ties fall the way onnxruntime's do. */
static double tsum(const TreeParams *p, double a, double b)
{
    return p->use_double ? a + b : (double)((float)a + (float)b);
}

/* Scores of one row: s[k] aggregated over trees, has[k] set when some leaf
   voted for k. */
static void tree_scores(const TreeParams *p, const Tensor *x, int64_t off,
                        double *s, uint8_t *has)
{
    int64_t k = p->n_targets;
    for (int64_t i = 0; i < k; i++) {
        s[i] = 0.0;
        has[i] = 0;
    }
    for (int32_t r = 0; r < p->n_trees; r++) {
        const TNode *leaf = walk(p, x, off, p->roots[r]);
        for (int32_t w = leaf ? leaf->w_lo : 0; leaf && w < leaf->w_hi; w++) {
            int32_t c = p->w_target[w];
            double v = p->w_value[w];
            if (p->agg == AGG_MIN)
                s[c] = has[c] && s[c] <= v ? s[c] : v;
            else if (p->agg == AGG_MAX)
                s[c] = has[c] && s[c] >= v ? s[c] : v;
            else
                s[c] = tsum(p, s[c], v);
            has[c] = 1;
        }
    }
}

/* Check X and the highest feature index; rows and cols out. */
static Status tree_input(const Node *n, const TreeParams *p, const Tensor *x,
                         int64_t *rows, int64_t *cols, Err *err)
{
    Status st = ml_require_numeric(n, x, err);
    if (st == ST_OK)
        st = ml_rows_cols(n, x, rows, cols, err);
    if (st == ST_OK && p->n_nodes > 0 && p->max_feature >= *cols)
        st = node_fail(n, err, ST_SHAPE_MISMATCH, "the trees read feature %d, "
                       "the input has %lld", (int)p->max_feature, (long long)*cols);
    return st;
}

/* Y (N, targets) = aggregate of leaf weights (+ base values), transformed. */
static Status run_regressor(const Node *n, const TreeParams *p, const Tensor *x,
                            Tensor *y, int32_t dtype, Err *err)
{
    int64_t rows, cols, k = p->n_targets;
    Status st = tree_input(n, p, x, &rows, &cols, err);
    int64_t dims[2] = {rows, k};
    if (st != ST_OK || (st = tensor_alloc(y, dtype, 2, dims, err)))
        return st;
    double *s = malloc(sizeof(double) * (size_t)k);
    uint8_t *has = malloc((size_t)k);
    float *row = malloc(sizeof(float) * (size_t)k);
    if (!s || !has || !row)
        st = node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t r = 0; st == ST_OK && r < rows; r++) {
        tree_scores(p, x, r * cols, s, has);
        for (int64_t i = 0; i < k; i++) {
            double v = s[i];
            if (p->agg == AGG_AVERAGE)
                v = p->use_double ? v / (p->n_trees ? p->n_trees : 1)
                                  : (float)v / (float)(p->n_trees ? p->n_trees : 1);
            v = p->n_base > 0 ? tsum(p, v, p->base[i]) : v;
            s[i] = v;
            row[i] = (float)v;
        }
        if (p->pt != PT_NONE && (k > 1 || p->pt == PT_PROBIT)) {
            ml_transform_row(p->pt, row, k);
            for (int64_t i = 0; i < k; i++)
                s[i] = row[i];
        }
        for (int64_t i = 0; i < k; i++) {
            if (dtype == DT_DOUBLE)
                ((double *)y->data)[r * k + i] = s[i];
            else
                ((float *)y->data)[r * k + i] = (float)s[i];
        }
    }
    free(s);
    free(has);
    free(row);
    return st;
}

Status op_tree_regressor(const Node *n, Tensor *const *in, Tensor *const *out,
                         Err *err)
{
    const TreeParams *p = n->params;
    return run_regressor(n, p, in[0], out[0], p->out_double ? DT_DOUBLE : DT_FLOAT,
                         err);
}

Status op_tree_ensemble(const Node *n, Tensor *const *in, Tensor *const *out,
                        Err *err)
{
    int32_t dt = in[0]->dtype == DT_DOUBLE ? DT_DOUBLE : DT_FLOAT;
    return run_regressor(n, n->params, in[0], out[0], dt, err);
}

/* Label and scores of one two-class row, onnxruntime's rules: the score of
   class 1 decides; z gets 1 or 2 values (*nz). */
static int64_t binary_row(const TreeParams *p, double *s, uint8_t *has,
                          float *z, int *nz)
{
    int extra = -1, size = 2;
    if (p->n_base == 2) {
        if (has[1]) {
            s[1] = tsum(p, p->base[1], s[0]);
            s[0] = -s[1];
        } else {
            s[1] = tsum(p, s[1], p->base[1]);
            s[0] = tsum(p, s[0], p->base[0]);
        }
        has[1] = 1;
    } else if (p->n_base == 1) {
        s[0] = tsum(p, s[0], p->base[0]);
        size = has[1] ? 2 : 1;
    } else {
        extra = 3;
        size = has[1] ? 2 : 1;
    }
    double pos = size == 2 && has[1] ? s[1] : has[0] ? s[0] : 0.0;
    int64_t label;
    if (p->binary_case) {
        if (p->all_positive) {
            label = pos > 0.5;
            extra = pos > 0.5 ? 0 : 1;
        } else {
            label = pos > 0;
            extra = pos > 0 ? 2 : 3;
        }
    } else {
        label = pos > 0;
    }
    if (size == 2) {
        z[0] = (float)s[0];
        z[1] = (float)s[1];
        ml_transform_row(p->pt, z, 2);
        *nz = 2;
        return label;
    }
    float v = (float)s[0];
    *nz = 2;
    if (p->pt == PT_PROBIT) {
        z[0] = ml_probit(v);
        z[1] = 0.0f;
    } else if (extra == 0 || extra == 1) {
        z[0] = 1.0f - v;
        z[1] = v;
    } else if (extra == 2 || extra == 3) {
        z[0] = p->pt == PT_LOGISTIC ? ml_logistic(-v) : -v;
        z[1] = p->pt == PT_LOGISTIC ? ml_logistic(v) : v;
    } else {
        z[0] = v;
        z[1] = 0.0f;
    }
    return label;
}

/* Y labels (N,), Z (N, classes): votes summed over trees. */
Status op_tree_classifier(const Node *n, Tensor *const *in, Tensor *const *out,
                          Err *err)
{
    const TreeParams *p = n->params;
    const Tensor *x = in[0];
    int64_t rows, cols, k = p->n_targets;
    Status st = tree_input(n, p, x, &rows, &cols, err);
    int64_t zdims[2] = {rows, k};
    Tensor z = {0};
    if (st != ST_OK ||
        (st = ml_alloc_labels(out[0], p->label_strs != NULL, rows, err)) ||
        (st = tensor_alloc(&z, DT_FLOAT, 2, zdims, err)))
        return st;
    double *s = malloc(sizeof(double) * (size_t)k);
    uint8_t *has = malloc((size_t)k);
    if (!s || !has)
        st = node_fail(n, err, ST_OOM, "out of memory");
    for (int64_t r = 0; st == ST_OK && r < rows; r++) {
        float *zr = (float *)z.data + r * k;
        int64_t best = 0;
        tree_scores(p, x, r * cols, s, has);
        if (k == 2) {
            int nz;
            best = binary_row(p, s, has, zr, &nz);
        } else {
            best = -1;
            for (int64_t i = 0; i < k; i++) {
                if (p->n_base == k) {
                    s[i] = tsum(p, s[i], p->base[i]);
                    has[i] = 1;
                }
                if (has[i] && (best < 0 || s[i] > s[best]))
                    best = i;
                zr[i] = (float)s[i];
            }
            if (best < 0)
                best = 0;
            if (k > 1)
                ml_transform_row(p->pt, zr, k);
            else if (p->pt == PT_PROBIT)
                zr[0] = ml_probit(zr[0]);
        }
        if (p->label_strs)
            ((const char **)out[0]->data)[r] = p->label_strs[best];
        else
            ((int64_t *)out[0]->data)[r] = p->label_ints[best];
    }
    free(s);
    free(has);
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
