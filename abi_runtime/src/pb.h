/*
 * pb.h: a bounded reader of serialised ONNX TensorProto messages, the
 * payload of "type": "pb" requests.
 *
 * Fields read (onnx.proto numbers): dims (1, packed or not), data_type (2),
 * float_data (4), int32_data (5), int64_data (7), name (8), raw_data (9),
 * double_data (10), uint64_data (11), data_location (14). Other fields are
 * skipped by wire type; string_data (6), segments (3) and external data
 * are refused.
 */
#ifndef WX_PB_H
#define WX_PB_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/*
 * Decode the TensorProto bytes[0..n) into t (owned data) for graph input
 * v: its data_type must be v->dtype and its element count must match its
 * dims. Whether the dims fit v's declared shape is checked by the caller.
 * Never reads outside bytes[0..n). On failure t stays empty and err reads
 * "request: input '<name>': ...".
 */
Status pb_read_tensor(const uint8_t *bytes, size_t n, const Value *v,
                      Tensor *t, Err *err);

/*
 * Serialise t as a TensorProto: dims (1), data_type (2), name (8) and
 * raw_data (9), in that order, as onnx's numpy_helper writes them. Returns
 * the byte count; writes the bytes when out is not NULL (call once with
 * NULL to size the buffer).
 */
size_t pb_write_tensor(const Tensor *t, const char *name, uint8_t *out);

#endif
