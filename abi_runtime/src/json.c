/*
 * json.c: the bounded JSON reader and the output buffer.
 */
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "simd.h"

void json_ws(Json *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

int json_peek(Json *j)
{
    json_ws(j);
    return j->p < j->end ? (unsigned char)*j->p : -1;
}

/* Describe the byte at the cursor for an error message. */
static const char *found(Json *j, char *buf)
{
    if (j->p >= j->end)
        return "the end of the request";
    unsigned char c = (unsigned char)*j->p;
    if (c >= 0x20 && c < 0x7f && c != '\'') {
        buf[0] = '\'', buf[1] = (char)c, buf[2] = '\'', buf[3] = 0;
        return buf;
    }
    return "a control or non-ASCII byte";
}

static Status syntax(Json *j, const char *expected)
{
    char b[4];
    return fail(j->err, ST_BAD_REQUEST, "request: invalid JSON (expected %s, "
                "found %s)", expected, found(j, b));
}

Status json_expect(Json *j, char c, const char *what)
{
    if (json_peek(j) != (unsigned char)c)
        return syntax(j, what);
    j->p++;
    return ST_OK;
}

int json_literal(Json *j, const char *lit)
{
    size_t n = strlen(lit);
    json_ws(j);
    if ((size_t)(j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
        j->p += n;
        return 1;
    }
    return 0;
}

#ifdef __wasm_simd128__
/* Advance j->p over whole 16-byte chunks free of '"', '\\' and control
   characters (the bulk of a base64 string); 1 if it advanced at all. */
static int skip_plain(Json *j)
{
    const char *p = j->p;
    v128_t quote = u8x16_splat('"'), slash = u8x16_splat('\\');
    v128_t space = u8x16_splat(0x20);
    while (j->end - p >= 16) {
        v128_t v = v128_load(p);
        v128_t hit = v128_or(v128_or(u8x16_eq(v, quote), u8x16_eq(v, slash)),
                             u8x16_lt(v, space));
        if (v128_any_true(hit))
            break;
        p += 16;
    }
    int moved = p != j->p;
    j->p = p;
    return moved;
}
#endif

Status json_string_span(Json *j, Span *s, int *escaped)
{
    Status st = json_expect(j, '"', "a string");
    if (st != ST_OK)
        return st;
    *escaped = 0;
    s->start = j->p;
    while (j->p < j->end && *j->p != '"') {
#ifdef __wasm_simd128__
        if (skip_plain(j))
            continue;
#endif
        unsigned char c = (unsigned char)*j->p;
        if (c < 0x20)
            return syntax(j, "a closing '\"'");
        if (c == '\\') {
            *escaped = 1;
            j->p++;
            if (j->p >= j->end)
                return syntax(j, "an escape sequence");
        }
        j->p++;
    }
    if (j->p >= j->end)
        return syntax(j, "a closing '\"'");
    s->end = j->p++;
    return ST_OK;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return 0;
        *v = *v << 4 | (unsigned)d;
    }
    return 1;
}

/* Append code point cp as UTF-8 to out[*n], if it fits under cap. */
static int put_utf8(char *out, size_t cap, size_t *n, unsigned cp)
{
    char b[4];
    size_t k = cp < 0x80 ? (b[0] = (char)cp, 1)
             : cp < 0x800 ? (b[0] = (char)(0xc0 | cp >> 6),
                             b[1] = (char)(0x80 | (cp & 0x3f)), 2)
             : cp < 0x10000 ? (b[0] = (char)(0xe0 | cp >> 12),
                               b[1] = (char)(0x80 | (cp >> 6 & 0x3f)),
                               b[2] = (char)(0x80 | (cp & 0x3f)), 3)
             : (b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3f)),
                b[2] = (char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), 4);
    if (*n + k >= cap)
        return 0;
    memcpy(out + *n, b, k);
    *n += k;
    return 1;
}

