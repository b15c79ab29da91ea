/*
 * request.h: turning an ABI request (JSON text) into input tensors.
 *
 * Forms (see docs/abi.md):
 *   {"input": X}                      one input, nested lists (or a scalar)
 *   {"input": [X1, X2]}               several inputs in graph-input order
 *   {"input": {"name": X}}            inputs by name
 *   {"input": "<b64>", "type": "raw", "shape": [..]}     raw little-endian
 *   {"input": ["<b64>", ..], "type": "raw", "shapes": [[..], ..]}
 *   {"input": "<b64>", "type": "pb"}  a serialised ONNX TensorProto (also
 *                                     the default for a bare base64 string)
 *   "output_type": "raw" | "pb"       answer in base64 instead of lists
 *   "inputType" / "outputType"        aliases of "type" / "output_type"
 * String inputs are JSON strings in the nested lists; a map input is a JSON
 * object ({"input": {"k": 1.5}} for a model whose one input is a map, its
 * keys as strings, "3" for int64 keys). A sequence input is a JSON list of
 * tensors in the request's form (raw: its shape a list of shapes); an
 * empty optional is null.
 */
#ifndef WX_REQUEST_H
#define WX_REQUEST_H

#include <stddef.h>

#include "model.h"

typedef struct {
    int raw_output; /* "output_type": RESPONSE_JSON, _RAW or _PB */
} RequestOptions;

/*
 * Parse text[0..len) into inputs[i], one tensor per main-graph input, in
 * graph-input order, each checked against its declared dtype and shape
 * (symbolic dims must agree across inputs). On failure every tensor is
 * released and err reads "request: ...".
 */
Status request_parse(const Model *m, const char *text, size_t len,
                     Tensor *inputs, RequestOptions *opt, Err *err);

#endif
