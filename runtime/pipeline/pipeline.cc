#include "runtime/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "graph/fingerprint.h"
#include "graph/prepare.h"
#include "runtime/comm/local_communicator.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/nccl_communicator.h"
#include "runtime/pipeline/handoff_queue.h"
#include "runtime/planner/plan_check.h"
#include "runtime/planner/planner.h"
#include "runtime/profiler/profiler.h"

namespace yolopipe {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point origin, Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(t - origin).count();
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

absl::StatusOr<NamedTensors> AllocateNamed(const Graph& graph,
                                           const std::vector<std::string>& names) {
  NamedTensors out;
  for (const std::string& name : names) {
    const Value* v = graph.FindValue(name);
    if (v == nullptr) return absl::InternalError(absl::StrCat("no value for tensor ", name));
    out.emplace_back(name, Tensor(v->dtype, v->shape));
  }
  return out;
}

}  // namespace

absl::StatusOr<Mode> ParseMode(const std::string& text) {
  if (text == "single") return Mode::kSingle;
  if (text == "pipeline") return Mode::kPipeline;
  if (text == "data") return Mode::kData;
  if (text == "hybrid") return Mode::kHybrid;
  return absl::InvalidArgumentError(
      absl::StrCat("mode must be single, pipeline, data or hybrid, got '", text, "'"));
}

absl::StatusOr<proto::Plan> MakeQuickPlan(const Model& model, int64_t imgsz,
                                          const std::vector<DeviceSpec>& devices, int microbatch,
                                          int stages, int replicas, int batch,
                                          DType cuda_precision) {
  if (devices.empty()) return absl::InvalidArgumentError("MakeQuickPlan needs a device");
  PlannerOptions plopts;
  plopts.num_stages = stages;
  plopts.replicas = replicas;
  plopts.batch = batch;
  plopts.microbatch_candidates = {microbatch};
  ProfilerOptions popts;
  popts.microbatch_sizes = {microbatch};
  popts.repeats = 2;
  popts.warmup = 1;
  popts.device = devices[0];
  popts.cuda_precision = cuda_precision;
  // A GPU is profiled alone: other GPUs do not slow it the way CPU devices sharing a socket do.
  for (size_t i = 1; devices[0].kind == DeviceKind::kCpu && i < devices.size(); ++i) {
    if (devices[i].kind == DeviceKind::kCpu) popts.load_devices.push_back(devices[i]);
  }
  YP_ASSIGN_OR_RETURN(proto::Profile profile, ProfileModel(model, imgsz, popts));
  return PlanPipeline(profile, plopts);
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kSingle: return "single";
    case Mode::kPipeline: return "pipeline";
    case Mode::kData: return "data";
    case Mode::kHybrid: return "hybrid";
  }
  return "?";
}

namespace {

// What a CUDA stage holds on its device and in pinned memory: weights, arena, workspace, every I/O
// set's boundary buffers and one pinned copy of each boundary tensor.
int64_t CudaStageBytes(const CudaExecutor& executor) {
  const CudaLoweringPlan& plan = executor.plan();
  const int64_t copies = executor.io_sets() + 1;
  int64_t bytes =
      static_cast<int64_t>(plan.weights.size() + plan.arena_bytes + executor.workspace_bytes());
  for (const CudaBoundaryTensor& t : plan.inputs) {
    bytes += copies * static_cast<int64_t>(t.bytes());
  }
  for (const CudaBoundaryTensor& t : plan.outputs) {
    bytes += copies * static_cast<int64_t>(t.bytes());
  }
  return bytes;
}

// The device path over CUDA and NCCL (runtime/pipeline/device_path.h).
class CudaStageRunner final : public DeviceStageRunner {
 public:
  explicit CudaStageRunner(CudaExecutor* executor) : executor_(executor) {}
  int io_sets() const override { return executor_->io_sets(); }
  void* input_buffer(int set, int i) const override { return executor_->input_buffer(set, i); }
  void* output_buffer(int set, int i) const override { return executor_->output_buffer(set, i); }
  absl::StatusOr<std::vector<Tensor>> RunSet(int set, absl::Span<const Tensor> host_inputs,
                                             const std::vector<bool>& download) override {
    return executor_->RunSet(set, host_inputs, download);
  }
  int64_t held_bytes() const override { return CudaStageBytes(*executor_); }

 private:
  CudaExecutor* executor_;  // owned by the stage
};

class NcclLink final : public DeviceLink {
 public:
  explicit NcclLink(NcclCommunicator* endpoint) : endpoint_(endpoint) {}
  absl::Status SendDeviceGroup(const std::vector<DevicePeerTransfer>& sends,
                               MicroBatchId microbatch, absl::Duration timeout) override {
    return endpoint_->SendDeviceGroup(sends, microbatch, timeout);
  }
  absl::Status RecvDeviceGroup(const std::vector<DevicePeerTransfer>& receives,
                               MicroBatchId microbatch, absl::Duration timeout) override {
    return endpoint_->RecvDeviceGroup(receives, microbatch, timeout);
  }
  int64_t bytes_received() const override { return endpoint_->bytes_received(); }
  absl::Status abort_status() const override { return endpoint_->abort_status(); }

 private:
  NcclCommunicator* endpoint_;  // owned by the NcclFabric
};

class NcclLinkFabric final : public DeviceLinkFabric {
 public:
  explicit NcclLinkFabric(std::unique_ptr<NcclFabric> fabric) : fabric_(std::move(fabric)) {
    for (int r = 0; r < fabric_->size(); ++r) {
      NcclCommunicator* e = fabric_->endpoint(r);
      links_.push_back(e != nullptr ? std::make_unique<NcclLink>(e) : nullptr);
    }
  }
  int size() const override { return fabric_->size(); }
  DeviceLink* endpoint(int rank) override {
    return rank >= 0 && rank < size() ? links_[rank].get() : nullptr;
  }
  void Abort(const absl::Status& reason) override { fabric_->Abort(reason); }

 private:
  std::unique_ptr<NcclFabric> fabric_;
  std::vector<std::unique_ptr<NcclLink>> links_;
};

}  // namespace

Pipeline::~Pipeline() = default;

