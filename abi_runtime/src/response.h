/*
 * response.h: output tensors -> response text.
 *
 *   {"output": Y}             one output, nested lists in its shape
 *   {"output": [Y1, Y2]}      several outputs, graph-output order
 *   raw: {"output": "<b64>", "type": "raw", "shape": [..], "dtype": "float32"}
 *        (several: "output" and "dtype" become lists, "shape" -> "shapes")
 *   pb:  {"output": "<b64 of an ONNX TensorProto>", "type": "pb"}
 *        (several: "output" becomes a list)
 *   {"error": "<one line>"}
 * A sequence output is a list of tensors in the response's form (raw: a
 * list of shapes, dtype "seq(float32)"); an empty optional is null.
 * Floats print as the shortest text that reads back to the same value;
 * non-finite floats as the strings "NaN", "Infinity", "-Infinity".
 */
#ifndef WX_RESPONSE_H
#define WX_RESPONSE_H

#include "json.h"
#include "model.h"

/* Response forms ("output_type"): nested lists, base64 raw, TensorProto. */
enum { RESPONSE_JSON = 0, RESPONSE_RAW = 1, RESPONSE_PB = 2 };

/* Write the response for the main-graph outputs (out[i] for output i), in
   the form raw (RESPONSE_*). */
void response_write(const Model *m, const Tensor *outputs, int raw, Buf *b);

/* Write {"error": msg}. */
void response_error(Buf *b, const char *msg);

/* Shortest decimal text of a float32 / float64 that reads back exactly;
   returns its length (buf needs 32 bytes). Non-finite values are written
   as JSON strings. */
int format_f32(float v, char *buf);
int format_f64(double v, char *buf);

#endif
