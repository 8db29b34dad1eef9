// RAII CUDA streams and events returning absl::Status, usable from plain C++: handles are
// cudaStream_t / cudaEvent_t passed around as void*, so including this needs no CUDA headers.
// In a build without --config=cuda, Create() returns FailedPrecondition("... built without CUDA
// support") and no valid object can exist.
//
// Ownership: each object owns its handle and destroys it in its destructor; objects are move-only
// and a moved-from object is empty (valid() false). Operations on an empty object give
// FailedPrecondition. Thread-safety: CUDA streams and events may be used from several threads,
// but these wrappers are not synchronised: do not move or destroy one while another thread uses it.
#ifndef YOLOPIPE_RUNTIME_CUDA_STREAM_H_
#define YOLOPIPE_RUNTIME_CUDA_STREAM_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace yolopipe {

class CudaEvent;

class CudaStream {
 public:
  // A stream on `device` created with cudaStreamNonBlocking (no implicit synchronisation with the
  // legacy default stream). The calling thread's current device is left unchanged.
  static absl::StatusOr<CudaStream> Create(int device = 0);

  CudaStream() = default;  // empty
  CudaStream(CudaStream&& other) noexcept { *this = static_cast<CudaStream&&>(other); }
  CudaStream& operator=(CudaStream&& other) noexcept;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  ~CudaStream();

  bool valid() const { return handle_ != nullptr; }
  void* handle() const { return handle_; }  // cudaStream_t
  int device() const { return device_; }

  // Blocks until all work enqueued so far has finished; reports asynchronous kernel errors.
  absl::Status Synchronize() const;
  // Work enqueued on this stream after the call waits until `event` (as last recorded) completes.
  absl::Status WaitEvent(const CudaEvent& event) const;

 private:
  void Destroy();

  void* handle_ = nullptr;
  int device_ = -1;
};

class CudaEvent {
 public:
  // An event on `device`. Without `enable_timing` it is created with cudaEventDisableTiming, which
  // makes Record/Wait cheaper; ElapsedMs needs timing events.
  static absl::StatusOr<CudaEvent> Create(int device = 0, bool enable_timing = false);

  CudaEvent() = default;  // empty
  CudaEvent(CudaEvent&& other) noexcept { *this = static_cast<CudaEvent&&>(other); }
  CudaEvent& operator=(CudaEvent&& other) noexcept;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  ~CudaEvent();

  bool valid() const { return handle_ != nullptr; }
  void* handle() const { return handle_; }  // cudaEvent_t
  int device() const { return device_; }
  bool timing_enabled() const { return timing_enabled_; }

  // Captures the work enqueued on `stream` so far (stream and event must be on one device).
  absl::Status Record(const CudaStream& stream);
  // Blocks until the captured work has finished.
  absl::Status Synchronize() const;
  // True when the captured work has finished (or nothing was recorded), false while pending.
  absl::StatusOr<bool> IsComplete() const;

 private:
  void Destroy();

  void* handle_ = nullptr;
  int device_ = -1;
  bool timing_enabled_ = false;
};

// Milliseconds between two recorded, completed timing events (cudaEventElapsedTime; resolution
// about 0.5 us). FailedPrecondition if either was created without timing or is empty.
absl::StatusOr<float> ElapsedMs(const CudaEvent& start, const CudaEvent& end);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_STREAM_H_
