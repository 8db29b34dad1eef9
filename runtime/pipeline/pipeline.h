// Pipeline: runs a model in one of the four modes of DESIGN.md ("Modes of running") on CPU and
// CUDA devices, in one process or one stage per MPI rank: `single`, `pipeline` (K stages on K
// devices, micro-batches streaming through), `data` (every device holds the whole model and takes a
// share of the micro-batches) and `hybrid` (R replicas of a K-stage pipeline on R*K devices).
//
// Shape of the machinery (one code path for every mode): a run is R replicas x K stages.
//   single   = R 1, K 1 (device 0);  data = R = #devices, K 1;
//   pipeline = R 1, K;               hybrid = R, K (replica r, stage s on device r*K + s).
// Each stage is an Executor (kCpu, the device's thread count) on its StageGraph from PartitionGraph
// (graph/partition.h) of the model prepared for one micro-batch (K = 1: the whole prepared graph,
// as Session runs it); on a CUDA device, a CudaExecutor (runtime/cuda/cuda_executor.h) on the same
// StageGraph, whose tensors enter and leave as float32 host tensors (through pinned buffers), so
// CPU and CUDA stages mix freely and every transport carries them. With a CUDA device among the
// devices, the Detect head moves whole to the last stage (KeepDetectHeadInLastStage), since the
// CUDA executor decodes it in one kernel. Each replica has its own LocalFabric (rendezvous mode:
// one real copy, straight into the receiver's buffer) of K + 1 endpoints: ranks 0..K-1 are the
// stages, rank K is the host.
//
// Streams: all work flows through a PipelineStream (OpenStream). Push sends each micro-batch's
// model input straight to every stage of replica (id % R) that reads it; a collector thread per
// replica receives the model outputs; Pop returns them in push order. Host input (with
// Push(..., share)) and model outputs are handed over as shared tensors, without copies; every
// stage-to-stage transfer is a real copy into the receiver's buffer. Every tensor crossing a cut
// for one micro-batch moves as one TensorGroup per (stage, peer) straight to the consuming stage.
// Run (a finite batch, fill-and-drain) is a stream that is pushed, popped and finished at once.
//
// Stage threads: each stage has three, all pinned to its device's cores where the OS allows:
//   receiver: takes a free receive buffer set (`buffers` sets; 2 = double buffering) and receives
//             micro-batch i+1's groups into it while the compute thread works on i;
//   compute:  runs the executor, returns the buffer set, hands the outputs to the sender;
//   sender:   sends each output group to its consumer, so compute starts i+1 while i is sent.
// End of stream: CloseInput sends an end-of-stream marker that every stage forwards after its last
// micro-batch; threads exit when it has passed.
//
// Partial micro-batches: Push takes 1..microbatch images; a short one is zero-padded to the
// micro-batch shape (every executor is prepared for exactly one shape, which also keeps the
// kernels' algorithm choice equal across micro-batches) and Pop returns only its images' rows.
// Images are computed independently, so the padding never changes a real image's output.
//
// Pipeline mode without a plan: a plan is made on the spot (MakeQuickPlan). With a plan: it must
// match the model's fingerprint (CheckPlanMatchesModel) and be valid (ValidatePlan); the stage node
// lists are those of replica 0 (plan.stages(0..K-1).nodes). Hybrid uses the same rules.
//
// NCCL between stages (PipelineOptions::nccl): one NCCL communicator per stage (rank r*K + s,
// in one process or one per MPI rank), created with the Pipeline. Each CUDA stage's executor
// holds `buffers` device input/output sets, each with its own CUDA graph, and receive slot b is
// I/O set b. Per micro-batch, a stage's sender first announces it to every consuming stage on
// the host fabric (a tiny message with the byte count of each tensor, which the receiver checks
// against what it expects), then sends every tensor for every consumer in one
// ncclGroupStart/End (peers ascending, tensors by name). The receiver posts its one grouped
// NCCL receive only once every producer has announced, so no NCCL receive ever waits for a
// micro-batch that does not exist yet (which would block the communicator's later sends
// behind it). A slot returns to the receiver only after its outputs were sent. The host fabric
// buffers (announcements must not wait for the receiver; under MPI they are far below any
// eager limit). Host inputs and model outputs still travel over the host fabric. A stream that
// fails aborts the NCCL communicators; the next stream creates new ones.
//
// Outputs: on CPU devices every mode returns the same bytes as `single` with the same micro-batch
// size for the same input (same kernels, same micro-batch shape, each image computed
// independently): checked bitwise by pipeline_test. CUDA stages agree with the CPU within the
// precision's tolerance (fp16 activations are rounded again at each stage boundary, which is
// exact: fp16 -> fp32 -> fp16 loses nothing).
//
// Failures: a stage's error (kernel failure, injected fault) aborts the stream: every blocked
// Send/Recv, Push and Pop wakes, and Pop/Finish/Run return the first error prefixed with
// "replica r stage s micro-batch i: ". A watchdog fails the stream when micro-batches are inside
// the pipeline, no stage is computing and nothing has moved for `timeout` (a scheduling or
// transport stall), naming how far each stage got. Idle waits (nobody pushing) never time out.
// Each micro-batch's output is collected exactly once (checked). Every stream builds fresh
// fabrics, so a stream after a failed one works normally.
//
// Thread-safety: Pipeline::Run calls are serialised; one stream may be open at a time (executors
// are shared). A stream uses R*(3K+1)+1 threads, joined by Finish or the destructor.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_
#define YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/tensor.h"
#include "graph/partition.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/device.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/pipeline/device_path.h"
#include "runtime/pipeline/topology.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/trace/trace.h"

