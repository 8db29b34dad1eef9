#include "ops/reference/cast.h"

#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// bool is stored as one byte (0 or 1).
struct Bool8 {
  uint8_t v;
};

template <typename To, typename From>
To Convert(From v) {
  if constexpr (std::is_same_v<To, Bool8>) {
    if constexpr (std::is_same_v<From, Bool8>) {
      return Bool8{static_cast<uint8_t>(v.v != 0)};
    } else {
      return Bool8{static_cast<uint8_t>(v != From(0))};
    }
  } else if constexpr (std::is_same_v<From, Bool8>) {
    return static_cast<To>(v.v != 0 ? 1 : 0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    if (std::isnan(v)) return 0;
    const From t = std::trunc(v);
    if (t <= static_cast<From>(std::numeric_limits<To>::min())) {
      return std::numeric_limits<To>::min();
    }
    if (t >= static_cast<From>(std::numeric_limits<To>::max())) {
      return std::numeric_limits<To>::max();
    }
    return static_cast<To>(t);
  } else {
    // Integer narrowing keeps the low bits (two's complement), as numpy does.
    return static_cast<To>(v);
  }
}

template <typename From, typename To>
void ConvertAll(const void* src, void* dst, int64_t count) {
  const From* s = static_cast<const From*>(src);
  To* d = static_cast<To*>(dst);
  for (int64_t i = 0; i < count; ++i) d[i] = Convert<To>(s[i]);
}

template <typename Fn>
bool DispatchCastType(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: fn(TypeTag<float>{}); return true;
    case DType::kFloat64: fn(TypeTag<double>{}); return true;
    case DType::kInt64: fn(TypeTag<int64_t>{}); return true;
    case DType::kInt32: fn(TypeTag<int32_t>{}); return true;
    case DType::kInt8: fn(TypeTag<int8_t>{}); return true;
    case DType::kUInt8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kBool: fn(TypeTag<Bool8>{}); return true;
    default: return false;
  }
}

class CastKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto to = spec_.attrs.GetInt("to");
    if (!to.ok()) return Error(std::string(to.status().message()));
    auto dtype = DTypeFromOnnx(static_cast<int>(*to));
    if (!dtype.ok() || !IsCastableDType(*dtype)) {
      return Error(absl::StrCat("unsupported target type to=", *to,
                                dtype.ok() ? absl::StrCat(" (", DTypeName(*dtype), ")") : ""));
    }
    to_ = *dtype;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    if (!IsCastableDType(inputs[0].dtype)) {
      return Error(absl::StrCat("unsupported input dtype ", DescString(inputs[0])));
    }
    return std::vector<TensorDesc>{TensorDesc{to_, inputs[0].shape, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    absl::Status s = CastElements(inputs[0].dtype(), inputs[0].raw_data(), to_,
                                  outputs[0].raw_data(), inputs[0].num_elements());
    if (!s.ok()) return Error(std::string(s.message()));
    return absl::OkStatus();
  }

 private:
  DType to_ = DType::kFloat32;
};

}  // namespace

bool IsCastableDType(DType dtype) {
  return DispatchCastType(dtype, [](auto) {});
}

absl::Status CastElements(DType from, const void* src, DType to, void* dst, int64_t count) {
  bool ok = false;
  DispatchCastType(from, [&](auto from_tag) {
    using F = typename decltype(from_tag)::type;
    ok = DispatchCastType(to, [&](auto to_tag) {
      using T = typename decltype(to_tag)::type;
      ConvertAll<F, T>(src, dst, count);
    });
  });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot cast ", DTypeName(from), " to ", DTypeName(to)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceCast(const KernelSpec& spec) {
  return CreateValidatedKernel<CastKernel>(spec);
}

YP_REGISTER_KERNEL(RefCast, "Cast", Backend::kReference, CreateReferenceCast);

}  // namespace yolopipe::ops
