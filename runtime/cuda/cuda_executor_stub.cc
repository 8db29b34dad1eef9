// Build without --config=cuda: the host-side lowering (cuda_executor.cc) works, but no executor
// can be created.
#include "ops/cuda/cuda_status.h"
#include "runtime/cuda/cuda_executor.h"

namespace yolopipe {

struct CudaExecutor::State {};

CudaExecutor::CudaExecutor(const CudaExecutorOptions& options) : options_(options) {}
CudaExecutor::~CudaExecutor() = default;

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(
    const Graph& /*prepared*/, const CudaExecutorOptions& /*options*/) {
  return ops::cuda::NotBuiltWithCudaError("CudaExecutor::Create");
}

absl::StatusOr<Tensor> CudaExecutor::Run(const Tensor& /*host_input*/) {
  return ops::cuda::NotBuiltWithCudaError("CudaExecutor::Run");
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunAll(
    absl::Span<const Tensor> /*host_inputs*/) {
  return ops::cuda::NotBuiltWithCudaError("CudaExecutor::RunAll");
}

absl::StatusOr<std::vector<double>> CudaExecutor::TimeSteps(
    absl::Span<const Tensor> /*host_inputs*/) {
  return ops::cuda::NotBuiltWithCudaError("CudaExecutor::TimeSteps");
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunSet(int /*set*/,
                                                         absl::Span<const Tensor> /*host_inputs*/,
                                                         const std::vector<bool>& /*download*/) {
  return ops::cuda::NotBuiltWithCudaError("CudaExecutor::RunSet");
}

void* CudaExecutor::input_buffer(int /*set*/, int /*i*/) const { return nullptr; }
void* CudaExecutor::output_buffer(int /*set*/, int /*i*/) const { return nullptr; }
size_t CudaExecutor::workspace_bytes() const { return 0; }
bool CudaExecutor::graph_captured() const { return false; }

}  // namespace yolopipe
