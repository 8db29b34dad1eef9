// Pipeline: runs a model in one of the four modes of DESIGN.md ("Modes of running") on CPU devices
// in one process: `single`, `pipeline` (K stages on K devices, micro-batches streaming through),
// `data` (every device holds the whole model and takes a share of the micro-batches) and `hybrid`
// (R replicas of a K-stage pipeline on R*K devices).
//
// Shape of the machinery (one code path for every mode): a run is R replicas x K stages.
//   single   = R 1, K 1 (device 0);  data = R = #devices, K 1;
//   pipeline = R 1, K;               hybrid = R, K (replica r, stage s on device r*K + s).
// Each stage is an Executor (kCpu, the device's thread count) on its StageGraph from PartitionGraph
// (graph/partition.h) of the model prepared for one micro-batch (K = 1: the whole prepared graph, as
// Session runs it). Each replica has its own LocalFabric of K + 1 endpoints: ranks 0..K-1 are the
// stages, rank K is the host. A host feeder thread sends each micro-batch's model input straight to
// every stage that reads it; a host collector thread receives the model outputs from the stages that
// produce them; every tensor crossing a cut for one micro-batch moves as one TensorGroup per
// (stage, peer) straight to the consuming stage. Micro-batch j goes to replica j % R; its id on the
// fabric is the global j (increasing per pair, as the Communicator requires).
//
// Buffering: the fabric's channels hold `buffers` messages each (default 2), so a sender hands over
// micro-batch i+1 while the receiver still computes i (double buffering). Receives and sends run on
// the stage's worker thread between computes (no separate transfer thread yet).
//
// Schedule: a finite batch runs fill-and-drain. The batch must be a whole number of micro-batches
// (batch % microbatch == 0; InvalidArgument otherwise): every executor is prepared for exactly one
// micro-batch shape, which also keeps the kernels' algorithm choice equal across micro-batches.
//
// Pipeline mode without a plan: a plan is made on the spot — the model is profiled once
// (runtime/profiler ProfileModel, micro-batch size only, repeats 1, warmup 0, on device 0) and
// split with PlanPipeline into K = stages stages. With a plan: it must match the model's
// fingerprint (CheckPlanMatchesModel) and be valid (ValidatePlan); the stage node lists are those of
// replica 0 (plan.stages(0..K-1).nodes). Hybrid uses the same rules for its split.
//
// Outputs: every mode returns the same bytes as `single` for the same input (same kernels, same
// micro-batch shape, each image computed independently): checked bitwise by pipeline_test.
//
// Failures: a stage's error (kernel failure, injected fault) aborts every replica's fabric, so
// every blocked Send/Recv wakes; Run returns the first error, prefixed with
// "replica r stage s micro-batch i: ". Every blocking call has `timeout`. Each micro-batch's output
// is checked to arrive exactly once. Every Run builds fresh fabrics, so a Run after a failed Run
// works normally.
//
// Thread-safety: Run calls are serialised (a mutex); one Run uses R*(K+2) threads that it joins
// before returning. Stage worker threads are pinned to their device's cores
// [first_core, first_core + num_threads) where the OS allows (failures are ignored).
#ifndef YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_
#define YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/tensor.h"
#include "graph/partition.h"
#include "runtime/device.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/trace/trace.h"

