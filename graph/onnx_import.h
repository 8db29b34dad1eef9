// ONNX import: reads an ONNX model (as written by torch.onnx / Ultralytics) into a yolopipe Graph.
//
// What Import does, in order:
//   1. parse the protobuf (a truncated or malformed file is an error naming the source);
//   2. check the model before trusting it (see "Untrusted files" below): size, nesting and
//      count limits; default-domain opset 11..19; nodes of any other domain, ops without a
//      reference kernel (the error names node and op type), subgraph attributes (If / Loop /
//      Scan bodies), sparse initializers, model-local functions and training_info are refused;
//      external data is read (and checked) from the model's folder; every tensor's dims are
//      checked against its data; opset 18/19 attributes libonnx 1.12 does not know are dropped
//      where they hold their no-op defaults (see LowerToKnownOpset); then
//      onnx::checker::check_model and onnx::shape_inference::InferShapes run (their exceptions
//      become Status errors);
//   3. convert: initializers (raw_data or typed fields; sizes validated exactly); Constant nodes
//      become initializers; Identity nodes are removed (consumers read the Identity's input; an
//      Identity naming a graph output makes its input's producer write that name instead);
//      opset < 13 forms become opset-13 forms so kernels and the exporter only ever see one
//      meaning: Split / Squeeze / Unsqueeze attributes become constant inputs, and a Softmax
//      over a non-last axis becomes Flatten(axis) -> Softmax(-1) -> Reshape(Shape(x)), its old
//      meaning; inferred value_info is recorded in Graph values (symbolic dimensions become
//      kUnknownDim; a value whose rank ONNX could not infer keeps an empty shape and may have
//      dtype kUndefined until BindInputShape);
//   4. fold constant subgraphs (FoldConstants) and, when OnnxImportOptions::fuse, fuse
//      Conv+Sigmoid+Mul(+Add) (FuseConvActivations).
//
// Names: node, value and graph names are kept exactly as in the file. Exceptions: nodes with an
// empty name (ONNX allows it; yolopipe does not) are named "<op_type>_<node index>", duplicate
// node names get a "__<k>" suffix, and the opset < 13 rewrites name their new constants and
// nodes "<node>/<what>".
//
// The resulting Graph has exactly one input: the image tensor, float32, rank 4 (B, C, H, W)
// with unknown (symbolic) dimensions as kUnknownDim. Graph metadata holds the model's
// metadata_props verbatim plus:
//   "yolopipe.input_shape_declared"  the input shape as declared in the file, comma separated,
//                                    -1 for a symbolic dimension (e.g. "-1,3,-1,-1");
//   "yolopipe.onnx_opset"            the default-domain opset of the file (e.g. "17").
// Keys starting with "yolopipe." are not written back by the exporter, and such keys in the
// file's metadata_props are ignored (they cannot override what the importer records).
//
// Untrusted files. Models are downloaded from the internet, so every limit below is checked
// before the thing it limits is allocated or walked, and each error names the tensor, node or
// value and the limit (all limits are fields of OnnxImportLimits; defaults in brackets):
//   - the serialized model: at most max_model_bytes [2 GiB - 1, protobuf's own ceiling]; files
//     are stat'ed before they are read. Parsing uses a CodedInputStream with that total-bytes
//     limit and a recursion limit of max_message_depth [32 nested messages; a YOLOv8 export
//     needs 7]. A model nested deeper is refused as such.
//   - graph size: nodes, initializers, value_info entries, graph inputs, graph outputs and
//     metadata_props each at most max_graph_entries [100,000; a YOLOv8 export has ~300 nodes].
//     Every pass of the importer is linear or n log n in these counts.
//   - subgraphs: any GRAPH / GRAPHS attribute (If, Loop, Scan bodies) is refused naming the node;
//     YOLOv8 has none, and refusing them bounds the checker's recursion too.
//   - tensors (initializers and Constant / attribute tensors alike): rank at most max_rank [16];
//     no negative dims; at most max_tensor_elements [2^31] elements; data size equal to
//     dims x element size exactly (raw_data, the typed field for the data type, or external
//     data; data in a field the data type does not use is refused); all tensors together at
//     most max_total_tensor_bytes [8 GiB] once decoded.
//   - value shapes (graph inputs, outputs, value_info, and shapes ONNX shape inference infers):
//     rank at most max_rank, no negative dims, known dims multiplying to at most
//     max_tensor_elements. This catches e.g. an Expand to a constant 2^40-element shape before
//     constant folding would allocate it.
//   - the image input: each declared dimension at least 1 and at most max_input_dim [8192, the
//     largest --imgsz the CLI accepts], the channel dimension at most max_input_channels [64],
//     and the declared dims' product at most max_tensor_elements. runtime InputShapeFor keeps
//     the declared channels, height and width when no --imgsz is given, so a file can make a
//     Session allocate no bigger an input than a user could ask for on the command line.
//
// External data (data_location = EXTERNAL; Ultralytics/torch write it for models over 2 GiB) is
// read only by ImportOnnxFile, from the folder holding the .onnx file (the "model folder").
// Keys: "location" (required), "offset" and "length" (optional decimal byte counts; length
// defaults to the rest of the file) and "checksum" (accepted and not verified, as in onnxruntime);
// any other key, or a key given twice, is refused so a typo cannot silently change which bytes are
// read. Refused: a location that is empty, absolute, contains a ".." component or a NUL byte,
// names the model folder itself, a directory or a non-regular file (FIFO, device, socket), or
// passes through a symbolic link anywhere below the model folder (each component is opened with
// O_NOFOLLOW relative to the previous one, and the file's realpath must lie inside the model
// folder's realpath); offset / length that are not plain decimal numbers, overflow, or run past
// the end of the file; a length other than dims x element size; data_location = EXTERNAL together
// with raw_data or typed data, and external_data entries on a tensor not marked EXTERNAL. The
// model folder itself may be reached through symbolic links (that is the caller's choice).
// ImportOnnxBytes has no folder: a model with external data is refused there, naming the tensor.
//
// Thread-safe: the functions share no mutable state (the kernel registry is only read).
#ifndef YOLOPIPE_GRAPH_ONNX_IMPORT_H_
#define YOLOPIPE_GRAPH_ONNX_IMPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "graph/model_metadata.h"  // kMetadata* keys
#include "onnx/onnx_pb.h"

