#include "ops/cuda/conv.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/cuda_status.h"
#include "ops/cuda/gpu_test_util.h"
#include "runtime/cuda/cuda_probe.h"

namespace yolopipe::ops::cuda {
namespace {

using testing::GpuTest;
using ::testing::HasSubstr;
using testing::Quantize;
using testing::RandomValues;

void* const kFakeDevicePointer = reinterpret_cast<void*>(uintptr_t{0x1000});

ConvParams Params(DType dtype, int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                  int64_t k, int64_t s) {
  ConvParams p;
  p.dtype = dtype;
  p.n = n;
  p.h = h;
  p.w = w;
  p.c_in = c_in;
  p.c_out = c_out;
  p.kernel_h = p.kernel_w = k;
  p.stride_h = p.stride_w = s;
  p.pad_h = p.pad_w = k / 2;
  return p;
}

// ---- Host-side checks (run everywhere)
// -----------------------------------------------------------

TEST(ConvShapeTest, YoloV8Shapes) {
  // Layer 0 of YOLOv8: k3 s2 on 640x640 -> 320x320.
  absl::StatusOr<NhwcShape> stem =
      ConvOutputShape(Params(DType::kFloat16, 1, 640, 640, 3, 16, 3, 2));
  ASSERT_TRUE(stem.ok()) << stem.status();
  EXPECT_EQ(*stem, (NhwcShape{1, 320, 320, 16}));
  absl::StatusOr<NhwcShape> pointwise =
      ConvOutputShape(Params(DType::kFloat32, 32, 20, 20, 256, 128, 1, 1));
  ASSERT_TRUE(pointwise.ok()) << pointwise.status();
  EXPECT_EQ(*pointwise, (NhwcShape{32, 20, 20, 128}));
  ConvParams dilated = Params(DType::kFloat32, 1, 10, 11, 4, 4, 3, 1);
  dilated.pad_h = dilated.pad_w = 0;
  dilated.dilation_h = 2;
  absl::StatusOr<NhwcShape> d = ConvOutputShape(dilated);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, (NhwcShape{1, 6, 9, 4}));  // 10 - 2*2, 11 - 2
}

TEST(ConvShapeTest, RejectsBadParameters) {
  ConvParams p = Params(DType::kFloat16, 1, 8, 8, 6, 4, 3, 1);
  p.groups = 4;  // 6 input channels are not divisible by 4
  const absl::Status groups = ConvOutputShape(p).status();
  EXPECT_EQ(groups.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(groups.message()), HasSubstr("groups 4"));
  EXPECT_EQ(ConvOutputShape(Params(DType::kInt8, 1, 8, 8, 4, 4, 3, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConvOutputShape(Params(DType::kFloat16, 1, 8, 8, 4, 4, 3, 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ConvOutputShape(Params(DType::kFloat16, 0, 8, 8, 4, 4, 3, 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConvParams negative_pad = Params(DType::kFloat16, 1, 8, 8, 4, 4, 3, 1);
  negative_pad.pad_w = -1;
  EXPECT_EQ(ConvOutputShape(negative_pad).status().code(), absl::StatusCode::kInvalidArgument);
  ConvParams too_big = Params(DType::kFloat16, 1, 2, 2, 4, 4, 5, 1);
  too_big.pad_h = too_big.pad_w = 0;
  EXPECT_EQ(ConvOutputShape(too_big).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConvCallTest, RejectsBadPointersAndSlices) {
  const ConvParams p = Params(DType::kFloat16, 1, 8, 8, 4, 16, 3, 1);
  const ChannelSlice y{kFakeDevicePointer, 16, 0};
  EXPECT_TRUE(ValidateConvCall(p, kFakeDevicePointer, kFakeDevicePointer, {}, y).ok());
  EXPECT_EQ(ValidateConvCall(p, nullptr, kFakeDevicePointer, {}, y).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateConvCall(p, kFakeDevicePointer, nullptr, {}, y).code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status slice =
      ValidateConvCall(p, kFakeDevicePointer, kFakeDevicePointer, {}, {kFakeDevicePointer, 24, 9});
  EXPECT_EQ(slice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(slice.message()), HasSubstr("output slice [9, 25)"));
  ConvEpilogueParams residual;
  residual.residual = {kFakeDevicePointer, 20, 5};  // [5, 21) of 20
  const absl::Status r = ValidateConvCall(p, kFakeDevicePointer, kFakeDevicePointer, residual, y);
  EXPECT_EQ(r.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.message()), HasSubstr("residual slice [5, 21)"));
  ConvParams tf32 = p;
  tf32.allow_tf32 = true;  // fp16 params
  EXPECT_EQ(ValidateConvCall(tf32, kFakeDevicePointer, kFakeDevicePointer, {}, y).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConvCallTest, InPlaceOnlyForDenseOutputs) {
  const ConvParams p = Params(DType::kFloat16, 1, 8, 8, 4, 16, 3, 1);
  EXPECT_TRUE(ConvWritesInPlace(p, {kFakeDevicePointer, 16, 0}));
  EXPECT_FALSE(ConvWritesInPlace(p, {kFakeDevicePointer, 32, 0}));
  EXPECT_FALSE(ConvWritesInPlace(p, {kFakeDevicePointer, 32, 16}));
}

TEST(ConvCallTest, WithoutGpuTheRunnerIsFailedPrecondition) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<std::unique_ptr<CudnnConvRunner>> runner = CudnnConvRunner::Create();
  EXPECT_EQ(runner.status().code(), absl::StatusCode::kFailedPrecondition);
  if (!BuiltWithCuda()) {
    EXPECT_THAT(std::string(runner.status().message()), HasSubstr("built without CUDA support"));
  }
}

// ---- cuDNN convolution + epilogue against a naive CPU convolution (skip without a GPU) -------

struct ConvCase {
  ConvParams params;
  bool bias = false;
  bool silu = false;
  bool residual = false;
  int64_t residual_channels = 0, residual_offset = 0;  // residual tensor layout
  int64_t out_channels = 0, out_offset = 0;            // output tensor layout
};

// Naive NHWC convolution (weights OHWI) + epilogue, in double. `scale` gets Σ|terms| per output,
// the magnitude that bounds float32 accumulation error.
void NaiveConv(const ConvCase& c, const std::vector<float>& x, const std::vector<float>& w,
               const std::vector<float>& bias, const std::vector<float>& residual,
               std::vector<double>* out, std::vector<double>* scale) {
  const ConvParams& p = c.params;
  const NhwcShape o = *ConvOutputShape(p);
  const int64_t cig = p.c_in / p.groups, cog = p.c_out / p.groups;
  out->assign(o.pixels() * p.c_out, 0.0);
  scale->assign(o.pixels() * p.c_out, 0.0);
  for (int64_t b = 0; b < o.n; ++b)
    for (int64_t oy = 0; oy < o.h; ++oy)
      for (int64_t ox = 0; ox < o.w; ++ox)
        for (int64_t k = 0; k < p.c_out; ++k) {
          const int64_t g = k / cog;
          double sum = 0.0, mag = 0.0;
          for (int64_t ky = 0; ky < p.kernel_h; ++ky)
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              const int64_t iy = oy * p.stride_h - p.pad_h + ky * p.dilation_h;
              const int64_t ix = ox * p.stride_w - p.pad_w + kx * p.dilation_w;
              if (iy < 0 || iy >= p.h || ix < 0 || ix >= p.w) continue;
              for (int64_t ci = 0; ci < cig; ++ci) {
                const double term = double{x[((b * p.h + iy) * p.w + ix) * p.c_in + g * cig + ci]} *
                                    w[((k * p.kernel_h + ky) * p.kernel_w + kx) * cig + ci];
                sum += term;
                mag += std::fabs(term);
              }
            }
          const int64_t pixel = (b * o.h + oy) * o.w + ox;
          if (c.bias) {
            sum += bias[k];
            mag += std::fabs(bias[k]);
          }
          if (c.silu) sum = sum / (1.0 + std::exp(-sum));
          if (c.residual) {
            const double r = residual[pixel * c.residual_channels + c.residual_offset + k];
            sum += r;
            mag += std::fabs(r);
          }
          (*out)[pixel * p.c_out + k] = sum;
          (*scale)[pixel * p.c_out + k] = mag;
        }
}

using ConvGpuParam = std::tuple<DType, ConvImplementation>;

class ConvGpuTest : public GpuTest, public ::testing::WithParamInterface<ConvGpuParam> {
 protected:
  DType dtype() const { return std::get<0>(GetParam()); }
  ConvImplementation implementation() const { return std::get<1>(GetParam()); }
  bool graph() const { return implementation() == ConvImplementation::kGraphFusion; }

  std::unique_ptr<CudnnConvRunner> MakeRunner() {
    absl::StatusOr<std::unique_ptr<CudnnConvRunner>> runner =
        CudnnConvRunner::Create(implementation());
    EXPECT_TRUE(runner.ok()) << runner.status();
    return runner.ok() ? std::move(runner).value() : nullptr;
  }

  // Runs one case and compares with NaiveConv. With `may_be_unsupported`, a graph-fusion runner
  // that has no engine for the case (Unimplemented) skips it instead of failing.
  void RunCase(const ConvCase& c, CudnnConvRunner& runner, uint32_t seed,
               bool may_be_unsupported = false) {
    const ConvParams& p = c.params;
    const DType dtype = p.dtype;
    std::mt19937 rng(seed);
    const NhwcShape o = *ConvOutputShape(p);
    const std::vector<float> x = Quantize(RandomValues(p.n * p.h * p.w * p.c_in, rng), dtype);
    const std::vector<float> w = Quantize(
        RandomValues(p.c_out * p.kernel_h * p.kernel_w * (p.c_in / p.groups), rng, -0.5f, 0.5f),
        dtype);
    const std::vector<float> bias = RandomValues(p.c_out, rng);
    const std::vector<float> residual =
        c.residual ? Quantize(RandomValues(o.pixels() * c.residual_channels, rng), dtype)
                   : std::vector<float>();
    const std::vector<float> sentinel(o.pixels() * c.out_channels, 42.0f);

    DeviceBuffer dx = Upload(x, dtype), dw = Upload(w, dtype);
    DeviceBuffer dbias = Upload(bias, DType::kFloat32);
    DeviceBuffer dres = c.residual ? Upload(residual, dtype) : DeviceBuffer();
    DeviceBuffer dy = Upload(sentinel, dtype);

    ConvEpilogueParams epilogue;
    epilogue.bias = c.bias ? static_cast<const float*>(dbias.data()) : nullptr;
    epilogue.silu = c.silu;
    if (c.residual) epilogue.residual = {dres.data(), c.residual_channels, c.residual_offset};
    const ChannelSlice y{dy.data(), c.out_channels, c.out_offset};

    absl::StatusOr<size_t> ws_bytes = runner.WorkspaceBytes(p, epilogue, y);
    if (may_be_unsupported && graph() && absl::IsUnimplemented(ws_bytes.status())) {
      GTEST_SKIP() << ws_bytes.status();
    }
    ASSERT_TRUE(ws_bytes.ok()) << ws_bytes.status();
    absl::StatusOr<std::string> description = runner.DescribePlan(p, epilogue, y);
    ASSERT_TRUE(description.ok()) << description.status();
    absl::StatusOr<DeviceBuffer> ws = DeviceBuffer::Allocate(*ws_bytes);
    ASSERT_TRUE(ws.ok()) << ws.status();
    if (*ws_bytes > 0) {
      const absl::Status short_ws =
          runner.Forward(p, dx.data(), dw.data(), epilogue, y, ws->data(), *ws_bytes - 1, stream());
      EXPECT_EQ(short_ws.code(), absl::StatusCode::kInvalidArgument) << short_ws;
    }
    const absl::Status run =
        runner.Forward(p, dx.data(), dw.data(), epilogue, y, ws->data(), *ws_bytes, stream());
    ASSERT_TRUE(run.ok()) << run << " for " << p.ToString() << " with " << *description;

    std::vector<double> want, scale;
    NaiveConv(c, x, w, bias, residual, &want, &scale);
    const std::vector<float> got = Download(dy.data(), o.pixels() * c.out_channels, dtype);
    const bool half = dtype == DType::kFloat16;
    for (int64_t pixel = 0; pixel < o.pixels(); ++pixel) {
      for (int64_t k = 0; k < c.out_channels; ++k) {
        const float value = got[pixel * c.out_channels + k];
        if (k < c.out_offset || k >= c.out_offset + p.c_out) {
          ASSERT_EQ(value, 42.0f) << "channel " << k << " outside the output slice was written";
          continue;
        }
        const size_t i = pixel * p.c_out + (k - c.out_offset);
        // fp32: accumulation error scales with Σ|terms|; fp16: up to two roundings to half.
        const double tol =
            half ? 1e-2 * std::fmax(1.0, std::fabs(want[i])) : 1e-5 * std::fmax(1.0, scale[i]);
        ASSERT_NEAR(value, want[i], tol) << "pixel " << pixel << " channel " << k << " of "
                                         << p.ToString() << " with " << *description;
      }
    }
  }
};

// The YOLOv8 Conv block (conv + bias + SiLU) must work in every implementation in fp16.
TEST_P(ConvGpuTest, DenseBiasSilu) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvCase c;
  c.params = Params(dtype(), 2, 9, 11, 8, 16, 3, 1);
  c.bias = c.silu = true;
  c.out_channels = 16;
  // Runtime fusion may have no strict-fp32 (non-TF32) engine; fp16 is the case that matters.
  RunCase(c, *runner, 11, /*may_be_unsupported=*/dtype() == DType::kFloat32);
  if (IsSkipped()) return;
  EXPECT_EQ(runner->cached_plans(), 1u);
  RunCase(c, *runner, 12);  // same shape: the cached plan is reused
  EXPECT_EQ(runner->cached_plans(), 1u);
}

TEST_P(ConvGpuTest, StridedPlainConvolution) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvCase c;
  c.params = Params(dtype(), 1, 10, 9, 16, 8, 3, 2);
  c.out_channels = 8;
  RunCase(c, *runner, 13, /*may_be_unsupported=*/true);
}

TEST_P(ConvGpuTest, ResidualAndOutputSlices) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvCase c;
  // A C2f bottleneck's second conv: 3x3, SiLU, + residual read from channels [8, 16) of the
  // concat buffer, written into channels [16, 24) of a 32-channel concat buffer.
  c.params = Params(dtype(), 2, 6, 7, 8, 8, 3, 1);
  c.bias = c.silu = c.residual = true;
  c.residual_channels = 24;
  c.residual_offset = 8;
  c.out_channels = 32;
  c.out_offset = 16;
  RunCase(c, *runner, 14, /*may_be_unsupported=*/true);
}

TEST_P(ConvGpuTest, PointwiseIntoASlice) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvCase c;
  c.params = Params(dtype(), 1, 5, 5, 32, 16, 1, 1);
  c.bias = true;
  c.out_channels = 48;
  c.out_offset = 32;
  RunCase(c, *runner, 15, /*may_be_unsupported=*/true);
}

TEST_P(ConvGpuTest, GroupedConvolution) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvCase c;
  c.params = Params(dtype(), 1, 7, 7, 8, 8, 3, 1);
  c.params.groups = 2;
  c.bias = true;
  c.out_channels = 8;
  RunCase(c, *runner, 16, /*may_be_unsupported=*/true);
}

// Two shapes are two plans.
TEST_P(ConvGpuTest, PlansAreCachedPerShape) {
  std::unique_ptr<CudnnConvRunner> runner = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ConvEpilogueParams epilogue;
  const ConvParams a = Params(dtype(), 1, 8, 8, 8, 8, 3, 1);
  const ConvParams b = Params(dtype(), 1, 8, 8, 8, 8, 1, 1);
  const ChannelSlice y{kFakeDevicePointer, 8, 0};
  absl::StatusOr<size_t> first = runner->WorkspaceBytes(a, epilogue, y);
  if (graph() && absl::IsUnimplemented(first.status())) GTEST_SKIP() << first.status();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(runner->WorkspaceBytes(a, epilogue, y).ok());
  EXPECT_EQ(runner->cached_plans(), 1u);
  ASSERT_TRUE(runner->WorkspaceBytes(b, epilogue, y).ok());
  EXPECT_EQ(runner->cached_plans(), 2u);
}

std::string ConvParamName(const ::testing::TestParamInfo<ConvGpuParam>& info) {
  return std::string(std::get<0>(info.param) == DType::kFloat16 ? "Float16" : "Float32") +
         (std::get<1>(info.param) == ConvImplementation::kGraphFusion ? "GraphFusion"
                                                                      : "LegacyPlusEpilogue");
}

INSTANTIATE_TEST_SUITE_P(
    All, ConvGpuTest,
    ::testing::Combine(::testing::Values(DType::kFloat32, DType::kFloat16),
                       ::testing::Values(ConvImplementation::kLegacyPlusEpilogue,
                                         ConvImplementation::kGraphFusion)),
    ConvParamName);

}  // namespace
}  // namespace yolopipe::ops::cuda
