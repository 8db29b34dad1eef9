// Build without --config=cuda: no CUDA support compiled in.
#include "absl/status/status.h"
#include "runtime/cuda/cuda_probe.h"

namespace yolopipe {

absl::StatusOr<std::vector<CudaDeviceInfo>> ListCudaDevices() {
  return absl::FailedPreconditionError(
      "no CUDA devices: this yolopipe was built without CUDA support (build with --config=cuda)");
}

std::string CudaLibraryVersions() { return "built without CUDA"; }

}  // namespace yolopipe
