#include "ops/reference/shape_ops.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Kernels whose output holds the input's bytes unchanged (only the shape differs).
class CopyKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (outputs[0].bytes() > 0) {
      std::memcpy(outputs[0].raw_data(), inputs[0].raw_data(), outputs[0].bytes());
    }
    return absl::OkStatus();
  }

 protected:
  // Common input checks: `required` present inputs, at most `max_inputs`, plain, known shapes.
  absl::Status CheckInputs(absl::Span<const TensorDesc> inputs, int required,
                           int max_inputs) const {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, required, max_inputs));
    return CheckPlainAndKnown(spec_, inputs);
  }
};

class ReshapeKernel : public CopyKernel {
 public:
  using CopyKernel::CopyKernel;

  absl::Status Init() override {
    auto allow_zero = spec_.attrs.GetInt("allowzero", 0);
    if (!allow_zero.ok()) return Error(std::string(allow_zero.status().message()));
    allow_zero_ = *allow_zero != 0;
    if (spec_.attrs.Has("shape")) {  // opset < 5
      auto shape = spec_.attrs.GetInts("shape");
      if (!shape.ok()) return Error(std::string(shape.status().message()));
      shape_ = *shape;
      from_attribute_ = true;
    } else {
      YP_ASSIGN_OR_RETURN(shape_, ConstantInt64s(spec_, 1, "shape"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputs(inputs, from_attribute_ ? 1 : 2, 2));
    YP_ASSIGN_OR_RETURN(Shape out,
                        ComputeReshapeShape(spec_, inputs[0].shape, shape_, allow_zero_));
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

 private:
  std::vector<int64_t> shape_;
  bool allow_zero_ = false;
  bool from_attribute_ = false;
};

class FlattenKernel : public CopyKernel {
 public:
  using CopyKernel::CopyKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis", 1);
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputs(inputs, 1, 1));
    const Shape& in = inputs[0].shape;
    const int rank = static_cast<int>(in.size());
    // Flatten's axis may equal rank (everything goes to the first dimension).
    if (axis_attr_ < -rank || axis_attr_ > rank) {
      return Error(absl::StrCat("axis ", axis_attr_, " is out of range for input ",
                                DescString(inputs[0]), " (valid: ", -rank, "..", rank, ")"));
    }
    const int axis = static_cast<int>(axis_attr_ < 0 ? axis_attr_ + rank : axis_attr_);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= in[d];
    for (int d = axis; d < rank; ++d) inner *= in[d];
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, {outer, inner}, Layout::kPlain}};
  }

 private:
  int64_t axis_attr_ = 1;
};

// Reads `axes` from the attribute (older opsets) or constant input 1 (opset 13+).
absl::Status ReadAxes(const KernelSpec& spec, bool* has_axes, std::vector<int64_t>* axes) {
  *has_axes = false;
  if (spec.attrs.Has("axes")) {
    auto a = spec.attrs.GetInts("axes");
    if (!a.ok()) return KernelError(spec, std::string(a.status().message()));
    *axes = *a;
    *has_axes = true;
  } else if (HasInput(spec.inputs, 1)) {
    YP_ASSIGN_OR_RETURN(*axes, ConstantInt64s(spec, 1, "axes"));
    *has_axes = true;
  }
  return absl::OkStatus();
}

class SqueezeKernel : public CopyKernel {
 public:
  using CopyKernel::CopyKernel;

