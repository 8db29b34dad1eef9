#include "ops/cpu/softmax.h"

#include <algorithm>
#include <vector>

#include "ops/cpu/parallel.h"
#include "ops/cpu/vector_math.h"
#include "ops/reference/kernel_util.h"
#include "ops/reference/softmax.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Inner positions per work item of the strided case: the item's input and output
// (axis_size x width floats each) stay in L1 across the three passes.
constexpr int64_t kMaxWidth = 256;
constexpr int64_t kItemFloats = 8 * 1024;
// Work items per thread at the least (about 64 KiB of traffic per item).
constexpr int64_t kMinFloatsPerThread = 32 * 1024;

// Softmax over the axis for inner positions [0, width) of one outer slice: x[k * inner + j] is
// element k along the axis at position j.
void SoftmaxStridedBlock(const float* x, float* y, int64_t axis_size, int64_t inner,
                         int64_t width) {
  float max_value[kMaxWidth];
  float sum[kMaxWidth];
  int64_t j0 = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  for (; j0 + 8 <= width; j0 += 8) {
    // max(v, m) keeps m unless v > m: std::max(m, v)'s choice, NaNs included.
    __m256 m = _mm256_loadu_ps(x + j0);
    for (int64_t k = 1; k < axis_size; ++k)
      m = _mm256_max_ps(_mm256_loadu_ps(x + k * inner + j0), m);
    __m256 s = _mm256_setzero_ps();
    for (int64_t k = 0; k < axis_size; ++k) {
      const __m256 e = vmath::Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + k * inner + j0), m));
      _mm256_storeu_ps(y + k * inner + j0, e);
      s = _mm256_add_ps(s, e);
    }
    for (int64_t k = 0; k < axis_size; ++k) {
      _mm256_storeu_ps(y + k * inner + j0, _mm256_div_ps(_mm256_loadu_ps(y + k * inner + j0), s));
    }
  }
#endif
  if (j0 == width) return;
  // The scalar lanes: the same operations one position at a time.
  for (int64_t j = j0; j < width; ++j) max_value[j] = x[j];
  for (int64_t k = 1; k < axis_size; ++k) {
    for (int64_t j = j0; j < width; ++j) max_value[j] = std::max(max_value[j], x[k * inner + j]);
  }
  for (int64_t j = j0; j < width; ++j) sum[j] = 0.0f;
  for (int64_t k = 0; k < axis_size; ++k) {
    for (int64_t j = j0; j < width; ++j) {
      const float e = vmath::Exp(x[k * inner + j] - max_value[j]);
      y[k * inner + j] = e;
      sum[j] += e;
    }
  }
  for (int64_t k = 0; k < axis_size; ++k) {
    for (int64_t j = j0; j < width; ++j) y[k * inner + j] /= sum[j];
  }
}

// Softmax of one contiguous row of `size` floats.
void SoftmaxRow(const float* x, float* y, int64_t size) {
  float max_value = x[0];
  int64_t i = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  if (size >= 8) {
    __m256 m = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= size; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, m);
    for (float v : lanes) max_value = std::max(max_value, v);
  }
#endif
  for (; i < size; ++i) max_value = std::max(max_value, x[i]);

  float sum = 0.0f;
  i = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  if (size >= 8) {
    const __m256 m = _mm256_set1_ps(max_value);
    __m256 s = _mm256_setzero_ps();
    for (; i + 8 <= size; i += 8) {
      const __m256 e = vmath::Exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
      _mm256_storeu_ps(y + i, e);
      s = _mm256_add_ps(s, e);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    for (float v : lanes) sum += v;
  }
#endif
  for (; i < size; ++i) {
    y[i] = vmath::Exp(x[i] - max_value);
    sum += y[i];
  }
  i = 0;
#if defined(YOLOPIPE_VECTOR_MATH_AVX2)
  const __m256 s = _mm256_set1_ps(sum);
  for (; i + 8 <= size; i += 8) _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(y + i), s));
#endif
  for (; i < size; ++i) y[i] /= sum;
}

class CpuSoftmaxKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    // The reference kernel validates (and runs float64); its Reshape errors are this kernel's.
    YP_ASSIGN_OR_RETURN(reference_, CreateReferenceSoftmax(spec_));
    auto axis = spec_.attrs.GetInt("axis", -1);
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(std::vector<TensorDesc> outputs, reference_->Reshape(inputs));
    const Shape& s = inputs[0].shape;
    const int rank = static_cast<int>(s.size());
    YP_ASSIGN_OR_RETURN(const int axis, NormalizeAxis(spec_, axis_attr_, rank, "axis"));
    outer_ = inner_ = 1;
    for (int d = 0; d < axis; ++d) outer_ *= s[d];
    for (int d = axis + 1; d < rank; ++d) inner_ *= s[d];
    axis_size_ = s[axis];
    return outputs;
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (inputs[0].dtype() != DType::kFloat32) return reference_->Run(ctx, inputs, outputs);
    if (axis_size_ == 0 || outer_ == 0 || inner_ == 0) return absl::OkStatus();
    const float* x = inputs[0].data<float>();
    float* y = outputs[0].data<float>();
    const int64_t slice = axis_size_ * inner_;
    if (inner_ == 1) {
      ParallelFor(ctx.num_threads, outer_, std::max<int64_t>(1, kMinFloatsPerThread / axis_size_),
                  [&](int64_t begin, int64_t end) {
                    for (int64_t o = begin; o < end; ++o) {
                      SoftmaxRow(x + o * axis_size_, y + o * axis_size_, axis_size_);
                    }
                  });
      return absl::OkStatus();
    }
    const int64_t width = std::clamp<int64_t>(kItemFloats / axis_size_ / 8 * 8, 8, kMaxWidth);
    const int64_t blocks = (inner_ + width - 1) / width;
    const int64_t item_floats = axis_size_ * std::min(width, inner_);
    ParallelFor(ctx.num_threads, outer_ * blocks,
                std::max<int64_t>(1, kMinFloatsPerThread / item_floats),
                [&](int64_t begin, int64_t end) {
                  for (int64_t item = begin; item < end; ++item) {
                    const int64_t o = item / blocks;
                    const int64_t j = item % blocks * width;
                    const int64_t offset = o * slice + j;
                    SoftmaxStridedBlock(x + offset, y + offset, axis_size_, inner_,
                                        std::min(width, inner_ - j));
                  }
                });
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Kernel> reference_;
  int64_t axis_attr_ = -1;
  int64_t outer_ = 1, axis_size_ = 1, inner_ = 1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSoftmax(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuSoftmaxKernel>(spec);
}

YP_REGISTER_KERNEL(CpuSoftmax, "Softmax", Backend::kCpu, CreateCpuSoftmax);

}  // namespace yolopipe::ops
