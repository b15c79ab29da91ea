/*
 * ops_regex.c: RegexFullMatch, with a small regular-expression engine.
 *
 * The pattern (RE2 syntax, a subset) is parsed once at load into a tree,
 * then compiled into a program for a Thompson NFA, run as a Pike VM: all
 * threads advance together one code point at a time, so a match costs
 * O(text length x program size) whatever the pattern, with no backtracking.
 * Only whether the whole text matches is asked, so greedy and lazy
 * repetitions behave alike and groups capture nothing.
 *
 * Supported: literals (UTF-8), ., [...] and [^...] with ranges and the
 * escapes below, \d \D \w \W \s \S (ASCII, as RE2), \b \B \A \z ^ $
 * (whole-text anchors), \n \t \r \f \v \a \xHH and escaped punctuation,
 * groups ( ), (?: ), (?P<n> ), (?<n> ), alternation |, and * + ? {m}
 * {m,} {m,n} (optionally lazy). Refused at load with a message naming the
 * construct: flags (?i), lookaround, backreferences, \p classes, POSIX
 * [[:classes:]], \Q..\E, \C, counts above 1000.
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "utf8.h"

#define RX_MAX_PATTERN 65536  /* bytes of pattern */
#define RX_MAX_DEPTH 200      /* nesting of groups */
/* TODO: a sequence of more than RX_MAX_TREE items (a literal of 4000+
   characters) is refused; compiling concatenations as lists would lift it */
#define RX_MAX_TREE 4000      /* levels of the tree (bounds the C stack) */
#define RX_MAX_REPEAT 1000    /* largest {m,n} count, as RE2 */
#define RX_MAX_PROG 100000    /* instructions after expanding counts */
#define RX_MAX_STEPS (1 << 27) /* thread steps per element */

/* ---- the tree ---------------------------------------------------------- */

typedef enum {
    RN_EMPTY, RN_LIT, RN_ANY, RN_CLASS, RN_ASSERT, RN_CAT, RN_ALT, RN_REPEAT
} RxKind;

typedef enum { AS_BOT, AS_EOT, AS_WORD, AS_NOT_WORD } RxAssert;

typedef struct {
    int32_t kind;        /* RxKind */
    int32_t depth;       /* levels of the subtree, for the recursion limit */
    int32_t val;         /* LIT code point, CLASS index, ASSERT kind */
    int32_t left, right; /* CAT, ALT children; REPEAT body in left */
    int32_t min, max;    /* REPEAT counts, max -1 = unbounded */
} RxNode;

typedef struct {
    int32_t first, count; /* ranges[first .. first + count) */
    int32_t negate;
} RxClass;

/* Instructions of the program. */
typedef enum {
    OP_RX_CHAR,   /* x: the code point must be x */
    OP_RX_ANY,    /* any code point but \n */
    OP_RX_CLASS,  /* x: the code point must be in class x */
    OP_RX_ASSERT, /* x: RxAssert holds at this position */
    OP_RX_SPLIT,  /* continue at x and at y */
    OP_RX_JMP,    /* continue at x */
    OP_RX_MATCH   /* the pattern is done */
} RxOp;

typedef struct {
    int32_t op, x, y;
} RxInst;

/* A compiled pattern: n->params of a RegexFullMatch node (one block each
   for the arrays, freed by free_regex). */
typedef struct {
    RxInst *prog;
    int32_t n_prog;
    RxClass *classes;
    int32_t n_classes;
    int32_t *ranges;     /* (lo, hi) pairs */
    int32_t n_ranges;
} Regex;

/* The parser's state. */
typedef struct {
    const char *p, *end;
    RxNode *nodes;
    int32_t n_nodes, cap_nodes;
    RxClass *classes;
    int32_t n_classes, cap_classes;
    int32_t *ranges;     /* (lo, hi) pairs */
    int32_t n_ranges, cap_ranges;
    int depth;
    char why[160];       /* the first error */
} RxParser;