  absl::Status Init() override { return ReadAxes(spec_, &has_axes_, &axes_); }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputs(inputs, 1, 2));
    const Shape& in = inputs[0].shape;
    const int rank = static_cast<int>(in.size());
    std::vector<bool> squeeze(rank, false);
    if (has_axes_) {
      for (int64_t a : axes_) {
        YP_ASSIGN_OR_RETURN(int axis, NormalizeAxis(spec_, a, rank,
                                                    absl::StrCat("axes entry (input ",
                                                                 DescString(inputs[0]), ")")));
        if (in[axis] != 1) {
          return Error(absl::StrCat("cannot squeeze axis ", axis, " of input ",
                                    DescString(inputs[0]), ": its size is ", in[axis],
                                    ", not 1"));
        }
        squeeze[axis] = true;
      }
    } else {
      for (int d = 0; d < rank; ++d) squeeze[d] = in[d] == 1;
    }
    Shape out;
    for (int d = 0; d < rank; ++d) {
      if (!squeeze[d]) out.push_back(in[d]);
    }
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

 private:
  bool has_axes_ = false;
  std::vector<int64_t> axes_;
};

class UnsqueezeKernel : public CopyKernel {
 public:
  using CopyKernel::CopyKernel;

  absl::Status Init() override {
    YP_RETURN_IF_ERROR(ReadAxes(spec_, &has_axes_, &axes_));
    if (!has_axes_) return Error("axes are required (attribute, or input 1 for opset 13+)");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputs(inputs, 1, 2));
    const Shape& in = inputs[0].shape;
    const int out_rank = static_cast<int>(in.size() + axes_.size());
    std::vector<bool> inserted(out_rank, false);
    for (int64_t a : axes_) {
      YP_ASSIGN_OR_RETURN(int axis, NormalizeAxis(spec_, a, out_rank,
                                                  absl::StrCat("axes entry (input ",
                                                               DescString(inputs[0]), ")")));
      if (inserted[axis]) {
        return Error(absl::StrCat("axes ", IntsString(axes_), " repeat axis ", axis));
      }
      inserted[axis] = true;
    }
    Shape out;
    size_t next = 0;
    for (int d = 0; d < out_rank; ++d) out.push_back(inserted[d] ? 1 : in[next++]);
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

 private:
  bool has_axes_ = false;
  std::vector<int64_t> axes_;
};

class IdentityKernel : public CopyKernel {
 public:
  using CopyKernel::CopyKernel;

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputs(inputs, 1, 1));
    return std::vector<TensorDesc>{inputs[0]};
  }
};

class ShapeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto start = spec_.attrs.GetInt("start", 0);
    if (!start.ok()) return Error(std::string(start.status().message()));
    start_attr_ = *start;
    if (spec_.attrs.Has("end")) {
      auto end = spec_.attrs.GetInt("end");
      if (!end.ok()) return Error(std::string(end.status().message()));
      end_attr_ = *end;
      has_end_ = true;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckKnown(spec_, inputs));
    const int64_t rank = static_cast<int64_t>(inputs[0].shape.size());
    int64_t start = start_attr_ < 0 ? start_attr_ + rank : start_attr_;
    int64_t end = has_end_ ? (end_attr_ < 0 ? end_attr_ + rank : end_attr_) : rank;
    start_ = std::clamp<int64_t>(start, 0, rank);
    end_ = std::clamp<int64_t>(end, 0, rank);
    const int64_t count = std::max<int64_t>(0, end_ - start_);
    return std::vector<TensorDesc>{TensorDesc{DType::kInt64, {count}, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    int64_t* out = outputs[0].data<int64_t>();
    for (int64_t d = start_; d < end_; ++d) out[d - start_] = inputs[0].shape()[d];
    return absl::OkStatus();
  }

 private:
  int64_t start_attr_ = 0, end_attr_ = 0;
  bool has_end_ = false;
  int64_t start_ = 0, end_ = 0;
};

class ExpandKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(shape_, ConstantInt64s(spec_, 1, "shape"));
    for (int64_t d : shape_) {
      if (d < 0) return Error(absl::StrCat("shape ", IntsString(shape_), " has a negative entry"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 2, 2));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_ASSIGN_OR_RETURN(Shape out, BroadcastShapes(spec_, {inputs[0].shape, shape_}));
    return std::vector<TensorDesc>{TensorDesc{inputs[0].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    const size_t size = DTypeSize(x.dtype());
    std::array<std::vector<int64_t>, 1> strides = {BroadcastStrides(x.shape(), y.shape())};
    ForEachBroadcastElement<1>(y.shape(), strides,
                               [&](int64_t i, const std::array<int64_t, 1>& off) {
                                 CopyElement(x.raw_data(), off[0], y.raw_data(), i, size);
                               });
    return absl::OkStatus();
  }

 private:
  std::vector<int64_t> shape_;
};

}  // namespace

