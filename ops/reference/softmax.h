// Reference Softmax (Backend::kReference), ONNX opset 13 semantics: softmax along one axis
// (attribute `axis`, default -1), float32 or float64, numerically stable (the maximum along the
// axis is subtracted before exponentiating). The opset < 13 semantics (coerce to 2-D at `axis`)
// coincide when axis is the last axis; for other axes an importer of an older model must rewrite
// the node.
#ifndef YOLOPIPE_OPS_REFERENCE_SOFTMAX_H_
#define YOLOPIPE_OPS_REFERENCE_SOFTMAX_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSoftmax(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_SOFTMAX_H_
