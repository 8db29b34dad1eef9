#include "ops/reference/elementwise.h"

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

template <typename T>
T WrappingAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}
template <typename T>
T WrappingSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) - static_cast<U>(b));
  } else {
    return a - b;
  }
}
template <typename T>
T WrappingMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) * static_cast<U>(b));
  } else {
    return a * b;
  }
}

template <typename T, typename R, typename Fn>
void BroadcastApply(const void* a, const Shape& a_shape, const void* b, const Shape& b_shape,
                    void* out, const Shape& out_shape, Fn fn) {
  const T* pa = static_cast<const T*>(a);
  const T* pb = static_cast<const T*>(b);
  R* po = static_cast<R*>(out);
  std::array<std::vector<int64_t>, 2> strides = {BroadcastStrides(a_shape, out_shape),
                                                 BroadcastStrides(b_shape, out_shape)};
  ForEachBroadcastElement<2>(out_shape, strides,
                             [&](int64_t i, const std::array<int64_t, 2>& off) {
                               po[i] = fn(pa[off[0]], pb[off[1]]);
                             });
}

template <typename T>
absl::Status ComputeBinaryTyped(BinaryOp op, const void* a, const Shape& a_shape, const void* b,
                                const Shape& b_shape, void* out, const Shape& out_shape) {
  switch (op) {
    case BinaryOp::kAdd:
      BroadcastApply<T, T>(a, a_shape, b, b_shape, out, out_shape, WrappingAdd<T>);
      return absl::OkStatus();
    case BinaryOp::kSub:
      BroadcastApply<T, T>(a, a_shape, b, b_shape, out, out_shape, WrappingSub<T>);
      return absl::OkStatus();
    case BinaryOp::kMul:
      BroadcastApply<T, T>(a, a_shape, b, b_shape, out, out_shape, WrappingMul<T>);
      return absl::OkStatus();
    case BinaryOp::kEqual:
      BroadcastApply<T, uint8_t>(a, a_shape, b, b_shape, out, out_shape,
                                 [](T x, T y) -> uint8_t { return x == y ? 1 : 0; });
      return absl::OkStatus();
    case BinaryOp::kDiv:
      if constexpr (std::is_integral_v<T>) {
        bool by_zero = false;
        BroadcastApply<T, T>(a, a_shape, b, b_shape, out, out_shape, [&](T x, T y) -> T {
          if (y == 0) {
            by_zero = true;
            return 0;
          }
          if (y == -1 && x == std::numeric_limits<T>::min()) {
            return x;  // the quotient overflows: wrap like the other integer ops instead of trapping
          }
          return x / y;  // C++ integer division truncates toward zero, as ONNX requires
        });
        if (by_zero) return absl::InvalidArgumentError("integer division by zero");
      } else {
        BroadcastApply<T, T>(a, a_shape, b, b_shape, out, out_shape,
                             [](T x, T y) { return x / y; });
      }
      return absl::OkStatus();
  }
  return absl::InternalError("unknown binary op");
}

class BinaryKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    const std::string& t = spec_.op_type;
    if (t == "Add") {
      op_ = BinaryOp::kAdd;
    } else if (t == "Sub") {
      op_ = BinaryOp::kSub;
    } else if (t == "Mul") {
      op_ = BinaryOp::kMul;
    } else if (t == "Div") {
      op_ = BinaryOp::kDiv;
    } else if (t == "Equal") {
      op_ = BinaryOp::kEqual;
    } else {
      return Error("not a binary elementwise op");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 2, 2));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    if (op_ == BinaryOp::kEqual) {
      YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "A",
                                    {DType::kFloat32, DType::kFloat64, DType::kInt64,
                                     DType::kInt32, DType::kBool}));
    } else {
      YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "A",
                                    {DType::kFloat32, DType::kFloat64, DType::kInt64,
                                     DType::kInt32}));
    }
    if (inputs[0].dtype != inputs[1].dtype) {
      return Error(absl::StrCat("inputs have different dtypes: ", DescString(inputs[0]), " and ",
                                DescString(inputs[1])));
    }
    YP_ASSIGN_OR_RETURN(Shape out, BroadcastShapes(spec_, {inputs[0].shape, inputs[1].shape}));
    const DType out_dtype = op_ == BinaryOp::kEqual ? DType::kBool : inputs[0].dtype;
    return std::vector<TensorDesc>{TensorDesc{out_dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& a = inputs[0];
    const Tensor& b = inputs[1];
    absl::Status s = ComputeBinary(op_, a.dtype(), a.raw_data(), a.shape(), b.raw_data(),
                                   b.shape(), outputs[0].raw_data(), outputs[0].shape());
    if (!s.ok()) return Error(std::string(s.message()));
    return absl::OkStatus();
  }

 private:
  BinaryOp op_ = BinaryOp::kAdd;
};

enum class UnaryOp { kSigmoid, kFloor, kCeil };