/* Record the first parse error; returns -1 for use as a node index. */
static int32_t rx_error(RxParser *ps, const char *what)
{
    if (!ps->why[0])
        strncpy(ps->why, what, sizeof ps->why - 1);
    return -1;
}

/* Grow *buf (elements of size bytes) to hold one more; 0 when out of memory. */
static int rx_grow(void **buf, int32_t n, int32_t *cap, size_t size)
{
    if (n < *cap)
        return 1;
    int32_t c = *cap ? 2 * *cap : 32;
    void *b = realloc(*buf, (size_t)c * size);
    if (!b)
        return 0;
    *buf = b;
    *cap = c;
    return 1;
}

/* Append a node with children l and r (-1 none); -1 when a child failed,
   on OOM or past the depth limit. */
static int32_t rx_node(RxParser *ps, int32_t kind, int32_t val, int32_t l,
                       int32_t r)
{
    if (l < -1 || r < -1 || ps->why[0])
        return -1;
    if (!rx_grow((void **)&ps->nodes, ps->n_nodes, &ps->cap_nodes,
                 sizeof(RxNode)))
        return rx_error(ps, "out of memory");
    int32_t depth = 1;
    if (l >= 0 && ps->nodes[l].depth >= depth)
        depth = ps->nodes[l].depth + 1;
    if (r >= 0 && ps->nodes[r].depth >= depth)
        depth = ps->nodes[r].depth + 1;
    if (depth > RX_MAX_TREE)
        return rx_error(ps, "pattern too long or nested too deeply (a "
                        "sequence counts one level per item)");
    ps->nodes[ps->n_nodes] = (RxNode){kind, depth, val, l, r, 0, 0};
    return ps->n_nodes++;
}

/* Add the range lo..hi to the class being parsed; 0 on OOM. */
static int rx_add_range(RxParser *ps, int32_t lo, int32_t hi)
{
    if (!rx_grow((void **)&ps->ranges, ps->n_ranges + 1, &ps->cap_ranges,
                 sizeof(int32_t)))
        return rx_error(ps, "out of memory"), 0;
    ps->ranges[ps->n_ranges++] = lo;
    ps->ranges[ps->n_ranges++] = hi;
    return 1;
}

/* Next code point of the pattern; 0 at the end or on invalid UTF-8. */
static int rx_next(RxParser *ps, int32_t *cp)
{
    if (ps->p >= ps->end)
        return 0;
    int len = utf8_decode((const unsigned char *)ps->p, (size_t)(ps->end - ps->p),
                          cp);
    if (!len)
        return rx_error(ps, "the pattern is not valid UTF-8"), 0;
    ps->p += len;
    return 1;
}

/* Add the ranges of a Perl class letter (d w s, any case) to the current
   class; negated letters add the complement. */
static int rx_perl_ranges(RxParser *ps, char c)
{
    static const int32_t d[] = {'0', '9'};
    static const int32_t w[] = {'0', '9', 'A', 'Z', '_', '_', 'a', 'z'};
    static const int32_t s[] = {'\t', '\n', '\f', '\r', ' ', ' '};
    const int32_t *r;
    int n;
    switch (c | 0x20) {
    case 'd': r = d; n = 1; break;
    case 'w': r = w; n = 4; break;
    default: r = s; n = 3; break;
    }
    if (c >= 'a') {
        for (int i = 0; i < n; i++)
            if (!rx_add_range(ps, r[2 * i], r[2 * i + 1]))
                return 0;
        return 1;
    }
    int32_t lo = 0;
    for (int i = 0; i < n; i++) {
        if (r[2 * i] > lo && !rx_add_range(ps, lo, r[2 * i] - 1))
            return 0;
        lo = r[2 * i + 1] + 1;
    }
    return rx_add_range(ps, lo, 0x10FFFF);
}

