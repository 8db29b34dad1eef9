#include "ops/reference/slice.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class SliceKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    const bool from_attributes = spec_.attrs.Has("starts");
    if (from_attributes) {  // opset 1-9
      auto starts = spec_.attrs.GetInts("starts");
      auto ends = spec_.attrs.GetInts("ends");
      auto axes = spec_.attrs.GetInts("axes", {});
      for (const absl::Status& s : {starts.status(), ends.status(), axes.status()}) {
        if (!s.ok()) return Error(std::string(s.message()));
      }
      starts_ = *starts;
      ends_ = *ends;
      axes_ = *axes;
    } else {
      if (!HasInput(spec_.inputs, 1) || !HasInput(spec_.inputs, 2)) {
        return Error("inputs 'starts' and 'ends' are required");
      }
      YP_ASSIGN_OR_RETURN(starts_, ConstantInt64s(spec_, 1, "starts"));
      YP_ASSIGN_OR_RETURN(ends_, ConstantInt64s(spec_, 2, "ends"));
      if (HasInput(spec_.inputs, 3)) {
        YP_ASSIGN_OR_RETURN(axes_, ConstantInt64s(spec_, 3, "axes"));
      }
      if (HasInput(spec_.inputs, 4)) {
        YP_ASSIGN_OR_RETURN(steps_, ConstantInt64s(spec_, 4, "steps"));
      }
    }
    if (starts_.size() != ends_.size()) {
      return Error(absl::StrCat("starts ", IntsString(starts_), " and ends ", IntsString(ends_),
                                " have different lengths"));
    }
    if (!axes_.empty() && axes_.size() != starts_.size()) {
      return Error(absl::StrCat("axes ", IntsString(axes_), " and starts ", IntsString(starts_),
                                " have different lengths"));
    }
    if (!steps_.empty() && steps_.size() != starts_.size()) {
      return Error(absl::StrCat("steps ", IntsString(steps_), " and starts ", IntsString(starts_),
                                " have different lengths"));
    }
    for (int64_t s : steps_) {
      if (s == 0) return Error(absl::StrCat("steps must be non-zero, got ", IntsString(steps_)));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, spec_.attrs.Has("starts") ? 1 : 3, 5));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    const Shape& in = inputs[0].shape;
    const int rank = static_cast<int>(in.size());
    start_.assign(rank, 0);
    step_.assign(rank, 1);
    Shape out = in;
    std::vector<bool> seen(rank, false);
    for (size_t i = 0; i < starts_.size(); ++i) {
      const int64_t axis_value = axes_.empty() ? static_cast<int64_t>(i) : axes_[i];
      YP_ASSIGN_OR_RETURN(int axis, NormalizeAxis(spec_, axis_value, rank,
                                                  absl::StrCat("axis (input ",
                                                               DescString(inputs[0]), ")")));
      if (seen[axis]) return Error(absl::StrCat("axes ", IntsString(axes_), " repeat axis ", axis));
      seen[axis] = true;
      const int64_t dim = in[axis];
      // Clamping INT64_MIN keeps -step representable; it walks past any dimension either way.
      const int64_t step =
          std::max(steps_.empty() ? 1 : steps_[i], -std::numeric_limits<int64_t>::max());
      int64_t start = starts_[i];
      int64_t end = ends_[i];
      if (start < 0) start += dim;
      if (end < 0) end += dim;
      int64_t count = 0;
      if (dim == 0) {
        start = 0;
      } else if (step > 0) {
        start = std::clamp<int64_t>(start, 0, dim);
        end = std::clamp<int64_t>(end, 0, dim);
        if (end > start) count = (end - start - 1) / step + 1;
      } else {
        start = std::clamp<int64_t>(start, 0, dim - 1);
        end = std::clamp<int64_t>(end, -1, dim - 1);
        if (start > end) count = (start - end - 1) / -step + 1;
      }
      start_[axis] = start;
      step_[axis] = count > 1 ? step : 1;  // a huge step only matters for one element
      out[axis] = count;
    }
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    const size_t size = DTypeSize(x.dtype());
    const Shape& out = y.shape();
    const int rank = static_cast<int>(out.size());
    const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
    // Input offset of the output element at `index` = sum (start + index * step) * stride.
    int64_t base = 0;
    std::vector<int64_t> strides(rank);
    for (int d = 0; d < rank; ++d) {
      base += start_[d] * in_strides[d];
      strides[d] = step_[d] * in_strides[d];
    }
    const int64_t total = NumElements(out);
    std::vector<int64_t> index(rank, 0);
    int64_t offset = base;
    for (int64_t o = 0; o < total; ++o) {
      CopyElement(x.raw_data(), offset, y.raw_data(), o, size);
      for (int d = rank - 1; d >= 0; --d) {
        offset += strides[d];
        if (++index[d] < out[d]) break;
        offset -= strides[d] * out[d];
        index[d] = 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  std::vector<int64_t> starts_, ends_, axes_, steps_;
  std::vector<int64_t> start_, step_;  // per input axis, from the last Reshape
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSlice(const KernelSpec& spec) {
  return CreateValidatedKernel<SliceKernel>(spec);
}

YP_REGISTER_KERNEL(RefSlice, "Slice", Backend::kReference, CreateReferenceSlice);

}  // namespace yolopipe::ops
