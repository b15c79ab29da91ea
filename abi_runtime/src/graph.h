/*
 * graph.h: executing a loaded model.
 */
#ifndef WX_GRAPH_H
#define WX_GRAPH_H

#include "model.h"

/*
 * Run graph gi of m (0: the main graph; others: bodies of control-flow
 * nodes). vals holds one tensor per value of m, shared by all graphs, so a
 * body reads the values of enclosing graphs in place; the caller has
 * filled the inputs of gi. Running graph 0 also installs the constants.
 * On success the outputs of gi are filled and every other activation of gi
 * is released (values of enclosing graphs are never touched); on failure
 * the activations of gi (all activations, for graph 0) are released and
 * err names the failing node.
 */
Status graph_run(const Model *m, int32_t gi, Tensor *vals, Err *err);

#endif
