// Test fixtures: a miniature YOLOv8-style detector in both Ultralytics export styles, and a
// reference interpreter that runs a prepared Graph with the reference kernels.
#ifndef YOLOPIPE_GRAPH_TESTING_MINI_DETECTOR_H_
#define YOLOPIPE_GRAPH_TESTING_MINI_DETECTOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "graph/testing/onnx_builder.h"

namespace yolopipe::testing {

enum class ExportStyle {
  // Fixed (1, 3, 16, 16) input; anchors and strides are Constant nodes.
  kStatic,
  // (batch, 3, height, width) input; anchors and strides computed in-graph from Shape, Gather,
  // Cast, Range, Add, Reshape, Expand, Unsqueeze, Concat, Transpose and ConstantOfShape, the
  // head's view shape from Shape/Gather/Unsqueeze/Concat, as torch.onnx writes them.
  kDynamic,
};

inline constexpr int64_t kMiniStride = 2;
inline constexpr int64_t kMiniClasses = 2;

// images -> conv0 (3->8, k3 s2) + SiLU -> conv1 (8->8, k3) + SiLU + residual Add (Bottleneck)
// -> head (1x1, 8 -> 4+nc, plain) -> Reshape (B, 4+nc, A) -> Identity -> Split box/cls ->
// Slice lt/rb -> anchors -/+ -> (x1y1+x2y2)/2, x2y2-x1y1 -> Concat -> * strides ->
// Concat(dbox, Sigmoid(cls)) -> "output0" (B, 4+nc, A). Node names follow the pattern
// "conv0", "conv0/sigmoid", "conv0/silu", "conv1", ..., "bottleneck/add", "head", ...
// The anchors tensor is named "anchors" (1, 2, A) and the strides "strides" (1, A) in both
// styles. Metadata: names, stride, task, imgsz, batch.
OnnxModelBuilder MiniDetector(ExportStyle style, int64_t opset = 17);

// Anchor points of a (h, w) grid, computed directly: (1, 2, h*w) with x + 0.5 then y + 0.5,
// row-major with y outer.
std::vector<float> ExpectedAnchors(int64_t h, int64_t w);

// Runs `graph` (prepared: concrete shapes, sorted) on `input` with the reference kernels and
// returns its first output.
absl::StatusOr<Tensor> RunWithReferenceKernels(const Graph& graph, const Tensor& input);

// Deterministic image-like input of `shape` with values in [0, 1).
Tensor TestImage(const Shape& shape, int seed = 1);

}  // namespace yolopipe::testing

#endif  // YOLOPIPE_GRAPH_TESTING_MINI_DETECTOR_H_
