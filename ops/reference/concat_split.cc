#include "ops/reference/concat_split.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class ConcatKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis");
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(Shape out, ConcatOutputShape(spec_, axis_attr_, inputs, &axis_));
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    Tensor& y = outputs[0];
    const size_t size = DTypeSize(y.dtype());
    int64_t outer = 1;
    for (int d = 0; d < axis_; ++d) outer *= y.dim(d);
    const size_t out_row = static_cast<size_t>(y.num_elements() / std::max<int64_t>(outer, 1)) * size;
    char* dst = static_cast<char*>(y.raw_data());
    size_t column = 0;
    for (const Tensor& x : inputs) {
      const size_t row = outer > 0 ? static_cast<size_t>(x.num_elements() / outer) * size : 0;
      const char* src = static_cast<const char*>(x.raw_data());
      for (int64_t o = 0; o < outer; ++o) {
        if (row > 0) std::memcpy(dst + o * out_row + column, src + o * row, row);
      }
      column += row;
    }
    return absl::OkStatus();
  }

 private:
  int64_t axis_attr_ = 0;
  int axis_ = 0;
};

class SplitKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseSplitParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 2));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(sizes_, ComputeSplitSizes(spec_, params_, inputs[0], &axis_));
    std::vector<TensorDesc> outs;
    for (int64_t s : sizes_) {
      TensorDesc d = inputs[0];
      d.shape[axis_] = s;
      outs.push_back(d);
    }
    return outs;
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    const size_t size = DTypeSize(x.dtype());
    int64_t outer = 1;
    for (int d = 0; d < axis_; ++d) outer *= x.dim(d);
    if (outer == 0) return absl::OkStatus();
    const size_t in_row = static_cast<size_t>(x.num_elements() / outer) * size;
    const char* src = static_cast<const char*>(x.raw_data());
    size_t column = 0;
    for (Tensor& y : outputs) {
      const size_t row = static_cast<size_t>(y.num_elements() / outer) * size;
      char* dst = static_cast<char*>(y.raw_data());
      for (int64_t o = 0; o < outer; ++o) {
        if (row > 0) std::memcpy(dst + o * row, src + o * in_row + column, row);
      }
      column += row;
    }
    return absl::OkStatus();
  }

 private:
  SplitParams params_;
  std::vector<int64_t> sizes_;
  int axis_ = 0;
};

}  // namespace

absl::StatusOr<Shape> ConcatOutputShape(const KernelSpec& spec, int64_t axis_attr,
                                        absl::Span<const TensorDesc> inputs, int* axis) {
  if (inputs.empty()) return KernelError(spec, "needs at least one input");
  YP_RETURN_IF_ERROR(CheckInputCount(spec, inputs, static_cast<int>(inputs.size()),
                                     static_cast<int>(inputs.size())));
  YP_RETURN_IF_ERROR(CheckKnown(spec, inputs));
  const TensorDesc& first = inputs[0];
  const int rank = static_cast<int>(first.shape.size());
  if (rank == 0) return KernelError(spec, "cannot concatenate scalars");
  YP_ASSIGN_OR_RETURN(*axis, NormalizeAxis(spec, axis_attr, rank, "axis"));
  Shape out = first.shape;
  out[*axis] = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorDesc& d = inputs[i];
    if (d.dtype != first.dtype) {
      return KernelError(spec, absl::StrCat("input ", i, " ", DescString(d),
                                            " has another dtype than input 0 ",
                                            DescString(first)));
    }
    if (static_cast<int>(d.shape.size()) != rank) {
      return KernelError(spec, absl::StrCat("input ", i, " ", DescString(d),
                                            " has another rank than input 0 ",
                                            DescString(first)));
    }
    for (int k = 0; k < rank; ++k) {
      if (k != *axis && d.shape[k] != first.shape[k]) {
        return KernelError(spec, absl::StrCat("input ", i, " ", DescString(d),
                                              " differs from input 0 ", DescString(first),
                                              " in dimension ", k, " (concat axis is ", *axis,
                                              ")"));
      }
    }
    out[*axis] += d.shape[*axis];
  }
  return out;
}