const DeviceSpec& Pipeline::device(int replica, int stage) const {
  return replicas_[replica][stage].device;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const Model& model, int64_t imgsz,
                                                           const PipelineOptions& options) {
  if (options.devices.empty()) return absl::InvalidArgumentError("no devices given");
  const int world_size = options.mpi != nullptr ? options.mpi->size() : 1;
  const int world_rank = options.mpi != nullptr ? options.mpi->rank() : 0;
  const bool any_cuda =
      std::any_of(options.devices.begin(), options.devices.end(),
                  [](const DeviceSpec& d) { return d.kind == DeviceKind::kCuda; });
  if (any_cuda && options.cuda_precision != DType::kFloat16 &&
      options.cuda_precision != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat("cuda_precision must be float16 or float32, got ",
                                                   DTypeName(options.cuda_precision)));
  }
  if (options.nccl) {
    // Checked before looking for GPUs, so the refusal reads the same with or without one.
    if (options.mode != Mode::kPipeline && options.mode != Mode::kHybrid) {
      return absl::InvalidArgumentError(
          absl::StrCat("nccl moves tensors between pipeline stages; mode ", ModeName(options.mode),
                       " has none (use pipeline or hybrid)"));
    }
    if (options.device_path_for_testing != nullptr && options.mpi != nullptr) {
      return absl::InvalidArgumentError("the device path's test emulation runs in one process");
    }
    for (const DeviceSpec& d : options.devices) {
      if (options.device_path_for_testing != nullptr) break;  // emulated on any device
      if (d.kind != DeviceKind::kCuda) {
        return absl::InvalidArgumentError(
            absl::StrCat("nccl needs every stage on a CUDA device; ", d.ToString(), " is not one"));
      }
    }
    if (options.mpi == nullptr && options.device_path_for_testing == nullptr) {
      std::vector<int> indices;
      for (const DeviceSpec& d : options.devices) indices.push_back(d.index);
      if (absl::Status s = ValidateInProcessDevices(indices); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "nccl in one process needs a distinct GPU per stage (under mpirun, one process per "
            "stage, stages may share one): ",
            s.message()));
      }
    }
  }
  if (any_cuda) {
    // "no CUDA devices: ..." without a GPU, a driver or a CUDA build.
    YP_ASSIGN_OR_RETURN(const std::vector<CudaDeviceInfo> gpus, ListCudaDevices());
    for (const DeviceSpec& d : options.devices) {
      if (d.kind == DeviceKind::kCuda &&
          (d.index < 0 || d.index >= static_cast<int>(gpus.size()))) {
        return absl::InvalidArgumentError(absl::StrCat(d.ToString(), " does not exist: ",
                                                       gpus.size(), " CUDA device(s) visible"));
      }
    }
  }
  if (options.microbatch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("microbatch must be >= 1, got ", options.microbatch));
  }
  if (options.buffers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("buffers must be >= 1, got ", options.buffers));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be > 0, got ", absl::FormatDuration(options.timeout)));
  }
  if (options.max_in_flight < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_in_flight must be >= 0, got ", options.max_in_flight));
  }
  if (options.stages < 0) {
    return absl::InvalidArgumentError(absl::StrCat("stages must be >= 0, got ", options.stages));
  }
  if (options.replicas < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas must be >= 1, got ", options.replicas));
  }
  const int num_devices = static_cast<int>(options.devices.size());
  const proto::Plan* plan = options.plan;
  if (plan != nullptr && (options.mode == Mode::kSingle || options.mode == Mode::kData)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a plan applies to pipeline and hybrid modes, not ", ModeName(options.mode)));
  }

  auto p = std::unique_ptr<Pipeline>(new Pipeline());
  p->options_ = options;
  p->options_.plan = nullptr;  // not kept
  int K = 1, R = 1;
  switch (options.mode) {
    case Mode::kSingle: break;
    case Mode::kData: R = num_devices; break;
    case Mode::kPipeline:
    case Mode::kHybrid: {
      R = options.mode == Mode::kHybrid ? options.replicas : 1;
      if (plan != nullptr) {
        YP_RETURN_IF_ERROR(CheckPlanMatchesModel(*plan, ModelFingerprint(model.graph)));
        YP_RETURN_IF_ERROR(ValidatePlan(*plan));
        if (options.stages != 0 && options.stages != plan->num_stages()) {
          return absl::InvalidArgumentError(absl::StrCat("stages ", options.stages,
                                                         " differs from the plan's ",
                                                         plan->num_stages()));
        }
        K = plan->num_stages();
      } else {
        K = options.stages != 0 ? options.stages : num_devices / R;
      }
      if (options.mpi != nullptr) {
        // One rank per stage: the job's size fixes the device count.
        if (plan == nullptr && options.stages == 0) K = world_size / R;
        if (K < 1 || R * K != world_size) {
          return absl::InvalidArgumentError(absl::StrCat(
              ModeName(options.mode), " mode with ", R, " replica(s) of ", K,
              " stage(s) needs ", R * K, " MPI ranks (one per stage), got ", world_size));
        }
      } else if (K < 1 || R * K != num_devices) {
        return absl::InvalidArgumentError(absl::StrCat(
            ModeName(options.mode), " mode with ", R, " replica(s) of ", K,
            " stage(s) needs ", R * K, " devices, got ", num_devices));
      }
      break;
    }
  }
  YP_ASSIGN_OR_RETURN(p->topology_, PipelineTopology::Create(R, K));

  YP_ASSIGN_OR_RETURN(p->mb_shape_, InputShapeFor(model, options.microbatch, imgsz));
  YP_ASSIGN_OR_RETURN(Graph prepared, PrepareForExecution(model.graph, p->mb_shape_));
  if (prepared.inputs().size() != 1 || prepared.outputs().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("model must have one input and an output, has ",
                                                   prepared.inputs().size(), " inputs and ",
                                                   prepared.outputs().size(), " outputs"));
  }
  p->input_name_ = prepared.inputs()[0];
  p->output_name_ = prepared.outputs()[0];
  const Value* out_value = prepared.FindValue(p->output_name_);
  if (out_value == nullptr) return absl::InternalError("prepared graph output has no value");
  p->output_mb_shape_ = out_value->shape;

  if (options.mpi != nullptr && (options.mode == Mode::kSingle || options.mode == Mode::kData) &&
      R * K != world_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        ModeName(options.mode), " mode under MPI needs ", R * K, " rank(s), got ", world_size,
        options.mode == Mode::kSingle
            ? absl::StrCat(" (the pipeline, data and hybrid modes spread a model over ",
                           world_size, " ranks)")
            : absl::StrCat(" (one per device of ", R * K, ")")));
  }
  if (K == 1) {
    std::vector<std::string> all;
    for (const Node& n : prepared.nodes()) all.push_back(n.name);
    p->stage_nodes_ = {all};
  } else {
    proto::Plan made;
    if (options.mpi != nullptr) {
      // Every rank must cut the model the same way: rank 0's plan (given, or made on the spot on
      // its device alone) is broadcast.
      std::string bytes;
      if (world_rank == 0) {
        if (plan == nullptr) {
          auto quick = MakeQuickPlan(model, imgsz, {options.devices[0]}, options.microbatch, K,
                                     /*replicas=*/1, /*batch=*/options.microbatch,
                                     options.cuda_precision);
          if (quick.ok()) made = *std::move(quick);
          // A failure still broadcasts (an empty plan) so the other ranks do not wait forever.
        } else {
          made = *plan;
        }
        bytes = made.SerializeAsString();
      }
      YP_RETURN_IF_ERROR(options.mpi->Broadcast(&bytes, 0));
      if (world_rank != 0 && !made.ParseFromString(bytes)) {
        return absl::DataLossError("the plan broadcast from rank 0 does not parse");
      }
      if (made.stages_size() < K) {
        return absl::FailedPreconditionError(
            "rank 0 could not make or read a plan (see its error)");
      }
      plan = &made;
    } else if (plan == nullptr) {
      // Plan on the spot (see the header).
      YP_ASSIGN_OR_RETURN(made, MakeQuickPlan(model, imgsz, options.devices,
                                              options.microbatch, K, /*replicas=*/1,
                                              /*batch=*/options.microbatch,
                                              options.cuda_precision));
      plan = &made;
    }
    for (int s = 0; s < K; ++s) {
      const auto& nodes = plan->stages(s).nodes();
      p->stage_nodes_.emplace_back(nodes.begin(), nodes.end());
    }
    // CUDA stages decode the Detect head in one kernel: it goes whole to the last stage. Every
    // rank sees the same devices, so every rank moves the same nodes.
    if (any_cuda) {
      YP_ASSIGN_OR_RETURN(p->stage_nodes_,
                          KeepDetectHeadInLastStage(prepared, std::move(p->stage_nodes_)));
    }
  }
  YP_ASSIGN_OR_RETURN(std::vector<StageGraph> stage_graphs,
                      PartitionGraph(prepared, p->stage_nodes_));

  p->replicas_.resize(R);
  for (int r = 0; r < R; ++r) {
    for (int s = 0; s < K; ++s) {
      Stage stage;
      stage.graph = stage_graphs[s];
      const int d = p->topology_.DeviceIndex(r, s);
      if (options.mpi == nullptr) {
        stage.device = options.devices[d];
      } else {
        // This rank runs stage d only; on a host, rank i takes the i-th local device.
        stage.local = d == world_rank;
        stage.device = options.devices[options.mpi->local_rank() % num_devices];
      }
      if (stage.local && stage.device.kind == DeviceKind::kCuda) {
        CudaExecutorOptions co;
        co.device = stage.device.index;
        co.precision = options.cuda_precision;
        co.use_cuda_graph = options.cuda_graph;
        co.image_shape = p->mb_shape_;
        // NCCL stages receive into and send from device I/O sets, one per receive slot.
        if (p->UsesDevicePath()) co.io_sets = options.buffers;
        auto created = CudaExecutor::Create(stage.graph.graph, co);
        if (!created.ok()) {
          return absl::Status(created.status().code(),
                              absl::StrCat("replica ", r, " stage ", s, " on ",
                                           stage.device.ToString(), ": ",
                                           created.status().message()));
        }
        stage.cuda_executor = *std::move(created);
        if (p->UsesDevicePath()) {
          stage.device_runner = std::make_unique<CudaStageRunner>(stage.cuda_executor.get());
        }
      } else if (stage.local && p->UsesDevicePath() && options.device_path_for_testing != nullptr) {
        auto runner =
            options.device_path_for_testing->make_runner(stage.graph.graph, options.buffers);
        if (!runner.ok()) return runner.status();
        stage.device_runner = *std::move(runner);
      } else if (stage.local) {
        ExecutorOptions eo;
        eo.backend = ops::Backend::kCpu;
        eo.num_threads = std::max(1, stage.device.num_threads);
        YP_ASSIGN_OR_RETURN(stage.executor, Executor::Create(stage.graph.graph, eo));
      }
      p->replicas_[r].push_back(std::move(stage));
    }
  }
  if (options.device_path_for_testing != nullptr) {
    p->device_path_for_testing_ = *options.device_path_for_testing;
  }
  p->options_.device_path_for_testing = nullptr;  // not kept (copied above)
  if (p->UsesDevicePath()) YP_RETURN_IF_ERROR(p->CreateDeviceLinks());
  return p;
}

