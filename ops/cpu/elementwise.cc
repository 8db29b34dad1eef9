#include "ops/cpu/elementwise.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/parallel.h"
#include "ops/cpu/vector_math.h"
#include "ops/reference/elementwise.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

constexpr int64_t kMinElementsPerThread = 16 * 1024;
constexpr size_t kAlignment = 64;

size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// Plain (N, C, H, W) float32 -> NHWC.
void PlainToNhwc(const float* src, float* dst, int64_t n, int64_t c, int64_t hw) {
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t p = 0; p < hw; ++p) {
      for (int64_t ch = 0; ch < c; ++ch) dst[(b * hw + p) * c + ch] = src[(b * c + ch) * hw + p];
    }
  }
}

class CpuAddMulKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    if (spec_.op_type == "Add") {
      op_ = BinaryOp::kAdd;
    } else if (spec_.op_type == "Mul") {
      op_ = BinaryOp::kMul;
    } else {
      return Error("the kCpu elementwise kernel handles Add and Mul only");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 2, 2));
    YP_RETURN_IF_ERROR(CheckKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "A",
                                  {DType::kFloat32, DType::kFloat64, DType::kInt64,
                                   DType::kInt32}));
    const TensorDesc& a = inputs[0];
    const TensorDesc& b = inputs[1];
    if (a.dtype != b.dtype) {
      return Error(absl::StrCat("inputs have different dtypes: ", DescString(a), " and ",
                                DescString(b)));
    }
    YP_ASSIGN_OR_RETURN(out_shape_, BroadcastShapes(spec_, {a.shape, b.shape}));
    const bool nhwc = a.layout == Layout::kNHWC || b.layout == Layout::kNHWC;
    const bool f32 = a.dtype == DType::kFloat32;
    const int64_t na = NumElements(a.shape), nb = NumElements(b.shape);
    convert_a_ = convert_b_ = false;
    workspace_bytes_ = 0;
    Layout out_layout = nhwc ? Layout::kNHWC : Layout::kPlain;
    if (f32 && a.shape == b.shape) {
      mode_ = Mode::kSameShape;
      if (nhwc) {  // a plain operand of the same 4-D shape is converted to NHWC first
        convert_a_ = a.layout == Layout::kPlain;
        convert_b_ = b.layout == Layout::kPlain;
        const size_t bytes = AlignUp(static_cast<size_t>(na) * sizeof(float));
        workspace_bytes_ = bytes * ((convert_a_ ? 1 : 0) + (convert_b_ ? 1 : 0));
      }
    } else if (f32 && nb == 1 && out_shape_ == a.shape) {
      mode_ = Mode::kScalarB;
      out_layout = a.layout;  // a one-element tensor reads the same in any layout
    } else if (f32 && na == 1 && out_shape_ == b.shape) {
      mode_ = Mode::kScalarA;
      out_layout = b.layout;
    } else if (nhwc) {
      return Error(absl::StrCat("channels-last inputs need identical float32 shapes or a "
                                "one-element operand; got ",
                                DescString(a), " and ", DescString(b)));
    } else {
      mode_ = Mode::kBroadcast;
    }
    return std::vector<TensorDesc>{TensorDesc{a.dtype, out_shape_, out_layout}};
  }

  size_t workspace_bytes() const override { return workspace_bytes_; }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& a = inputs[0];
    const Tensor& b = inputs[1];
    Tensor& y = outputs[0];
    if (mode_ == Mode::kBroadcast) {
      absl::Status s = ComputeBinary(op_, a.dtype(), a.raw_data(), a.shape(), b.raw_data(),
                                     b.shape(), y.raw_data(), y.shape());
      return s.ok() ? s : Error(std::string(s.message()));
    }
    const int64_t count = y.num_elements();
    float* out = y.data<float>();
    if (mode_ == Mode::kSameShape) {
      const float* pa = a.data<float>();
      const float* pb = b.data<float>();
      char* workspace = static_cast<char*>(ctx.workspace);
      if ((convert_a_ || convert_b_) && workspace == nullptr) {
        return Error(absl::StrCat("needs ", workspace_bytes_, " workspace bytes, got none"));
      }
      const Shape& s = y.shape();
      if (convert_a_) {
        float* converted = reinterpret_cast<float*>(workspace);
        PlainToNhwc(pa, converted, s[0], s[1], s[2] * s[3]);
        pa = converted;
        workspace += AlignUp(static_cast<size_t>(count) * sizeof(float));
      }
      if (convert_b_) {
        float* converted = reinterpret_cast<float*>(workspace);
        PlainToNhwc(pb, converted, s[0], s[1], s[2] * s[3]);
        pb = converted;
      }
      Apply(ctx, count, [pa](int64_t i) { return pa[i]; },
            [pb](int64_t i) { return pb[i]; }, out);
    } else if (mode_ == Mode::kScalarB) {
      const float* pa = a.data<float>();
      const float vb = b.data<float>()[0];
      Apply(ctx, count, [pa](int64_t i) { return pa[i]; }, [vb](int64_t) { return vb; }, out);
    } else {
      const float va = a.data<float>()[0];
      const float* pb = b.data<float>();
      Apply(ctx, count, [va](int64_t) { return va; }, [pb](int64_t i) { return pb[i]; }, out);
    }
    return absl::OkStatus();
  }

 private:
  enum class Mode { kSameShape, kScalarA, kScalarB, kBroadcast };

  template <typename GetA, typename GetB>
  void Apply(const RunContext& ctx, int64_t count, GetA get_a, GetB get_b, float* out) const {
    const bool add = op_ == BinaryOp::kAdd;
    ParallelFor(ctx.num_threads, count, kMinElementsPerThread, [&](int64_t begin, int64_t end) {
      if (add) {
        for (int64_t i = begin; i < end; ++i) out[i] = get_a(i) + get_b(i);
      } else {
        for (int64_t i = begin; i < end; ++i) out[i] = get_a(i) * get_b(i);
      }
    });
  }

  BinaryOp op_ = BinaryOp::kAdd;
  Mode mode_ = Mode::kSameShape;
  Shape out_shape_;
  bool convert_a_ = false, convert_b_ = false;
  size_t workspace_bytes_ = 0;
};

class CpuSigmoidKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    KernelSpec plain = spec_;
    for (TensorDesc& d : plain.inputs) d.layout = Layout::kPlain;
    YP_ASSIGN_OR_RETURN(fallback_, CreateReferenceUnary(plain));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 1));
    YP_RETURN_IF_ERROR(CheckKnown(spec_, inputs));
    YP_RETURN_IF_ERROR(CheckDType(spec_, inputs, 0, "X", {DType::kFloat32, DType::kFloat64}));
    if (inputs[0].dtype == DType::kFloat64) {
      if (inputs[0].layout != Layout::kPlain) return Error("float64 input must be plain");
      return fallback_->Reshape(inputs);
    }
    return std::vector<TensorDesc>{inputs[0]};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (inputs[0].dtype() != DType::kFloat32) return fallback_->Run(ctx, inputs, outputs);
    const float* x = inputs[0].data<float>();
    float* y = outputs[0].data<float>();
    ParallelFor(ctx.num_threads, inputs[0].num_elements(), kMinElementsPerThread,
                [&](int64_t begin, int64_t end) {
                  vmath::SigmoidArray(x + begin, y + begin, end - begin);
                });
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Kernel> fallback_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuAddMul(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuAddMulKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSigmoid(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuSigmoidKernel>(spec);
}

YP_REGISTER_KERNEL(CpuAdd, "Add", Backend::kCpu, CreateCpuAddMul,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{}});
YP_REGISTER_KERNEL(CpuMul, "Mul", Backend::kCpu, CreateCpuAddMul,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{}});
YP_REGISTER_KERNEL(CpuSigmoid, "Sigmoid", Backend::kCpu, CreateCpuSigmoid,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0}});

}  // namespace yolopipe::ops