absl::StatusOr<SplitParams> ParseSplitParams(const KernelSpec& spec) {
  SplitParams p;
  auto axis = spec.attrs.GetInt("axis", 0);
  if (!axis.ok()) return KernelError(spec, std::string(axis.status().message()));
  p.axis = *axis;
  if (spec.num_outputs < 1) {
    return KernelError(spec, absl::StrCat("needs at least one output, node has ",
                                          spec.num_outputs));
  }
  if (spec.attrs.Has("num_outputs")) {
    auto n = spec.attrs.GetInt("num_outputs");
    if (!n.ok()) return KernelError(spec, std::string(n.status().message()));
    if (*n != spec.num_outputs) {
      return KernelError(spec, absl::StrCat("attribute num_outputs is ", *n, " but the node has ",
                                            spec.num_outputs, " outputs"));
    }
    p.has_num_outputs = true;
  }
  const bool has_input =
      HasInput(spec.inputs, 1) &&
      !(IsFullyKnown(spec.inputs[1].shape) && NumElements(spec.inputs[1].shape) == 0);
  if (has_input) {
    YP_ASSIGN_OR_RETURN(p.sizes, ConstantInt64s(spec, 1, "split"));
  } else if (spec.attrs.Has("split")) {
    auto sizes = spec.attrs.GetInts("split");
    if (!sizes.ok()) return KernelError(spec, std::string(sizes.status().message()));
    p.sizes = *sizes;
  }
  if (!p.sizes.empty()) {
    if (p.has_num_outputs) {
      return KernelError(spec, "give either split sizes or num_outputs, not both");
    }
    if (static_cast<int>(p.sizes.size()) != spec.num_outputs) {
      return KernelError(spec, absl::StrCat("split ", IntsString(p.sizes), " has ",
                                            p.sizes.size(), " entries but the node has ",
                                            spec.num_outputs, " outputs"));
    }
    for (int64_t s : p.sizes) {
      if (s < 0) {
        return KernelError(spec, absl::StrCat("split sizes must be >= 0, got ",
                                              IntsString(p.sizes)));
      }
    }
  }
  return p;
}

absl::StatusOr<std::vector<int64_t>> ComputeSplitSizes(const KernelSpec& spec,
                                                       const SplitParams& params,
                                                       const TensorDesc& input, int* axis) {
  const int rank = static_cast<int>(input.shape.size());
  if (rank == 0) return KernelError(spec, "cannot split a scalar");
  YP_ASSIGN_OR_RETURN(*axis, NormalizeAxis(spec, params.axis, rank,
                                           absl::StrCat("axis (input ", DescString(input), ")")));
  const int64_t dim = input.shape[*axis];
  if (!params.sizes.empty()) {
    int64_t sum = 0;
    for (int64_t s : params.sizes) sum += s;
    if (sum != dim) {
      return KernelError(spec, absl::StrCat("split sizes ", IntsString(params.sizes), " sum to ",
                                            sum, " but dimension ", *axis, " of input ",
                                            DescString(input), " is ", dim));
    }
    return params.sizes;
  }
  const int64_t n = spec.num_outputs;
  std::vector<int64_t> sizes(n);
  if (dim % n == 0) {
    std::fill(sizes.begin(), sizes.end(), dim / n);
    return sizes;
  }
  const int64_t chunk = (dim + n - 1) / n;
  if (!params.has_num_outputs || chunk * (n - 1) >= dim) {
    return KernelError(spec, absl::StrCat("cannot split dimension ", *axis, " (", dim,
                                          ") of input ", DescString(input), " into ", n,
                                          " equal parts"));
  }
  std::fill(sizes.begin(), sizes.end(), chunk);
  sizes.back() = dim - chunk * (n - 1);
  return sizes;
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConcat(const KernelSpec& spec) {
  return CreateValidatedKernel<ConcatKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSplit(const KernelSpec& spec) {
  return CreateValidatedKernel<SplitKernel>(spec);
}

YP_REGISTER_KERNEL(RefConcat, "Concat", Backend::kReference, CreateReferenceConcat);
YP_REGISTER_KERNEL(RefSplit, "Split", Backend::kReference, CreateReferenceSplit);

}  // namespace yolopipe::ops
