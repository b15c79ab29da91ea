/*
 * bigalloc.h: included before every source (abi_runtime/build.py), so that
 * malloc, calloc, realloc and free go through bigalloc.c, which serves
 * large blocks in exact pages and small ones from shared pages
 * (smallalloc.c).
 */
#ifndef WX_BIGALLOC_H
#define WX_BIGALLOC_H

#include <stdlib.h>

void *wx_malloc(size_t n);
void *wx_calloc(size_t n, size_t size);
void *wx_realloc(void *p, size_t n);
void wx_free(void *p);

#define malloc wx_malloc
#define calloc wx_calloc
#define realloc wx_realloc
#define free wx_free

#endif
