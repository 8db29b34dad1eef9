#include "runtime/pipeline/pipeline.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "graph/fingerprint.h"
#include "graph/prepare.h"
#include "runtime/comm/local_communicator.h"
#include "runtime/planner/plan_check.h"
#include "runtime/planner/planner.h"
#include "runtime/profiler/profiler.h"

namespace yolopipe {
namespace {

using Clock = std::chrono::steady_clock;

double MicrosSince(Clock::time_point origin, Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(t - origin).count();
}

// Best effort: pins the calling thread to the device's cores. Errors (EINVAL for cores this
// process may not use, EPERM) are ignored: pinning is an optimisation, never a requirement.
void PinToDevice(const DeviceSpec& device) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cores = AvailableCores();
  for (int c = 0; c < std::max(1, device.num_threads); ++c) {
    const int core = device.first_core + c;
    if (core >= 0 && core < CPU_SETSIZE) CPU_SET(cores > 0 ? core % std::max(cores, 1) : core, &set);
  }
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

// Shared by the threads of one Run: the first failure wins and aborts every fabric.
class RunFailure {
 public:
  explicit RunFailure(std::vector<LocalFabric*> fabrics) : fabrics_(std::move(fabrics)) {}
  void Fail(const std::string& where, const absl::Status& status) {
    absl::Status annotated(status.code(), absl::StrCat(where, ": ", status.message()));
    {
      absl::MutexLock lock(&mu_);
      if (!first_.ok()) return;  // a secondary error (typically Aborted by the first)
      first_ = annotated;
    }
    for (LocalFabric* f : fabrics_) f->Abort(annotated);
  }
  absl::Status status() const {
    absl::MutexLock lock(&mu_);
    return first_;
  }

 private:
  const std::vector<LocalFabric*> fabrics_;
  mutable absl::Mutex mu_;
  absl::Status first_ ABSL_GUARDED_BY(mu_);
};

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
                                          const DeviceSpec& device, int microbatch, int stages,
                                          int replicas, int batch) {
  ProfilerOptions popts;
  popts.microbatch_sizes = {microbatch};
  popts.repeats = 1;
  popts.warmup = 0;
  popts.device = device;
  YP_ASSIGN_OR_RETURN(proto::Profile profile, ProfileModel(model, imgsz, popts));
  PlannerOptions plopts;
  plopts.num_stages = stages;
  plopts.replicas = replicas;
  plopts.batch = batch;
  plopts.microbatch_candidates = {microbatch};
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

Pipeline::~Pipeline() = default;

const DeviceSpec& Pipeline::device(int replica, int stage) const {
  return replicas_[replica][stage].device;
}

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(const Model& model, int64_t imgsz,
                                                           const PipelineOptions& options) {
  if (options.devices.empty()) return absl::InvalidArgumentError("no devices given");
  for (const DeviceSpec& d : options.devices) {
    if (d.kind != DeviceKind::kCpu) {
      return absl::InvalidArgumentError(
          absl::StrCat("the pipeline runs on CPU devices only for now, got ", d.ToString()));
    }
  }
  if (options.microbatch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("microbatch must be >= 1, got ", options.microbatch));
  }
  if (options.buffers < 1) {
    return absl::InvalidArgumentError(absl::StrCat("buffers must be >= 1, got ", options.buffers));
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
      if (K < 1 || R * K != num_devices) {
        return absl::InvalidArgumentError(absl::StrCat(
            ModeName(options.mode), " mode with ", R, " replica(s) of ", K,
            " stage(s) needs ", R * K, " devices, got ", num_devices));
      }
      break;
    }
  }
  p->num_stages_ = K;
  p->num_replicas_ = R;

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

