// The embedding API: one small header for a C++ service that wants to run a YOLOv8 model in any of
// yolopipe's modes (single, pipeline, data, hybrid) and submit image batches from many threads.
//
//   yolopipe::EngineOptions options;
//   options.model = "yolov8n";                      // built-in name or path to an .onnx file
//   options.imgsz = 320;
//   auto engine = yolopipe::Engine::Create(options);  // absl::StatusOr<std::unique_ptr<Engine>>
//   absl::StatusOr<yolopipe::Tensor> out = (*engine)->Infer(images);   // (N, 4+nc, A)
//   std::future<absl::StatusOr<yolopipe::Tensor>> f = (*engine)->Submit(images);
//
// Link with `deps = ["//runtime/embed:yolopipe"]` (the CPU kernels come with it).
//
// Model: one runtime/pipeline Pipeline, built in Create for one micro-batch size, with one open
// stream through it. Requests are taken in submission order from a bounded queue and split into
// micro-batches (the last one may be partial, so any N >= 1 works); consecutive requests overlap
// in the pipeline, and their futures complete in submission order. Every mode returns the same
// bytes as `single` with the same micro-batch size. A stage failure fails the requests that were
// in the pipeline at that moment (with the stage's error, naming replica, stage and micro-batch);
// the engine then opens a fresh stream for the requests still queued.
#ifndef YOLOPIPE_RUNTIME_EMBED_YOLOPIPE_H_
#define YOLOPIPE_RUNTIME_EMBED_YOLOPIPE_H_

#include <cstdint>
#include <future>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"

namespace yolopipe {

struct EngineOptions {
  std::string model = "yolov8n";  // built-in "yolov8n".."yolov8x" or a path to an .onnx file
  int64_t imgsz = 640;            // square input size in pixels
  int64_t num_classes = 80;       // built-in models only
  uint64_t seed = 0;              // built-in models only (weights are pseudo-random)
  std::string mode = "single";    // "single", "pipeline", "data" or "hybrid"
  std::string devices = "cpu";    // "cpu" or "cpu:K" (K CPU devices sharing the machine's cores)
  int stages = 0;       // pipeline/hybrid stage count; 0 = from the plan or the device count
  int replicas = 1;     // hybrid replicas
  int microbatch = 1;   // images per micro-batch (a request's last one may be partial)
  std::string plan_path;  // optional plan file (.pbtxt/.pb/.json) from `yolopipe plan`
  int max_pending = 64;   // queued requests (not yet running); Submit blocks while it is full
};

// Thread-safety: Infer, Submit and Shutdown may be called from any thread concurrently.
// Destroying the Engine while another thread is still inside one of its methods is undefined.
class Engine {
 public:
  enum class ShutdownMode { kFinish, kCancel };

  // Loads the model and builds the pipeline (for pipeline/hybrid without a plan this profiles the
  // model once and plans on the spot). Errors: InvalidArgument for bad options (mode, devices,
  // stages, microbatch, max_pending), the loader's error for an unknown model or bad file, the plan
  // reader's / checker's error for a bad plan.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();  // Shutdown(kFinish)

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // images: plain float32 (N, 3, imgsz, imgsz), N >= 1. The tensor is shared until the engine
  // has handed it to the pipeline: do not write to it until the result is ready. Returns the model's first
  // output (N, 4+nc, A), image i's rows from input image i. Errors are per request (a bad shape
  // fails that request only; a stage failure names the replica, stage and micro-batch).
  absl::StatusOr<Tensor> Infer(const Tensor& images);  // Submit(images).get()
  // Queues the request; blocks while `max_pending` requests are queued. The future completes in
  // submission order. After Shutdown: a ready future with FailedPrecondition.
  std::future<absl::StatusOr<Tensor>> Submit(const Tensor& images);

  // Stops accepting requests (later Submits fail with FailedPrecondition, Submits blocked on a
  // full queue wake and fail the same way), then returns once the engine's threads have stopped.
  // kFinish: every queued request runs. kCancel: queued requests complete with Cancelled; those
  // already in the pipeline complete normally. Every future is ready when Shutdown returns.
  // Idempotent; a kCancel after (or during) a kFinish cancels what is still queued.
  void Shutdown(ShutdownMode mode = ShutdownMode::kFinish);

 private:
  struct Impl;
  friend struct EngineTestPeer;  // runtime/embed/engine_test_peer.h (tests only)
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_EMBED_YOLOPIPE_H_