/* Start a class at the current end of the range list. */
static int32_t rx_class_begin(RxParser *ps, int negate)
{
    if (!rx_grow((void **)&ps->classes, ps->n_classes, &ps->cap_classes,
                 sizeof(RxClass)))
        return rx_error(ps, "out of memory");
    ps->classes[ps->n_classes] = (RxClass){ps->n_ranges / 2, 0, negate};
    return ps->n_classes++;
}

/* Close class k: it owns the ranges added since rx_class_begin. */
static void rx_class_end(RxParser *ps, int32_t k)
{
    ps->classes[k].count = ps->n_ranges / 2 - ps->classes[k].first;
}

/* Hex digit value, -1 when c is none. */
static int rx_hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f'
           ? (c | 0x20) - 'a' + 10 : -1;
}

/*
 * Read the escape after a backslash that stands for one code point (\n,
 * \xHH, \. ...) into *cp; returns 1. Returns 0 and records an error for an
 * escape this engine refuses; -1 when c is a class or assertion letter the
 * caller handles.
 */
static int rx_escape_char(RxParser *ps, char c, int32_t *cp)
{
    switch (c) {
    case 'n': *cp = '\n'; return 1;
    case 't': *cp = '\t'; return 1;
    case 'r': *cp = '\r'; return 1;
    case 'f': *cp = '\f'; return 1;
    case 'v': *cp = '\v'; return 1;
    case 'a': *cp = '\a'; return 1;
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
    case 'b': case 'B': case 'A': case 'z':
        return -1;
    case 'x': {
        int h1 = ps->end - ps->p >= 2 ? rx_hex(ps->p[0]) : -1;
        int h2 = h1 >= 0 ? rx_hex(ps->p[1]) : -1;
        if (h2 < 0)
            return rx_error(ps, "escape \\x needs two hex digits (\\x{...} is "
                            "not supported)"), 0;
        ps->p += 2;
        *cp = h1 * 16 + h2;
        return 1;
    }
    case 'p': case 'P':
        return rx_error(ps, "Unicode classes \\p and \\P are not supported"), 0;
    case 'Q': case 'E':
        return rx_error(ps, "quoting with \\Q...\\E is not supported"), 0;
    case 'C':
        return rx_error(ps, "\\C (any byte) is not supported"), 0;
    default:
        break;
    }
    if (c >= '0' && c <= '9')
        return rx_error(ps, "backreferences and octal escapes (\\0-\\9) are "
                        "not supported"), 0;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (unsigned char)c >= 0x80)
        return rx_error(ps, "unknown escape"), 0;
    *cp = (unsigned char)c;
    return 1;
}

/* Parse a bracket class; the '[' is consumed. */
static int32_t rx_parse_class(RxParser *ps)
{
    int negate = ps->p < ps->end && *ps->p == '^';
    ps->p += negate;
    int32_t k = rx_class_begin(ps, negate);
    if (k < 0)
        return -1;
    int first = 1;
    for (;;) {
        if (ps->p >= ps->end)
            return rx_error(ps, "missing ] at the end of a character class");
        if (*ps->p == ']' && !first) {
            ps->p++;
            break;
        }
        if (ps->p[0] == '[' && ps->end - ps->p > 1 && ps->p[1] == ':')
            return rx_error(ps, "POSIX classes [[:name:]] are not supported");
        first = 0;
        int32_t lo, hi;
        if (*ps->p == '\\') {
            ps->p++;
            if (ps->p >= ps->end)
                return rx_error(ps, "trailing backslash");
            char c = *ps->p++;
            int r = rx_escape_char(ps, c, &lo);
            if (r == 0)
                return -1;
            if (r < 0) {
                if (strchr("dDwWsS", c)) {
                    if (!rx_perl_ranges(ps, c))
                        return -1;
                    continue;
                }
                return rx_error(ps, "assertions (\\b \\B \\A \\z) are not "
                                "allowed in a character class");
            }
        } else if (!rx_next(ps, &lo)) {
            return -1;
        }
        hi = lo;
        if (ps->end - ps->p > 1 && ps->p[0] == '-' && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') {
                ps->p++;
                if (ps->p >= ps->end)
                    return rx_error(ps, "trailing backslash");
                int r = rx_escape_char(ps, *ps->p++, &hi);
                if (r <= 0)
                    return r == 0 ? -1 : rx_error(ps, "bad range end in a "
                                                  "character class");
            } else if (!rx_next(ps, &hi)) {
                return -1;
            }
            if (hi < lo)
                return rx_error(ps, "bad character class range (end before "
                                "start)");
        }
        if (!rx_add_range(ps, lo, hi))
            return -1;
    }
    rx_class_end(ps, k);
    return rx_node(ps, RN_CLASS, k, -1, -1);
}