namespace yolopipe {

enum class Mode { kSingle, kPipeline, kData, kHybrid };

// "single", "pipeline", "data", "hybrid"; InvalidArgument naming the text otherwise.
absl::StatusOr<Mode> ParseMode(const std::string& text);
const char* ModeName(Mode mode);

// The plan Pipeline makes on the spot when it is given none: one quick profile of `model` at
// `microbatch` images on devices[0] (warmup 1, repeats 2; a CPU device with the other CPU devices
// running the model as background load, ProfilerOptions::load_devices: the contention of stages
// side by side; a CUDA device alone, in `cuda_precision`), split by PlanPipeline into `stages`
// stages x `replicas` replicas for a batch of `batch` images, with micro-batch `microbatch`.
absl::StatusOr<proto::Plan> MakeQuickPlan(const Model& model, int64_t imgsz,
                                          const std::vector<DeviceSpec>& devices, int microbatch,
                                          int stages, int replicas, int batch,
                                          DType cuda_precision = DType::kFloat16);

struct PipelineOptions {
  Mode mode = Mode::kSingle;
  // Devices (ParseDevices: "cpu:K", "cuda:0,1", or CPU and CUDA devices mixed). single: device 0
  // is used; pipeline: exactly K devices; data: every device is a replica; hybrid: exactly
  // replicas * stages devices, replica-major. A device may be listed more than once (stages
  // sharing a GPU).
  std::vector<DeviceSpec> devices;
  // CUDA stages: precision of weights and activations (kFloat16 or kFloat32; tensors cross stage
  // boundaries as float32) and whether each stage replays a captured CUDA graph.
  DType cuda_precision = DType::kFloat16;
  bool cuda_graph = true;
  // pipeline/hybrid with every device a GPU: tensors between stages travel over NCCL straight
  // from one stage's device output buffers into the next's device input buffers (see "NCCL
  // between stages" in the file comment). In one process the GPUs must be distinct (NCCL refuses
  // two ranks on one GPU in one process); under MPI any. Off: through host memory.
  bool nccl = false;
  // pipeline/hybrid: K. 0 = the plan's num_stages, else pipeline: all devices, hybrid: devices /
  // replicas. With a plan a non-zero value must equal the plan's.
  int stages = 0;
  int replicas = 1;    // hybrid R (>= 1)
  int microbatch = 1;  // images per micro-batch (>= 1)
  // pipeline/hybrid: the split to use (not owned; only read during Create). nullptr: plan on the
  // spot (see the file comment).
  const proto::Plan* plan = nullptr;
  int buffers = 2;  // receive buffer sets per stage (>= 1): double buffering by default
  // Stall watchdog (see the file comment): > 0.
  absl::Duration timeout = absl::Seconds(60);
  // Streams: micro-batches pushed but not yet popped before Push blocks. 0 = enough to keep every
  // stage busy: R * (K * (buffers + 2) + 1).
  int max_in_flight = 0;
  // Multi-process (not owned; must outlive the Pipeline): the job's R*K ranks each run one stage,
  // world rank r*K + s running replica r's stage s on devices[local_rank % devices.size()], with
  // an MpiFabric per replica and the host (Push/Pop/Run) on rank 0. Rank 0's plan (given, or made
  // on the spot on its own device) is broadcast so every rank cuts the model the same way. Every
  // rank must create the Pipeline and open its streams in the same order (collective); ranks
  // other than 0 call Serve. nullptr: one process (in-process channels).
  const MpiRuntime* mpi = nullptr;
  // Test hook: with `nccl`, the device path runs through these host emulations instead of CUDA
  // executors and NCCL (runtime/pipeline/device_path.h), on any devices, in one process. Not
  // owned; only read during Create.
  const DevicePathForTesting* device_path_for_testing = nullptr;
  // Test hook: called by a stage before computing each micro-batch (global id); a non-OK status is
  // that stage's failure. Called from the stage worker threads concurrently.
  std::function<absl::Status(int replica, int stage, int64_t microbatch)> fault_injector;
};

struct PipelineStats {
  double seconds = 0;  // wall time: Run's, or a stream's from opening to its last output
  double images_per_second = 0;
  int64_t images = 0;  // real images (padding excluded)
  // Per micro-batch, from its first stage starting to compute it to its outputs being collected
  // (queueing before the first stage excluded, as the planner's latency), milliseconds (streams
  // keep the last 65,536).
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  // Per stage, replica-major (index r*K + s): compute time / wall time.
  std::vector<double> stage_busy_fraction;
  // 1 - mean(stage_busy_fraction) over this process's stages (with MPI, other ranks' stages count
  // 0 in stage_busy_fraction and are left out here).
  double bubble_fraction = 0;
  // Payload bytes moved between stages (communicator counters; host input/output excluded, so 0
  // for single and data).
  int64_t bytes_moved = 0;
  int num_microbatches = 0;
  // Per stage, replica-major: the most bytes the stage held at once, measured from its actual
  // allocations: weights + activation arena + kernel workspace + receive buffer sets + outputs
  // not yet sent + anything the transport buffered for it. (Threads and the host's copies of
  // inputs/outputs are not included.)
  std::vector<int64_t> stage_peak_bytes;
};

class Pipeline;
struct StreamState;

// An open stream of micro-batches through a Pipeline (see the file comment). Obtained from
// Pipeline::OpenStream; the Pipeline must outlive it.
// Thread-safety: Push, Pop, CloseInput, Cancel and Finish may be called from any threads; Pushes
// are serialised among themselves and so are Pops (ids follow the order Push calls return).
class PipelineStream {
 public:
  ~PipelineStream();  // Cancel("stream destroyed before Finish") unless finished, then joins
  PipelineStream(const PipelineStream&) = delete;
  PipelineStream& operator=(const PipelineStream&) = delete;

