#include "ops/cpu/concat_split.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/concat_split.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Rows shorter than this many bytes are not worth a thread each.
constexpr int64_t kMinBytesPerThread = 64 * 1024;

bool AnyNhwc(absl::Span<const TensorDesc> inputs) {
  for (const TensorDesc& d : inputs) {
    if (d.present() && d.layout == Layout::kNHWC) return true;
  }
  return false;
}

// Both kernels view a tensor as `outer` rows; along the concat/split axis each tensor owns a
// contiguous run of `row_bytes` within every row. Plain layout: outer = prod(dims[:axis]).
// NHWC along channels: outer = N*H*W, run = C_i floats.
class CpuConcatKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis");
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(Shape out, ConcatOutputShape(spec_, axis_attr_, inputs, &axis_));
    nhwc_ = AnyNhwc(inputs);
    if (nhwc_) {
      if (out.size() != 4 || axis_ != 1 || inputs[0].dtype != DType::kFloat32) {
        return Error(absl::StrCat("channels-last inputs can only be concatenated along the "
                                  "channel axis of 4-D float32 tensors; got axis ", axis_attr_,
                                  " and output ", ShapeToString(out)));
      }
    }
    return std::vector<TensorDesc>{
        TensorDesc{inputs[0].dtype, out, nhwc_ ? Layout::kNHWC : Layout::kPlain}};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    Tensor& y = outputs[0];
    if (nhwc_) {
      RunNhwc(ctx, inputs, y);
      return absl::OkStatus();
    }
    const size_t size = DTypeSize(y.dtype());
    int64_t outer = 1;
    for (int d = 0; d < axis_; ++d) outer *= y.dim(d);
    if (outer == 0 || y.num_elements() == 0) return absl::OkStatus();
    const size_t out_row = static_cast<size_t>(y.num_elements() / outer) * size;
    char* dst = static_cast<char*>(y.raw_data());
    ParallelFor(ctx.num_threads, outer,
                std::max<int64_t>(1, kMinBytesPerThread / static_cast<int64_t>(out_row)),
                [&](int64_t begin, int64_t end) {
                  size_t column = 0;
                  for (const Tensor& x : inputs) {
                    const size_t row = static_cast<size_t>(x.num_elements() / outer) * size;
                    const char* src = static_cast<const char*>(x.raw_data());
                    if (row > 0) {
                      for (int64_t o = begin; o < end; ++o) {
                        std::memcpy(dst + o * out_row + column, src + o * row, row);
                      }
                    }
                    column += row;
                  }
                });
    return absl::OkStatus();
  }

 private:
  void RunNhwc(const RunContext& ctx, absl::Span<const Tensor> inputs, Tensor& y) const {
    const int64_t n = y.dim(0), c_out = y.dim(1), hw = y.dim(2) * y.dim(3);
    float* dst = y.data<float>();
    ParallelFor(ctx.num_threads, n * hw,
                std::max<int64_t>(1, kMinBytesPerThread / (c_out * 4)),
                [&](int64_t begin, int64_t end) {
                  int64_t column = 0;
                  for (const Tensor& x : inputs) {
                    const int64_t c = x.dim(1);
                    const float* src = x.data<float>();
                    if (x.layout() == Layout::kNHWC) {
                      for (int64_t p = begin; p < end; ++p) {
                        std::memcpy(dst + p * c_out + column, src + p * c, c * sizeof(float));
                      }
                    } else {  // plain: element (b, ch, pixel) sits at (b * c + ch) * hw + pixel
                      for (int64_t p = begin; p < end; ++p) {
                        const int64_t b = p / hw, pixel = p % hw;
                        for (int64_t ch = 0; ch < c; ++ch) {
                          dst[p * c_out + column + ch] = src[(b * c + ch) * hw + pixel];
                        }
                      }
                    }
                    column += c;
                  }
                });
  }

  int64_t axis_attr_ = 0;
  int axis_ = 0;
  bool nhwc_ = false;
};

class CpuSplitKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseSplitParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 2));
    YP_RETURN_IF_ERROR(CheckKnown(spec_, inputs));
    if (HasInput(inputs, 1) && inputs[1].layout != Layout::kPlain) {
      return Error("input 'split' must be in plain layout");
    }
    YP_ASSIGN_OR_RETURN(sizes_, ComputeSplitSizes(spec_, params_, inputs[0], &axis_));
    const TensorDesc& x = inputs[0];
    if (x.layout == Layout::kNHWC && (x.shape.size() != 4 || axis_ != 1 ||
                                      x.dtype != DType::kFloat32)) {
      return Error(absl::StrCat("a channels-last input can only be split along the channel axis "
                                "of a 4-D float32 tensor; got axis ", params_.axis,
                                " of ", DescString(x)));
    }
    std::vector<TensorDesc> outs;
    for (int64_t s : sizes_) {
      TensorDesc d = x;
      d.shape[axis_] = s;
      outs.push_back(d);
    }
    return outs;
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    const size_t size = DTypeSize(x.dtype());
    // NHWC along channels is the plain scheme with rows = pixels.
    int64_t outer = 1;
    if (x.layout() == Layout::kNHWC) {
      outer = x.dim(0) * x.dim(2) * x.dim(3);
    } else {
      for (int d = 0; d < axis_; ++d) outer *= x.dim(d);
    }
    if (outer == 0 || x.num_elements() == 0) return absl::OkStatus();
    const size_t in_row = static_cast<size_t>(x.num_elements() / outer) * size;
    const char* src = static_cast<const char*>(x.raw_data());
    ParallelFor(ctx.num_threads, outer,
                std::max<int64_t>(1, kMinBytesPerThread / static_cast<int64_t>(in_row)),
                [&](int64_t begin, int64_t end) {
                  size_t column = 0;
                  for (Tensor& y : outputs) {
                    const size_t row = static_cast<size_t>(y.num_elements() / outer) * size;
                    char* dst = static_cast<char*>(y.raw_data());
                    if (row > 0) {
                      for (int64_t o = begin; o < end; ++o) {
                        std::memcpy(dst + o * row, src + o * in_row + column, row);
                      }
                    }
                    column += row;
                  }
                });
    return absl::OkStatus();
  }

 private:
  SplitParams params_;
  std::vector<int64_t> sizes_;
  int axis_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuConcat(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuConcatKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSplit(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuSplitKernel>(spec);
}

YP_REGISTER_KERNEL(CpuConcat, "Concat", Backend::kCpu, CreateCpuConcat,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{}});
YP_REGISTER_KERNEL(CpuSplit, "Split", Backend::kCpu, CreateCpuSplit,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0}});

}  // namespace yolopipe::ops
