// What the runtime calls before executing a model: one function from an imported (or built-in)
// graph and an input shape to a graph every executor can run as is.
#ifndef YOLOPIPE_GRAPH_PREPARE_H_
#define YOLOPIPE_GRAPH_PREPARE_H_

#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "graph/ir.h"

namespace yolopipe {

// BindInputShape (see bind.h), FoldConstants, FuseConvActivations (the residual Adds whose
// shapes were unknown at import fuse now), dead-code removal, topological sort and Validate.
// In the result:
//   - every value (graph input, initializer, node output) has a concrete dtype and shape;
//   - nodes are topologically sorted;
//   - every node's outputs are what its reference kernel's Reshape reports for its inputs
//     (checked, so a kernel that rejects a fused node fails here, not in the executor).
// The input graph is not modified.
absl::StatusOr<Graph> PrepareForExecution(const Graph& graph, const Shape& input_shape);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_PREPARE_H_