absl::Status Pipeline::CreateDeviceLinks() {
  device_links_.reset();
  if (device_path_for_testing_.make_fabric) {
    YP_ASSIGN_OR_RETURN(device_links_, device_path_for_testing_.make_fabric(topology_.replicas() *
                                                                            topology_.stages()));
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<NcclFabric>> fabric;
  if (options_.mpi != nullptr) {
    int device = -1;
    for (const auto& replica : replicas_) {
      for (const Stage& stage : replica) {
        if (stage.local) device = stage.device.index;
      }
    }
    fabric = NcclFabric::Create(*options_.mpi, device);
  } else {
    std::vector<int> devices(static_cast<size_t>(topology_.replicas() * topology_.stages()));
    for (int r = 0; r < topology_.replicas(); ++r) {
      for (int s = 0; s < topology_.stages(); ++s) {
        devices[topology_.DeviceIndex(r, s)] = replicas_[r][s].device.index;
      }
    }
    fabric = NcclFabric::CreateInProcess(devices);
  }
  if (!fabric.ok()) {
    return absl::Status(fabric.status().code(),
                        absl::StrCat("creating the NCCL communicators between stages: ",
                                     fabric.status().message()));
  }
  device_links_ = std::make_unique<NcclLinkFabric>(*std::move(fabric));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Streams

namespace {

constexpr size_t kLatencyWindow = 65536;  // latencies a stream keeps for its percentiles

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

int64_t NamedBytes(const NamedTensors& tensors) {
  int64_t b = 0;
  for (const auto& [name, t] : tensors) b += static_cast<int64_t>(t.bytes());
  return b;
}

// Raises `peak` to at least `value`.
void RaiseTo(std::atomic<int64_t>& peak, int64_t value) {
  int64_t p = peak.load(std::memory_order_relaxed);
  while (value > p && !peak.compare_exchange_weak(p, value, std::memory_order_relaxed)) {
  }
}

// The NCCL path's announcement of a micro-batch to one consuming stage (see the header): a host
// tensor named kAnnounce holding the byte count of each tensor that follows over NCCL, in
// wire order (by name).
constexpr char kAnnounce[] = "<nccl bytes>";

Tensor Announcement(const DeviceNamedTensors& tensors) {
  std::vector<std::pair<std::string, int64_t>> sizes;
  for (const auto& [name, t] : tensors) sizes.emplace_back(name, static_cast<int64_t>(t.bytes()));
  std::sort(sizes.begin(), sizes.end());
  Tensor out(DType::kInt64, {static_cast<int64_t>(sizes.size())});
  int64_t* data = static_cast<int64_t*>(out.raw_data());
  for (size_t i = 0; i < sizes.size(); ++i) data[i] = sizes[i].second;
  return out;
}

// OK when `announced` equals `want` (Announcement(expected), the receive buffers' sizes);
// otherwise FailedPrecondition naming the first tensor whose announced size differs from the
// buffer that would receive it: posting the NCCL receive anyway would hang or corrupt memory.
absl::Status CheckAnnouncement(const Tensor& announced, const Tensor& want,
                               const DeviceNamedTensors& expected) {
  std::vector<std::string> names;
  for (const auto& [name, t] : expected) names.push_back(name);
  std::sort(names.begin(), names.end());
  if (announced.dtype() != DType::kInt64 || announced.shape() != want.shape()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the NCCL announcement lists ", announced.DebugString(), ", expected ",
                     names.size(), " tensor sizes (", absl::StrJoin(names, ", "), ")"));
  }
  const int64_t* got = static_cast<const int64_t*>(announced.raw_data());
  const int64_t* expect = static_cast<const int64_t*>(want.raw_data());
  for (size_t i = 0; i < names.size(); ++i) {
    if (got[i] != expect[i]) {
      return absl::FailedPreconditionError(
          absl::StrCat("tensor '", names[i], "' is announced with ", got[i],
                       " bytes over NCCL, its receive buffer holds ", expect[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Everything one stream's threads share. Lives in the PipelineStream.
struct StreamState {
  // A stage's receive buffer set (one per `buffers`).
  struct Slot {
    std::map<int, NamedTensors> owned;    // peer rank (host = K) -> this slot's own buffers
    std::map<int, NamedTensors> by_peer;  // what was received: `owned`, or shared host tensors
    int64_t id = 0;
    bool end = false;
  };
  // What the compute thread hands to the sender.
  struct Outgoing {
    int64_t id = 0;
    bool end = false;
    std::vector<Tensor> outputs;  // the executor's outputs, in StageGraph::sends order
    int64_t bytes = 0;
    int slot = -1;  // NCCL stages: the slot (I/O set) holding the outputs, freed once sent
  };
  struct StageRun {
    std::vector<Slot> slots;
    std::unique_ptr<HandoffQueue<int>> free_slots, ready_slots;
    std::unique_ptr<HandoffQueue<Outgoing>> outgoing;
    std::map<int, std::vector<int>> send_groups;  // peer -> indices into the stage's sends
    std::vector<std::pair<int, std::string>> input_sources;  // (peer, name) per executor input
    double busy_us = 0;  // compute thread only; read after the joins
    int64_t fixed_bytes = 0;
    std::atomic<int64_t> live_output_bytes{0};
    std::atomic<int64_t> peak_output_bytes{0};
    std::atomic<int64_t> received{-1}, computed{-1}, sent{-1};  // last micro-batch of each thread
    bool reads_input = false;  // receives the model input from the host
    bool local = true;         // runs in this process (false: another MPI rank's)
    // Device path (see the header): this stage's tensors from and to other stages travel
    // between device buffers (NCCL). device_inputs: producing stage's fabric rank -> executor
    // input indices; download: per executor output, whether the host takes it (copied back to
    // host memory).
    bool device_path = false;
    std::map<int, std::vector<int>> device_inputs;
    std::vector<bool> download;
    // Device path, fixed for the stream (PrepareDevicePath): per slot (I/O set), the grouped
    // receive from the producing stages and the grouped send to the consuming ones; per producing
    // / consuming stage (fabric rank), the announcement of its tensors' sizes (Announcement).
    std::vector<std::vector<DevicePeerTransfer>> device_receives, device_sends;
    std::map<int, Tensor> expected_announcements, announcements;
  };

  Pipeline* pipeline = nullptr;
  PipelineTopology topology;
  int microbatch = 1, capacity = 1;
  // Shorthands for topology.stages() and topology.replicas().
  int K() const { return topology.stages(); }
  int R() const { return topology.replicas(); }
  absl::Duration timeout;
  TraceWriter* trace = nullptr;
  Clock::time_point origin;
  std::vector<std::unique_ptr<Fabric>> fabrics;  // one per replica
  bool is_host = true;  // this process holds the host endpoint (always, without MPI)
  std::vector<std::vector<std::unique_ptr<StageRun>>> stages;  // [replica][stage]
  std::vector<std::vector<int>> input_readers;                 // [replica] -> stages
  std::vector<std::thread> threads;
  std::thread watchdog;
  bool joined = false;

  std::atomic<int64_t> last_progress_ns{0};
  std::atomic<int> computing{0};

  std::mutex push_mu;  // serialises Push and CloseInput
  std::mutex pop_mu;   // serialises Pop
  mutable std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu:
  absl::Status failure;
  bool input_closed = false;
  bool stop_watchdog = false;
  int collectors_done = 0;
  int64_t pushed = 0, popped = 0, collected = 0, images = 0;
  std::map<int64_t, int> images_of;                // pushed, not popped: id -> real images
  std::map<int64_t, Clock::time_point> pushed_at;  // pushed, not collected
  std::map<int64_t, Clock::time_point> started_at;  // first compute began on it, not collected
  std::map<int64_t, Tensor> results;               // collected, not popped
  std::vector<int> deliveries;                     // per id % window: times collected
  std::vector<double> latencies_ms;                // ring of the last kLatencyWindow
  Clock::time_point last_collect;

  void Progress() { last_progress_ns.store(NowNanos(), std::memory_order_relaxed); }

  // The first failure wins: it aborts every fabric and queue and wakes Push/Pop.
  void Fail(const std::string& where, const absl::Status& status) {
    absl::Status annotated =
        where.empty() ? status
                      : absl::Status(status.code(), absl::StrCat(where, ": ", status.message()));
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure.ok()) return;  // a secondary error (typically Aborted by the first)
      failure = annotated;
    }
    for (auto& f : fabrics) f->Abort(annotated);
    if (pipeline->device_links_ != nullptr) pipeline->device_links_->Abort(annotated);
    for (auto& replica : stages) {
      for (auto& st : replica) {
        st->free_slots->Abort();
        st->ready_slots->Abort();
        st->outgoing->Abort();
      }
    }
    cv.notify_all();
  }
  bool failed() const {
    std::lock_guard<std::mutex> lock(mu);
    return !failure.ok();
  }

  void AddSpan(int r, int s, int64_t id, const char* what, TraceLane lane, Clock::time_point a,
               Clock::time_point b) {
    if (trace == nullptr) return;
    trace->Add(absl::StrCat("mb ", id), what, topology.DeviceIndex(r, s), lane,
               MicrosSince(origin, a), MicrosSince(a, b));
  }

  // Runs one of the stream's thread bodies. An exception (a kernel library throwing, an
  // allocation failing) fails the stream like an error Status would, naming the thread's stage,
  // instead of ending the process.
  template <typename Body>
  void Guarded(const std::string& where, Body body) {
    try {
      body();
    } catch (const std::bad_alloc&) {
      Fail(where, absl::ResourceExhaustedError("out of memory (std::bad_alloc)"));
    } catch (const std::exception& e) {
      Fail(where, absl::InternalError(absl::StrCat("exception: ", e.what())));
    } catch (...) {
      Fail(where, absl::InternalError("unknown exception"));
    }
  }

  // Device-path payload bytes this process's endpoints had received before the stream (the
  // links outlive streams).
  int64_t device_received_at_open = 0;
  int64_t DeviceReceived() const {
    int64_t total = 0;
    if (pipeline->device_links_ == nullptr) return 0;
    for (int d = 0; d < R() * K(); ++d) {
      if (DeviceLink* e = pipeline->device_links_->endpoint(d); e != nullptr) {
        total += e->bytes_received();
      }
    }
    return total;
  }
  DeviceLink* LinkOf(int r, int s) const {
    return pipeline->device_links_->endpoint(topology.DeviceIndex(r, s));
  }
  // Fills run's device-path transfers and announcements for replica r's stage.
  void PrepareDevicePath(const Pipeline::Stage& stage, int r, StageRun& run) const;
  absl::Status ReceiveOnDevice(int r, int s, int slot_index, int64_t id);
  absl::Status SendFromDevice(int r, int s, const Outgoing& item);
  void Receiver(int r, int s);
  void Compute(int r, int s);
  void Sender(int r, int s);
  void Collector(int r);
  void Watchdog();
  std::string Positions() const;
};

// Shape of a float32 boundary tensor of a stage graph (checked when the stage was partitioned).
Shape BoundaryShape(const StageGraph& sg, const std::string& name) {
  const Value* v = sg.graph.FindValue(name);
  return v != nullptr ? v->shape : Shape();
}

void StreamState::PrepareDevicePath(const Pipeline::Stage& stage, int r, StageRun& run) const {
  const DeviceStageRunner& runner = *stage.device_runner;
  auto ref = [&](void* data, const std::string& name) {
    return DeviceTensorRef{data, DType::kFloat32, BoundaryShape(stage.graph, name), Layout::kPlain};
  };
  const int sets = static_cast<int>(run.slots.size());
  run.device_receives.assign(sets, {});
  run.device_sends.assign(sets, {});
  for (int b = 0; b < sets; ++b) {
    for (const auto& [peer, inputs] : run.device_inputs) {
      DevicePeerTransfer t;
      t.peer = topology.DeviceIndex(r, peer);
      for (int i : inputs) {
        const std::string& name = run.input_sources[i].second;
        t.tensors.emplace_back(name, ref(runner.input_buffer(b, i), name));
      }
      if (b == 0) run.expected_announcements[peer] = Announcement(t.tensors);
      run.device_receives[b].push_back(std::move(t));
    }
    for (const auto& [peer, indices] : run.send_groups) {
      if (peer == topology.host_rank()) continue;
      DevicePeerTransfer t;
      t.peer = topology.DeviceIndex(r, peer);
      for (int i : indices) {
        const std::string& name = stage.graph.sends[i].tensor;
        t.tensors.emplace_back(name, ref(runner.output_buffer(b, i), name));
      }
      if (b == 0) run.announcements[peer] = Announcement(t.tensors);
      run.device_sends[b].push_back(std::move(t));
    }
  }
}

absl::Status StreamState::ReceiveOnDevice(int r, int s, int slot_index, int64_t id) {
  StageRun& st = *stages[r][s];
  const std::vector<DevicePeerTransfer>& receives = st.device_receives[slot_index];
  for (const DevicePeerTransfer& t : receives) {
    const int peer = topology.StageOfDevice(t.peer);
    // The host fabric delivered exactly the slot's template: one announcement tensor.
    const Tensor& announced = st.slots[slot_index].by_peer[peer][0].second;
    if (absl::Status c = CheckAnnouncement(announced, st.expected_announcements[peer], t.tensors);
        !c.ok()) {
      return absl::Status(c.code(), absl::StrCat("from stage ", peer, ": ", c.message()));
    }
  }
  return LinkOf(r, s)->RecvDeviceGroup(receives, id, absl::InfiniteDuration());
}

absl::Status StreamState::SendFromDevice(int r, int s, const Outgoing& item) {
  const StageRun& st = *stages[r][s];
  Communicator* comm = fabrics[r]->endpoint(s);
  // Announce first (the host fabric buffers it), so the consumers post their receives only for
  // data that is about to be sent.
  for (const auto& [peer, sizes] : st.announcements) {
    TensorGroup announce;
    announce.microbatch = item.id;
    announce.tensors.emplace_back(kAnnounce, sizes);
    YP_RETURN_IF_ERROR(comm->Send(announce, peer, absl::InfiniteDuration()));
  }
  return LinkOf(r, s)->SendDeviceGroup(st.device_sends[item.slot], item.id,
                                       absl::InfiniteDuration());
}

void StreamState::Receiver(int r, int s) {
  StageRun& st = *stages[r][s];
  PinCurrentThread(pipeline->device(r, s));
  Communicator* comm = fabrics[r]->endpoint(s);
  for (int64_t id = topology.FirstMicrobatch(r);; id = topology.NextMicrobatch(id)) {
    std::optional<int> slot_index = st.free_slots->Pop();
    if (!slot_index) return;  // aborted
    Slot& slot = st.slots[*slot_index];
    const Clock::time_point t0 = Clock::now();
    int ends = 0;
    slot.by_peer = slot.owned;  // a shared receive replaced them last time: receive into our own
    for (auto& [peer, into] : slot.by_peer) {
      absl::Status status = comm->Recv(peer, id, &into, absl::InfiniteDuration());
      if (absl::IsOutOfRange(status)) {
        ++ends;
      } else if (!status.ok()) {
        Fail(absl::StrCat(topology.Name(r, s), " receiving micro-batch ", id), status);
        return;
      }
    }
    if (ends != 0 && ends != static_cast<int>(slot.by_peer.size())) {
      Fail(topology.Name(r, s),
           absl::InternalError(absl::StrCat("end of stream from ", ends, " of ",
                                            slot.by_peer.size(), " peers at micro-batch ", id)));
      return;
    }
    if (ends == 0 && st.device_path) {
      if (absl::Status status = ReceiveOnDevice(r, s, *slot_index, id); !status.ok()) {
        Fail(absl::StrCat(topology.Name(r, s), " receiving micro-batch ", id, " on the device"),
             status);
        return;
      }
    }
    const Clock::time_point t1 = Clock::now();
    slot.id = id;
    slot.end = ends > 0;
    Progress();
    if (!slot.end) {
      st.received.store(id, std::memory_order_relaxed);
      if (!slot.by_peer.empty()) AddSpan(r, s, id, "recv", TraceLane::kRecv, t0, t1);
    }
    if (!st.ready_slots->Push(*slot_index) || slot.end) return;
  }
}

void StreamState::Compute(int r, int s) {
  StageRun& st = *stages[r][s];
  Pipeline::Stage& stage = pipeline->replicas_[r][s];
  PinCurrentThread(stage.device);
  while (true) {
    std::optional<int> slot_index = st.ready_slots->Pop();
    if (!slot_index) return;
    Slot& slot = st.slots[*slot_index];
    const int64_t id = slot.id;
    if (slot.end) {
      Outgoing end;
      end.id = id;
      end.end = true;
      st.outgoing->Push(std::move(end));
      return;
    }
    const std::string where = absl::StrCat(topology.Name(r, s), " micro-batch ", id);
    std::vector<Tensor> inputs;
    inputs.reserve(st.input_sources.size());
    for (const auto& [peer, name] : st.input_sources) {
      if (st.device_path && st.device_inputs.count(peer) != 0) {
        inputs.emplace_back();  // already in the slot's device input set
        continue;
      }
      for (const auto& [n, t] : slot.by_peer[peer]) {
        if (n == name) inputs.push_back(t);
      }
    }
    const Clock::time_point t1 = Clock::now();
    if (st.reads_input) {
      std::lock_guard<std::mutex> lock(mu);
      started_at.emplace(id, t1);  // the earliest input-reading stage wins
    }
    // An exception from the kernels (or the test hook) fails this micro-batch by name, like an
    // error Status. The hook runs outside `computing`, so a hook that stalls trips the watchdog.
    absl::StatusOr<std::vector<Tensor>> outputs = absl::InternalError("not run");
    try {
      absl::Status injected = pipeline->options_.fault_injector
                                  ? pipeline->options_.fault_injector(r, s, id)
                                  : absl::OkStatus();
      if (!injected.ok()) {
        outputs = injected;
      } else {
        computing.fetch_add(1);
        try {
          if (st.device_path) {
            outputs = stage.device_runner->RunSet(*slot_index, inputs, st.download);
          } else {
            outputs = stage.cuda_executor != nullptr ? stage.cuda_executor->RunAll(inputs)
                                                     : stage.executor->Run(inputs);
          }
        } catch (...) {
          computing.fetch_sub(1);
          throw;
        }
        computing.fetch_sub(1);
      }
    } catch (const std::exception& e) {
      outputs = absl::InternalError(absl::StrCat("exception: ", e.what()));
    }
    const Clock::time_point t2 = Clock::now();
    if (!outputs.ok()) {
      Fail(where, outputs.status());
      return;
    }
    // An output that aliases a receive buffer (a zero-copy reshape of an input) must not be
    // overwritten by the next receive before it is sent: give it its own bytes.
    for (Tensor& out : *outputs) {
      for (const auto& [peer, named] : slot.by_peer) {
        for (const auto& [n, t] : named) {
          if (out.defined() && out.buffer() == t.buffer()) out = out.Clone();
        }
      }
    }
    // On the device path the outputs sit in the slot's I/O set until the sender has sent them.
    if (!st.device_path && !st.free_slots->Push(*slot_index)) return;
    st.busy_us += MicrosSince(t1, t2);
    st.computed.store(id, std::memory_order_relaxed);
    Progress();
    AddSpan(r, s, id, "compute", TraceLane::kCompute, t1, t2);
    Outgoing item;
    item.id = id;
    if (st.device_path) item.slot = *slot_index;
    for (const Tensor& t : *outputs) {
      if (t.defined()) item.bytes += static_cast<int64_t>(t.bytes());
    }
    item.outputs = std::move(*outputs);
    RaiseTo(st.peak_output_bytes, st.live_output_bytes.fetch_add(item.bytes) + item.bytes);
    if (!st.outgoing->Push(std::move(item))) return;
  }
}

void StreamState::Sender(int r, int s) {
  StageRun& st = *stages[r][s];
  const StageGraph& sg = pipeline->replicas_[r][s].graph;
  PinCurrentThread(pipeline->device(r, s));
  Communicator* comm = fabrics[r]->endpoint(s);
  while (true) {
    std::optional<Outgoing> item = st.outgoing->Pop();
    if (!item) return;
    if (item->end) {
      for (const auto& [peer, indices] : st.send_groups) {
        TensorGroup end;
        end.microbatch = item->id;
        end.end_of_stream = true;
        if (absl::Status status = comm->Send(end, peer, absl::InfiniteDuration()); !status.ok()) {
          Fail(absl::StrCat(topology.Name(r, s), " ending the stream"), status);
          return;
        }
        Progress();
      }
      return;
    }
    const Clock::time_point t2 = Clock::now();
    if (st.device_path) {
      if (absl::Status status = SendFromDevice(r, s, *item); !status.ok()) {
        Fail(absl::StrCat(topology.Name(r, s), " sending micro-batch ", item->id,
                          " from the device"),
             status);
        return;
      }
    }
    for (const auto& [peer, indices] : st.send_groups) {
      if (st.device_path && peer != topology.host_rank()) continue;  // sent above
      TensorGroup group;
      group.microbatch = item->id;
      // The outputs are this micro-batch's own tensors: the host may take them without a copy.
      // Stage-to-stage transfers always copy into the receiver's buffer.
      group.shared = peer == topology.host_rank();
      for (int i : indices) group.tensors.emplace_back(sg.sends[i].tensor, item->outputs[i]);
      if (absl::Status status = comm->Send(group, peer, absl::InfiniteDuration()); !status.ok()) {
        Fail(absl::StrCat(topology.Name(r, s), " sending micro-batch ", item->id), status);
        return;
      }
    }
    const Clock::time_point t3 = Clock::now();
    if (item->slot >= 0 && !st.free_slots->Push(item->slot)) return;
    st.live_output_bytes.fetch_sub(item->bytes);
    st.sent.store(item->id, std::memory_order_relaxed);
    Progress();
    if (!st.send_groups.empty()) AddSpan(r, s, item->id, "send", TraceLane::kSend, t2, t3);
  }
}

void StreamState::Collector(int r) {
  Communicator* comm = fabrics[r]->endpoint(topology.host_rank());
  // Producing stage -> the model outputs it sends to the host (names and descs).
  std::map<int, std::vector<std::string>> names;
  for (int s = 0; s < K(); ++s) {
    for (const auto& sd : pipeline->replicas_[r][s].graph.sends) {
      if (std::find(sd.to_stages.begin(), sd.to_stages.end(), -1) != sd.to_stages.end()) {
        names[s].push_back(sd.tensor);
      }
    }
  }
  for (int64_t id = topology.FirstMicrobatch(r);; id = topology.NextMicrobatch(id)) {
    Tensor output;
    int ends = 0;
    for (const auto& [s, list] : names) {
      // Fresh tensors each time: the output is handed to the caller.
      auto into = AllocateNamed(pipeline->replicas_[r][s].graph.graph, list);
      if (!into.ok()) {
        Fail(absl::StrCat("host collecting replica ", r), into.status());
        return;
      }
      absl::Status status = comm->Recv(s, id, &*into, absl::InfiniteDuration());
      if (absl::IsOutOfRange(status)) {
        ++ends;
        continue;
      }
      if (!status.ok()) {
        Fail(absl::StrCat("host collecting replica ", r, " micro-batch ", id), status);
        return;
      }
      for (auto& [name, t] : *into) {
        if (name == pipeline->output_name_) output = std::move(t);
      }
    }
    if (ends != 0) {
      if (ends != static_cast<int>(names.size())) {
        Fail(absl::StrCat("host collecting replica ", r),
             absl::InternalError(absl::StrCat("end of stream from ", ends, " of ", names.size(),
                                              " producing stages at micro-batch ", id)));
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        ++collectors_done;
      }
      cv.notify_all();
      return;
    }
    const Clock::time_point now = Clock::now();
    Progress();
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = pushed_at.find(id);
      if (it == pushed_at.end() || results.count(id) != 0) {
        // Never pushed, or already collected: a duplicate (counted, checked by Pop/Finish).
        ++deliveries[static_cast<size_t>(id) % deliveries.size()];
      } else {
        auto started = started_at.find(id);
        const Clock::time_point from = started != started_at.end() ? started->second : it->second;
        if (started != started_at.end()) started_at.erase(started);
        const double ms = std::chrono::duration<double, std::milli>(now - from).count();
        if (latencies_ms.size() < kLatencyWindow) {
          latencies_ms.push_back(ms);
        } else {
          latencies_ms[static_cast<size_t>(collected) % kLatencyWindow] = ms;
        }
        pushed_at.erase(it);
        results[id] = std::move(output);
        ++collected;
        last_collect = now;
      }
    }
    cv.notify_all();
  }
}

std::string StreamState::Positions() const {
  std::vector<std::string> parts;
  for (int r = 0; r < R(); ++r) {
    for (int s = 0; s < K(); ++s) {
      const StageRun& st = *stages[r][s];
      parts.push_back(absl::StrCat(topology.Name(r, s),
                                   " received ", st.received.load(), " computed ",
                                   st.computed.load(), " sent ", st.sent.load()));
    }
  }
  return absl::StrJoin(parts, "; ");
}

void StreamState::Watchdog() {
  const int64_t limit_ns = absl::ToInt64Nanoseconds(timeout);
  std::unique_lock<std::mutex> lock(mu);
  // Only the host knows what is inside the pipeline; other ranks learn of a stall from its abort.
  if (!is_host) {
    cv.wait(lock, [this] { return stop_watchdog; });
    return;
  }
  while (!stop_watchdog) {
    cv.wait_for(lock, std::chrono::milliseconds(100));
    if (stop_watchdog || !failure.ok()) continue;
    const bool inside = pushed > collected || (input_closed && collectors_done < R());
    if (!inside || computing.load() > 0) continue;
    const int64_t idle_ns = NowNanos() - last_progress_ns.load();
    if (idle_ns < limit_ns) continue;
    const std::string message = absl::StrCat(
        "no progress for ", absl::FormatDuration(timeout), " with ", pushed - collected,
        " micro-batch(es) inside the pipeline (pushed ", pushed, ", collected ", collected,
        "); last micro-batch per stage thread (-1: none): ", Positions());
    lock.unlock();
    Fail("", absl::DeadlineExceededError(message));
    lock.lock();
  }
}

PipelineStream::PipelineStream(std::unique_ptr<StreamState> state) : state_(std::move(state)) {}

PipelineStream::~PipelineStream() {
  if (state_ == nullptr) return;
  if (!state_->joined) {
    Cancel(absl::CancelledError("stream destroyed before Finish"));
    (void)Finish();
  }
  state_->pipeline->stream_open_.store(false);
}

int PipelineStream::capacity() const { return state_->capacity; }
int PipelineStream::microbatch() const { return state_->microbatch; }

absl::Status PipelineStream::Push(const Tensor& images, bool share) {
  StreamState& st = *state_;
  if (!st.is_host) {
    return absl::FailedPreconditionError(
        "this MPI rank serves its stages; inputs are pushed on rank 0");
  }
  const Shape& mb = st.pipeline->mb_shape_;
  if (!images.defined() || images.dtype() != DType::kFloat32 || images.rank() != 4 ||
      images.layout() != Layout::kPlain || images.dim(1) != mb[1] || images.dim(2) != mb[2] ||
      images.dim(3) != mb[3] || images.dim(0) < 1 || images.dim(0) > st.microbatch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a pushed micro-batch must be plain float32 (n, ", mb[1], ", ", mb[2], ", ", mb[3],
        ") with 1 <= n <= ", st.microbatch, ", got ",
        images.defined() ? DTypeName(images.dtype()) : "undefined", " ",
        ShapeToString(images.shape())));
  }
  const int n = static_cast<int>(images.dim(0));
  std::lock_guard<std::mutex> push_lock(st.push_mu);
  int64_t id;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    st.cv.wait(lock, [&st] {
      return !st.failure.ok() || st.input_closed || st.pushed - st.popped < st.capacity;
    });
    if (!st.failure.ok()) return st.failure;
    if (st.input_closed) {
      return absl::FailedPreconditionError("Push after CloseInput: the stream's input is closed");
    }
    id = st.pushed++;
    st.images += n;
    st.images_of[id] = n;
    st.pushed_at[id] = Clock::now();
  }
  st.Progress();
  Tensor input = images;
  if (n < st.microbatch) {  // zero-pad to the micro-batch shape
    input = Tensor(DType::kFloat32, mb);
    std::memset(input.raw_data(), 0, input.bytes());
    std::memcpy(input.raw_data(), images.raw_data(), images.bytes());
    share = true;  // nobody else holds the padded copy
  }
  const int r = st.topology.ReplicaOf(id);
  Communicator* comm = st.fabrics[r]->endpoint(st.topology.host_rank());
  for (int s : st.input_readers[r]) {
    TensorGroup group;
    group.microbatch = id;
    group.shared = share;
    group.tensors.emplace_back(st.pipeline->input_name_, input);
    if (absl::Status status = comm->Send(group, s, absl::InfiniteDuration()); !status.ok()) {
      st.Fail(absl::StrCat("host feeding replica ", r, " micro-batch ", id), status);
      std::lock_guard<std::mutex> lock(st.mu);
      return st.failure;
    }
  }
  st.Progress();
  return absl::OkStatus();
}

absl::StatusOr<Tensor> PipelineStream::Pop() {
  StreamState& st = *state_;
  if (!st.is_host) {
    return absl::FailedPreconditionError(
        "this MPI rank serves its stages; outputs are popped on rank 0");
  }
  std::lock_guard<std::mutex> pop_lock(st.pop_mu);
  std::unique_lock<std::mutex> lock(st.mu);
  st.cv.wait(lock, [&st] {
    return st.results.count(st.popped) != 0 || !st.failure.ok() ||
           (st.input_closed && st.popped == st.pushed);
  });
  auto it = st.results.find(st.popped);
  if (it == st.results.end()) {
    if (!st.failure.ok()) return st.failure;
    return absl::OutOfRangeError(
        absl::StrCat("end of stream: all ", st.pushed, " micro-batches were popped"));
  }
  Tensor out = std::move(it->second);
  st.results.erase(it);
  const int n = st.images_of[st.popped];
  st.images_of.erase(st.popped);
  ++st.popped;
  lock.unlock();
  st.cv.notify_all();  // a Push waiting for capacity
  if (n < st.microbatch) {
    Shape shape = out.shape();
    shape[0] = n;
    out = Tensor(out.buffer(), out.offset(), out.dtype(), shape);  // the real images' rows
  }
  return out;
}

void PipelineStream::CloseInput() {
  StreamState& st = *state_;
  if (!st.is_host) return;  // the host's rank ends the stream
  std::lock_guard<std::mutex> push_lock(st.push_mu);
  int64_t next;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.input_closed) return;
    st.input_closed = true;
    next = st.pushed;
    st.Progress();  // draining starts now: idle time before it is not a stall
    if (!st.failure.ok()) {
      st.cv.notify_all();
      return;
    }
  }
  st.cv.notify_all();
  for (int r = 0; r < st.R(); ++r) {
    Communicator* comm = st.fabrics[r]->endpoint(st.topology.host_rank());
    for (int s : st.input_readers[r]) {
      TensorGroup end;
      end.microbatch = next;
      end.end_of_stream = true;
      if (absl::Status status = comm->Send(end, s, absl::InfiniteDuration()); !status.ok()) {
        st.Fail(absl::StrCat("host closing replica ", r), status);
        return;
      }
    }
  }
}