static int32_t rx_parse_alt(RxParser *ps);

/* Parse a decimal count of at most RX_MAX_REPEAT; -1 when absent. */
static int32_t rx_count(RxParser *ps)
{
    int32_t v = -1;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (*ps->p++ - '0');
        if (v > RX_MAX_REPEAT)
            v = RX_MAX_REPEAT + 1;
    }
    return v;
}

/* Parse one atom: a literal, ., a class, an escape, an anchor or a group. */
static int32_t rx_parse_atom(RxParser *ps)
{
    int32_t cp;
    char c = *ps->p;
    switch (c) {
    case '(': {
        ps->p++;
        if (ps->end - ps->p >= 1 && *ps->p == '?') {
            if (ps->end - ps->p >= 2 && ps->p[1] == ':') {
                ps->p += 2;
            } else if (ps->end - ps->p >= 3 &&
                       (ps->p[1] == '<' || (ps->p[1] == 'P' && ps->p[2] == '<'))) {
                const char *close = memchr(ps->p, '>', (size_t)(ps->end - ps->p));
                if (!close)
                    return rx_error(ps, "missing > after a group name");
                ps->p = close + 1;
            } else {
                return rx_error(ps, "(? groups other than (?:...) and "
                                "(?P<name>...) (flags, lookaround) are not "
                                "supported");
            }
        }
        if (++ps->depth > RX_MAX_DEPTH)
            return rx_error(ps, "groups nested too deeply");
        int32_t body = rx_parse_alt(ps);
        ps->depth--;
        if (body < 0)
            return -1;
        if (ps->p >= ps->end || *ps->p != ')')
            return rx_error(ps, "missing )");
        ps->p++;
        return body;
    }
    case ')':
        return rx_error(ps, "unmatched )");
    case '.':
        ps->p++;
        return rx_node(ps, RN_ANY, 0, -1, -1);
    case '^':
        ps->p++;
        return rx_node(ps, RN_ASSERT, AS_BOT, -1, -1);
    case '$':
        ps->p++;
        return rx_node(ps, RN_ASSERT, AS_EOT, -1, -1);
    case '[':
        ps->p++;
        return rx_parse_class(ps);
    case '*': case '+': case '?':
        return rx_error(ps, "missing argument to a repetition operator");
    case '\\': {
        ps->p++;
        if (ps->p >= ps->end)
            return rx_error(ps, "trailing backslash");
        char e = *ps->p++;
        int r = rx_escape_char(ps, e, &cp);
        if (r == 0)
            return -1;
        if (r > 0)
            return rx_node(ps, RN_LIT, cp, -1, -1);
        if (strchr("bBAz", e))
            return rx_node(ps, RN_ASSERT, e == 'b' ? AS_WORD : e == 'B'
                           ? AS_NOT_WORD : e == 'A' ? AS_BOT : AS_EOT, -1, -1);
        int32_t k = rx_class_begin(ps, 0);
        if (k < 0 || !rx_perl_ranges(ps, e))
            return -1;
        rx_class_end(ps, k);
        return rx_node(ps, RN_CLASS, k, -1, -1);
    }
    default:
        if (!rx_next(ps, &cp))
            return -1;
        return rx_node(ps, RN_LIT, cp, -1, -1);
    }
}

