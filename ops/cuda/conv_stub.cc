// Default build (no --config=cuda): no runner can be created.
#include "ops/cuda/conv.h"
#include "ops/cuda/cuda_status.h"

namespace yolopipe::ops::cuda {

struct CudnnConvRunner::Plan {};

absl::StatusOr<std::unique_ptr<CudnnConvRunner>> CudnnConvRunner::Create(ConvImplementation) {
  return NotBuiltWithCudaError("CudnnConvRunner");
}

CudnnConvRunner::CudnnConvRunner(ConvImplementation implementation)
    : implementation_(implementation) {}

CudnnConvRunner::~CudnnConvRunner() = default;

absl::StatusOr<const CudnnConvRunner::Plan*> CudnnConvRunner::GetPlan(const ConvParams&,
                                                                      const ConvEpilogueParams&,
                                                                      const ChannelSlice&) {
  return NotBuiltWithCudaError("CudnnConvRunner");
}

absl::StatusOr<size_t> CudnnConvRunner::WorkspaceBytes(const ConvParams&, const ConvEpilogueParams&,
                                                       const ChannelSlice&) {
  return NotBuiltWithCudaError("CudnnConvRunner");
}

absl::StatusOr<std::string> CudnnConvRunner::DescribePlan(const ConvParams&,
                                                          const ConvEpilogueParams&,
                                                          const ChannelSlice&) {
  return NotBuiltWithCudaError("CudnnConvRunner");
}

absl::Status CudnnConvRunner::Forward(const ConvParams&, const void*, const void*,
                                      const ConvEpilogueParams&, const ChannelSlice&, void*, size_t,
                                      void*) {
  return NotBuiltWithCudaError("CudnnConvRunner");
}

}  // namespace yolopipe::ops::cuda
