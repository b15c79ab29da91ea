/*
 * status.c: writing error lines.
 */
#include <stdio.h>

#include "model.h"

Status fail(Err *err, Status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return st;
}

Status node_fail(const Node *n, Err *err, Status st, const char *fmt, ...)
{
    int k = snprintf(err->msg, sizeof err->msg, "node '%s' (%s): ", n->name,
                     n->op_type);
    if (k < 0 || k >= (int)sizeof err->msg)
        return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + k, sizeof err->msg - k, fmt, ap);
    va_end(ap);
    return st;
}
