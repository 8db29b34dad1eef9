// Model statistics computed from a Graph whose values have concrete shapes: multiply-accumulates
// and FLOPs of the convolutions (the figure Ultralytics publishes as GFLOPs).
#ifndef YOLOPIPE_GRAPH_YOLOV8_STATS_H_
#define YOLOPIPE_GRAPH_YOLOV8_STATS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "graph/ir.h"

namespace yolopipe {

// MACs of one Conv node: N * Cout * Hout * Wout * (Cin / group) * kh * kw, read from the shapes of
// its output Value and its weight Value (Cout, Cin/group, kh, kw). Any spatial rank works (the
// product runs over every dimension after the channel). FailedPrecondition when a shape is missing
// or has unknown dimensions (bind the input shape first); InvalidArgument when `node` is not a
// Conv or its shapes disagree; OutOfRange on int64 overflow.
absl::StatusOr<int64_t> ConvNodeMacs(const Graph& graph, const Node& node);

// Sum of ConvNodeMacs over every Conv node (Detect's plain convs and the DFL conv included).
absl::StatusOr<int64_t> ConvMacs(const Graph& graph);

// 2 * ConvMacs: one multiply and one add per MAC. Divide by 1e9 for the published GFLOPs.
absl::StatusOr<int64_t> ConvFlops(const Graph& graph);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_YOLOV8_STATS_H_
