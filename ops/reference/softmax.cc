#include "ops/reference/softmax.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

template <typename T>
void SoftmaxAlongAxis(const T* x, T* y, int64_t outer, int64_t axis_size, int64_t inner) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const T* xs = x + o * axis_size * inner + i;
      T* ys = y + o * axis_size * inner + i;
      T max_value = xs[0];
      for (int64_t k = 1; k < axis_size; ++k) max_value = std::max(max_value, xs[k * inner]);
      T sum = 0;
      for (int64_t k = 0; k < axis_size; ++k) {
        ys[k * inner] = std::exp(xs[k * inner] - max_value);
        sum += ys[k * inner];
      }
      for (int64_t k = 0; k < axis_size; ++k) ys[k * inner] /= sum;
    }
  }
}

class SoftmaxKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis", -1);
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "input", {DType::kFloat32, DType::kFloat64}));
    const Shape& s = inputs[0].shape;
    const int rank = static_cast<int>(s.size());
    if (rank == 0) return Error("input must have rank >= 1, got a scalar");
    YP_ASSIGN_OR_RETURN(const int axis,
                        NormalizeAxis(spec_, axis_attr_, rank,
                                      absl::StrCat("axis (input ", ShapeToString(s), ")")));
    outer_ = 1;
    inner_ = 1;
    for (int d = 0; d < axis; ++d) outer_ *= s[d];
    for (int d = axis + 1; d < rank; ++d) inner_ *= s[d];
    axis_size_ = s[axis];
    return std::vector<TensorDesc>{inputs[0]};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (axis_size_ == 0) return absl::OkStatus();
    if (inputs[0].dtype() == DType::kFloat32) {
      SoftmaxAlongAxis(inputs[0].data<float>(), outputs[0].data<float>(), outer_, axis_size_,
                       inner_);
    } else {
      SoftmaxAlongAxis(inputs[0].data<double>(), outputs[0].data<double>(), outer_, axis_size_,
                       inner_);
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_attr_ = -1;
  int64_t outer_ = 1, axis_size_ = 1, inner_ = 1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSoftmax(const KernelSpec& spec) {
  return CreateValidatedKernel<SoftmaxKernel>(spec);
}

YP_REGISTER_KERNEL(RefSoftmax, "Softmax", Backend::kReference, CreateReferenceSoftmax);

}  // namespace yolopipe::ops
