// Reference Concat and Split (Backend::kReference), any dtype (pure data movement), ONNX
// semantics:
//   Concat  attr axis (required, negative allowed); inputs of equal dtype and rank whose
//           dimensions agree except along axis.
//   Split   attr axis (default 0); sizes from the `split` input (opset 13+, must be a constant),
//           or the `split` attribute (opset < 13); without sizes, an equal split into the node's
//           outputs, which must divide the dimension unless the opset 18 attribute num_outputs is
//           set (then every part has ceil(dim / n) elements and the last one the rest).
// The shape helpers are shared with ops/cpu.
#ifndef YOLOPIPE_OPS_REFERENCE_CONCAT_SPLIT_H_
#define YOLOPIPE_OPS_REFERENCE_CONCAT_SPLIT_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// Output shape of Concat along attribute axis `axis_attr`; *axis receives the normalized axis.
absl::StatusOr<Shape> ConcatOutputShape(const KernelSpec& spec, int64_t axis_attr,
                                        absl::Span<const TensorDesc> inputs, int* axis);

struct SplitParams {
  int64_t axis = 0;             // as given (may be negative)
  std::vector<int64_t> sizes;   // explicit sizes; empty: equal split
  bool has_num_outputs = false; // opset 18 num_outputs given: uneven last part allowed
};

// Reads axis, the split input or attribute, and num_outputs (which must match spec.num_outputs).
absl::StatusOr<SplitParams> ParseSplitParams(const KernelSpec& spec);
// The size of each output along the split axis for `input`; *axis receives the normalized axis.
absl::StatusOr<std::vector<int64_t>> ComputeSplitSizes(const KernelSpec& spec,
                                                       const SplitParams& params,
                                                       const TensorDesc& input, int* axis);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConcat(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSplit(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_CONCAT_SPLIT_H_