  if (K == 1) {
    std::vector<std::string> all;
    for (const Node& n : prepared.nodes()) all.push_back(n.name);
    p->stage_nodes_ = {all};
  } else {
    proto::Plan made;
    if (plan == nullptr) {
      // Plan on the spot (see the header).
      YP_ASSIGN_OR_RETURN(made, MakeQuickPlan(model, imgsz, options.devices[0],
                                              options.microbatch, K, /*replicas=*/1,
                                              /*batch=*/options.microbatch));
      plan = &made;
    }
    for (int s = 0; s < K; ++s) {
      const auto& nodes = plan->stages(s).nodes();
      p->stage_nodes_.emplace_back(nodes.begin(), nodes.end());
    }
  }
  YP_ASSIGN_OR_RETURN(std::vector<StageGraph> stage_graphs,
                      PartitionGraph(prepared, p->stage_nodes_));

  p->replicas_.resize(R);
  for (int r = 0; r < R; ++r) {
    for (int s = 0; s < K; ++s) {
      Stage stage;
      stage.graph = stage_graphs[s];
      stage.device = options.devices[r * K + s];
      ExecutorOptions eo;
      eo.backend = ops::Backend::kCpu;
      eo.num_threads = std::max(1, stage.device.num_threads);
      YP_ASSIGN_OR_RETURN(stage.executor, Executor::Create(stage.graph.graph, eo));
      p->replicas_[r].push_back(std::move(stage));
    }
  }
  return p;
}

