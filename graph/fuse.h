// Conv activation fusion: the rewrites that turn an exported YOLOv8 graph (SiLU as Sigmoid + Mul,
// Bottleneck shortcuts as Add) into yolopipe's fused convolutions.
//
// Fused Conv contract (what kernels implement and the exporter unfuses):
//   attribute activation = "silu"  -> output = silu(conv(x, w, b))
//   input 3 "residual" (optional)  -> output = silu(conv(x, w, b)) + residual, residual having
//                                     exactly the output's shape (no broadcast).
// An absent bias with a residual is written as the empty input name "" at position 2.
#ifndef YOLOPIPE_GRAPH_FUSE_H_
#define YOLOPIPE_GRAPH_FUSE_H_

#include "absl/status/status.h"
#include "graph/ir.h"

namespace yolopipe {

inline constexpr char kActivationAttr[] = "activation";
inline constexpr char kActivationSilu[] = "silu";
inline constexpr int kConvResidualInput = 3;

// Conv -> Sigmoid -> Mul(x, Sigmoid(x)) (either input order), where x is the Conv output and
// neither x nor the Sigmoid output has another consumer or is a graph output, becomes one Conv
// with activation = "silu". The Conv keeps its name; its output takes the Mul's output name.
// Returns the number of fusions through `fused` when non-null.
absl::Status FuseConvSilu(Graph* graph, int* fused = nullptr);

// Add(y, r) or Add(r, y), where y is the output of a silu-fused Conv without residual, y is read
// only by that Add and is not a graph output, and r has exactly y's dtype and fully known shape
// (no broadcast), becomes input 3 of the Conv; the Conv's output takes the Add's output name.
// Additions whose shapes are not known yet are left alone (PrepareForExecution retries after
// binding the input shape). When both Add inputs qualify, the one produced later is the Conv.
absl::Status FuseConvResidual(Graph* graph, int* fused = nullptr);

// FuseConvSilu, then FuseConvResidual; keeps the graph topologically sorted and drops the values
// of the removed intermediate tensors.
absl::Status FuseConvActivations(Graph* graph);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_FUSE_H_