void PipelineStream::Cancel(const absl::Status& reason) {
  state_->Fail("", reason.ok() ? absl::CancelledError("stream cancelled") : reason);
}

absl::Status PipelineStream::Finish(PipelineStats* stats) {
  StreamState& st = *state_;
  if (!st.joined) {
    CloseInput();
    for (std::thread& t : st.threads) t.join();
    {
      std::lock_guard<std::mutex> lock(st.mu);
      st.stop_watchdog = true;
    }
    st.cv.notify_all();
    st.watchdog.join();
    st.joined = true;
  }
  const Clock::time_point finished = Clock::now();
  std::unique_lock<std::mutex> lock(st.mu);
  if (st.failure.ok() && st.collected != st.pushed) {
    st.failure = absl::InternalError(absl::StrCat("the stream collected ", st.collected,
                                                  " outputs for ", st.pushed,
                                                  " pushed micro-batches"));
  }
  for (size_t i = 0; st.failure.ok() && i < st.deliveries.size(); ++i) {
    if (st.deliveries[i] != 0) {
      st.failure = absl::InternalError(
          absl::StrCat("an output arrived twice or unasked (micro-batch id ", i, " mod ",
                       st.deliveries.size(), ")"));
    }
  }
  if (stats != nullptr) {
    const int K = st.K(), R = st.R();
    *stats = PipelineStats();
    const Clock::time_point end = st.collected > 0 ? st.last_collect : finished;
    const double wall_us = MicrosSince(st.origin, end);
    stats->seconds = wall_us * 1e-6;
    stats->images = st.images;
    stats->images_per_second = stats->seconds > 0 ? st.images / stats->seconds : 0.0;
    stats->latency_p50_ms = Percentile(st.latencies_ms, 0.5);
    stats->latency_p99_ms = Percentile(st.latencies_ms, 0.99);
    double sum = 0;
    for (int r = 0; r < R; ++r) {
      for (int s = 0; s < K; ++s) {
        const StreamState::StageRun& sr = *st.stages[r][s];
        const double f = wall_us > 0 ? sr.busy_us / wall_us : 0.0;  // 0 for other ranks' stages
        stats->stage_busy_fraction.push_back(f);
        sum += f;
        stats->stage_peak_bytes.push_back(sr.fixed_bytes + sr.peak_output_bytes.load() +
                                          st.fabrics[r]->peak_queued_bytes(s));
      }
    }
    // Over this process's stages (all of them, unless other MPI ranks run some).
    int local = 0;
    for (int r = 0; r < R; ++r) {
      for (int s = 0; s < K; ++s) local += st.stages[r][s]->local ? 1 : 0;
    }
    stats->bubble_fraction = local > 0 ? 1.0 - sum / static_cast<double>(local) : 0.0;
    int64_t moved = 0;
    for (auto& f : st.fabrics) {
      for (int s = 0; s < K; ++s) {
        if (f->endpoint(s) != nullptr) moved += f->endpoint(s)->bytes_received();
      }
      // Model inputs from the host are not "moved" between stages.
      // (With NCCL the host fabric also carries the announcements, a few bytes each.)
      if (Communicator* host = f->endpoint(st.topology.host_rank()); host != nullptr) {
        moved -= host->bytes_sent();
      }
    }
    moved += st.DeviceReceived() - st.device_received_at_open;
    stats->bytes_moved = moved;
    stats->num_microbatches = static_cast<int>(st.pushed);
  }
  return st.failure;
}

