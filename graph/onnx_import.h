// ONNX import: reads an ONNX model (as written by torch.onnx / Ultralytics) into a yolopipe Graph.
//
// What Import does, in order:
//   1. parse the protobuf (a truncated or malformed file is an error naming the source);
//   2. check the model before trusting it: default-domain opset 11..19; nodes of any other
//      domain, ops without a reference kernel (the error names node and op type), external data
//      and sparse initializers are refused; opset 18/19 attributes libonnx 1.12 does not know
//      are dropped where they hold their no-op defaults (see LowerToKnownOpset); then
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
// Keys starting with "yolopipe." are not written back by the exporter.
//
// Thread-safe: the functions share no mutable state (the kernel registry is only read).
#ifndef YOLOPIPE_GRAPH_ONNX_IMPORT_H_
#define YOLOPIPE_GRAPH_ONNX_IMPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "graph/model_metadata.h"  // kMetadata* keys
#include "onnx/onnx_pb.h"

namespace yolopipe {

struct OnnxImportOptions {
  // Fuse Conv->Sigmoid->Mul into Conv{activation="silu"} and then a following same-shape Add
  // into the Conv's residual input (see graph/fuse.h).
  bool fuse = true;
};

// Reads and imports the file at `path`. A missing or unreadable file is NotFound /
// InvalidArgument naming the path.
absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& = {});

// Imports a serialized ModelProto. `source_name` (a path or a label) appears in every error.
absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& source_name,
                                      const OnnxImportOptions& = {});

// Converts one TensorProto (initializer or Constant value) into a Tensor: raw_data or the typed
// field for its data type, with the data size checked against the declared dims exactly.
// External data and string tensors are refused. Errors name the tensor.
absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_ONNX_IMPORT_H_
