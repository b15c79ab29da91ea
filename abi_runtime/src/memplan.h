/*
 * memplan.h: where the activations of the main graph live.
 *
 * Every tensor activation of graph 0 whose size is known before the run
 * (static dims, or symbols bound by the inputs) gets a fixed offset in one
 * arena. Two activations share bytes only when their lifetimes, from the
 * node writing them to their last use (docs/plan-format.md, written by
 * the packager), do not overlap. The offsets are assigned once per set of
 * input dims and kept until the inputs change shape.
 *
 * Values outside the plan (bodies of control-flow ops, maps, sizes known
 * only at run time, a tensor larger than declared) use malloc as before.
 *
 * Large blocks that live as long as the instance (the plan blob, the
 * arena) come straight from memory.grow: the libc allocator rounds big
 * blocks up to a power of two, which would waste up to half of them.
 */
#ifndef WX_MEMPLAN_H
#define WX_MEMPLAN_H

#include <stddef.h>

#include "model.h"

/* bytes of linear memory from memory.grow, 64 KiB aligned; never freed.
   NULL when memory cannot grow. */
void *pages_alloc(size_t bytes);

/*
 * Start a run of graph 0 on vals (its inputs filled): plan the arena for
 * these input dims unless the current plan fits them, and make
 * memplan_claim hand out arena slots until memplan_end. Fails only when
 * linear memory cannot hold the arena (ST_OOM).
 */
Status memplan_begin(const Model *m, Tensor *vals, Err *err);

/* End the run: memplan_claim answers NULL again. */
void memplan_end(void);

/*
 * The planned bytes for tensor t when t is the slot of a planned
 * activation of the running graph 0 and nbytes fit its slot; else NULL
 * (the caller then allocates). The bytes stay valid until the next run.
 */
void *memplan_claim(const Tensor *t, size_t nbytes);

#endif