namespace yolopipe {

// Caps that keep a hostile file from exhausting memory, stack or time; see "Untrusted files"
// above. The defaults are far above any YOLOv8 export; callers may lower them (tests do).
struct OnnxImportLimits {
  int64_t max_model_bytes = (int64_t{1} << 31) - 1;
  int max_message_depth = 32;
  int64_t max_graph_entries = 100000;
  int64_t max_rank = 16;
  int64_t max_tensor_elements = int64_t{1} << 31;
  int64_t max_total_tensor_bytes = int64_t{8} << 30;
  int64_t max_input_dim = 8192;
  int64_t max_input_channels = 64;
};

struct OnnxImportOptions {
  // Fuse Conv->Sigmoid->Mul into Conv{activation="silu"} and then a following same-shape Add
  // into the Conv's residual input (see graph/fuse.h).
  bool fuse = true;
  OnnxImportLimits limits;
};

// Reads and imports the file at `path`; external data is read from the folder holding it. A
// missing or unreadable file is NotFound / InvalidArgument naming the path.
absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& = {});

// Imports a serialized ModelProto. `source_name` (a path or a label) appears in every error.
// There is no model folder: tensors with external data are refused.
absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& source_name,
                                      const OnnxImportOptions& = {});

// Converts one TensorProto (initializer or Constant value) into a Tensor: raw_data or the typed
// field for its data type, with the data size checked against the declared dims exactly and the
// per-tensor limits of `limits` applied. External data (there is no folder to read it from) and
// string tensors are refused. Errors name the tensor.
absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto,
                                      const OnnxImportLimits& limits = {});

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_ONNX_IMPORT_H_
