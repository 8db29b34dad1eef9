// Plain C interface to the nvcc-compiled device queries (keeps CUDA headers out of other code).
#ifndef YOLOPIPE_RUNTIME_CUDA_DEVICE_QUERY_H_
#define YOLOPIPE_RUNTIME_CUDA_DEVICE_QUERY_H_

#include <cstddef>

extern "C" {

struct YpCudaDeviceProperties {
  char name[256];
  size_t total_memory_bytes;
  int major;
  int minor;
};

struct YpCudaLibraryVersions {
  int cudart;  // e.g. 13000
  int cudnn;   // e.g. 91900
  int nccl;    // e.g. 22809
};

// Return 0 on success; otherwise write a message into `error` and return non-zero.
int yolopipe_cuda_device_count(int* count, char* error, size_t error_size);
int yolopipe_cuda_device_properties(int ordinal, YpCudaDeviceProperties* props, char* error,
                                    size_t error_size);
void yolopipe_cuda_library_versions(YpCudaLibraryVersions* versions);
}

#endif  // YOLOPIPE_RUNTIME_CUDA_DEVICE_QUERY_H_
