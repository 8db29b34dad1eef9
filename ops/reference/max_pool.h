// Reference 2-D MaxPool (Backend::kReference), ONNX semantics: X (N, C, H, W) float32; attrs
// kernel_shape (required), strides, pads [top, left, bottom, right], dilations, ceil_mode,
// auto_pad, storage_order (0 only). Padding never wins the max (it acts as -infinity). Only the
// first output (Y) is supported; the optional Indices output is rejected.
#ifndef YOLOPIPE_OPS_REFERENCE_MAX_POOL_H_
#define YOLOPIPE_OPS_REFERENCE_MAX_POOL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

struct PoolParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool ceil_mode = false;
  std::string auto_pad = "NOTSET";
};

struct PoolGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t oh = 0, ow = 0;
  int64_t pad_top = 0, pad_left = 0;  // resolved (auto_pad applied)
  PoolParams params;

  Shape output_shape() const { return {n, c, oh, ow}; }
};

// Attribute validation shared with ops/cpu.
absl::StatusOr<PoolParams> ParsePoolParams(const KernelSpec& spec);
// Input checks (one float32 4-D input, one output) and output size. Layout is not checked.
absl::StatusOr<PoolGeometry> ComputePoolGeometry(const KernelSpec& spec, const PoolParams& params,
                                                 absl::Span<const TensorDesc> inputs);

// Naive max pooling over plain NCHW data.
void ReferenceMaxPool2D(const PoolGeometry& g, const float* x, float* y);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceMaxPool(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_MAX_POOL_H_
