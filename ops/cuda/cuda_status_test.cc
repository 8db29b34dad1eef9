#include "ops/cuda/cuda_status.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe::ops::cuda {
namespace {

using ::testing::HasSubstr;

// Raw codes from driver_types.h / cudnn_graph.h, spelled as numbers so the test needs no CUDA
// headers: cudaErrorInvalidValue 1, cudaErrorMemoryAllocation 2, cudaErrorNoDevice 100;
// CUDNN_STATUS_BAD_PARAM 2000, CUDNN_STATUS_NOT_SUPPORTED_SHAPE 3002, CUDNN_STATUS_INTERNAL_ERROR
// 4000.
constexpr int kCudaInvalidValue = 1;
constexpr int kCudaMemoryAllocation = 2;
constexpr int kCudaNoDevice = 100;
constexpr int kCudnnBadParam = 2000;
constexpr int kCudnnNotSupportedShape = 3002;
constexpr int kCudnnInternal = 4000;

int FakeCall(int code) { return code; }

absl::Status UsesCudaMacro(int code, bool* reached_end) {
  YP_CUDA_RETURN_IF_ERROR(FakeCall(code));
  *reached_end = true;
  return absl::OkStatus();
}

absl::Status UsesCudnnMacro(int code, bool* reached_end) {
  YP_CUDNN_RETURN_IF_ERROR(FakeCall(code));
  *reached_end = true;
  return absl::OkStatus();
}

TEST(CudaStatusTest, SuccessCodesAreOk) {
  EXPECT_TRUE(CudaErrorToStatus(0, "cudaFoo()").ok());
  EXPECT_TRUE(CudnnErrorToStatus(0, "cudnnFoo()").ok());
}

TEST(CudaStatusTest, CudaErrorsCarryTheCallAndMapToCodes) {
  const absl::Status oom = CudaErrorToStatus(kCudaMemoryAllocation, "cudaMalloc(&p, 64)");
  EXPECT_THAT(std::string(oom.message()), HasSubstr("cudaMalloc(&p, 64) failed"));
  const absl::Status no_device = CudaErrorToStatus(kCudaNoDevice, "cudaSetDevice(0)");
  EXPECT_THAT(std::string(no_device.message()), HasSubstr("cudaSetDevice(0) failed"));
  const absl::Status invalid = CudaErrorToStatus(kCudaInvalidValue, "cudaMemcpy()");
  if (BuiltWithCuda()) {
    EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(std::string(oom.message()), HasSubstr("cudaErrorMemoryAllocation"));
    EXPECT_EQ(no_device.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(no_device.message()), HasSubstr("cudaErrorNoDevice"));
    EXPECT_EQ(invalid.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(invalid.message()), HasSubstr("cudaErrorInvalidValue"));
  } else {
    EXPECT_EQ(oom.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(oom.message()), HasSubstr("CUDA error 2"));
    EXPECT_FALSE(no_device.ok());
    EXPECT_FALSE(invalid.ok());
  }
}

TEST(CudaStatusTest, CudnnErrorsCarryTheCallAndMapToCodes) {
  const absl::Status bad = CudnnErrorToStatus(kCudnnBadParam, "cudnnSetTensor4dDescriptor(d)");
  EXPECT_THAT(std::string(bad.message()), HasSubstr("cudnnSetTensor4dDescriptor(d) failed"));
  const absl::Status unsupported = CudnnErrorToStatus(kCudnnNotSupportedShape, "cudnnConv()");
  const absl::Status internal = CudnnErrorToStatus(kCudnnInternal, "cudnnConv()");
  if (BuiltWithCuda()) {
    EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(bad.message()), HasSubstr("CUDNN_STATUS_BAD_PARAM"));
    EXPECT_EQ(unsupported.code(), absl::StatusCode::kUnimplemented);
    EXPECT_EQ(internal.code(), absl::StatusCode::kInternal);
  } else {
    EXPECT_EQ(bad.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(std::string(bad.message()), HasSubstr("cuDNN status 2000"));
    EXPECT_FALSE(unsupported.ok());
    EXPECT_FALSE(internal.ok());
  }
}

TEST(CudaStatusTest, MacrosReturnOnErrorWithTheExpressionText) {
  bool reached_end = false;
  absl::Status s = UsesCudaMacro(kCudaMemoryAllocation, &reached_end);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(reached_end);
  EXPECT_THAT(std::string(s.message()), HasSubstr("FakeCall(code)"));

  reached_end = false;
  EXPECT_TRUE(UsesCudaMacro(0, &reached_end).ok());
  EXPECT_TRUE(reached_end);

  reached_end = false;
  s = UsesCudnnMacro(kCudnnBadParam, &reached_end);
  EXPECT_FALSE(s.ok());
  EXPECT_FALSE(reached_end);
  EXPECT_THAT(std::string(s.message()), HasSubstr("FakeCall(code)"));

  reached_end = false;
  EXPECT_TRUE(UsesCudnnMacro(0, &reached_end).ok());
  EXPECT_TRUE(reached_end);
}

TEST(CudaStatusTest, NotBuiltWithCudaIsFailedPrecondition) {
  const absl::Status s = NotBuiltWithCudaError("MaxPool2d");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("MaxPool2d: built without CUDA support"));
}

}  // namespace
}  // namespace yolopipe::ops::cuda