Status json_string(Json *j, char *out, size_t cap, size_t *len)
{
    Span s;
    int escaped;
    Status st = json_string_span(j, &s, &escaped);
    if (st != ST_OK)
        return st;
    size_t n = 0;
    for (const char *p = s.start; p < s.end; p++) {
        unsigned cp = (unsigned char)*p;
        if (cp == '\\') {
            char e = *++p;
            switch (e) {
            case '"': case '\\': case '/': cp = (unsigned char)e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u': {
                unsigned lo;
                if (s.end - p <= 4 || !hex4(p + 1, &cp))
                    return fail(j->err, ST_BAD_REQUEST, "request: invalid JSON "
                                "(bad \\u escape in a string)");
                p += 4;
                /* a surrogate pair encodes one code point above U+FFFF */
                if (cp >= 0xd800 && cp < 0xdc00 && s.end - p > 6 && p[1] == '\\' &&
                    p[2] == 'u' && hex4(p + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
                /* a lone surrogate has no UTF-8 form: the replacement char */
                if (cp >= 0xd800 && cp < 0xe000)
                    cp = 0xfffd;
                break;
            }
            default:
                return fail(j->err, ST_BAD_REQUEST, "request: invalid JSON "
                            "(bad escape sequence in a string)");
            }
            if (!put_utf8(out, cap, &n, cp))
                return fail(j->err, ST_BAD_REQUEST, "request: string too long "
                            "(at most %zu bytes here)", cap - 1);
            continue;
        }
        if (n + 1 >= cap)
            return fail(j->err, ST_BAD_REQUEST, "request: string too long (at "
                        "most %zu bytes here)", cap - 1);
        out[n++] = (char)cp;
    }
    out[n] = 0;
    if (len)
        *len = n;
    return ST_OK;
}

Status json_number(Json *j, char *text, size_t cap, int *is_integer)
{
    json_ws(j);
    const char *p = j->p, *start = p;
    *is_integer = 1;
    /* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (p < j->end && *p == '-') p++;
    if (p < j->end && *p == '0') p++;
    else if (p < j->end && *p >= '1' && *p <= '9')
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    else
        return syntax(j, "a number");
    if (p < j->end && *p == '.') {
        *is_integer = 0;
        if (++p >= j->end || *p < '0' || *p > '9')
            return (j->p = p, syntax(j, "a digit after '.'"));
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        *is_integer = 0;
        if (++p < j->end && (*p == '+' || *p == '-')) p++;
        if (p >= j->end || *p < '0' || *p > '9')
            return (j->p = p, syntax(j, "a digit in the exponent"));
        while (p < j->end && *p >= '0' && *p <= '9') p++;
    }
    if ((size_t)(p - start) >= cap)
        return fail(j->err, ST_BAD_REQUEST, "request: number with more than "
                    "%zu characters", cap - 1);
    memcpy(text, start, (size_t)(p - start));
    text[p - start] = 0;
    j->p = p;
    return ST_OK;
}

/* A character of a number token: a test per class, not strchr (a call
   to memchr per character). */
static int is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '-' ||
           c == '+';
}

Status json_skip(Json *j, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return fail(j->err, ST_BAD_REQUEST, "request: JSON nested deeper than "
                    "%d levels", JSON_MAX_DEPTH);
    int c = json_peek(j);
    Status st;
    Span s;
    int esc;
    if (c == '"')
        return json_string_span(j, &s, &esc);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (json_peek(j) == close) {
            j->p++;
            return ST_OK;
        }
        for (;;) {
            if (c == '{') {
                if ((st = json_string_span(j, &s, &esc)) ||
                    (st = json_expect(j, ':', "':'")))
                    return st;
            }
            if ((st = json_skip(j, depth + 1)))
                return st;
            if (json_peek(j) == ',') {
                j->p++;
                continue;
            }
            return json_expect(j, close, c == '{' ? "',' or '}'" : "',' or ']'");
        }
    }
    /* numbers of any length are valid JSON; only their text is capped
       (json_number checks their syntax when they are read) */
    if (c == '-' || (c >= '0' && c <= '9')) {
        while (j->p < j->end && is_number_char(*j->p)) j->p++;
        return ST_OK;
    }
    if (json_literal(j, "true") || json_literal(j, "false") || json_literal(j, "null"))
        return ST_OK;
    return syntax(j, "a value");
}

void buf_reset(Buf *b)
{
    b->len = 0;
    b->oom = 0;
}

void buf_free(Buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

char *buf_reserve(Buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    return b->data + b->len;
}

void buf_put(Buf *b, const char *s, size_t n)
{
    char *d = buf_reserve(b, n);
    if (!d)
        return;
    memcpy(d, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void buf_puts(Buf *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid:
   overlong forms, surrogates (U+D800..DFFF, e.g. from a "\ud800" escape)
   and code points above U+10FFFF are invalid (RFC 3629). */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3
          : (s[0] >> 3) == 30 ? 4 : 0;
    uint32_t cp = n == 1 ? s[0] : n == 2 ? s[0] & 0x1fu : n == 3 ? s[0] & 0x0fu
                : s[0] & 0x07u;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (n == 0 || cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
        return 0;
    return n;
}

void buf_put_json_string(Buf *b, const char *s)
{
    buf_put(b, "\"", 1);
    while (*s) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        int n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            buf_put(b, esc, 2);
            n = 1;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            buf_put(b, esc, 6);
            n = 1;
        } else if ((n = utf8_len((const unsigned char *)s)) > 0) {
            buf_put(b, s, (size_t)n);
        } else {
            /* keep the response valid UTF-8 whatever the input held */
            buf_put(b, "\\ufffd", 6);
            n = 1;
        }
        s += n;
    }
    buf_put(b, "\"", 1);
}