namespace yolopipe {

enum class Mode { kSingle, kPipeline, kData, kHybrid };

// "single", "pipeline", "data", "hybrid"; InvalidArgument naming the text otherwise.
absl::StatusOr<Mode> ParseMode(const std::string& text);
const char* ModeName(Mode mode);

// The plan Pipeline makes on the spot when it is given none: one quick profile of `model` at
// `microbatch` images on `device` (repeats 1, warmup 0), split by PlanPipeline into `stages`
// stages x `replicas` replicas for a batch of `batch` images, with micro-batch `microbatch`.
absl::StatusOr<proto::Plan> MakeQuickPlan(const Model& model, int64_t imgsz,
                                          const DeviceSpec& device, int microbatch, int stages,
                                          int replicas, int batch);

struct PipelineOptions {
  Mode mode = Mode::kSingle;
  // CPU devices (ParseDevices("cpu:K")). single: device 0 is used; pipeline: exactly K devices;
  // data: every device is a replica; hybrid: exactly replicas * stages devices, replica-major.
  std::vector<DeviceSpec> devices;
  // pipeline/hybrid: K. 0 = the plan's num_stages, else pipeline: all devices, hybrid: devices /
  // replicas. With a plan a non-zero value must equal the plan's.
  int stages = 0;
  int replicas = 1;    // hybrid R (>= 1)
  int microbatch = 1;  // images per micro-batch (>= 1)
  // pipeline/hybrid: the split to use (not owned; only read during Create). nullptr: plan on the
  // spot (see the file comment).
  const proto::Plan* plan = nullptr;
  int buffers = 2;  // messages per fabric channel (>= 1): double buffering by default
  absl::Duration timeout = absl::Seconds(60);  // every Send/Recv
  bool record_trace = false;  // reserved; a trace is recorded whenever Run gets a TraceWriter
  // Test hook: called by a stage before computing each micro-batch (global id); a non-OK status is
  // that stage's failure. Called from the stage worker threads concurrently.
  std::function<absl::Status(int replica, int stage, int64_t microbatch)> fault_injector;
};

struct PipelineStats {
  double seconds = 0;  // wall time of Run
  double images_per_second = 0;
  // Per micro-batch, from entering its first stage (after its input arrived) to leaving its last
  // stage (outputs sent), milliseconds.
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  // Per stage, replica-major (index r*K + s): compute time / wall time.
  std::vector<double> stage_busy_fraction;
  double bubble_fraction = 0;  // 1 - mean(stage_busy_fraction)
  // Payload bytes moved between stages (communicator counters; host input/output excluded, so 0
  // for single and data).
  int64_t bytes_moved = 0;
  int num_microbatches = 0;
};

class Pipeline {
 public:
  // Errors: InvalidArgument for bad options (device counts, stages, microbatch, non-CPU devices);
  // FailedPrecondition for a plan made for another model; plan validation and partition errors as
  // those functions give them.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(const Model& model, int64_t imgsz,
                                                          const PipelineOptions& options);
  ~Pipeline();

  // Runs one batch (B, 3, H, W) float32, B a multiple of the micro-batch size, split into
  // micro-batches; returns the model's first output (B, 4+nc, A) in input order. `stats` and
  // `trace` (one device track per stage with compute/send/recv spans named "mb i", microseconds
  // from the start of this Run) are optional.
  absl::StatusOr<Tensor> Run(const Tensor& batch, PipelineStats* stats = nullptr,
                             TraceWriter* trace = nullptr);

  Mode mode() const { return options_.mode; }
  int num_stages() const { return num_stages_; }
  int num_replicas() const { return num_replicas_; }
  int microbatch() const { return options_.microbatch; }
  const Shape& microbatch_shape() const { return mb_shape_; }
  // The node names of each stage (K lists).
  const std::vector<std::vector<std::string>>& stage_nodes() const { return stage_nodes_; }
  // The device of replica r, stage s.
  const DeviceSpec& device(int replica, int stage) const;

 private:
  struct Stage {
    StageGraph graph;
    DeviceSpec device;
    std::unique_ptr<Executor> executor;
  };
  Pipeline() = default;

  PipelineOptions options_;
  int num_stages_ = 1;
  int num_replicas_ = 1;
  Shape mb_shape_;
  std::string input_name_;
  std::string output_name_;
  Shape output_mb_shape_;  // the first output's shape for one micro-batch
  std::vector<std::vector<std::string>> stage_nodes_;
  std::vector<std::vector<Stage>> replicas_;  // [replica][stage]
  absl::Mutex run_mu_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_
