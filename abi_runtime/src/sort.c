/*
 * sort.c: heapsort (see sort.h for why not qsort). O(n log n) in the worst
 * case with no extra memory, which also keeps the sorts free of allocation
 * failures.
 */
#include "sort.h"

#include <stdint.h>

static void swap_bytes(unsigned char *a, unsigned char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

/* Move the element at `root` down until the max-heap of n elements holds. */
static void sift_down(unsigned char *base, size_t root, size_t n, size_t size,
                      SortCompare cmp)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n &&
            cmp(base + child * size, base + (child + 1) * size) < 0)
            child++;
        if (cmp(base + root * size, base + child * size) >= 0)
            return;
        swap_bytes(base + root * size, base + child * size, size);
        root = child;
    }
}

void wx_sort(void *base, size_t n, size_t size, SortCompare cmp)
{
    unsigned char *b = base;
    if (n < 2)
        return;
    for (size_t i = n / 2; i-- > 0;)
        sift_down(b, i, n, size, cmp);
    for (size_t end = n - 1; end > 0; end--) {
        swap_bytes(b, b + end * size, size);
        sift_down(b, 0, end, size, cmp);
    }
}
