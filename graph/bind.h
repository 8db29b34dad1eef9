// Input-shape binding: specialises a graph to one concrete input shape.
#ifndef YOLOPIPE_GRAPH_BIND_H_
#define YOLOPIPE_GRAPH_BIND_H_

#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "graph/ir.h"

namespace yolopipe {

// Returns a copy of `graph` whose single input has shape `input_shape` (B, C, H, W) and in which
// every value has a concrete dtype and shape. The input graph is not modified.
//
// Checks against the graph input's current (declared) shape:
//   - `input_shape` has rank 4 and positive dimensions;
//   - C equals the declared channel count ("input 'images' expects 3 channels, got 4");
//   - H and W equal the declared ones unless those are symbolic (kUnknownDim).
// The batch may always change:
//   - a symbolic batch is simply bound;
//   - a fixed batch (e.g. a batch-1 static export) is rebound: the tensors that carry the batch
//     on axis 0 are tracked from the input through every node; constant Reshape shapes (and
//     Resize sizes, Expand shapes) whose first entry is the declared batch are rewritten (into
//     new initializers; shared constants are never edited in place), and every op that could
//     mix the batch axis with another is refused with an error naming the node: a Reshape that
//     merges or moves axis 0, Transpose moving axis 0, Concat / Split / Softmax / Gather on
//     axis 0, a Concat with a constant operand, Slice on axis 0 (other than an open-ended
//     [0:INT_MAX] one), Squeeze without explicit axes or of axis 0, Unsqueeze at axis 0, Flatten at
//     an axis other than 1, a constant operand that broadcasts against the batch axis with a size
//     other than 1, and any op not known to keep the batch on axis 0. After binding, every
//     batch-carrying value is checked to have the new batch on axis 0.
// Then shapes are propagated through every node with the reference kernels' Reshape; nodes whose
// inputs are all known (constants, and Shape/Size of a tensor with a known shape) are evaluated
// and replaced by initializers (this folds the dynamic-export anchor subgraphs); dead nodes and
// unused initializers are removed. The result is topologically sorted.
absl::StatusOr<Graph> BindInputShape(const Graph& graph, const Shape& input_shape);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_BIND_H_
