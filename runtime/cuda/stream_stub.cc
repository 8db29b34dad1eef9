// Default build (no --config=cuda): no stream or event can be created, so every object is empty.
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {

absl::StatusOr<CudaStream> CudaStream::Create(int) {
  return NotBuiltWithCudaError("CudaStream::Create");
}
CudaStream& CudaStream::operator=(CudaStream&&) noexcept { return *this; }
CudaStream::~CudaStream() = default;
void CudaStream::Destroy() {}
absl::Status CudaStream::Synchronize() const {
  return NotBuiltWithCudaError("CudaStream::Synchronize");
}
absl::Status CudaStream::WaitEvent(const CudaEvent&) const {
  return NotBuiltWithCudaError("CudaStream::WaitEvent");
}

absl::StatusOr<CudaEvent> CudaEvent::Create(int, bool) {
  return NotBuiltWithCudaError("CudaEvent::Create");
}
CudaEvent& CudaEvent::operator=(CudaEvent&&) noexcept { return *this; }
CudaEvent::~CudaEvent() = default;
void CudaEvent::Destroy() {}
absl::Status CudaEvent::Record(const CudaStream&) {
  return NotBuiltWithCudaError("CudaEvent::Record");
}
absl::Status CudaEvent::Synchronize() const {
  return NotBuiltWithCudaError("CudaEvent::Synchronize");
}
absl::StatusOr<bool> CudaEvent::IsComplete() const {
  return NotBuiltWithCudaError("CudaEvent::IsComplete");
}

absl::StatusOr<float> ElapsedMs(const CudaEvent&, const CudaEvent&) {
  return NotBuiltWithCudaError("ElapsedMs");
}

}  // namespace yolopipe