/* Parse a {m}, {m,} or {m,n} count at p (the '{'); 1 when it is one, else
   0 with p unchanged ('{' is then a literal, as in RE2). */
static int rx_parse_braces(RxParser *ps, int32_t *min, int32_t *max)
{
    const char *save = ps->p++;
    *min = rx_count(ps);
    *max = *min;
    if (ps->p < ps->end && *ps->p == ',') {
        ps->p++;
        *max = rx_count(ps);
        if (*min < 0 && *max >= 0 && ps->p < ps->end && *ps->p == '}')
            return rx_error(ps, "counts {,n} are not supported (RE2 reads them "
                            "as text, Python as {0,n}); write {0,n}");
    }
    if (*min < 0 || ps->p >= ps->end || *ps->p != '}') {
        ps->p = save;
        return 0;
    }
    ps->p++;
    if (*min > RX_MAX_REPEAT || *max > RX_MAX_REPEAT)
        return rx_error(ps, "repetition count above 1000");
    if (*max >= 0 && *max < *min)
        return rx_error(ps, "bad repetition count {m,n} with n < m");
    return 1;
}

/* Parse an atom and the repetition operators after it. */
static int32_t rx_parse_repeat(RxParser *ps)
{
    int32_t node = rx_parse_atom(ps);
    int repeated = 0;
    while (node >= 0 && ps->p < ps->end) {
        int32_t min, max;
        char c = *ps->p;
        if (c == '*' || c == '+' || c == '?') {
            ps->p++;
            min = c == '+';
            max = c == '?' ? 1 : -1;
        } else if (c == '{') {
            int r = rx_parse_braces(ps, &min, &max);
            if (r < 0)
                return -1;
            if (r == 0)
                break;
        } else {
            break;
        }
        if (repeated)
            return rx_error(ps, "bad repetition operator (a repetition of a "
                            "repetition)");
        repeated = 1;
        if (ps->p < ps->end && *ps->p == '?')
            ps->p++; /* lazy: the same for a full match */
        int32_t r = rx_node(ps, RN_REPEAT, 0, node, -1);
        if (r < 0)
            return -1;
        ps->nodes[r].min = min;
        ps->nodes[r].max = max;
        node = r;
    }
    return node;
}

/* Parse a concatenation, up to | or ) or the end. */
static int32_t rx_parse_cat(RxParser *ps)
{
    int32_t node = -2; /* none yet */
    while (ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        int32_t next = rx_parse_repeat(ps);
        if (next < 0)
            return -1;
        node = node == -2 ? next : rx_node(ps, RN_CAT, 0, node, next);
        if (node < 0)
            return -1;
    }
    return node == -2 ? rx_node(ps, RN_EMPTY, 0, -1, -1) : node;
}

/* Parse alternatives a|b|..., up to ) or the end. */
static int32_t rx_parse_alt(RxParser *ps)
{
    int32_t node = rx_parse_cat(ps);
    while (node >= 0 && ps->p < ps->end && *ps->p == '|') {
        ps->p++;
        node = rx_node(ps, RN_ALT, 0, node, rx_parse_cat(ps));
    }
    return node;
}

/* ---- compiling ----------------------------------------------------------- */

/* Instructions the subtree at i compiles to (saturates above RX_MAX_PROG). */
static int64_t rx_size(const RxNode *t, int32_t i)
{
    const RxNode *x = &t[i];
    int64_t s, l, r;
    switch (x->kind) {
    case RN_EMPTY: return 0;
    case RN_CAT: s = rx_size(t, x->left) + rx_size(t, x->right); break;
    case RN_ALT: s = rx_size(t, x->left) + rx_size(t, x->right) + 2; break;
    case RN_REPEAT:
        l = rx_size(t, x->left);
        r = x->max < 0 ? l + 2 : (int64_t)(x->max - x->min) * (l + 1);
        s = (int64_t)x->min * l + r;
        break;
    default: return 1;
    }
    return s > RX_MAX_PROG ? RX_MAX_PROG + 1 : s;
}

