#include "ops/reference/gather.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class GatherKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis", 0);
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 2, 2));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 1, "indices", {DType::kInt64, DType::kInt32}));
    const Shape& data = inputs[0].shape;
    const int rank = static_cast<int>(data.size());
    if (rank == 0) return Error("data must have rank >= 1, got a scalar");
    YP_ASSIGN_OR_RETURN(axis_, NormalizeAxis(spec_, axis_attr_, rank,
                                             absl::StrCat("axis (data ", DescString(inputs[0]),
                                                          ")")));
    if (const Tensor* indices = FindConstant(spec_, 1)) {
      for (int64_t i = 0; i < indices->num_elements(); ++i) {
        YP_RETURN_IF_ERROR(CheckIndex(indices->GetAsInt64(i), data[axis_]));
      }
    }
    Shape out(data.begin(), data.begin() + axis_);
    out.insert(out.end(), inputs[1].shape.begin(), inputs[1].shape.end());
    out.insert(out.end(), data.begin() + axis_ + 1, data.end());
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& data = inputs[0];
    const Tensor& indices = inputs[1];
    Tensor& y = outputs[0];
    const size_t size = DTypeSize(data.dtype());
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis_; ++d) outer *= data.dim(d);
    for (int d = axis_ + 1; d < data.rank(); ++d) inner *= data.dim(d);
    const int64_t axis_dim = data.dim(axis_);
    const int64_t count = indices.num_elements();
    const size_t block = static_cast<size_t>(inner) * size;
    const char* src = static_cast<const char*>(data.raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    for (int64_t i = 0; i < count; ++i) {
      int64_t index = indices.GetAsInt64(i);
      YP_RETURN_IF_ERROR(CheckIndex(index, axis_dim));
      if (index < 0) index += axis_dim;
      for (int64_t o = 0; o < outer; ++o) {
        std::memcpy(dst + (o * count + i) * block, src + (o * axis_dim + index) * block, block);
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status CheckIndex(int64_t index, int64_t dim) const {
    if (index < -dim || index >= dim) {
      return Error(absl::StrCat("index ", index, " is out of range for axis ", axis_,
                                " of size ", dim));
    }
    return absl::OkStatus();
  }

  int64_t axis_attr_ = 0;
  int axis_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceGather(const KernelSpec& spec) {
  return CreateValidatedKernel<GatherKernel>(spec);
}

YP_REGISTER_KERNEL(RefGather, "Gather", Backend::kReference, CreateReferenceGather);

}  // namespace yolopipe::ops
