/*
 * sort.h: an in-place sort for the runtime's few sorts (TopK, NMS, the
 * memory plan, tree and label tables).
 *
 * It replaces libc's qsort, whose implementation in the Zig toolchain's libc
 * is about 11 KB of code; this heapsort is a few hundred bytes. It is not
 * stable, as qsort is not: comparators that need an order among equal keys
 * compare a tie-breaker (an index) themselves.
 */
#ifndef WX_SORT_H
#define WX_SORT_H

#include <stddef.h>

typedef int (*SortCompare)(const void *a, const void *b);

/* Sort n elements of `size` bytes at base, ascending by cmp (as qsort). */
void wx_sort(void *base, size_t n, size_t size, SortCompare cmp);

#endif