absl::StatusOr<std::unique_ptr<PipelineStream>> Pipeline::OpenStream(TraceWriter* trace) {
  bool expected = false;
  if (!stream_open_.compare_exchange_strong(expected, true)) {
    return absl::FailedPreconditionError(
        "a stream is already open on this pipeline (one at a time: the stages are shared)");
  }
  auto state = std::make_unique<StreamState>();
  // From here on the stream owns stream_open_: its destructor clears it.
  auto stream = std::unique_ptr<PipelineStream>(new PipelineStream(nullptr));
  StreamState& st = *state;
  const int K = topology_.stages(), R = topology_.replicas();
  st.pipeline = this;
  st.topology = topology_;
  st.microbatch = options_.microbatch;
  st.capacity = options_.max_in_flight > 0 ? options_.max_in_flight
                                           : R * (K * (options_.buffers + 2) + 1);
  st.timeout = options_.timeout;
  st.trace = trace;
  st.deliveries.assign(static_cast<size_t>(st.capacity) * 2 + 16, 0);

  auto fail_open = [&](const absl::Status& status) -> absl::Status {
    stream_open_.store(false);
    return status;
  };
  const bool device_path = UsesDevicePath();
  if (device_path) {
    // A failed stream aborted the links (NCCL communicators): make new ones (collectively under
    // MPI, where every rank's stream failed with it).
    int aborted = device_links_ == nullptr ? 1 : 0;
    for (int d = 0; device_links_ != nullptr && d < R * K; ++d) {
      if (DeviceLink* e = device_links_->endpoint(d); e != nullptr && !e->abort_status().ok()) {
        aborted = 1;
      }
    }
    if (options_.mpi != nullptr) {
      absl::StatusOr<int> any = options_.mpi->MaxOverRanks(aborted);
      if (!any.ok()) return fail_open(any.status());
      aborted = *any;
    }
    if (aborted != 0) {
      if (absl::Status created = CreateDeviceLinks(); !created.ok()) return fail_open(created);
    }
  }
  for (int r = 0; r < R; ++r) {
    if (options_.mpi != nullptr) {
      // Stage s of replica r on world rank r*K + s; the host on rank 0. Collective.
      std::vector<int> world(static_cast<size_t>(topology_.fabric_size()));
      for (int s = 0; s < K; ++s) world[s] = topology_.DeviceIndex(r, s);
      world[topology_.host_rank()] = 0;
      auto fabric = MpiFabric::Create(*options_.mpi, world);
      if (!fabric.ok()) return fail_open(fabric.status());
      st.fabrics.push_back(std::move(*fabric));
    } else {
      // With NCCL the host fabric carries announcements, which must not wait for their receiver
      // (see the header): buffered, one message per receive slot and the end of the stream.
      auto fabric = LocalFabric::Create(
          topology_.fabric_size(), device_path ? options_.buffers + 2 : LocalFabric::kRendezvous);
      if (!fabric.ok()) return fail_open(fabric.status());
      st.fabrics.push_back(std::move(*fabric));
    }
  }
  st.is_host = st.fabrics[0]->endpoint(topology_.host_rank()) != nullptr;
  st.stages.resize(R);
  st.input_readers.resize(R);
  for (int r = 0; r < R; ++r) {
    for (int s = 0; s < K; ++s) {
      const Stage& stage = replicas_[r][s];
      const StageGraph& sg = stage.graph;
      auto run = std::make_unique<StreamState::StageRun>();
      std::map<int, std::vector<std::string>> names;  // peer -> received tensor names
      run->device_path = device_path && stage.device_runner != nullptr;
      for (const auto& rc : sg.receives) {
        const int peer = topology_.RankOfStage(rc.from_stage);
        names[peer].push_back(rc.tensor);
        if (rc.from_stage < 0 &&
            std::find(st.input_readers[r].begin(), st.input_readers[r].end(), s) ==
                st.input_readers[r].end()) {
          st.input_readers[r].push_back(s);
          run->reads_input = true;
        }
      }
      run->local = stage.local;
      const int buffers = options_.buffers;
      run->slots.resize(stage.local ? buffers : 0);
      int64_t slot_bytes = 0;
      for (int b = 0; b < static_cast<int>(run->slots.size()); ++b) {
        for (const auto& [peer, list] : names) {
          if (run->device_path && peer != topology_.host_rank()) {
            // Only the announcement arrives on the host fabric; the tensors land in the
            // executor's device input set b.
            NamedTensors announce = {
                {kAnnounce, Tensor(DType::kInt64, {static_cast<int64_t>(list.size())})}};
            run->slots[b].owned[peer] = announce;
            run->slots[b].by_peer[peer] = std::move(announce);
            continue;
          }
          auto alloc = AllocateNamed(sg.graph, list);
          if (!alloc.ok()) return fail_open(alloc.status());
          slot_bytes += NamedBytes(*alloc);
          run->slots[b].owned[peer] = *alloc;
          run->slots[b].by_peer[peer] = std::move(*alloc);
        }
      }
      for (const auto& rc : sg.receives) {
        const int peer = topology_.RankOfStage(rc.from_stage);
        if (run->device_path && peer != topology_.host_rank()) {
          run->device_inputs[peer].push_back(static_cast<int>(run->input_sources.size()));
        }
        run->input_sources.emplace_back(peer, rc.tensor);
      }
      for (const auto& sd : sg.sends) {
        run->download.push_back(std::find(sd.to_stages.begin(), sd.to_stages.end(), -1) !=
                                sd.to_stages.end());
      }
      for (size_t i = 0; i < sg.sends.size(); ++i) {
        for (int t : sg.sends[i].to_stages) {
          run->send_groups[topology_.RankOfStage(t)].push_back(static_cast<int>(i));
        }
      }
      if (run->device_path) st.PrepareDevicePath(stage, r, *run);
      if (stage.device_runner != nullptr) {
        run->fixed_bytes = stage.device_runner->held_bytes() + slot_bytes;
      } else if (stage.cuda_executor != nullptr) {
        run->fixed_bytes = CudaStageBytes(*stage.cuda_executor) + slot_bytes;
      } else if (stage.local) {
        run->fixed_bytes = static_cast<int64_t>(stage.executor->weight_bytes() +
                                                stage.executor->arena_bytes() +
                                                stage.executor->workspace_bytes()) +
                           slot_bytes;
      }
      run->free_slots = std::make_unique<HandoffQueue<int>>(buffers);
      run->ready_slots = std::make_unique<HandoffQueue<int>>(buffers);
      run->outgoing = std::make_unique<HandoffQueue<StreamState::Outgoing>>(1);
      for (int b = 0; b < static_cast<int>(run->slots.size()); ++b) run->free_slots->Push(b);
      st.stages[r].push_back(std::move(run));
    }
  }
  if (trace != nullptr) {
    for (int r = 0; r < R; ++r) {
      for (int s = 0; s < K; ++s) {
        const std::string stage_name = absl::StrCat("stage ", s, " ", device(r, s).ToString());
        trace->AddDeviceTrack(topology_.DeviceIndex(r, s),
                              R == 1 ? stage_name : absl::StrCat("replica ", r, " ", stage_name));
      }
    }
  }
  st.device_received_at_open = st.DeviceReceived();
  st.origin = Clock::now();
  st.last_collect = st.origin;
  st.Progress();
  stream->state_ = std::move(state);
  try {
    for (int r = 0; r < R; ++r) {
      if (st.is_host) {
        st.threads.emplace_back([&st, r] {
          st.Guarded(absl::StrCat("collecting replica ", r, "'s outputs"), [&] { st.Collector(r); });
        });
      }
      for (int s = 0; s < K; ++s) {
        if (!replicas_[r][s].local) continue;  // another rank runs it
        const std::string name = st.topology.Name(r, s);
        st.threads.emplace_back([&st, r, s, name] {
          st.Guarded(name + " receiving", [&] { st.Receiver(r, s); });
        });
        st.threads.emplace_back([&st, r, s, name] {
          st.Guarded(name, [&] { st.Compute(r, s); });
        });
        st.threads.emplace_back([&st, r, s, name] {
          st.Guarded(name + " sending", [&] { st.Sender(r, s); });
        });
      }
    }
    st.watchdog = std::thread(&StreamState::Watchdog, &st);
  } catch (const std::exception& e) {
    // The threads already started see the failure and return; the destructor joins them.
    st.Fail("starting the pipeline threads", absl::ResourceExhaustedError(e.what()));
    if (!st.watchdog.joinable()) st.watchdog = std::thread([] {});
  }
  return stream;
}

