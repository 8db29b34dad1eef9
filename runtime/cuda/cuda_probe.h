// Asks the CUDA driver which GPUs this process can use. Built with real CUDA calls under
// --config=cuda; otherwise it reports that the binary has no CUDA support.
#ifndef YOLOPIPE_RUNTIME_CUDA_CUDA_PROBE_H_
#define YOLOPIPE_RUNTIME_CUDA_CUDA_PROBE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace yolopipe {

struct CudaDeviceInfo {
  int ordinal = 0;
  std::string name;
  size_t total_memory_bytes = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
};

// The visible GPUs. A machine without a GPU or driver, or a build without --config=cuda, gives
// FailedPrecondition("no CUDA devices: <reason>"), never a crash.
absl::StatusOr<std::vector<CudaDeviceInfo>> ListCudaDevices();

// Versions of the libraries linked into this build ("cuDNN 9.19.0, NCCL 2.28.9"), or the reason
// there are none.
std::string CudaLibraryVersions();

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_CUDA_PROBE_H_