/* Write one instruction at pc; returns pc + 1. */
static int32_t rx_emit(RxInst *prog, int32_t pc, int32_t op, int32_t x,
                       int32_t y)
{
    prog[pc] = (RxInst){op, x, y};
    return pc + 1;
}

/* Emit the code of subtree i at pc; returns the next free pc. */
static int32_t rx_compile(const RxNode *t, int32_t i, RxInst *prog, int32_t pc)
{
    const RxNode *x = &t[i];
    int32_t split, jmp;
    switch (x->kind) {
    case RN_EMPTY: return pc;
    case RN_LIT: return rx_emit(prog, pc, OP_RX_CHAR, x->val, 0);
    case RN_ANY: return rx_emit(prog, pc, OP_RX_ANY, 0, 0);
    case RN_CLASS: return rx_emit(prog, pc, OP_RX_CLASS, x->val, 0);
    case RN_ASSERT: return rx_emit(prog, pc, OP_RX_ASSERT, x->val, 0);
    case RN_CAT:
        return rx_compile(t, x->right, prog, rx_compile(t, x->left, prog, pc));
    case RN_ALT:
        /* split L1, L2; L1: left; jmp end; L2: right; end: */
        split = pc++;
        pc = rx_compile(t, x->left, prog, pc);
        jmp = pc++;
        prog[split] = (RxInst){OP_RX_SPLIT, split + 1, pc};
        pc = rx_compile(t, x->right, prog, pc);
        prog[jmp] = (RxInst){OP_RX_JMP, pc, 0};
        return pc;
    default: /* RN_REPEAT: body x min, then a loop or (max - min) options */
        for (int32_t k = 0; k < x->min; k++)
            pc = rx_compile(t, x->left, prog, pc);
        if (x->max < 0) {
            /* L: split body, end; body; jmp L; end: */
            split = pc++;
            pc = rx_compile(t, x->left, prog, pc);
            pc = rx_emit(prog, pc, OP_RX_JMP, split, 0);
            prog[split] = (RxInst){OP_RX_SPLIT, split + 1, pc};
            return pc;
        }
        /* nested options: (body (body (...)?)?)?, each skipping to end */
        int32_t opt = x->max - x->min, start = pc;
        int32_t body = (int32_t)rx_size(t, x->left) + 1;
        int32_t end = start + opt * body;
        for (int32_t k = 0; k < opt; k++) {
            split = pc++;
            pc = rx_compile(t, x->left, prog, pc);
            prog[split] = (RxInst){OP_RX_SPLIT, split + 1, end};
        }
        return pc;
    }
}

/* Free a Regex (n->free_params of RegexFullMatch). */
static void free_regex(void *p)
{
    Regex *rx = p;
    if (!rx)
        return;
    free(rx->prog);
    free(rx->classes);
    free(rx->ranges);
    free(rx);
}

