#include "ops/reference/generators.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

class RangeKernel : public SpecKernel {
 public:
  // Guards against absurd constants turning into a huge allocation.
  static constexpr int64_t kMaxElements = int64_t{1} << 31;

  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, spec_.inputs, 3, 3));
    static const char* kNames[3] = {"start", "limit", "delta"};
    dtype_ = spec_.inputs[0].dtype;
    YP_RETURN_IF_ERROR(CheckDType(spec_, spec_.inputs, 0, "start",
                                  {DType::kFloat32, DType::kFloat64, DType::kInt64,
                                   DType::kInt32}));
    for (int i = 0; i < 3; ++i) {
      const Tensor* t = FindConstant(spec_, i);
      if (t == nullptr) {
        return Error(absl::StrCat("input '", kNames[i],
                                  "' must be a constant (its value decides the output shape)"));
      }
      if (t->dtype() != dtype_ || t->num_elements() != 1) {
        return Error(absl::StrCat("input '", kNames[i], "' must be a one-element ",
                                  DTypeName(dtype_), " tensor, got ", t->DebugString()));
      }
      values_[i] = *t;
    }
    if (dtype_ == DType::kFloat32 || dtype_ == DType::kFloat64) {
      const double start = values_[0].GetAsDouble(0);
      const double limit = values_[1].GetAsDouble(0);
      const double delta = values_[2].GetAsDouble(0);
      if (delta == 0.0 || !std::isfinite(delta) || !std::isfinite(start) ||
          !std::isfinite(limit)) {
        return Error(absl::StrCat("start ", start, ", limit ", limit, ", delta ", delta,
                                  " must be finite with delta != 0"));
      }
      // Compared as doubles first: converting a value beyond int64's range is undefined.
      const double steps = std::ceil((limit - start) / delta);
      if (!(steps <= static_cast<double>(kMaxElements))) {
        return Error(absl::StrCat("the output would have ", steps, " elements (limit ",
                                  kMaxElements, ")"));
      }
      count_ = steps > 0 ? static_cast<int64_t>(steps) : 0;
    } else {
      const int64_t start = values_[0].GetAsInt64(0);
      const int64_t limit = values_[1].GetAsInt64(0);
      const int64_t delta = values_[2].GetAsInt64(0);
      if (delta == 0) return Error("delta must be non-zero");
      // ceil((limit - start) / delta) in integers, rounding toward +infinity.
      int64_t span = 0;
      if (__builtin_sub_overflow(limit, start, &span) ||
          (delta == -1 && span == std::numeric_limits<int64_t>::min())) {
        return Error(absl::StrCat("limit ", limit, " - start ", start, " overflows"));
      }
      int64_t q = span / delta;
      if (span % delta != 0 && ((span > 0) == (delta > 0))) ++q;
      count_ = std::max<int64_t>(0, q);
    }
    if (count_ > kMaxElements) {
      return Error(absl::StrCat("the output would have ", count_, " elements (limit ",
                                kMaxElements, ")"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 3, 3));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    return std::vector<TensorDesc>{TensorDesc{dtype_, {count_}, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor>,
                   absl::Span<Tensor> outputs) override {
    return DispatchNumeric(dtype_, [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T start = values_[0].data<T>()[0];
      const T delta = values_[2].data<T>()[0];
      T* out = outputs[0].data<T>();
      for (int64_t i = 0; i < count_; ++i) out[i] = static_cast<T>(start + static_cast<T>(i) * delta);
      return absl::OkStatus();
    });
  }

 private:
  DType dtype_ = DType::kFloat32;
  Tensor values_[3];
  int64_t count_ = 0;
};

class ConstantOfShapeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    if (spec_.attrs.Has("value")) {
      auto value = spec_.attrs.GetTensor("value");
      if (!value.ok()) return Error(std::string(value.status().message()));
      if (value->num_elements() != 1) {
        return Error(absl::StrCat("attribute value must have one element, got ",
                                  value->DebugString()));
      }
      value_ = *value;
    } else {
      value_ = Tensor::ScalarFloat(0.0f);
    }
    YP_ASSIGN_OR_RETURN(shape_, ConstantInt64s(spec_, 0, "input"));
    for (int64_t d : shape_) {
      if (d < 0) return Error(absl::StrCat("shape ", IntsString(shape_), " has a negative entry"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    return std::vector<TensorDesc>{TensorDesc{value_.dtype(), shape_, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor>,
                   absl::Span<Tensor> outputs) override {
    const size_t size = DTypeSize(value_.dtype());
    char* out = static_cast<char*>(outputs[0].raw_data());
    for (int64_t i = 0; i < outputs[0].num_elements(); ++i) {
      std::memcpy(out + i * size, value_.raw_data(), size);
    }
    return absl::OkStatus();
  }

 private:
  Tensor value_;
  Shape shape_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceRange(const KernelSpec& spec) {
  return CreateValidatedKernel<RangeKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceConstantOfShape(const KernelSpec& spec) {
  return CreateValidatedKernel<ConstantOfShapeKernel>(spec);
}

YP_REGISTER_KERNEL(RefRange, "Range", Backend::kReference, CreateReferenceRange);
YP_REGISTER_KERNEL(RefConstantOfShape, "ConstantOfShape", Backend::kReference,
                   CreateReferenceConstantOfShape);

}  // namespace yolopipe::ops
