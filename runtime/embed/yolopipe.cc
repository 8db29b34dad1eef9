#include "runtime/embed/yolopipe.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "runtime/artifact_io.h"
#include "runtime/device.h"
#include "runtime/embed/engine_test_peer.h"
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

// Two threads move requests through one open PipelineStream:
//   feeder:    takes queued requests in order, registers each as in flight, and pushes its
//              micro-batches (the last one may be partial);
//   completer: pops outputs in order and copies them into the oldest in-flight request's result,
//              completing its future when its last micro-batch is in.
// So consecutive requests overlap in the pipeline (request i+1 enters the first stage while
// request i is still in the last). When the stream fails (a stage error), the completer fails
// every in-flight request with that error; the feeder then finishes the broken stream and opens
// a fresh one for the requests still queued.
struct Engine::Impl {
  struct Request {
    Tensor images;
    std::promise<Result> promise;
  };
  struct InFlight {
    std::promise<Result> promise;
    Tensor output;        // (N, ...) assembled here
    int64_t images = 0;   // N
    int64_t filled = 0;   // images whose outputs are in
  };

  std::unique_ptr<Pipeline> pipeline;
  Shape image_shape;  // (1, C, H, W)
  int microbatch = 1;
  int max_pending = 64;

  std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu:
  std::deque<Request> queue;        // submitted, not yet taken by the feeder
  bool accepting = true;
  std::deque<InFlight> in_flight;   // taken by the feeder, not yet completed, in order
  PipelineStream* stream = nullptr;  // the open stream (owned by the feeder)
  int64_t generation = 0;            // bumped whenever the feeder opens a stream
  bool stream_drained = false;       // the completer is done with the current stream
  bool feeder_done = false;

  std::mutex join_mu;  // serialises joining (concurrent Shutdowns)
  std::thread feeder, completer;

  absl::Status CheckImages(const Tensor& images) const {
    if (!images.defined() || images.dtype() != DType::kFloat32 || images.rank() != 4 ||
        images.layout() != Layout::kPlain || images.dim(0) < 1 ||
        images.dim(1) != image_shape[1] || images.dim(2) != image_shape[2] ||
        images.dim(3) != image_shape[3]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "images must be plain float32 (N, ", image_shape[1], ", ", image_shape[2], ", ",
          image_shape[3], ") with N >= 1, got ",
          images.defined() ? DTypeName(images.dtype()) : "undefined", " ",
          ShapeToString(images.shape())));
    }
    return absl::OkStatus();
  }

  // Opens a stream and publishes it to the completer.
  absl::StatusOr<std::unique_ptr<PipelineStream>> Open() {
    YP_ASSIGN_OR_RETURN(std::unique_ptr<PipelineStream> s, pipeline->OpenStream());
    {
      std::lock_guard<std::mutex> lock(mu);
      stream = s.get();
      stream_drained = false;
      ++generation;
    }
    cv.notify_all();
    return s;
  }

  // Closes `s`, waits until the completer has drained it, and finishes it. Requests registered
  // after the completer drained a failed stream fail with the stream's error here.
  void Close(std::unique_ptr<PipelineStream>& s) {
    s->CloseInput();
    std::deque<InFlight> left;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [this] { return stream_drained; });
      stream = nullptr;
      left.swap(in_flight);
    }
    absl::Status finished = s->Finish();
    s.reset();
    if (finished.ok()) finished = absl::InternalError("the stream ended with requests in flight");
    for (InFlight& f : left) f.promise.set_value(finished);
  }

  bool Drained() {
    std::lock_guard<std::mutex> lock(mu);
    return stream_drained;
  }

  void Feed() {
    std::unique_ptr<PipelineStream> s;
    for (;;) {
      Request request;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return !queue.empty() || !accepting; });
        if (queue.empty()) break;  // shut down and drained
        request = std::move(queue.front());
        queue.pop_front();
      }
      cv.notify_all();  // a Submit waiting for room
      if (s != nullptr && Drained()) Close(s);  // it failed since the last request
      if (s == nullptr) {
        auto opened = Open();
        if (!opened.ok()) {
          request.promise.set_value(opened.status());
          continue;
        }
        s = std::move(*opened);
      }
      const int64_t n = request.images.dim(0);
      {
        std::lock_guard<std::mutex> lock(mu);
        InFlight f;
        f.promise = std::move(request.promise);
        f.images = n;
        in_flight.push_back(std::move(f));
      }
      cv.notify_all();
      const size_t image_bytes = request.images.bytes() / static_cast<size_t>(n);
      bool broken = false;
      for (int64_t first = 0; first < n && !broken; first += microbatch) {
        Shape shape = request.images.shape();
        shape[0] = std::min<int64_t>(microbatch, n - first);
        Tensor part(request.images.buffer(),
                    request.images.offset() + static_cast<size_t>(first) * image_bytes,
                    DType::kFloat32, shape);
        // Shared: the caller keeps the images unchanged until the result is ready (the API's
        // contract), so the stages read them in place.
        broken = !s->Push(part, /*share=*/true).ok();  // the error reaches the request
      }
      request.images = Tensor();
      if (broken) Close(s);       // the next request gets a fresh stream
    }
    if (s != nullptr) Close(s);
    {
      std::lock_guard<std::mutex> lock(mu);
      feeder_done = true;
    }
    cv.notify_all();
  }

  void Complete() {
    int64_t seen = 0;
    for (;;) {
      PipelineStream* s;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return generation != seen || feeder_done; });
        if (generation == seen) return;  // the feeder is done and no new stream came
        seen = generation;
        s = stream;
      }
      for (;;) {
        Result out = s->Pop();
        std::unique_lock<std::mutex> lock(mu);
        if (!out.ok()) {
          // End of stream (nothing in flight then) or failure: every in-flight request fails.
          absl::Status why = absl::IsOutOfRange(out.status())
                                 ? absl::InternalError("the stream ended with requests in flight")
                                 : out.status();
          std::deque<InFlight> failed;
          failed.swap(in_flight);
          stream_drained = true;
          lock.unlock();
          cv.notify_all();
          for (InFlight& f : failed) f.promise.set_value(why);
          break;
        }
        if (in_flight.empty()) {
          lock.unlock();
          s->Cancel(absl::InternalError("an output arrived for no request"));
          continue;
        }
        InFlight& f = in_flight.front();
        if (!f.output.defined()) {
          Shape shape = out->shape();
          shape[0] = f.images;
          f.output = Tensor(out->dtype(), shape);
        }
        const size_t row = f.output.bytes() / static_cast<size_t>(f.images);
        const int64_t rows = out->dim(0);
        if (f.filled + rows > f.images || out->bytes() != static_cast<size_t>(rows) * row) {
          lock.unlock();
          s->Cancel(absl::InternalError(absl::StrCat("output ", out->DebugString(),
                                                     " does not fit the request")));
          continue;
        }
        std::memcpy(static_cast<char*>(f.output.raw_data()) + static_cast<size_t>(f.filled) * row,
                    out->raw_data(), out->bytes());
        f.filled += rows;
        if (f.filled == f.images) {
          InFlight done = std::move(f);
          in_flight.pop_front();
          lock.unlock();
          done.promise.set_value(std::move(done.output));
        }
      }
    }
  }
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() { Shutdown(ShutdownMode::kFinish); }

