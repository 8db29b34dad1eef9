// --config=cuda build: queries the driver through the CUDA runtime, and links cuDNN and NCCL.
#include "runtime/cuda/cuda_probe.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runtime/cuda/device_query.h"

namespace yolopipe {

absl::StatusOr<std::vector<CudaDeviceInfo>> ListCudaDevices() {
  int count = 0;
  char error[256] = {0};
  if (yolopipe_cuda_device_count(&count, error, sizeof(error)) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("no CUDA devices: ", error));
  }
  if (count == 0) return absl::FailedPreconditionError("no CUDA devices: the driver lists none");
  std::vector<CudaDeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    YpCudaDeviceProperties props;
    if (yolopipe_cuda_device_properties(i, &props, error, sizeof(error)) != 0) {
      return absl::InternalError(absl::StrCat("cuda:", i, ": ", error));
    }
    CudaDeviceInfo info;
    info.ordinal = i;
    info.name = props.name;
    info.total_memory_bytes = props.total_memory_bytes;
    info.compute_capability_major = props.major;
    info.compute_capability_minor = props.minor;
    devices.push_back(info);
  }
  return devices;
}

std::string CudaLibraryVersions() {
  YpCudaLibraryVersions v;
  yolopipe_cuda_library_versions(&v);
  return absl::StrCat("CUDA runtime ", v.cudart / 1000, ".", (v.cudart % 1000) / 10, ", cuDNN ",
                      v.cudnn / 10000, ".", (v.cudnn % 10000) / 100, ".", v.cudnn % 100,
                      ", NCCL ", v.nccl / 10000, ".", (v.nccl % 10000) / 100, ".", v.nccl % 100);
}

}  // namespace yolopipe