absl::StatusOr<Shape> ComputeReshapeShape(const KernelSpec& spec, const Shape& input_shape,
                                          const std::vector<int64_t>& shape_values,
                                          bool allow_zero) {
  const auto fail = [&](const std::string& why) {
    return KernelError(spec, absl::StrCat("cannot reshape input ", ShapeToString(input_shape),
                                          " (", NumElements(input_shape), " elements) to shape ",
                                          IntsString(shape_values), ": ", why));
  };
  Shape out(shape_values.size());
  int infer = -1;
  int64_t known = 1;
  bool has_zero = false;
  for (size_t i = 0; i < shape_values.size(); ++i) {
    int64_t v = shape_values[i];
    if (v == -1) {
      if (infer >= 0) return fail("more than one -1");
      infer = static_cast<int>(i);
      continue;
    }
    if (v < -1) return fail(absl::StrCat("entry ", i, " is ", v));
    if (v == 0) {
      has_zero = true;
      if (!allow_zero) {
        if (i >= input_shape.size()) {
          return fail(absl::StrCat("entry ", i, " is 0 (copy the input dimension) but the input "
                                   "has rank ", input_shape.size()));
        }
        v = input_shape[i];
      }
    }
    out[i] = v;
    // A model file can hold any shape: an overflowing product is an error, not a wrap-around.
    if (__builtin_mul_overflow(known, v, &known)) {
      return fail("the product of the entries overflows a 64-bit integer");
    }
  }
  const int64_t total = NumElements(input_shape);
  if (infer >= 0) {
    if (allow_zero && has_zero) return fail("allowzero=1 forbids mixing 0 and -1");
    if (known == 0 || total % known != 0) {
      return fail(absl::StrCat("the other entries (product ", known,
                               ") do not divide the element count"));
    }
    out[infer] = total / known;
  } else if (known != total) {
    return fail(absl::StrCat("the result would have ", known, " elements"));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceReshape(const KernelSpec& spec) {
  return CreateValidatedKernel<ReshapeKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceFlatten(const KernelSpec& spec) {
  return CreateValidatedKernel<FlattenKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceSqueeze(const KernelSpec& spec) {
  return CreateValidatedKernel<SqueezeKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceUnsqueeze(const KernelSpec& spec) {
  return CreateValidatedKernel<UnsqueezeKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceShape(const KernelSpec& spec) {
  return CreateValidatedKernel<ShapeKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceIdentity(const KernelSpec& spec) {
  return CreateValidatedKernel<IdentityKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceExpand(const KernelSpec& spec) {
  return CreateValidatedKernel<ExpandKernel>(spec);
}

YP_REGISTER_KERNEL(RefReshape, "Reshape", Backend::kReference, CreateReferenceReshape);
YP_REGISTER_KERNEL(RefFlatten, "Flatten", Backend::kReference, CreateReferenceFlatten);
YP_REGISTER_KERNEL(RefSqueeze, "Squeeze", Backend::kReference, CreateReferenceSqueeze);
YP_REGISTER_KERNEL(RefUnsqueeze, "Unsqueeze", Backend::kReference, CreateReferenceUnsqueeze);
YP_REGISTER_KERNEL(RefShape, "Shape", Backend::kReference, CreateReferenceShape);
YP_REGISTER_KERNEL(RefIdentity, "Identity", Backend::kReference, CreateReferenceIdentity);
YP_REGISTER_KERNEL(RefExpand, "Expand", Backend::kReference, CreateReferenceExpand);

}  // namespace yolopipe::ops
