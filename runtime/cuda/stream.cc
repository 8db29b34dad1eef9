// --config=cuda build.
#include "runtime/cuda/stream.h"

#include <cuda_runtime_api.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cuda/cuda_util.h"

namespace yolopipe {
namespace {

cudaStream_t AsStream(void* handle) { return static_cast<cudaStream_t>(handle); }
cudaEvent_t AsEvent(void* handle) { return static_cast<cudaEvent_t>(handle); }

absl::Status EmptyError(const char* what) {
  return absl::FailedPreconditionError(absl::StrCat(what, " on an empty object"));
}

}  // namespace

absl::StatusOr<CudaStream> CudaStream::Create(int device) {
  ScopedCudaDevice scope(device);
  if (!scope.status().ok()) return scope.status();
  cudaStream_t stream = nullptr;
  YP_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CudaStream result;
  result.handle_ = stream;
  result.device_ = device;
  return result;
}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  if (this != &other) {
    Destroy();
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = std::exchange(other.device_, -1);
  }
  return *this;
}

CudaStream::~CudaStream() { Destroy(); }

void CudaStream::Destroy() {
  // cudaStreamDestroy returns at once; pending work still completes. Failure is not reportable
  // from a destructor.
  if (handle_ != nullptr) cudaStreamDestroy(AsStream(handle_));
  handle_ = nullptr;
}

absl::Status CudaStream::Synchronize() const {
  if (!valid()) return EmptyError("CudaStream::Synchronize");
  YP_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(AsStream(handle_)));
  return absl::OkStatus();
}

absl::Status CudaStream::WaitEvent(const CudaEvent& event) const {
  if (!valid() || !event.valid()) return EmptyError("CudaStream::WaitEvent");
  YP_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(AsStream(handle_), AsEvent(event.handle()), 0));
  return absl::OkStatus();
}

absl::StatusOr<CudaEvent> CudaEvent::Create(int device, bool enable_timing) {
  ScopedCudaDevice scope(device);
  if (!scope.status().ok()) return scope.status();
  cudaEvent_t event = nullptr;
  YP_CUDA_RETURN_IF_ERROR(
      cudaEventCreateWithFlags(&event, enable_timing ? cudaEventDefault : cudaEventDisableTiming));
  CudaEvent result;
  result.handle_ = event;
  result.device_ = device;
  result.timing_enabled_ = enable_timing;
  return result;
}

CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  if (this != &other) {
    Destroy();
    handle_ = std::exchange(other.handle_, nullptr);
    device_ = std::exchange(other.device_, -1);
    timing_enabled_ = std::exchange(other.timing_enabled_, false);
  }
  return *this;
}

CudaEvent::~CudaEvent() { Destroy(); }

void CudaEvent::Destroy() {
  if (handle_ != nullptr) cudaEventDestroy(AsEvent(handle_));
  handle_ = nullptr;
}

absl::Status CudaEvent::Record(const CudaStream& stream) {
  if (!valid() || !stream.valid()) return EmptyError("CudaEvent::Record");
  if (stream.device() != device_) {
    return absl::InvalidArgumentError(absl::StrCat("CudaEvent::Record: event on cuda:", device_,
                                                   ", stream on cuda:", stream.device()));
  }
  YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(handle_), AsStream(stream.handle())));
  return absl::OkStatus();
}

absl::Status CudaEvent::Synchronize() const {
  if (!valid()) return EmptyError("CudaEvent::Synchronize");
  YP_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(AsEvent(handle_)));
  return absl::OkStatus();
}

absl::StatusOr<bool> CudaEvent::IsComplete() const {
  if (!valid()) return EmptyError("CudaEvent::IsComplete");
  const cudaError_t error = cudaEventQuery(AsEvent(handle_));
  if (error == cudaErrorNotReady) {
    cudaGetLastError();  // "not ready" is an answer, not an error: keep launch checks clean
    return false;
  }
  YP_CUDA_RETURN_IF_ERROR(error);
  return true;
}

absl::StatusOr<float> ElapsedMs(const CudaEvent& start, const CudaEvent& end) {
  if (!start.valid() || !end.valid()) return EmptyError("ElapsedMs");
  if (!start.timing_enabled() || !end.timing_enabled()) {
    return absl::FailedPreconditionError("ElapsedMs: both events need enable_timing");
  }
  float ms = 0.0f;
  YP_CUDA_RETURN_IF_ERROR(
      cudaEventElapsedTime(&ms, AsEvent(start.handle()), AsEvent(end.handle())));
  return ms;
}

}  // namespace yolopipe