absl::StatusOr<std::unique_ptr<Engine>> EngineTestPeer::Create(
    const EngineOptions& options,
    std::function<absl::Status(int replica, int stage, int64_t microbatch)> fault_injector) {
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
  po.fault_injector = std::move(fault_injector);
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

  auto impl = std::make_unique<Engine::Impl>();
  impl->max_pending = options.max_pending;
  impl->microbatch = options.microbatch;
  YP_ASSIGN_OR_RETURN(impl->pipeline, Pipeline::Create(model, options.imgsz, po));
  impl->image_shape = impl->pipeline->microbatch_shape();
  Engine::Impl* raw = impl.get();
  try {
    std::lock_guard<std::mutex> lock(raw->join_mu);
    raw->feeder = std::thread([raw] { raw->Feed(); });
    raw->completer = std::thread([raw] { raw->Complete(); });
  } catch (const std::exception& e) {
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->accepting = false;
    }
    raw->cv.notify_all();
    if (raw->feeder.joinable()) raw->feeder.join();
    if (raw->completer.joinable()) raw->completer.join();
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the engine's threads: ", e.what()));
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  return EngineTestPeer::Create(options, nullptr);
}

absl::StatusOr<Tensor> Engine::Infer(const Tensor& images) { return Submit(images).get(); }

std::future<absl::StatusOr<Tensor>> Engine::Submit(const Tensor& images) {
  Impl& s = *impl_;
  if (absl::Status bad = s.CheckImages(images); !bad.ok()) return ReadyFuture(bad);
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&s] {
    return !s.accepting || static_cast<int>(s.queue.size()) < s.max_pending;
  });
  if (!s.accepting) {
    return ReadyFuture(absl::FailedPreconditionError("engine is shut down"));
  }
  Impl::Request request;
  request.images = images;
  std::future<Result> future = request.promise.get_future();
  s.queue.push_back(std::move(request));
  lock.unlock();
  s.cv.notify_all();
  return future;
}

void Engine::Shutdown(ShutdownMode mode) {
  Impl& s = *impl_;
  std::deque<Impl::Request> cancelled;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.accepting = false;
    if (mode == ShutdownMode::kCancel) cancelled.swap(s.queue);
  }
  s.cv.notify_all();
  for (Impl::Request& r : cancelled) {
    r.promise.set_value(absl::CancelledError("engine shut down before the request ran"));
  }
  std::lock_guard<std::mutex> lock(s.join_mu);
  if (s.feeder.joinable()) s.feeder.join();
  if (s.completer.joinable()) s.completer.join();
}

}  // namespace yolopipe