  // Hands over one micro-batch: plain float32 (n, C, H, W) with 1 <= n <= microbatch and C, H, W
  // the model's. Without `share` the images are copied before Push returns; with `share` the
  // stages read them in place (no copy), and the caller must not modify them until this
  // micro-batch's output has been popped. Blocks while capacity() micro-batches are pushed but not
  // popped, or while the first stage has no free receive buffer.
  // Errors: InvalidArgument for a bad tensor; FailedPrecondition after CloseInput; the stream's
  // failure once it failed or was cancelled.
  absl::Status Push(const Tensor& images, bool share = false);
  // The next output in push order: the model's first output for the pushed images (n, ...).
  // Blocks until it is ready. OutOfRange("end of stream") once the input is closed and everything
  // was popped; the stream's failure if it failed first.
  absl::StatusOr<Tensor> Pop();
  // No more Pushes; the pipeline drains. Idempotent.
  void CloseInput();
  // Fails the stream with `reason` (Cancelled if OK): blocked and later calls return it.
  void Cancel(const absl::Status& reason);
  // CloseInput, waits for every thread, and returns the stream's first error (OK if none).
  // Outputs not yet popped stay available to Pop. `stats` (optional) describes the whole stream.
  absl::Status Finish(PipelineStats* stats = nullptr);

