#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>

#include <cstdio>

#include "runtime/cuda/device_query.h"

extern "C" int yolopipe_cuda_device_count(int* count, char* error, size_t error_size) {
  cudaError_t err = cudaGetDeviceCount(count);
  if (err != cudaSuccess) {
    std::snprintf(error, error_size, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(err),
                  cudaGetErrorName(err));
    *count = 0;
    return 1;
  }
  return 0;
}

extern "C" int yolopipe_cuda_device_properties(int ordinal, YpCudaDeviceProperties* props,
                                               char* error, size_t error_size) {
  cudaDeviceProp p;
  cudaError_t err = cudaGetDeviceProperties(&p, ordinal);
  if (err != cudaSuccess) {
    std::snprintf(error, error_size, "cudaGetDeviceProperties: %s", cudaGetErrorString(err));
    return 1;
  }
  std::snprintf(props->name, sizeof(props->name), "%s", p.name);
  props->total_memory_bytes = p.totalGlobalMem;
  props->major = p.major;
  props->minor = p.minor;
  return 0;
}

extern "C" void yolopipe_cuda_library_versions(YpCudaLibraryVersions* versions) {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  int nccl = 0;
  ncclGetVersion(&nccl);
  versions->cudart = runtime;
  versions->cudnn = static_cast<int>(cudnnGetVersion());
  versions->nccl = nccl;
}
