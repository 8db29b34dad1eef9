#include "ops/cpu/layout_conversion.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/matrix_transpose.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/kernel_util.h"
#include "ops/reference/layout_conversion.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Bytes of one (image, pixel block) work item: large enough that the per-item overhead vanishes,
// small enough that an item's source and destination stay in L2 and both threads get many items.
constexpr int64_t kBlockBytes = 64 << 10;

// Pixels per work item for `channels` channels: a multiple of 16 (whole tiles of the transpose).
int64_t PixelsPerBlock(int64_t channels) {
  const int64_t pixels = kBlockBytes / static_cast<int64_t>(sizeof(float)) / channels;
  return std::max<int64_t>(16, pixels / 16 * 16);
}

class CpuLayoutConversionKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(target_, LayoutConversionTarget(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(TensorDesc out, LayoutConversionOutput(spec_, target_, inputs));
    return std::vector<TensorDesc>{out};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    if (x.layout() == y.layout()) {
      return Error(absl::StrCat("input ", x.DebugString(), " is already ",
                                LayoutName(y.layout())));
    }
    const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
    if (x.num_elements() == 0) return absl::OkStatus();
    if (c == 1 || hw == 1) {  // both layouts hold the same bytes
      ParallelMemcpy(ctx.num_threads, y.raw_data(), x.raw_data(), x.bytes());
      return absl::OkStatus();
    }
    const float* src = x.data<float>();
    float* dst = y.data<float>();
    const bool to_nhwc = y.layout() == Layout::kNHWC;
    const int64_t block = PixelsPerBlock(c);
    const int64_t blocks_per_image = (hw + block - 1) / block;
    const int64_t block_bytes = block * c * static_cast<int64_t>(sizeof(float));
    ParallelFor(ctx.num_threads, n * blocks_per_image,
                std::max<int64_t>(1, (256 << 10) / block_bytes),
                [&](int64_t begin, int64_t end) {
                  for (int64_t item = begin; item < end; ++item) {
                    const int64_t b = item / blocks_per_image;
                    const int64_t p0 = item % blocks_per_image * block;
                    const int64_t pixels = std::min(hw, p0 + block) - p0;
                    const float* s = src + b * c * hw;
                    float* d = dst + b * c * hw;
                    if (to_nhwc) {  // (C, HW) rows of the image -> (HW, C)
                      TransposeMatrix(s + p0, hw, d + p0 * c, c, c, pixels, sizeof(float));
                    } else {  // (HW, C) -> (C, HW)
                      TransposeMatrix(s + p0 * c, c, d + p0, hw, pixels, c, sizeof(float));
                    }
                  }
                });
    return absl::OkStatus();
  }

 private:
  Layout target_ = Layout::kNHWC;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuLayoutConversion(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuLayoutConversionKernel>(spec);
}

YP_REGISTER_KERNEL(CpuLayoutConversion, kLayoutConversionOp, Backend::kCpu,
                   CreateCpuLayoutConversion);

}  // namespace yolopipe::ops
