/*
 * graph.h: executing a loaded model.
 */
#ifndef WX_GRAPH_H
#define WX_GRAPH_H

#include "model.h"

/*
 * Run the main graph. vals holds one tensor per value of m; the caller has
 * filled the graph inputs. On success the graph outputs are filled and
 * every other activation is released; on failure all activations are
 * released and err names the failing node.
 */
Status graph_run(const Model *m, Tensor *vals, Err *err);

#endif