absl::Status Pipeline::Serve(PipelineStats* stats, TraceWriter* trace) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  if (options_.mpi == nullptr || options_.mpi->rank() == 0) {
    return absl::FailedPreconditionError("Serve is for MPI ranks other than 0; rank 0 runs Run");
  }
  YP_ASSIGN_OR_RETURN(std::unique_ptr<PipelineStream> stream, OpenStream(trace));
  return stream->Finish(stats);
}

absl::StatusOr<Tensor> Pipeline::Run(const Tensor& batch, PipelineStats* stats,
                                     TraceWriter* trace) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  if (options_.mpi != nullptr && options_.mpi->rank() != 0) {
    return absl::FailedPreconditionError("MPI ranks other than 0 call Serve, not Run");
  }
  const int m = options_.microbatch;
  if (!batch.defined() || batch.dtype() != DType::kFloat32 || batch.rank() != 4 ||
      batch.layout() != Layout::kPlain || batch.dim(1) != mb_shape_[1] ||
      batch.dim(2) != mb_shape_[2] || batch.dim(3) != mb_shape_[3] || batch.dim(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input must be a plain float32 (B, ", mb_shape_[1], ", ", mb_shape_[2], ", ",
        mb_shape_[3], ") batch, got ", batch.defined() ? DTypeName(batch.dtype()) : "undefined",
        " ", ShapeToString(batch.shape())));
  }
  const int64_t B = batch.dim(0);
  const int64_t num_mb = (B + m - 1) / m;
  const size_t image_bytes = batch.bytes() / static_cast<size_t>(B);
  Shape out_shape = output_mb_shape_;
  out_shape[0] = B;
  Tensor output(DType::kFloat32, out_shape);
  const size_t out_image_bytes = output.bytes() / static_cast<size_t>(B);

  YP_ASSIGN_OR_RETURN(std::unique_ptr<PipelineStream> stream, OpenStream(trace));
  std::thread feeder([&] {
    for (int64_t j = 0; j < num_mb; ++j) {
      const int64_t n = std::min<int64_t>(m, B - j * m);
      Shape shape = mb_shape_;
      shape[0] = n;
      Tensor slice(batch.buffer(), batch.offset() + static_cast<size_t>(j * m) * image_bytes,
                   DType::kFloat32, shape);
      // The batch stays untouched for the whole Run: the stages may read it in place.
      if (!stream->Push(slice, /*share=*/true).ok()) break;  // the failure reaches Pop
    }
    stream->CloseInput();
  });
  absl::Status status;
  for (int64_t j = 0; j < num_mb; ++j) {
    absl::StatusOr<Tensor> out = stream->Pop();
    if (!out.ok()) {
      status = out.status();
      break;
    }
    const int64_t n = std::min<int64_t>(m, B - j * m);
    if (out->dim(0) != n || out->bytes() != static_cast<size_t>(n) * out_image_bytes) {
      status = absl::InternalError(absl::StrCat("micro-batch ", j, "'s output is ",
                                                out->DebugString(), ", expected ", n,
                                                " images of ", out_image_bytes, " bytes"));
      stream->Cancel(status);
      break;
    }
    std::memcpy(static_cast<char*>(output.raw_data()) + static_cast<size_t>(j * m) * out_image_bytes,
                out->raw_data(), out->bytes());
  }
  if (!status.ok()) stream->Cancel(status);
  feeder.join();
  absl::Status finished = stream->Finish(stats);
  if (!status.ok()) return status;
  YP_RETURN_IF_ERROR(finished);
  return output;
}


}  // namespace yolopipe
