/*
 * smallalloc.h: blocks of at most SMALL_MAX bytes, packed into shared
 * pages (smallalloc.c); bigalloc.c routes malloc and free here.
 */
#ifndef WX_SMALLALLOC_H
#define WX_SMALLALLOC_H

#include <stddef.h>
#include <stdint.h>

#define SMALL_MAX 32768u

/* wasm pages, for both allocators (bigalloc.c, smallalloc.c) */
#define PAGE 65536u
#define MAX_PAGES 65536u /* 4 GiB of linear memory */

/* A block of n <= SMALL_MAX bytes, 16-byte aligned; NULL when memory is full. */
void *small_alloc(size_t n);

/* 1 when p is a live or freed block of small_alloc. */
int small_owns(const void *p);

/* The bytes block p can hold (its size class). */
size_t small_usable(const void *p);

/* Give block p back to its size class. */
void small_free(void *p);

/* The first of pages new 64 KiB pages for this allocator, 0 when memory is
   full (bigalloc.c: its page runs). */
uint32_t page_run_take(uint32_t pages);

#endif
