// ONNX export: writes a Graph as a standard ONNX model that any ONNX tool reads.
//
// The file is opset 17 (default domain), IR version 8, producer "yolopipe":
//   - yolopipe's fused convolutions are unfused: Conv{activation="silu"} becomes Conv + Sigmoid
//     + Mul, and a residual input becomes a following Add. The Conv keeps its node name; the new
//     nodes are named "<conv>/sigmoid", "<conv>/silu", "<conv>/residual" and the new intermediate
//     tensors "<conv>/conv_output", "<conv>/silu_output" (with "__<k>" appended on a clash), so
//     importing the file (with fusion) gives back the same nodes, names and weights;
//   - initializers are written as raw_data (little-endian, as ONNX requires);
//   - metadata_props come from the Graph's metadata, except the importer's "yolopipe.*" keys;
//   - graph input and output value infos carry shapes; an unknown dimension becomes a symbolic
//     one: "batch", "height", "width" for dimensions 0, 2, 3 of the input, "batch" for
//     dimension 0 of an output and "<output>_dim<i>" otherwise.
// The model is checked with onnx::checker before it is returned or written.
#ifndef YOLOPIPE_GRAPH_ONNX_EXPORT_H_
#define YOLOPIPE_GRAPH_ONNX_EXPORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "onnx/onnx_pb.h"

namespace yolopipe {

inline constexpr int kExportOpset = 17;
inline constexpr int kExportIrVersion = 8;

// Serialized ModelProto. Fails (naming the node) for graphs it cannot express, e.g. a fused
// activation other than "silu".
absl::StatusOr<std::string> ExportOnnxBytes(const Graph& graph);

// Writes ExportOnnxBytes(graph) to `path` atomically: a temporary file in the same directory,
// then rename. On failure `path` is untouched and the temporary file removed.
absl::Status ExportOnnxFile(const Graph& graph, const std::string& path);

// `tensor` as a TensorProto named `name` with raw_data (kPlain tensors; NHWC is converted).
absl::StatusOr<onnx::TensorProto> TensorToOnnx(const std::string& name, const Tensor& tensor);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_ONNX_EXPORT_H_
