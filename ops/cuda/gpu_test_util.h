// Test helpers for ops/cuda GPU tests (testonly): a fixture that skips without a GPU and owns a
// stream, uploads/downloads of float data as float32 or float16, and dtype tolerances.
#ifndef YOLOPIPE_OPS_CUDA_GPU_TEST_UTIL_H_
#define YOLOPIPE_OPS_CUDA_GPU_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "base/dtype.h"
#include "gtest/gtest.h"
#include "ops/cuda/half.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/stream.h"

namespace yolopipe::ops::cuda::testing {

inline std::vector<float> RandomValues(size_t count, std::mt19937& rng, float lo = -1.0f,
                                       float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> values(count);
  for (float& v : values) v = dist(rng);
  return values;
}

// The values the device sees after storing `values` as `dtype` (fp16 rounds).
inline std::vector<float> Quantize(const std::vector<float>& values, DType dtype) {
  if (dtype != DType::kFloat16) return values;
  return HalfBitsToFloats(FloatsToHalfBits(values));
}

// Relative tolerance for results stored in `dtype` (fp32 ~1e-5, fp16 ~1e-2).
inline double Tolerance(DType dtype) { return dtype == DType::kFloat16 ? 1e-2 : 1e-5; }

// Expects |got - want| <= tol * max(1, |want|) elementwise.
inline void ExpectAllNear(const std::vector<float>& got, const std::vector<double>& want,
                          double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * std::fmax(1.0, std::fabs(want[i]))) << "at index " << i;
  }
}

// Skips the test without a GPU; otherwise owns a stream on device 0.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devices = ListCudaDevices();
    if (!devices.ok()) GTEST_SKIP() << devices.status();
    absl::StatusOr<CudaStream> stream = CudaStream::Create(0);
    ASSERT_TRUE(stream.ok()) << stream.status();
    stream_ = std::move(stream).value();
  }

  // Device copy of `values` stored as `dtype` (float32 or float16).
  DeviceBuffer Upload(const std::vector<float>& values, DType dtype) {
    const size_t bytes = values.size() * (dtype == DType::kFloat16 ? 2 : 4);
    absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(bytes);
    EXPECT_TRUE(buffer.ok()) << buffer.status();
    if (!buffer.ok()) return DeviceBuffer();
    absl::Status copied;
    if (dtype == DType::kFloat16) {
      const std::vector<uint16_t> half = FloatsToHalfBits(values);
      copied = CopyHostToDeviceAsync(buffer->data(), half.data(), bytes, stream_);
      if (copied.ok()) copied = stream_.Synchronize();  // `half` dies at scope end
    } else {
      copied = CopyHostToDeviceAsync(buffer->data(), values.data(), bytes, stream_);
      if (copied.ok()) copied = stream_.Synchronize();
    }
    EXPECT_TRUE(copied.ok()) << copied;
    return std::move(buffer).value();
  }

  // Synchronises the stream and reads `count` values of `dtype` back as floats.
  std::vector<float> Download(const void* device, size_t count, DType dtype) {
    absl::Status synced = stream_.Synchronize();
    EXPECT_TRUE(synced.ok()) << synced;
    std::vector<float> out(count, std::nanf(""));
    if (dtype == DType::kFloat16) {
      std::vector<uint16_t> half(count);
      absl::Status s = CopyDeviceToHostAsync(half.data(), device, count * 2, stream_);
      if (s.ok()) s = stream_.Synchronize();
      EXPECT_TRUE(s.ok()) << s;
      out = HalfBitsToFloats(half);
    } else {
      absl::Status s = CopyDeviceToHostAsync(out.data(), device, count * 4, stream_);
      if (s.ok()) s = stream_.Synchronize();
      EXPECT_TRUE(s.ok()) << s;
    }
    return out;
  }

  void* stream() const { return stream_.handle(); }

  CudaStream stream_;
};

// Parametrised over float32 and float16.
class GpuDTypeTest : public GpuTest, public ::testing::WithParamInterface<DType> {};

inline std::string DTypeParamName(const ::testing::TestParamInfo<DType>& info) {
  return info.param == DType::kFloat16 ? "Float16" : "Float32";
}

}  // namespace yolopipe::ops::cuda::testing

#endif  // YOLOPIPE_OPS_CUDA_GPU_TEST_UTIL_H_
