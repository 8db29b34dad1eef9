#include "ops/cuda/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ops/cuda/cuda_status.h"
#include "ops/cuda/gpu_test_util.h"

namespace yolopipe::ops::cuda {
namespace {

using testing::DTypeParamName;
using testing::ExpectAllNear;
using testing::GpuDTypeTest;
using testing::GpuTest;
using ::testing::HasSubstr;
using testing::Quantize;
using testing::RandomValues;
using testing::Tolerance;

double Sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// A non-null pointer that is never dereferenced: the checks below fail (or, in the default build,
// stop at "built without CUDA support") before anything is launched.
void* const kFakeDevicePointer = reinterpret_cast<void*>(uintptr_t{0x1000});

// ---- Host-side checks (run everywhere)
// -----------------------------------------------------------

TEST(KernelChecksTest, MaxPoolOutputShapes) {
  absl::StatusOr<NhwcShape> sppf = MaxPool2dOutputShape({1, 20, 20, 128}, {5, 5, 1, 1, 2, 2});
  ASSERT_TRUE(sppf.ok()) << sppf.status();
  EXPECT_EQ(*sppf, (NhwcShape{1, 20, 20, 128}));
  absl::StatusOr<NhwcShape> strided = MaxPool2dOutputShape({2, 7, 8, 3}, {3, 3, 2, 2, 1, 1});
  ASSERT_TRUE(strided.ok()) << strided.status();
  EXPECT_EQ(*strided, (NhwcShape{2, 4, 4, 3}));  // floor((7+2-3)/2)+1, floor((8+2-3)/2)+1
}

TEST(KernelChecksTest, MaxPoolRejectsBadParameters) {
  const NhwcShape in{1, 8, 8, 4};
  EXPECT_EQ(MaxPool2dOutputShape(in, {3, 3, 1, 1, 3, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);  // pad >= kernel
  EXPECT_EQ(MaxPool2dOutputShape(in, {3, 3, 0, 1, 1, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);  // stride 0
  EXPECT_EQ(MaxPool2dOutputShape(in, {0, 3, 1, 1, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);  // kernel 0
  EXPECT_EQ(MaxPool2dOutputShape(in, {3, 3, 1, 1, -1, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);  // negative pad
  const absl::Status too_big = MaxPool2dOutputShape({1, 2, 2, 1}, {5, 5, 1, 1, 1, 1}).status();
  EXPECT_EQ(too_big.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.message()), HasSubstr("larger than the padded input"));
  EXPECT_EQ(MaxPool2dOutputShape({1, -1, 2, 1}, {1, 1, 1, 1, 0, 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KernelChecksTest, RejectsUnsupportedDTypesAndNullPointers) {
  const absl::Status int_pool = MaxPool2d(DType::kInt64, kFakeDevicePointer, {1, 4, 4, 1},
                                          {2, 2, 2, 2, 0, 0}, kFakeDevicePointer, nullptr);
  EXPECT_EQ(int_pool.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(int_pool.message()), HasSubstr("int64"));
  EXPECT_EQ(MaxPool2d(DType::kFloat32, nullptr, {1, 4, 4, 1}, {2, 2, 2, 2, 0, 0},
                      kFakeDevicePointer, nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ResizeNearest2x(DType::kFloat16, kFakeDevicePointer, {1, 2, 2, 3}, nullptr, nullptr).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Elementwise(BinaryOp::kAdd, DType::kFloat32, kFakeDevicePointer, nullptr,
                        kFakeDevicePointer, 10, nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Elementwise(UnaryOp::kSilu, DType::kFloat32, kFakeDevicePointer, kFakeDevicePointer, -1,
                        nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Elementwise(UnaryOp::kSigmoid, DType::kBool, kFakeDevicePointer, kFakeDevicePointer, 4,
                        nullptr)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      NchwFloatToNhwc(nullptr, {1, 2, 2, 3}, DType::kFloat16, kFakeDevicePointer, nullptr).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      NhwcToNchwFloat(DType::kFloat16, kFakeDevicePointer, {1, 2, -2, 3}, nullptr, nullptr).code(),
      absl::StatusCode::kInvalidArgument);
  float* fake_float = static_cast<float*>(kFakeDevicePointer);
  EXPECT_EQ(SoftmaxLastAxis(fake_float, fake_float, 4, 0, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SoftmaxLastAxis(fake_float, fake_float, -1, 4, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KernelChecksTest, ChannelSlicesMustFit) {
  const ConstChannelSlice src{kFakeDevicePointer, 8, 0};
  const ChannelSlice dst{kFakeDevicePointer, 16, 10};
  // [10, 17) does not fit 16 channels.
  const absl::Status overflow = CopyChannelSlice(DType::kFloat32, src, dst, 4, 7, nullptr);
  EXPECT_EQ(overflow.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(overflow.message()), HasSubstr("destination slice [10, 17)"));
  EXPECT_EQ(
      CopyChannelSlice(DType::kFloat32, {kFakeDevicePointer, 8, 4}, dst, 4, 5, nullptr).code(),
      absl::StatusCode::kInvalidArgument);  // source [4, 9) of 8
  EXPECT_EQ(
      CopyChannelSlice(DType::kFloat32, {kFakeDevicePointer, 8, -1}, dst, 4, 2, nullptr).code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CopyChannelSlice(DType::kFloat32, src, dst, 4, 0, nullptr).code(),
            absl::StatusCode::kInvalidArgument);  // empty slice
  EXPECT_EQ(CopyChannelSlice(DType::kFloat32, src, dst, -4, 2, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CopyChannelSlice(DType::kFloat32, {nullptr, 8, 0}, dst, 4, 2, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<DetectLevel> TwoFakeLevels(int64_t num_classes) {
  DetectLevel a;
  a.box = {kFakeDevicePointer, kDetectBoxChannels + num_classes, 0};
  a.cls = {kFakeDevicePointer, kDetectBoxChannels + num_classes, kDetectBoxChannels};
  a.height = 4;
  a.width = 5;
  a.stride = 8.0f;
  DetectLevel b = a;
  b.height = 2;
  b.width = 3;
  b.stride = 16.0f;
  return {a, b};
}

TEST(KernelChecksTest, DetectAnchorCountSumsTheLevels) {
  EXPECT_EQ(DetectAnchorCount(TwoFakeLevels(3)), 4 * 5 + 2 * 3);
  std::vector<DetectLevel> yolo(3);
  yolo[0].height = yolo[0].width = 80;
  yolo[1].height = yolo[1].width = 40;
  yolo[2].height = yolo[2].width = 20;
  EXPECT_EQ(DetectAnchorCount(yolo), 8400);
}

TEST(KernelChecksTest, DetectDecodeRejectsBadLevels) {
  float* out = static_cast<float*>(kFakeDevicePointer);
  EXPECT_EQ(DetectDecode(DType::kFloat32, {}, 1, 3, out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<DetectLevel> five(5, TwoFakeLevels(3)[0]);
  EXPECT_EQ(DetectDecode(DType::kFloat32, five, 1, 3, out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DetectDecode(DType::kFloat32, TwoFakeLevels(3), 0, 3, out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  // The class slice [64, 68) does not fit 67 channels.
  const absl::Status classes = DetectDecode(DType::kFloat32, TwoFakeLevels(3), 1, 4, out, nullptr);
  EXPECT_EQ(classes.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(classes.message()), HasSubstr("level 0 class slice [64, 68)"));
  std::vector<DetectLevel> narrow_box = TwoFakeLevels(3);
  narrow_box[1].box = {kFakeDevicePointer, 63, 0};
  const absl::Status box = DetectDecode(DType::kFloat32, narrow_box, 1, 3, out, nullptr);
  EXPECT_EQ(box.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(box.message()), HasSubstr("level 1 box"));
  std::vector<DetectLevel> zero_stride = TwoFakeLevels(3);
  zero_stride[0].stride = 0.0f;
  EXPECT_EQ(DetectDecode(DType::kFloat32, zero_stride, 1, 3, out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<DetectLevel> null_cls = TwoFakeLevels(3);
  null_cls[1].cls.data = nullptr;
  EXPECT_EQ(DetectDecode(DType::kFloat32, null_cls, 1, 3, out, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DetectDecode(DType::kFloat32, TwoFakeLevels(3), 1, 3, nullptr, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
}

// Valid arguments in a build without CUDA stop at FailedPrecondition before any launch.
TEST(KernelChecksTest, DefaultBuildReturnsFailedPreconditionForValidCalls) {
  if (BuiltWithCuda()) GTEST_SKIP() << "built with CUDA: valid calls would launch";
  float* f = static_cast<float*>(kFakeDevicePointer);
  const std::vector<absl::Status> results = {
      MaxPool2d(DType::kFloat16, f, {1, 4, 4, 2}, {2, 2, 2, 2, 0, 0}, f, nullptr),
      ResizeNearest2x(DType::kFloat32, f, {1, 2, 2, 3}, f, nullptr),
      CopyChannelSlice(DType::kFloat16, {f, 4, 0}, {f, 8, 4}, 10, 4, nullptr),
      Elementwise(BinaryOp::kMul, DType::kFloat32, f, f, f, 10, nullptr),
      Elementwise(UnaryOp::kSigmoid, DType::kFloat16, f, f, 10, nullptr),
      NchwFloatToNhwc(f, {1, 2, 2, 3}, DType::kFloat16, f, nullptr),
      NhwcToNchwFloat(DType::kFloat32, f, {1, 2, 2, 3}, f, nullptr),
      SoftmaxLastAxis(f, f, 3, 4, nullptr),
      DetectDecode(DType::kFloat16, TwoFakeLevels(3), 2, 3, f, nullptr),
  };
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("built without CUDA support"));
  }
}

// ---- GPU kernels against naive CPU computations (skip without a GPU) ----------------------------

size_t NhwcIndex(const NhwcShape& s, int64_t b, int64_t y, int64_t x, int64_t c) {
  return static_cast<size_t>(((b * s.h + y) * s.w + x) * s.c + c);
}

TEST_P(GpuDTypeTest, MaxPool2dMatchesNaive) {
  const DType dtype = GetParam();
  std::mt19937 rng(1);
  const NhwcShape in{2, 7, 9, 5};
  for (const Pool2dParams& p : {Pool2dParams{5, 5, 1, 1, 2, 2}, Pool2dParams{3, 2, 2, 1, 1, 0}}) {
    const std::vector<float> x = Quantize(RandomValues(in.elements(), rng, -3, 3), dtype);
    const NhwcShape out = *MaxPool2dOutputShape(in, p);
    std::vector<double> want(out.elements());
    for (int64_t b = 0; b < out.n; ++b)
      for (int64_t oy = 0; oy < out.h; ++oy)
        for (int64_t ox = 0; ox < out.w; ++ox)
          for (int64_t c = 0; c < out.c; ++c) {
            double best = -std::numeric_limits<double>::infinity();
            for (int64_t ky = 0; ky < p.kernel_h; ++ky)
              for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
                const int64_t iy = oy * p.stride_h - p.pad_h + ky;
                const int64_t ix = ox * p.stride_w - p.pad_w + kx;
                if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) continue;
                best = std::max(best, static_cast<double>(x[NhwcIndex(in, b, iy, ix, c)]));
              }
            want[NhwcIndex(out, b, oy, ox, c)] = best;
          }
    DeviceBuffer dx = Upload(x, dtype);
    DeviceBuffer dy = Upload(std::vector<float>(out.elements(), 0.0f), dtype);
    ASSERT_TRUE(MaxPool2d(dtype, dx.data(), in, p, dy.data(), stream()).ok());
    // Max selects an input value: exact in both dtypes.
    ExpectAllNear(Download(dy.data(), out.elements(), dtype), want, 0.0);
  }
}

TEST_P(GpuDTypeTest, ResizeNearest2xMatchesNaive) {
  const DType dtype = GetParam();
  std::mt19937 rng(2);
  const NhwcShape in{2, 3, 4, 6};
  const NhwcShape out{2, 6, 8, 6};
  const std::vector<float> x = Quantize(RandomValues(in.elements(), rng), dtype);
  std::vector<double> want(out.elements());
  for (int64_t b = 0; b < out.n; ++b)
    for (int64_t oy = 0; oy < out.h; ++oy)
      for (int64_t ox = 0; ox < out.w; ++ox)
        for (int64_t c = 0; c < out.c; ++c)
          want[NhwcIndex(out, b, oy, ox, c)] = x[NhwcIndex(in, b, oy / 2, ox / 2, c)];
  DeviceBuffer dx = Upload(x, dtype);
  DeviceBuffer dy = Upload(std::vector<float>(out.elements(), 0.0f), dtype);
  ASSERT_TRUE(ResizeNearest2x(dtype, dx.data(), in, dy.data(), stream()).ok());
  ExpectAllNear(Download(dy.data(), out.elements(), dtype), want, 0.0);
}

TEST_P(GpuDTypeTest, ChannelSlicesConcatAndSplit) {
  const DType dtype = GetParam();
  std::mt19937 rng(3);
  const int64_t pixels = 2 * 5 * 7;
  const int64_t ca = 3, cb = 5, wide = 10;  // concat into channels [1, 4) and [4, 9) of 10
  const std::vector<float> a = Quantize(RandomValues(pixels * ca, rng), dtype);
  const std::vector<float> b = Quantize(RandomValues(pixels * cb, rng), dtype);
  const std::vector<float> sentinel(pixels * wide, 7.0f);
  DeviceBuffer da = Upload(a, dtype), db = Upload(b, dtype), dw = Upload(sentinel, dtype);
  ASSERT_TRUE(
      CopyChannelSlice(dtype, {da.data(), ca, 0}, {dw.data(), wide, 1}, pixels, ca, stream()).ok());
  ASSERT_TRUE(
      CopyChannelSlice(dtype, {db.data(), cb, 0}, {dw.data(), wide, 1 + ca}, pixels, cb, stream())
          .ok());
  std::vector<double> want(pixels * wide, 7.0);
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t k = 0; k < ca; ++k) want[p * wide + 1 + k] = a[p * ca + k];
    for (int64_t k = 0; k < cb; ++k) want[p * wide + 1 + ca + k] = b[p * cb + k];
  }
  ExpectAllNear(Download(dw.data(), pixels * wide, dtype), want, 0.0);

  // Split channels [2, 6) back out into a dense 4-channel tensor.
  DeviceBuffer split = Upload(std::vector<float>(pixels * 4, 0.0f), dtype);
  ASSERT_TRUE(
      CopyChannelSlice(dtype, {dw.data(), wide, 2}, {split.data(), 4, 0}, pixels, 4, stream())
          .ok());
  std::vector<double> want_split(pixels * 4);
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t k = 0; k < 4; ++k) want_split[p * 4 + k] = want[p * wide + 2 + k];
  ExpectAllNear(Download(split.data(), pixels * 4, dtype), want_split, 0.0);
}

TEST_P(GpuDTypeTest, ElementwiseMatchesNaive) {
  const DType dtype = GetParam();
  std::mt19937 rng(4);
  const int64_t count = 1000;
  const std::vector<float> a = Quantize(RandomValues(count, rng, -6, 6), dtype);
  const std::vector<float> b = Quantize(RandomValues(count, rng, -6, 6), dtype);
  DeviceBuffer da = Upload(a, dtype), db = Upload(b, dtype);
  DeviceBuffer dy = Upload(std::vector<float>(count, 0.0f), dtype);
  std::vector<double> add(count), mul(count), sig(count), silu(count);
  for (int64_t i = 0; i < count; ++i) {
    add[i] = static_cast<double>(a[i]) + b[i];
    mul[i] = static_cast<double>(a[i]) * b[i];
    sig[i] = Sigmoid(a[i]);
    silu[i] = a[i] * Sigmoid(a[i]);
  }
  const double tol = Tolerance(dtype);
  ASSERT_TRUE(
      Elementwise(BinaryOp::kAdd, dtype, da.data(), db.data(), dy.data(), count, stream()).ok());
  ExpectAllNear(Download(dy.data(), count, dtype), add, tol);
  ASSERT_TRUE(
      Elementwise(BinaryOp::kMul, dtype, da.data(), db.data(), dy.data(), count, stream()).ok());
  ExpectAllNear(Download(dy.data(), count, dtype), mul, tol);
  ASSERT_TRUE(Elementwise(UnaryOp::kSigmoid, dtype, da.data(), dy.data(), count, stream()).ok());
  ExpectAllNear(Download(dy.data(), count, dtype), sig, tol);
  // In place (y aliases x).
  ASSERT_TRUE(Elementwise(UnaryOp::kSilu, dtype, da.data(), da.data(), count, stream()).ok());
  ExpectAllNear(Download(da.data(), count, dtype), silu, tol);
}

TEST_P(GpuDTypeTest, LayoutConversionRoundTrip) {
  const DType dtype = GetParam();
  std::mt19937 rng(5);
  const NhwcShape shape{2, 3, 5, 4};
  const std::vector<float> nchw = RandomValues(shape.elements(), rng, -2, 2);
  const std::vector<float> rounded = Quantize(nchw, dtype);
  std::vector<double> want_nhwc(shape.elements());
  for (int64_t b = 0; b < shape.n; ++b)
    for (int64_t c = 0; c < shape.c; ++c)
      for (int64_t y = 0; y < shape.h; ++y)
        for (int64_t x = 0; x < shape.w; ++x)
          want_nhwc[NhwcIndex(shape, b, y, x, c)] =
              rounded[((b * shape.c + c) * shape.h + y) * shape.w + x];
  DeviceBuffer dnchw = Upload(nchw, DType::kFloat32);
  DeviceBuffer dnhwc = Upload(std::vector<float>(shape.elements(), 0.0f), dtype);
  ASSERT_TRUE(
      NchwFloatToNhwc(static_cast<const float*>(dnchw.data()), shape, dtype, dnhwc.data(), stream())
          .ok());
  ExpectAllNear(Download(dnhwc.data(), shape.elements(), dtype), want_nhwc, 0.0);

  DeviceBuffer back = Upload(std::vector<float>(shape.elements(), 0.0f), DType::kFloat32);
  ASSERT_TRUE(
      NhwcToNchwFloat(dtype, dnhwc.data(), shape, static_cast<float*>(back.data()), stream()).ok());
  ExpectAllNear(Download(back.data(), shape.elements(), DType::kFloat32),
                std::vector<double>(rounded.begin(), rounded.end()), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuDTypeTest, ::testing::Values(DType::kFloat32, DType::kFloat16),
                         DTypeParamName);

class SoftmaxGpuTest : public GpuTest {};

TEST_F(SoftmaxGpuTest, MatchesNaive) {
  std::mt19937 rng(6);
  for (int64_t cols : {1, 19, 100}) {
    const int64_t rows = 37;
    const std::vector<float> x = RandomValues(rows * cols, rng, -10, 10);
    std::vector<double> want(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      double m = -std::numeric_limits<double>::infinity(), sum = 0.0;
      for (int64_t k = 0; k < cols; ++k) m = std::max(m, static_cast<double>(x[r * cols + k]));
      for (int64_t k = 0; k < cols; ++k) sum += std::exp(x[r * cols + k] - m);
      for (int64_t k = 0; k < cols; ++k) want[r * cols + k] = std::exp(x[r * cols + k] - m) / sum;
    }
    DeviceBuffer dx = Upload(x, DType::kFloat32);
    DeviceBuffer dy = Upload(std::vector<float>(rows * cols, 0.0f), DType::kFloat32);
    ASSERT_TRUE(SoftmaxLastAxis(static_cast<const float*>(dx.data()),
                                static_cast<float*>(dy.data()), rows, cols, stream())
                    .ok());
    ExpectAllNear(Download(dy.data(), rows * cols, DType::kFloat32), want, 1e-5);
  }
}

// Level data for the Detect test: box and class logits of one level, NHWC.
struct HostLevel {
  int64_t h, w;
  float stride;
  int64_t channels, box_offset, cls_offset;  // layout of `data`
  std::vector<float> data;                   // (batch, h, w, channels)
};

// Independent decode following YOLOV8.md, in double.
std::vector<double> NaiveDetect(const std::vector<HostLevel>& levels, int64_t batch, int64_t nc) {
  int64_t anchors = 0;
  for (const HostLevel& l : levels) anchors += l.h * l.w;
  std::vector<double> out(batch * (4 + nc) * anchors);
  for (int64_t b = 0; b < batch; ++b) {
    int64_t a = 0;
    for (const HostLevel& l : levels) {
      for (int64_t y = 0; y < l.h; ++y) {
        for (int64_t x = 0; x < l.w; ++x, ++a) {
          const float* px = &l.data[((b * l.h + y) * l.w + x) * l.channels];
          double dist[4];
          for (int side = 0; side < 4; ++side) {
            double m = -1e300, sum = 0.0, expectation = 0.0;
            for (int j = 0; j < 16; ++j) m = std::max(m, double{px[l.box_offset + side * 16 + j]});
            for (int j = 0; j < 16; ++j) {
              const double e = std::exp(px[l.box_offset + side * 16 + j] - m);
              sum += e;
              expectation += j * e;
            }
            dist[side] = expectation / sum;
          }
          const double ax = x + 0.5, ay = y + 0.5;
          const double x1 = ax - dist[0], y1 = ay - dist[1], x2 = ax + dist[2], y2 = ay + dist[3];
          auto at = [&](int64_t row) -> double& { return out[(b * (4 + nc) + row) * anchors + a]; };
          at(0) = (x1 + x2) / 2 * l.stride;
          at(1) = (y1 + y2) / 2 * l.stride;
          at(2) = (x2 - x1) * l.stride;
          at(3) = (y2 - y1) * l.stride;
          for (int64_t k = 0; k < nc; ++k) at(4 + k) = Sigmoid(px[l.cls_offset + k]);
        }
      }
    }
  }
  return out;
}

TEST_P(GpuDTypeTest, DetectDecodeMatchesNaive) {
  const DType dtype = GetParam();
  std::mt19937 rng(7);
  const int64_t batch = 2, nc = 3;
  // Level 0: one [box, cls] tensor (64 + nc channels). Level 1: a wider tensor with the class
  // logits first and padding channels, to exercise slice offsets.
  std::vector<HostLevel> levels = {
      {4, 5, 8.0f, kDetectBoxChannels + nc, 0, kDetectBoxChannels, {}},
      {2, 3, 16.0f, nc + kDetectBoxChannels + 2, nc + 1, 0, {}},
  };
  for (HostLevel& l : levels) {
    l.data = Quantize(RandomValues(batch * l.h * l.w * l.channels, rng, -4, 4), dtype);
  }
  std::vector<DeviceBuffer> device;
  std::vector<DetectLevel> args;
  for (const HostLevel& l : levels) {
    device.push_back(Upload(l.data, dtype));
    DetectLevel level;
    level.box = {device.back().data(), l.channels, l.box_offset};
    level.cls = {device.back().data(), l.channels, l.cls_offset};
    level.height = l.h;
    level.width = l.w;
    level.stride = l.stride;
    args.push_back(level);
  }
  const int64_t anchors = DetectAnchorCount(args);
  const size_t out_count = batch * (4 + nc) * anchors;
  DeviceBuffer out = Upload(std::vector<float>(out_count, 0.0f), DType::kFloat32);
  ASSERT_TRUE(DetectDecode(dtype, args, batch, nc, static_cast<float*>(out.data()), stream()).ok());
  // Inputs are identical on both sides (already rounded); the output is float32.
  ExpectAllNear(Download(out.data(), out_count, DType::kFloat32), NaiveDetect(levels, batch, nc),
                1e-5);
}

}  // namespace
}  // namespace yolopipe::ops::cuda
