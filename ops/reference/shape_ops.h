// Reference shape-manipulation kernels (Backend::kReference), any dtype, ONNX semantics:
//   Reshape    data, shape (constant int64; opset < 5: attribute `shape`); 0 copies the input
//              dimension unless allowzero=1; one -1 is inferred; the element count must match.
//   Flatten    attr axis (default 1, in [-rank, rank]) -> 2-D (prod(dims[:axis]), prod(dims[axis:])).
//   Squeeze    axes from input 1 (opset 13+, constant) or attribute (older); without axes, every
//              dimension of size 1 is removed; a squeezed dimension must be 1.
//   Unsqueeze  axes from input 1 (opset 13+, constant) or attribute (older), relative to the
//              output rank; repeats rejected.
//   Shape      attrs start, end (opset 15; clamped like ONNX); output int64 (1-D). Only the input
//              description is used, so its input may be in any layout.
//   Identity   copy.
//   Expand     input, shape (constant int64): bidirectional broadcast of the input to the shape.
#ifndef YOLOPIPE_OPS_REFERENCE_SHAPE_OPS_H_
#define YOLOPIPE_OPS_REFERENCE_SHAPE_OPS_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// The output shape of Reshape(input_shape, shape_values) under ONNX rules; errors name both shapes.
absl::StatusOr<Shape> ComputeReshapeShape(const KernelSpec& spec, const Shape& input_shape,
                                          const std::vector<int64_t>& shape_values,
                                          bool allow_zero);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceReshape(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceFlatten(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSqueeze(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceUnsqueeze(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceShape(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceIdentity(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceExpand(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_SHAPE_OPS_H_
