/*
 * op_table.c: the op table, one row per op of ops.h's lists.
 *
 * A runtime built with a subset of the ops (build.py's op subsets, e.g. the
 * core runtime for neural networks) compiles this file with -DWX_OP_SUBSET
 * and a generated op_subset.h that defines KEEP_<op>(fn) as fn for the ops
 * it keeps and NULL for the rest. The rest's kernels are then referenced
 * nowhere and the linker leaves them out; op_prepare refuses their nodes.
 */
#include <stddef.h>

#include "ops.h"

#ifdef WX_OP_SUBSET
#include "op_subset.h"
#define PICK(name, fn) KEEP_##name(fn)
#else
#define PICK(name, fn) fn
#endif

const OpInfo OP_TABLE[OP_COUNT] = {
#define OP_ROW(name, run, prep, in_lo, in_hi, out_lo, out_hi)                 \
    {#name, PICK(name, run), PICK(name, prep), in_lo, in_hi, out_lo, out_hi,  \
     NULL},
    OP_LIST(OP_ROW)
#undef OP_ROW
#define ML_ROW(name, run, prep, in_lo, in_hi, out_lo, out_hi)                 \
    {#name, PICK(name, run), PICK(name, prep), in_lo, in_hi, out_lo, out_hi,  \
     "ai.onnx.ml"},
    ML_OP_LIST(ML_ROW)
#undef ML_ROW
#define PV_ROW(name, run, prep, in_lo, in_hi, out_lo, out_hi)                 \
    {#name, PICK(name, run), PICK(name, prep), in_lo, in_hi, out_lo, out_hi,  \
     "ai.onnx.preview"},
    PREVIEW_OP_LIST(PV_ROW)
#undef PV_ROW
};

/* The table and the enum come from one list; this keeps them in step. */
_Static_assert(sizeof OP_TABLE / sizeof OP_TABLE[0] == OP_COUNT,
               "op table and OpCode enum disagree");
