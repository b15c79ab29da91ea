/*
 * smallalloc.c: small blocks, every size in the same pages.
 *
 * The libc allocator of our wasm32-wasi toolchain (zig's) gives each size
 * class a 64 KiB page of its own, so a run that touches ten classes once
 * holds ten mostly empty pages: an Identity model grew linear memory by
 * six pages, an MLP by ~0.5 MB more than its plan, request and arena.
 * Here:
 *   - a block is a 16-byte header (its class and a tag) followed by the
 *     user bytes, rounded up to the class: 16, 32, 64, ... SMALL_MAX;
 *   - blocks of every class are cut, in order, from the current page; the
 *     end of a page too short for the next block is cut into smaller
 *     blocks for the free lists, so nothing of a page is lost;
 *   - a freed block goes onto its class's free list and serves the next
 *     request of that class: blocks are never split or merged, and pages
 *     never go back (a run repeats the sizes of the previous one);
 *   - pages come from bigalloc.c and are marked in a bitmap, which is how
 *     free() tells these blocks from big ones and from libc's.
 */
#include "smallalloc.h"

#define HEADER 16u
#define CLASSES 12                 /* 16 << 11 == SMALL_MAX */
#define TAG_LIVE 0x574b4c42u
#define TAG_FREE 0x574b4c46u

typedef struct {
    uint32_t cls, tag;
    uint32_t pad[2]; /* keeps the user bytes 16-byte aligned */
} Header;

static uint8_t SMALL_PAGES[MAX_PAGES / 8]; /* bit: a page of this allocator */
static void *FREE_LISTS[CLASSES];          /* the next block in its first bytes */
static uint8_t *cut, *cut_end;             /* the rest of the current page */

static size_t class_size(uint32_t cls)
{
    return (size_t)16 << cls;
}

static uint32_t class_of(size_t n)
{
    uint32_t cls = 0;
    while (class_size(cls) < n)
        cls++;
    return cls;
}

static Header *header_of(const void *p)
{
    return (Header *)((uint8_t *)(uintptr_t)p - HEADER);
}

static void push_free(uint32_t cls, uint8_t *user)
{
    header_of(user)->cls = cls;
    header_of(user)->tag = TAG_FREE;
    *(void **)user = FREE_LISTS[cls];
    FREE_LISTS[cls] = user;
}

/* Cut the rest of the current page into the largest blocks that fit. */
static void retire_page(void)
{
    for (int32_t cls = CLASSES - 1; cls >= 0; cls--)
        while ((size_t)(cut_end - cut) >= HEADER + class_size((uint32_t)cls)) {
            push_free((uint32_t)cls, cut + HEADER);
            cut += HEADER + class_size((uint32_t)cls);
        }
}

void *small_alloc(size_t n)
{
    uint32_t cls = class_of(n ? n : 1);
    uint8_t *user = FREE_LISTS[cls];
    if (user) {
        FREE_LISTS[cls] = *(void **)user;
    } else {
        size_t need = HEADER + class_size(cls);
        if ((size_t)(cut_end - cut) < need) {
            retire_page();
            uint32_t page = page_run_take(1);
            if (!page)
                return NULL;
            SMALL_PAGES[page / 8] |= (uint8_t)(1u << (page % 8));
            cut = (uint8_t *)(uintptr_t)((size_t)page * PAGE);
            cut_end = cut + PAGE;
        }
        user = cut + HEADER;
        cut += need;
    }
    header_of(user)->cls = cls;
    header_of(user)->tag = TAG_LIVE;
    return user;
}

int small_owns(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    /* a block never starts at a page boundary: its header comes first */
    if (!p || a % 16 != 0 || a % PAGE == 0)
        return 0;
    uint32_t page = (uint32_t)(a / PAGE);
    return SMALL_PAGES[page / 8] >> (page % 8) & 1;
}

size_t small_usable(const void *p)
{
    return class_size(header_of(p)->cls);
}

void small_free(void *p)
{
    Header *h = header_of(p);
    if (h->tag != TAG_LIVE || h->cls >= CLASSES)
        return; /* a double free: the block is on its list already */
    push_free(h->cls, p);
}