template <typename T>
void ApplyUnary(UnaryOp op, const T* x, T* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    switch (op) {
      case UnaryOp::kSigmoid: y[i] = Sigmoid(x[i]); break;
      case UnaryOp::kFloor: y[i] = std::floor(x[i]); break;
      case UnaryOp::kCeil: y[i] = std::ceil(x[i]); break;
    }
  }
}

class UnaryKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    const std::string& t = spec_.op_type;
    if (t == "Sigmoid") {
      op_ = UnaryOp::kSigmoid;
    } else if (t == "Floor") {
      op_ = UnaryOp::kFloor;
    } else if (t == "Ceil") {
      op_ = UnaryOp::kCeil;
    } else {
      return Error("not a unary elementwise op");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "X", {DType::kFloat32, DType::kFloat64}));
    return std::vector<TensorDesc>{inputs[0]};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    if (x.dtype() == DType::kFloat32) {
      ApplyUnary(op_, x.data<float>(), outputs[0].data<float>(), x.num_elements());
    } else {
      ApplyUnary(op_, x.data<double>(), outputs[0].data<double>(), x.num_elements());
    }
    return absl::OkStatus();
  }

 private:
  UnaryOp op_ = UnaryOp::kSigmoid;
};

class WhereKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 3, 3));
    YP_RETURN_IF_ERROR(CheckPlainAndKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "condition", {DType::kBool}));
    if (inputs[1].dtype != inputs[2].dtype) {
      return Error(absl::StrCat("X and Y have different dtypes: ", DescString(inputs[1]), " and ",
                                DescString(inputs[2])));
    }
    YP_ASSIGN_OR_RETURN(Shape out, BroadcastShapes(spec_, {inputs[0].shape, inputs[1].shape,
                                                           inputs[2].shape}));
    return std::vector<TensorDesc>{TensorDesc{inputs[1].dtype, out, Layout::kPlain}};
  }

  absl::Status Run(const RunContext&, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& c = inputs[0];
    const Tensor& x = inputs[1];
    const Tensor& y = inputs[2];
    Tensor& out = outputs[0];
    const size_t size = DTypeSize(x.dtype());
    const uint8_t* cond = c.data<uint8_t>();
    std::array<std::vector<int64_t>, 3> strides = {BroadcastStrides(c.shape(), out.shape()),
                                                   BroadcastStrides(x.shape(), out.shape()),
                                                   BroadcastStrides(y.shape(), out.shape())};
    ForEachBroadcastElement<3>(out.shape(), strides,
                               [&](int64_t i, const std::array<int64_t, 3>& off) {
                                 if (cond[off[0]]) {
                                   CopyElement(x.raw_data(), off[1], out.raw_data(), i, size);
                                 } else {
                                   CopyElement(y.raw_data(), off[2], out.raw_data(), i, size);
                                 }
                               });
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status ComputeBinary(BinaryOp op, DType dtype, const void* a, const Shape& a_shape,
                           const void* b, const Shape& b_shape, void* out,
                           const Shape& out_shape) {
  if (dtype == DType::kBool) {
    if (op != BinaryOp::kEqual) return absl::InvalidArgumentError("bool supports Equal only");
    BroadcastApply<uint8_t, uint8_t>(a, a_shape, b, b_shape, out, out_shape,
                                     [](uint8_t x, uint8_t y) -> uint8_t {
                                       return (x != 0) == (y != 0) ? 1 : 0;
                                     });
    return absl::OkStatus();
  }
  return DispatchNumeric(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return ComputeBinaryTyped<T>(op, a, a_shape, b, b_shape, out, out_shape);
  });
}

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceBinary(const KernelSpec& spec) {
  return CreateValidatedKernel<BinaryKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceUnary(const KernelSpec& spec) {
  return CreateValidatedKernel<UnaryKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceWhere(const KernelSpec& spec) {
  return CreateValidatedKernel<WhereKernel>(spec);
}

YP_REGISTER_KERNEL(RefAdd, "Add", Backend::kReference, CreateReferenceBinary);
YP_REGISTER_KERNEL(RefSub, "Sub", Backend::kReference, CreateReferenceBinary);
YP_REGISTER_KERNEL(RefMul, "Mul", Backend::kReference, CreateReferenceBinary);
YP_REGISTER_KERNEL(RefDiv, "Div", Backend::kReference, CreateReferenceBinary);
YP_REGISTER_KERNEL(RefEqual, "Equal", Backend::kReference, CreateReferenceBinary);
YP_REGISTER_KERNEL(RefWhere, "Where", Backend::kReference, CreateReferenceWhere);
YP_REGISTER_KERNEL(RefSigmoid, "Sigmoid", Backend::kReference, CreateReferenceUnary);
YP_REGISTER_KERNEL(RefFloor, "Floor", Backend::kReference, CreateReferenceUnary);
YP_REGISTER_KERNEL(RefCeil, "Ceil", Backend::kReference, CreateReferenceUnary);

}  // namespace yolopipe::ops
