#include "runtime/embed/yolopipe.h"

#include <deque>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "runtime/artifact_io.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/proto/plan.pb.h"

namespace yolopipe {
namespace {

using Result = absl::StatusOr<Tensor>;

std::future<Result> ReadyFuture(absl::Status status) {
  std::promise<Result> promise;
  promise.set_value(std::move(status));
  return promise.get_future();
}

}  // namespace

struct Engine::Impl {
  struct Request {
    Tensor images;
    std::promise<Result> promise;
  };

  std::unique_ptr<Pipeline> pipeline;
  int max_pending = 64;

  absl::Mutex mu;
  absl::CondVar not_empty;  // a request was queued, or accepting turned false
  absl::CondVar not_full;   // a request left the queue, or accepting turned false
  std::deque<Request> queue ABSL_GUARDED_BY(mu);
  bool accepting ABSL_GUARDED_BY(mu) = true;

  absl::Mutex join_mu;  // serialises joining the dispatcher (concurrent Shutdowns)
  std::thread dispatcher ABSL_GUARDED_BY(join_mu);

  void Dispatch() {
    for (;;) {
      Request request;
      {
        absl::MutexLock lock(&mu);
        while (queue.empty() && accepting) not_empty.Wait(&mu);
        if (queue.empty()) return;  // shut down and drained
        request = std::move(queue.front());
        queue.pop_front();
        not_full.Signal();
      }
      // Pipeline::Run returns every failure as a Status; nothing here throws except allocation.
      Result result = [&]() -> Result {
        try {
          return pipeline->Run(request.images);
        } catch (const std::exception& e) {
          return absl::InternalError(absl::StrCat("engine request failed: ", e.what()));
        }
      }();
      request.images = Tensor();  // release the caller's buffer before signalling
      request.promise.set_value(std::move(result));
    }
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() { Shutdown(ShutdownMode::kFinish); }

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  if (options.max_pending < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_pending must be >= 1, got ", options.max_pending));
  }
  if (options.imgsz < 1) {
    return absl::InvalidArgumentError(absl::StrCat("imgsz must be >= 1, got ", options.imgsz));
  }
  PipelineOptions po;
  YP_ASSIGN_OR_RETURN(po.mode, ParseMode(options.mode));
  YP_ASSIGN_OR_RETURN(po.devices, ParseDevices(options.devices));
  for (const DeviceSpec& d : po.devices) {
    if (d.kind != DeviceKind::kCpu) {
      return absl::InvalidArgumentError(absl::StrCat(
          "devices \"", options.devices, "\": only CPU devices are supported, got ", d.ToString()));
    }
  }
  po.stages = options.stages;
  po.replicas = options.replicas;
  po.microbatch = options.microbatch;
  proto::Plan plan;
  if (!options.plan_path.empty()) {
    YP_RETURN_IF_ERROR(ReadArtifact(options.plan_path, &plan));
    po.plan = &plan;
  }
  BuiltinModelOptions mo;
  mo.num_classes = options.num_classes;
  mo.seed = options.seed;
  mo.imgsz = options.imgsz;
  YP_ASSIGN_OR_RETURN(Model model, LoadModel(options.model, mo));

  auto impl = std::make_unique<Impl>();
  impl->max_pending = options.max_pending;
  YP_ASSIGN_OR_RETURN(impl->pipeline, Pipeline::Create(model, options.imgsz, po));
  Impl* raw = impl.get();
  try {
    absl::MutexLock lock(&raw->join_mu);
    raw->dispatcher = std::thread([raw] { raw->Dispatch(); });
  } catch (const std::exception& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the engine's dispatcher thread: ", e.what()));
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

absl::StatusOr<Tensor> Engine::Infer(const Tensor& images) { return Submit(images).get(); }

std::future<absl::StatusOr<Tensor>> Engine::Submit(const Tensor& images) {
  Impl& s = *impl_;
  absl::MutexLock lock(&s.mu);
  while (s.accepting && static_cast<int>(s.queue.size()) >= s.max_pending) s.not_full.Wait(&s.mu);
  if (!s.accepting) {
    return ReadyFuture(absl::FailedPreconditionError("engine is shut down"));
  }
  Impl::Request request;
  request.images = images;
  std::future<Result> future = request.promise.get_future();
  s.queue.push_back(std::move(request));
  s.not_empty.Signal();
  return future;
}

void Engine::Shutdown(ShutdownMode mode) {
  Impl& s = *impl_;
  std::deque<Impl::Request> cancelled;
  {
    absl::MutexLock lock(&s.mu);
    s.accepting = false;
    if (mode == ShutdownMode::kCancel) cancelled.swap(s.queue);
    s.not_empty.SignalAll();
    s.not_full.SignalAll();
  }
  for (Impl::Request& r : cancelled) {
    r.promise.set_value(absl::CancelledError("engine shut down before the request ran"));
  }
  absl::MutexLock lock(&s.join_mu);
  if (s.dispatcher.joinable()) s.dispatcher.join();
}

}  // namespace yolopipe