absl::StatusOr<Tensor> Pipeline::Run(const Tensor& batch, PipelineStats* stats,
                                     TraceWriter* trace) {
  absl::MutexLock run_lock(&run_mu_);
  const int K = num_stages_, R = num_replicas_, m = options_.microbatch;
  if (!batch.defined() || batch.dtype() != DType::kFloat32 || batch.rank() != 4 ||
      batch.layout() != Layout::kPlain || batch.dim(1) != mb_shape_[1] ||
      batch.dim(2) != mb_shape_[2] || batch.dim(3) != mb_shape_[3] || batch.dim(0) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input must be a plain float32 (B, ", mb_shape_[1], ", ", mb_shape_[2], ", ",
        mb_shape_[3], ") batch, got ", batch.defined() ? DTypeName(batch.dtype()) : "undefined",
        " ", ShapeToString(batch.shape())));
  }
  if (batch.dim(0) % m != 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch of ", batch.dim(0),
                                                   " images is not a multiple of the micro-batch (",
                                                   m, " images)"));
  }
  const int64_t num_mb = batch.dim(0) / m;
  const size_t in_mb_bytes = static_cast<size_t>(NumElements(mb_shape_)) * sizeof(float);
  Shape out_shape = output_mb_shape_;
  out_shape[0] = batch.dim(0);
  Tensor output(DType::kFloat32, out_shape);
  const size_t out_mb_bytes = static_cast<size_t>(NumElements(output_mb_shape_)) * sizeof(float);

  std::vector<std::unique_ptr<LocalFabric>> fabrics;
  std::vector<LocalFabric*> fabric_ptrs;
  for (int r = 0; r < R; ++r) {
    YP_ASSIGN_OR_RETURN(auto f, LocalFabric::Create(K + 1, options_.buffers));
    fabric_ptrs.push_back(f.get());
    fabrics.push_back(std::move(f));
  }
  RunFailure failure(fabric_ptrs);
  const int host = K;
  const absl::Duration timeout = options_.timeout;

  if (trace != nullptr) {
    for (int r = 0; r < R; ++r) {
      for (int s = 0; s < K; ++s) {
        const std::string stage_name = absl::StrCat("stage ", s, " ", device(r, s).ToString());
        trace->AddDeviceTrack(r * K + s,
                              R == 1 ? stage_name : absl::StrCat("replica ", r, " ", stage_name));
      }
    }
  }

  // Written by exactly one thread each, read after the joins.
  std::vector<Clock::time_point> enter(num_mb), leave(num_mb);
  std::vector<int> delivered(num_mb, 0);
  std::vector<double> busy_us(static_cast<size_t>(R * K), 0.0);
  const Clock::time_point origin = Clock::now();

  auto ids_of = [&](int r) {
    std::vector<int64_t> ids;
    for (int64_t j = r; j < num_mb; j += R) ids.push_back(j);
    return ids;
  };

  auto stage_worker = [&](int r, int s) {
    Stage& stage = replicas_[r][s];
    PinToDevice(stage.device);
    LocalCommunicator* comm = fabrics[r]->endpoint(s);
    const StageGraph& sg = stage.graph;
    // Receives grouped by peer (the host for model inputs), buffers allocated once.
    std::map<int, NamedTensors> recv_buffers;
    {
      std::map<int, std::vector<std::string>> names;
      for (const auto& rc : sg.receives) names[rc.from_stage < 0 ? host : rc.from_stage].push_back(rc.tensor);
      for (auto& [peer, list] : names) {
        auto alloc = AllocateNamed(sg.graph, list);
        if (!alloc.ok()) {
          failure.Fail(absl::StrCat("replica ", r, " stage ", s), alloc.status());
          return;
        }
        recv_buffers[peer] = std::move(*alloc);
      }
    }
    std::map<int, std::vector<int>> send_groups;  // peer -> indices into the executor outputs
    for (size_t i = 0; i < sg.sends.size(); ++i) {
      for (int t : sg.sends[i].to_stages) send_groups[t < 0 ? host : t].push_back(static_cast<int>(i));
    }
    for (int64_t id : ids_of(r)) {
      const std::string where =
          absl::StrCat("replica ", r, " stage ", s, " micro-batch ", id);
      const Clock::time_point t0 = Clock::now();
      for (auto& [peer, into] : recv_buffers) {
        if (absl::Status st = comm->Recv(peer, id, &into, timeout); !st.ok()) {
          failure.Fail(where, st);
          return;
        }
      }
      const Clock::time_point t1 = Clock::now();
      if (trace != nullptr && !sg.receives.empty()) {
        trace->Add(absl::StrCat("mb ", id), "recv", r * K + s, TraceLane::kRecv,
                   MicrosSince(origin, t0), MicrosSince(t0, t1));
      }
      if (s == 0) enter[id] = t1;
      if (options_.fault_injector) {
        if (absl::Status st = options_.fault_injector(r, s, id); !st.ok()) {
          failure.Fail(where, st);
          return;
        }
      }
      std::vector<Tensor> inputs;
      for (const auto& rc : sg.receives) {
        const int peer = rc.from_stage < 0 ? host : rc.from_stage;
        for (const auto& [name, t] : recv_buffers[peer]) {
          if (name == rc.tensor) inputs.push_back(t);
        }
      }
      auto outputs = stage.executor->Run(inputs);
      const Clock::time_point t2 = Clock::now();
      if (!outputs.ok()) {
        failure.Fail(where, outputs.status());
        return;
      }
      busy_us[r * K + s] += MicrosSince(t1, t2);
      if (trace != nullptr) {
        trace->Add(absl::StrCat("mb ", id), "compute", r * K + s, TraceLane::kCompute,
                   MicrosSince(origin, t1), MicrosSince(t1, t2));
      }
      for (const auto& [peer, indices] : send_groups) {
        TensorGroup group;
        group.microbatch = id;
        for (int i : indices) group.tensors.emplace_back(sg.sends[i].tensor, (*outputs)[i]);
        if (absl::Status st = comm->Send(group, peer, timeout); !st.ok()) {
          failure.Fail(where, st);
          return;
        }
      }
      const Clock::time_point t3 = Clock::now();
      if (trace != nullptr && !send_groups.empty()) {
        trace->Add(absl::StrCat("mb ", id), "send", r * K + s, TraceLane::kSend,
                   MicrosSince(origin, t2), MicrosSince(t2, t3));
      }
      if (s == K - 1) leave[id] = t3;
    }
  };

  auto feeder = [&](int r) {
    LocalCommunicator* comm = fabrics[r]->endpoint(host);
    std::vector<int> readers;
    for (int s = 0; s < K; ++s) {
      for (const auto& rc : replicas_[r][s].graph.receives) {
        if (rc.from_stage < 0) {
          readers.push_back(s);
          break;
        }
      }
    }
    for (int64_t id : ids_of(r)) {
      // A view of the caller's batch: Send copies it into the channel.
      Tensor slice(batch.buffer(), batch.offset() + static_cast<size_t>(id) * in_mb_bytes,
                   DType::kFloat32, mb_shape_);
      for (int s : readers) {
        TensorGroup group;
        group.microbatch = id;
        group.tensors.emplace_back(input_name_, slice);
        if (absl::Status st = comm->Send(group, s, timeout); !st.ok()) {
          failure.Fail(absl::StrCat("host feeding replica ", r, " micro-batch ", id), st);
          return;
        }
      }
    }
  };

  auto collector = [&](int r) {
    LocalCommunicator* comm = fabrics[r]->endpoint(host);
    std::map<int, NamedTensors> buffers;  // producing stage -> model outputs it sends
    for (int s = 0; s < K; ++s) {
      std::vector<std::string> names;
      for (const auto& sd : replicas_[r][s].graph.sends) {
        if (std::find(sd.to_stages.begin(), sd.to_stages.end(), -1) != sd.to_stages.end()) {
          names.push_back(sd.tensor);
        }
      }
      if (names.empty()) continue;
      auto alloc = AllocateNamed(replicas_[r][s].graph.graph, names);
      if (!alloc.ok()) {
        failure.Fail(absl::StrCat("host collecting replica ", r), alloc.status());
        return;
      }
      buffers[s] = std::move(*alloc);
    }
    for (int64_t id : ids_of(r)) {
      for (auto& [s, into] : buffers) {
        if (absl::Status st = comm->Recv(s, id, &into, timeout); !st.ok()) {
          failure.Fail(absl::StrCat("host collecting replica ", r, " micro-batch ", id), st);
          return;
        }
        for (const auto& [name, t] : into) {
          if (name != output_name_) continue;
          std::memcpy(static_cast<char*>(output.raw_data()) + static_cast<size_t>(id) * out_mb_bytes,
                      t.raw_data(), out_mb_bytes);
          ++delivered[id];
        }
      }
    }
  };

  std::vector<std::thread> threads;
  try {
    for (int r = 0; r < R; ++r) {
      threads.emplace_back(feeder, r);
      threads.emplace_back(collector, r);
      for (int s = 0; s < K; ++s) threads.emplace_back(stage_worker, r, s);
    }
  } catch (const std::exception& e) {
    // The threads already started see the abort and return.
    failure.Fail("starting the pipeline threads", absl::ResourceExhaustedError(e.what()));
  }
  for (std::thread& t : threads) t.join();
  const double wall_us = MicrosSince(origin, Clock::now());

  YP_RETURN_IF_ERROR(failure.status());
  for (int64_t id = 0; id < num_mb; ++id) {
    if (delivered[id] != 1) {
      return absl::InternalError(absl::StrCat("micro-batch ", id, "'s output arrived ",
                                              delivered[id], " times instead of once"));
    }
  }

  if (stats != nullptr) {
    *stats = PipelineStats();
    stats->seconds = wall_us * 1e-6;
    stats->images_per_second = stats->seconds > 0 ? batch.dim(0) / stats->seconds : 0.0;
    std::vector<double> lat;
    for (int64_t id = 0; id < num_mb; ++id) {
      lat.push_back(std::chrono::duration<double, std::milli>(leave[id] - enter[id]).count());
    }
    stats->latency_p50_ms = Percentile(lat, 0.5);
    stats->latency_p99_ms = Percentile(lat, 0.99);
    double sum = 0;
    for (double b : busy_us) {
      const double f = wall_us > 0 ? b / wall_us : 0.0;
      stats->stage_busy_fraction.push_back(f);
      sum += f;
    }
    stats->bubble_fraction = 1.0 - sum / static_cast<double>(busy_us.size());
    int64_t moved = 0;
    for (auto& f : fabrics) {
      for (int s = 0; s < K; ++s) moved += f->endpoint(s)->bytes_received();
      moved -= f->endpoint(host)->bytes_sent();  // model inputs from the host are not "moved"
    }
    stats->bytes_moved = moved;
    stats->num_microbatches = static_cast<int>(num_mb);
  }
  return output;
}

}  // namespace yolopipe
