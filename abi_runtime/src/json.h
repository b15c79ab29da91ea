/*
 * json.h: a bounded JSON reader (RFC 8259) and an output buffer.
 *
 * The reader never looks past `end`: request bytes come from the host and
 * may be cut anywhere.
 */
#ifndef WX_JSON_H
#define WX_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
    Err *err;
} Json;

/* A span of the request text: a value still to be interpreted. */
typedef struct {
    const char *start, *end;
} Span;

void json_ws(Json *j);

/* Next non-space byte, or -1 at the end; does not consume it. */
int json_peek(Json *j);

/* Consume the byte c (after white space) or fail naming what. */
Status json_expect(Json *j, char c, const char *what);

/* Skip one value of any kind, checking its syntax. */
Status json_skip(Json *j, int depth);

/* Read a string into out (UTF-8, escapes decoded, NUL-terminated);
   strings longer than cap - 1 bytes fail. */
Status json_string(Json *j, char *out, size_t cap, size_t *len);

/* Span of a string's raw contents (between the quotes); *escaped is set
   when it contains backslash escapes. */
Status json_string_span(Json *j, Span *s, int *escaped);

/* A number token: its text (NUL-terminated copy) and whether it is an
   integer (no fraction, no exponent). */
Status json_number(Json *j, char *text, size_t cap, int *is_integer);

/* Match a literal (true, false, null) at the cursor. */
int json_literal(Json *j, const char *lit);

/* A growable output text; `oom` sticks once an append failed. */
typedef struct {
    char *data;
    size_t len, cap;
    int oom;
} Buf;

void buf_reset(Buf *b);
void buf_free(Buf *b);
/* Make room for n more bytes; returns a pointer to them or NULL (oom). */
char *buf_reserve(Buf *b, size_t n);
void buf_put(Buf *b, const char *s, size_t n);
void buf_puts(Buf *b, const char *s);
/* Append s as a JSON string literal, with quotes and escapes. */
void buf_put_json_string(Buf *b, const char *s);

#endif
