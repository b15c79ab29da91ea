/*
 * bigalloc.c: malloc, calloc, realloc and free of the runtime: large
 * blocks in whole pages, reused and merged; small ones (smallalloc.c)
 * packed into shared pages.
 *
 * The libc allocator rounds every block above 64 KiB up to a power of two
 * of 64 KiB pages and keeps a free list per power, never merging them, so
 * a 2.1 MB request buffer takes 4 MB and its freed bytes serve only blocks
 * of that class again; below 64 KiB it gives every size class a page of
 * its own. The build routes malloc, calloc, realloc and free here
 * (bigalloc.h, included before every source by abi_runtime/build.py):
 * blocks above SMALL_MAX bytes get exactly the pages they need, smaller
 * ones go to smallalloc.c. libc's allocator keeps only what libc itself
 * allocates.
 *
 * A big block is one run of pages, its user bytes at BIG_HEADER after the
 * first page boundary; OWNED marks the first page of each live one, which
 * is how free() tells our blocks from libc's (libc never gets our pages).
 * Freed runs go to a list sorted by page, merged with their neighbours,
 * and are taken best-fit; memory grows only when no run fits (and then
 * extends a free run that ends where linear memory ends).
 */
#include "bigalloc.h"

#include <stdint.h>
#include <string.h>

#include "smallalloc.h"

/* here the names mean libc's allocator */
#undef malloc
#undef calloc
#undef realloc
#undef free
size_t malloc_usable_size(void *p);

#define BIG_HEADER 16u            /* keeps the 16-byte alignment of malloc */
#define MAX_RUNS 256              /* free runs kept; more are dropped */

typedef struct {
    uint32_t page, pages; /* first page, length */
} Run;

static uint8_t OWNED[MAX_PAGES / 8]; /* bit: a live big block starts here */
static Run FREE_RUNS[MAX_RUNS];       /* by page, no two adjacent */
static int32_t N_RUNS;

static int owned(uint32_t page)
{
    return OWNED[page / 8] >> (page % 8) & 1;
}

static void set_owned(uint32_t page, int on)
{
    if (on)
        OWNED[page / 8] |= (uint8_t)(1u << (page % 8));
    else
        OWNED[page / 8] &= (uint8_t)~(1u << (page % 8));
}

/* The big block holding user pointer p, or 0 when p is not one. */
static uint32_t block_page(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!p || a % PAGE != BIG_HEADER || !owned((uint32_t)(a / PAGE)))
        return 0;
    return (uint32_t)(a / PAGE);
}

/* Pages of the big block at page (stored in its header). */
static uint32_t block_pages(uint32_t page)
{
    return *(uint32_t *)(uintptr_t)((size_t)page * PAGE);
}

/* Give pages [page, page + pages) back to the free runs, merged. */
static void release_run(uint32_t page, uint32_t pages)
{
    int32_t i = 0;
    while (i < N_RUNS && FREE_RUNS[i].page < page)
        i++;
    int left = i > 0 && FREE_RUNS[i - 1].page + FREE_RUNS[i - 1].pages == page;
    int right = i < N_RUNS && page + pages == FREE_RUNS[i].page;
    if (left && right) {
        FREE_RUNS[i - 1].pages += pages + FREE_RUNS[i].pages;
        memmove(&FREE_RUNS[i], &FREE_RUNS[i + 1], sizeof(Run) * (size_t)(N_RUNS - i - 1));
        N_RUNS--;
    } else if (left) {
        FREE_RUNS[i - 1].pages += pages;
    } else if (right) {
        FREE_RUNS[i].page = page;
        FREE_RUNS[i].pages += pages;
    } else if (N_RUNS < MAX_RUNS) {
        memmove(&FREE_RUNS[i + 1], &FREE_RUNS[i], sizeof(Run) * (size_t)(N_RUNS - i));
        FREE_RUNS[i] = (Run){page, pages};
        N_RUNS++;
    } /* else: the list is full and these pages stay unused */
}

/* First page of a run of pages pages: the best-fitting free run, the last
   free run extended when it ends at the end of memory, or new memory. 0
   when memory cannot grow (page 0 holds the stack, never a block). */
uint32_t page_run_take(uint32_t pages)
{
    int32_t best = -1;
    for (int32_t i = 0; i < N_RUNS; i++)
        if (FREE_RUNS[i].pages >= pages &&
            (best < 0 || FREE_RUNS[i].pages < FREE_RUNS[best].pages))
            best = i;
    if (best >= 0) {
        uint32_t page = FREE_RUNS[best].page;
        FREE_RUNS[best].page += pages;
        FREE_RUNS[best].pages -= pages;
        if (FREE_RUNS[best].pages == 0) {
            memmove(&FREE_RUNS[best], &FREE_RUNS[best + 1],
                    sizeof(Run) * (size_t)(N_RUNS - best - 1));
            N_RUNS--;
        }
        return page;
    }
    uint32_t end = (uint32_t)__builtin_wasm_memory_size(0);
    Run *last = N_RUNS ? &FREE_RUNS[N_RUNS - 1] : NULL;
    if (last && last->page + last->pages == end) {
        if (__builtin_wasm_memory_grow(0, pages - last->pages) == SIZE_MAX)
            return 0;
        N_RUNS--;
        return last->page;
    }
    size_t old = __builtin_wasm_memory_grow(0, pages);
    return old == SIZE_MAX ? 0 : (uint32_t)old;
}

/* A big block of n bytes (n > SMALL_MAX), NULL when memory is full. */
static void *big_alloc(size_t n)
{
    if (n > (size_t)UINT32_MAX - PAGE)
        return NULL;
    uint32_t pages = (uint32_t)((n + BIG_HEADER + PAGE - 1) / PAGE);
    uint32_t page = page_run_take(pages);
    if (!page)
        return NULL;
    set_owned(page, 1);
    uint8_t *base = (uint8_t *)(uintptr_t)((size_t)page * PAGE);
    *(uint32_t *)base = pages;
    return base + BIG_HEADER;
}

void *wx_malloc(size_t n)
{
    return n > SMALL_MAX ? big_alloc(n) : small_alloc(n);
}

void wx_free(void *p)
{
    uint32_t page = block_page(p);
    if (page) {
        set_owned(page, 0);
        release_run(page, block_pages(page));
    } else if (small_owns(p)) {
        small_free(p);
    } else {
        free(p); /* NULL, or a block libc allocated for itself */
    }
}

void *wx_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = wx_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

/* The bytes block p can hold: a big one's pages, a small one's class. */
static size_t usable(void *p)
{
    uint32_t page = block_page(p);
    return page           ? (size_t)block_pages(page) * PAGE - BIG_HEADER
         : small_owns(p)  ? small_usable(p)
         : p              ? malloc_usable_size(p) : 0;
}

void *wx_realloc(void *p, size_t n)
{
    size_t have = usable(p);
    /* a block that holds n already stays, unless a small block would be
       left holding a big one's pages */
    if (p && n <= have && (n > SMALL_MAX || !block_page(p)))
        return p;
    void *q = wx_malloc(n);
    if (q && p)
        memcpy(q, p, have < n ? have : n);
    if (q)
        wx_free(p);
    return q;
}
