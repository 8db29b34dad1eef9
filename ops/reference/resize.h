// Reference Resize (Backend::kReference), ONNX opset 11..18 semantics, mode "nearest" only:
//   inputs   X (any rank, any dtype), roi (ignored; only tf_crop_and_resize uses it, which is
//            unsupported), scales (float), sizes (int64); exactly one of scales and sizes must be
//            given (an empty constant counts as absent), and it must be a constant.
//   attrs    coordinate_transformation_mode: half_pixel (default), asymmetric, align_corners,
//            pytorch_half_pixel, tf_half_pixel_for_nn;
//            nearest_mode: round_prefer_floor (default), round_prefer_ceil, floor, ceil;
//            axes (opset 18) restricts scales/sizes to the listed axes;
//            keep_aspect_ratio_policy must be "stretch".
//   Modes linear and cubic are rejected as unsupported.
// Output dimension d is floor(X.shape[d] * scales[d]) or sizes[d]. The helpers below are shared
// with ops/cpu: PlanResize precomputes, per axis, the input index each output index reads.
#ifndef YOLOPIPE_OPS_REFERENCE_RESIZE_H_
#define YOLOPIPE_OPS_REFERENCE_RESIZE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// Resize attributes and constant scales/sizes after validation.
struct ResizeParams {
  std::string coordinate_mode = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  std::vector<int64_t> axes;     // empty: all axes
  std::vector<float> scales;     // one per entry of axes (or per input axis); empty if sizes
  std::vector<int64_t> sizes;    // one per entry of axes (or per input axis); empty if scales
};

// For each axis, the input index read by each output index.
struct ResizePlan {
  Shape output_shape;
  std::vector<std::vector<int64_t>> index_maps;
};

absl::StatusOr<ResizeParams> ParseResizeParams(const KernelSpec& spec);
// Checks X against the params and computes the output shape and index maps.
absl::StatusOr<ResizePlan> PlanResize(const KernelSpec& spec, const ResizeParams& params,
                                      absl::Span<const TensorDesc> inputs);

// Nearest-neighbour source index of output index `out_index` on one axis (already clamped to
// [0, in_size - 1]); `scale` is the scale given (or out_size / in_size for sizes).
int64_t NearestSourceIndex(const std::string& coordinate_mode, const std::string& nearest_mode,
                           int64_t out_index, int64_t in_size, int64_t out_size, float scale);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceResize(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_RESIZE_H_