/* Parse and compile the pattern attribute into n->params. */
Status prep_regex_full_match(const Model *m, Node *n, Err *err)
{
    const Attr *a = node_attr(n, "pattern");
    if (!a || a->type != AT_STRING)
        return node_fail(n, err, ST_BAD_FORMAT, "missing string attribute "
                         "'pattern'");
    size_t len = strlen(a->s);
    if (len > RX_MAX_PATTERN)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "pattern of %zu bytes is "
                         "longer than %d", len, RX_MAX_PATTERN);
    RxParser ps = {.p = a->s, .end = a->s + len};
    int32_t root = rx_parse_alt(&ps);
    if (root >= 0 && ps.p < ps.end)
        root = rx_error(&ps, "unmatched )");
    Regex *rx = NULL;
    int64_t size = root >= 0 ? rx_size(ps.nodes, root) + 1 : 0;
    if (root >= 0 && size > RX_MAX_PROG)
        root = rx_error(&ps, "pattern too large after expanding counts");
    if (root >= 0) {
        rx = calloc(1, sizeof *rx);
        RxInst *prog = rx ? malloc(sizeof(RxInst) * (size_t)size) : NULL;
        if (!prog) {
            free(rx);
            rx = NULL;
            root = rx_error(&ps, "out of memory");
        } else {
            int32_t end = rx_compile(ps.nodes, root, prog, 0);
            rx_emit(prog, end, OP_RX_MATCH, 0, 0);
            *rx = (Regex){prog, end + 1, ps.classes, ps.n_classes, ps.ranges,
                          ps.n_ranges / 2};
            ps.classes = NULL;
            ps.ranges = NULL;
        }
    }
    free(ps.nodes);
    free(ps.classes);
    free(ps.ranges);
    if (!rx)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "pattern '%.60s': %s at "
                         "offset %ld", a->s, ps.why, (long)(ps.p - a->s));
    n->params = rx;
    n->free_params = free_regex;
    return ST_OK;
}

/* ---- matching ----------------------------------------------------------- */

static int rx_is_word(int32_t cp)
{
    return (cp >= '0' && cp <= '9') || (cp >= 'A' && cp <= 'Z') ||
           (cp >= 'a' && cp <= 'z') || cp == '_';
}

/* 1 when cp is in class k (its ranges, or outside them when negated). */
static int rx_in_class(const Regex *rx, int32_t k, int32_t cp)
{
    const RxClass *c = &rx->classes[k];
    int in = 0;
    for (int32_t i = 0; i < c->count && !in; i++) {
        const int32_t *r = &rx->ranges[2 * (c->first + i)];
        in = cp >= r[0] && cp <= r[1];
    }
    return in != c->negate;
}

/* The Pike VM's scratch: two thread lists and a mark per instruction. */
typedef struct {
    int32_t *cur, *next, *stack;
    int32_t n_cur, n_next;
    uint32_t *mark;
    uint32_t gen;
} RxVm;

/* Add pc and everything reachable from it without consuming input to the
   next list, at a position between code points prev and here (-1: none). */
static void rx_add(const Regex *rx, RxVm *vm, int32_t pc, int32_t prev,
                   int32_t here)
{
    int32_t top = 0;
    vm->stack[top++] = pc;
    while (top > 0) {
        pc = vm->stack[--top];
        if (vm->mark[pc] == vm->gen)
            continue;
        vm->mark[pc] = vm->gen;
        const RxInst *in = &rx->prog[pc];
        switch (in->op) {
        case OP_RX_JMP: vm->stack[top++] = in->x; break;
        case OP_RX_SPLIT:
            vm->stack[top++] = in->y;
            vm->stack[top++] = in->x;
            break;
        case OP_RX_ASSERT: {
            int ok;
            int wb = rx_is_word(prev) != rx_is_word(here);
            switch (in->x) {
            case AS_BOT: ok = prev < 0; break;
            case AS_EOT: ok = here < 0; break;
            case AS_WORD: ok = wb; break;
            default: ok = !wb; break;
            }
            if (ok)
                vm->stack[top++] = pc + 1;
            break;
        }
        default: vm->next[vm->n_next++] = pc; break;
        }
    }
}

/* 1 when the whole text cps[0..n) matches, 0 when not, -1 when the step
   limit is reached. */
