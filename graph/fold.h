// Constant folding, and the two primitives every graph pass uses to ask the kernels about a node:
// output descriptions (shape inference) and evaluation on constant inputs. Both go through
// ops::KernelRegistry::Global() with Backend::kReference (Create -> Reshape -> Run): graph/ never
// implements op math itself.
#ifndef YOLOPIPE_GRAPH_FOLD_H_
#define YOLOPIPE_GRAPH_FOLD_H_

#include <cstddef>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "ops/kernel.h"

namespace yolopipe {

// Folded results larger than this stay nodes (they would only bloat the graph's constants).
inline constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

// Output descriptions of `node` for the given input descriptions (one per node input; dtype
// kUndefined for an absent optional input). `constant_inputs` has one entry per input, defined()
// where the input's value is known (weights, shape tensors...); it may be empty (no constants).
absl::StatusOr<std::vector<ops::TensorDesc>> InferNodeOutputs(
    const Node& node, const std::vector<ops::TensorDesc>& inputs,
    const std::vector<Tensor>& constant_inputs);

// Evaluates `node` on `inputs` (one per node input; an undefined Tensor for an absent optional
// input) with the reference kernel. Every output must have a fully known shape and together they
// must not exceed `max_output_bytes`; otherwise FailedPrecondition (a caller may then keep the
// node rather than fold it).
absl::StatusOr<std::vector<Tensor>> EvaluateNode(const Node& node,
                                                 const std::vector<Tensor>& inputs,
                                                 size_t max_output_bytes = kMaxFoldedBytes);

// Replaces every node whose inputs are all constants (initializers or absent optional inputs)
// by initializers holding its outputs, repeatedly, in topological order; removes the
// initializers that only the folded nodes read. Nodes reading a graph input or another node's
// output are never folded here, not even Shape (BindInputShape folds those once the input shape
// is known). Errors name the node whose evaluation failed. Sorts the graph topologically.
absl::Status FoldConstants(Graph* graph);

// Removes Value entries for names that no node, input, initializer or output refers to any more
// (passes that delete nodes leave them behind; Graph has no call to forget a single Value).
void DropStaleValues(Graph* graph);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_FOLD_H_