  int capacity() const;  // see Push
  int microbatch() const;

 private:
  friend class Pipeline;
  explicit PipelineStream(std::unique_ptr<StreamState> state);
  std::unique_ptr<StreamState> state_;
};

class Pipeline {
 public:
  // Errors: InvalidArgument for bad options (device counts, stages, microbatch, a CUDA ordinal
  // that does not exist); FailedPrecondition("no CUDA devices: ...") for a CUDA device without a
  // GPU, driver or CUDA build;
  // FailedPrecondition for a plan made for another model; plan validation and partition errors as
  // those functions give them.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(const Model& model, int64_t imgsz,
                                                          const PipelineOptions& options);
  ~Pipeline();

  // Runs one batch (B, 3, H, W) float32, split into micro-batches (the last one may be partial);
  // returns the model's first output (B, 4+nc, A) in input order. `stats` and `trace` (one device
  // track per stage with compute/send/recv spans named "mb i", microseconds from the start of
  // this Run) are optional. FailedPrecondition while a stream is open.
  absl::StatusOr<Tensor> Run(const Tensor& batch, PipelineStats* stats = nullptr,
                             TraceWriter* trace = nullptr);

  // MPI ranks other than 0: serves this rank's stages through one stream that rank 0 drives (Run
  // or OpenStream there), until it ends; returns the stream's error. FailedPrecondition elsewhere.
  absl::Status Serve(PipelineStats* stats = nullptr, TraceWriter* trace = nullptr);

  // Opens a stream (see PipelineStream); `trace` (optional, not owned, must outlive the stream)
  // gets the same spans as Run's. FailedPrecondition while another stream is open.
  absl::StatusOr<std::unique_ptr<PipelineStream>> OpenStream(TraceWriter* trace = nullptr);

  Mode mode() const { return options_.mode; }
  int num_stages() const { return topology_.stages(); }
  int num_replicas() const { return topology_.replicas(); }
  const PipelineTopology& topology() const { return topology_; }
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
    std::unique_ptr<Executor> executor;  // CPU stages; null for stages other MPI ranks run
    std::unique_ptr<CudaExecutor> cuda_executor;  // CUDA stages run by this process
    // The device path (options nccl): the stage's executor seen through its I/O sets.
    std::unique_ptr<DeviceStageRunner> device_runner;
    bool local = true;
  };
  Pipeline() = default;

  PipelineOptions options_;
  PipelineTopology topology_;
  Shape mb_shape_;
  std::string input_name_;
  std::string output_name_;
  Shape output_mb_shape_;  // the first output's shape for one micro-batch
  std::vector<std::vector<std::string>> stage_nodes_;
  std::vector<std::vector<Stage>> replicas_;  // [replica][stage]
  // With options_.nccl and K > 1: this process's endpoints of the links between stages (NCCL, or
  // the test emulation), rank DeviceIndex(r, s).
  std::unique_ptr<DeviceLinkFabric> device_links_;
  DevicePathForTesting device_path_for_testing_;  // copied from the options (empty: CUDA/NCCL)
  // Tensors between stages travel between device buffers (options nccl, more than one stage).
  bool UsesDevicePath() const { return options_.nccl && topology_.stages() > 1; }
  // Creates device_links_ (collective under MPI).
  absl::Status CreateDeviceLinks();
  std::mutex run_mu_;
  std::atomic<bool> stream_open_{false};
  friend struct StreamState;
  friend class PipelineStream;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_PIPELINE_H_