static int rx_full_match(const Regex *rx, RxVm *vm, const int32_t *cps,
                         int64_t n)
{
    int64_t steps = 0;
    vm->n_next = 0;
    vm->gen++;
    rx_add(rx, vm, 0, -1, n > 0 ? cps[0] : -1);
    for (int64_t i = 0; i < n; i++) {
        int32_t *t = vm->cur;
        vm->cur = vm->next;
        vm->next = t;
        vm->n_cur = vm->n_next;
        vm->n_next = 0;
        vm->gen++;
        int32_t cp = cps[i], after = i + 1 < n ? cps[i + 1] : -1;
        if (vm->n_cur == 0)
            return 0;
        if ((steps += vm->n_cur) > RX_MAX_STEPS)
            return -1;
        for (int32_t k = 0; k < vm->n_cur; k++) {
            const RxInst *in = &rx->prog[vm->cur[k]];
            int ok;
            switch (in->op) {
            case OP_RX_CHAR: ok = cp == in->x; break;
            case OP_RX_ANY: ok = cp != '\n'; break;
            case OP_RX_CLASS: ok = rx_in_class(rx, in->x, cp); break;
            default: ok = 0; break; /* MATCH before the end */
            }
            if (ok)
                rx_add(rx, vm, vm->cur[k] + 1, cp, after);
        }
    }
    for (int32_t k = 0; k < vm->n_next; k++)
        if (rx->prog[vm->next[k]].op == OP_RX_MATCH)
            return 1;
    return 0;
}

/* Decode s into cps (capacity strlen(s)); returns the count, or -1 with
   *bad set to the offset of the first invalid byte. */
static int64_t rx_decode(const char *s, int32_t *cps, long *bad)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    int64_t k = 0;
    for (size_t i = 0; i < n;) {
        int len = utf8_decode(u + i, n - i, &cps[k]);
        if (!len) {
            *bad = (long)i;
            return -1;
        }
        i += (size_t)len;
        k++;
    }
    return k;
}

/* Y[i] = 1 when all of X[i] matches the pattern (bool, X's shape). */
Status op_regex_full_match(const Node *n, Tensor *const *in, Tensor *const *out,
                           Err *err)
{
    const Regex *rx = n->params;
    const Tensor *x = in[0];
    if (x->dtype != DT_STRING)
        return node_fail(n, err, ST_UNSUPPORTED_OP, "input 0 is %s, expected "
                         "string", dtype_name(x->dtype));
    Status st = tensor_alloc(out[0], DT_BOOL, x->ndim, x->dims, err);
    if (st != ST_OK)
        return st;
    const char *const *xs = x->data;
    size_t longest = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        size_t len = strlen(xs[i]);
        longest = len > longest ? len : longest;
    }
    size_t np = (size_t)rx->n_prog;
    RxVm vm = {0};
    int32_t *cps = calloc(longest + 1, sizeof(int32_t)); /* no size wrap */
    int32_t *lists = malloc(sizeof(int32_t) * 3 * (2 * np + 2));
    vm.mark = calloc(np, sizeof(uint32_t));
    if (!cps || !lists || !vm.mark) {
        st = node_fail(n, err, ST_OOM, "out of memory");
    } else {
        /* the stack of rx_add holds at most two entries per instruction */
        vm.cur = lists;
        vm.next = lists + (2 * np + 2);
        vm.stack = lists + 2 * (2 * np + 2);
    }
    uint8_t *y = out[0]->data;
    for (int64_t i = 0; st == ST_OK && i < x->numel; i++) {
        long bad = 0;
        int64_t k = rx_decode(xs[i], cps, &bad);
        if (k < 0) {
            st = node_fail(n, err, ST_BAD_REQUEST, "element %lld is not valid "
                           "UTF-8 (bad byte at offset %ld)", (long long)i, bad);
            break;
        }
        if (vm.gen > UINT32_MAX - (uint32_t)k - 2) { /* generation wrap */
            memset(vm.mark, 0, np * sizeof(uint32_t));
            vm.gen = 0;
        }
        int r = rx_full_match(rx, &vm, cps, k);
        if (r < 0)
            st = node_fail(n, err, ST_BAD_REQUEST, "element %lld: matching "
                           "takes over %d steps (text of %lld code points)",
                           (long long)i, RX_MAX_STEPS, (long long)k);
        else
            y[i] = (uint8_t)r;
    }
    free(cps);
    free(lists);
    free(vm.mark);
    return st;
}
