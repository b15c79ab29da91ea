/*
 * status.h: the error contract of the runtime.
 *
 * Library code never exits or aborts. A failing function returns a Status
 * and writes one line into an Err buffer, in the form
 *     "<where>: <what> (<expected vs got>)"
 * e.g. "node 'conv1' (Conv): shape mismatch (weight has 3 input channels,
 * input has 1)". The ABI layer turns that line into {"error": "..."}.
 */
#ifndef WX_STATUS_H
#define WX_STATUS_H

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    ST_OK = 0,
    ST_TRUNCATED,       /* plan or request ends early */
    ST_BAD_FORMAT,      /* plan or request is malformed */
    ST_UNSUPPORTED_OP,  /* op, attribute value or dtype not implemented */
    ST_SHAPE_MISMATCH,  /* shapes or dtypes do not fit together */
    ST_OOM,             /* linear memory cannot grow any further */
    ST_BAD_REQUEST      /* the request does not fit the model's signature */
} Status;

#define ERR_CAP 480

typedef struct {
    char msg[ERR_CAP]; /* NUL-terminated, one line */
} Err;

/* Write a formatted message into err and return st (never ST_OK). */
Status fail(Err *err, Status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Internal invariants: checked in debug builds, compiled out in release. */
#ifdef WX_DEBUG
#define ASSERT(c) ((c) ? (void)0 : __builtin_trap())
#else
#define ASSERT(c) ((void)0)
#endif

#endif
