#include "runtime/profiler/profiler.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"
#include "graph/fingerprint.h"
#include "graph/yolov8/stats.h"
#include "graph/prepare.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/session.h"

namespace yolopipe {
namespace {

constexpr char kConversionOp[] = "LayoutConversion";
constexpr int kMaxMicrobatch = 4096;  // InputShapeFor's batch limit

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0.0;
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Min(const std::vector<double>& v) {
  return v.empty() ? 0.0 : *std::min_element(v.begin(), v.end());
}

// The value after "key<spaces>:" on the first line of `path` starting with `key`, or "".
std::string ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, key)) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return "";
}

uint64_t ValueBytes(const Graph& graph, const std::string& name) {
  const Value* v = graph.FindValue(name);
  if (v == nullptr || !IsFullyKnown(v->shape)) return 0;
  return static_cast<uint64_t>(NumElements(v->shape)) * DTypeSize(v->dtype);
}

bool IsActivation(const Graph& graph, const std::string& name) {
  return !name.empty() && !graph.IsInitializer(name);
}

// Node structure, tensors and the reference figures, from the prepared graph of the first size.
absl::Status FillStructure(const Graph& g, int microbatch, proto::Profile& profile) {
  if (g.inputs().size() != 1) {
    return absl::InternalError(
        absl::StrCat("the prepared graph has ", g.inputs().size(), " inputs, expected 1"));
  }
  profile.set_input_tensor(g.inputs()[0]);
  for (const std::string& out : g.outputs()) profile.add_output_tensors(out);

  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& node = g.nodes()[i];
    proto::NodeProfile* np = profile.add_nodes();
    np->set_name(node.name);
    np->set_op(node.op_type);
    np->set_index(static_cast<int>(i));
    std::set<std::string> seen_inputs, seen_constants;
    uint64_t weight_bytes = 0;
    for (const std::string& in : node.inputs) {
      if (in.empty()) continue;
      if (const Tensor* c = g.FindInitializer(in)) {
        if (seen_constants.insert(in).second) weight_bytes += c->bytes();
      } else if (seen_inputs.insert(in).second) {
        np->add_inputs(in);
      }
    }
    for (const std::string& out : node.outputs) np->add_outputs(out);
    np->set_weight_bytes(weight_bytes);
    if (node.op_type == "Conv") {
      absl::StatusOr<int64_t> macs = ConvNodeMacs(g, node);
      if (!macs.ok()) return macs.status();
      np->set_flops(2.0 * static_cast<double>(*macs));
    }
  }

  const std::map<std::string, int> producers = g.Producers();
  const std::map<std::string, std::vector<int>> consumers = g.Consumers();
  const std::set<std::string> outputs(g.outputs().begin(), g.outputs().end());
  auto add_tensor = [&](const std::string& name) {
    proto::TensorProfile* t = profile.add_tensors();
    t->set_name(name);
    if (auto p = producers.find(name); p != producers.end()) {
      t->set_producer(g.nodes()[p->second].name);
    }
    if (auto c = consumers.find(name); c != consumers.end()) {
      for (int idx : c->second) t->add_consumers(g.nodes()[idx].name);
    }
    // Activations scale with the batch (every YOLOv8 activation has the batch as its first
    // dimension); rounded up should a tensor not divide evenly.
    const uint64_t bytes = ValueBytes(g, name);
    t->set_bytes_per_image((bytes + microbatch - 1) / microbatch);
    t->set_graph_output(outputs.count(name) > 0);
  };
  add_tensor(g.inputs()[0]);
  for (const Node& node : g.nodes()) {
    for (const std::string& out : node.outputs) {
      if (IsActivation(g, out)) add_tensor(out);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSameNodes(const Graph& g, const proto::Profile& profile, int microbatch) {
  const int first = profile.microbatch_sizes(0);
  if (static_cast<int>(g.nodes().size()) != profile.nodes_size()) {
    return absl::InternalError(absl::StrCat("the prepared graph has ", g.nodes().size(),
                                            " nodes at micro-batch ", microbatch, " but ",
                                            profile.nodes_size(), " at micro-batch ", first));
  }
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    const Node& node = g.nodes()[i];
    const proto::NodeProfile& np = profile.nodes(static_cast<int>(i));
    if (node.name != np.name() || node.op_type != np.op()) {
      return absl::InternalError(absl::StrCat(
          "the prepared graph differs between micro-batch ", first, " and ", microbatch, ": node ",
          i, " is '", np.name(), "' (", np.op(), ") vs '", node.name, "' (", node.op_type, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int> DefaultMicrobatchSizes(int batch) {
  std::vector<int> sizes;
  for (int m = 1; m < batch; m *= 2) sizes.push_back(m);
  sizes.push_back(std::max(batch, 1));
  return sizes;
}

absl::Status ValidateProfilerOptions(const ProfilerOptions& options) {
  const std::vector<int>& sizes = options.microbatch_sizes;
  if (sizes.empty()) {
    return absl::InvalidArgumentError("no micro-batch sizes to profile (give at least one)");
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 1 || sizes[i] > kMaxMicrobatch) {
      return absl::InvalidArgumentError(
          absl::StrCat("micro-batch sizes must be 1..", kMaxMicrobatch, ", got ", sizes[i]));
    }
    if (i > 0 && sizes[i] <= sizes[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("micro-batch sizes must be strictly increasing (sorted, no repeats), got ",
                       absl::StrJoin(sizes, ",")));
    }
  }
  if (options.repeats < 1) {
    return absl::InvalidArgumentError(absl::StrCat("repeats must be >= 1, got ", options.repeats));
  }
  if (options.warmup < 0) {
    return absl::InvalidArgumentError(absl::StrCat("warmup must be >= 0, got ", options.warmup));
  }
  if (options.device.kind == DeviceKind::kCpu && options.device.num_threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat("device cpu:", options.device.index,
                                                   " must have >= 1 threads, got ",
                                                   options.device.num_threads));
  }
  for (const DeviceSpec& d : options.load_devices) {
    if (d.kind != DeviceKind::kCpu || d.num_threads < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "load devices must be CPU devices with >= 1 threads, got ", d.ToString()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> AttributeStepsToNodes(const Graph& prepared,
                                                       const std::vector<ExecutionStep>& steps) {
  const std::vector<Node>& nodes = prepared.nodes();
  std::vector<int> owner(steps.size(), -1);
  size_t next_node = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    if (steps[s].op_type == kConversionOp) continue;
    if (next_node >= nodes.size()) {
      return absl::InternalError(absl::StrCat("executor step ", s, " '", steps[s].name,
                                              "' has no node left in the prepared graph (",
                                              nodes.size(), " nodes)"));
    }
    const Node& node = nodes[next_node];
    if (steps[s].name != node.name || steps[s].op_type != node.op_type) {
      return absl::InternalError(absl::StrCat(
          "executor step ", s, " is '", steps[s].name, "' (", steps[s].op_type, ") but node ",
          next_node, " of the prepared graph is '", node.name, "' (", node.op_type, ")"));
    }
    owner[s] = static_cast<int>(next_node++);
  }
  if (next_node != nodes.size()) {
    return absl::InternalError(absl::StrCat("the prepared graph has ", nodes.size(),
                                            " nodes but the executor runs only ", next_node));
  }

  std::map<std::string, int> producers;  // built on first need
  for (size_t s = 0; s < steps.size(); ++s) {
    if (steps[s].op_type != kConversionOp) continue;
    absl::string_view tensor = steps[s].name;
    if (!absl::ConsumeSuffix(&tensor, ":to_nhwc") && !absl::ConsumeSuffix(&tensor, ":to_plain")) {
      return absl::InternalError(absl::StrCat("layout conversion step ", s, " '", steps[s].name,
                                              "' does not end in :to_nhwc or :to_plain"));
    }
    for (size_t t = s + 1; t < steps.size() && owner[s] < 0; ++t) {
      if (steps[t].op_type == kConversionOp) continue;
      const Node& consumer = nodes[owner[t]];
      if (std::find(consumer.inputs.begin(), consumer.inputs.end(), tensor) !=
          consumer.inputs.end()) {
        owner[s] = owner[t];
      }
    }
    if (owner[s] >= 0) continue;
    if (producers.empty()) producers = prepared.Producers();
    auto p = producers.find(std::string(tensor));
    if (p == producers.end()) {
      return absl::InternalError(absl::StrCat("layout conversion step ", s, " '", steps[s].name,
                                              "' converts a tensor that no later node reads and "
                                              "no node produces"));
    }
    owner[s] = p->second;
  }
  return owner;
}

proto::DeviceDescription DescribeDevice(const DeviceSpec& device) {
  proto::DeviceDescription d;
  if (device.kind == DeviceKind::kCuda) {
    d.set_kind("cuda");
    d.set_name(device.ToString());
    d.set_description(device.ToString());
    if (auto gpus = ListCudaDevices(); gpus.ok()) {
      for (const CudaDeviceInfo& gpu : *gpus) {
        if (gpu.ordinal != device.index) continue;
        d.set_description(gpu.name);
        d.set_memory_bytes(gpu.total_memory_bytes);
      }
    }
    return d;
  }
  d.set_kind("cpu");
  d.set_name(absl::StrCat("cpu:", device.index));
  d.set_threads(device.num_threads);
  std::string cpu = ProcField("/proc/cpuinfo", "model name");
  if (cpu.empty()) cpu = "CPU";
  d.set_description(absl::StrCat(cpu, "; ", device.ToString()));
  uint64_t kib = 0;
  const std::string mem_total = ProcField("/proc/meminfo", "MemTotal");  // "16318416 kB"
  absl::string_view mem = mem_total;
  absl::ConsumeSuffix(&mem, " kB");
  if (absl::SimpleAtoi(mem, &kib)) d.set_memory_bytes(kib * 1024);
  return d;
}

namespace {

// The fields every profile starts with.
proto::Profile NewProfile(const Model& model, const ProfilerOptions& options) {
  proto::Profile profile;
  profile.set_model(model.source);
  profile.set_model_fingerprint(ModelFingerprint(model.graph));
  *profile.mutable_device() = DescribeDevice(options.device);
  for (int m : options.microbatch_sizes) profile.add_microbatch_sizes(m);
  profile.set_repeats(options.repeats);
  profile.set_warmup(options.warmup);
  profile.set_created_by("yolopipe profile");
  return profile;
}

// Runs `run_once` warmup + repeats times, timing each call's wall time and reporting progress.
// `run_once` returns one time sample per node (ms); the timed runs' samples go to node_ms[n] and
// their wall times to run_ms.
absl::Status TimeRuns(const ProfilerOptions& options, const std::string& where,
                      const std::function<absl::StatusOr<std::vector<double>>()>& run_once,
                      std::vector<std::vector<double>>& node_ms, std::vector<double>& run_ms) {
  const int runs = options.warmup + options.repeats;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<std::vector<double>> sample = run_once();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count();
    if (!sample.ok()) return sample.status();
    const bool warm = r < options.warmup;
    if (options.progress) {
      options.progress(warm ? absl::StrFormat("profiling %s: warm-up %d/%d, %.1f ms", where,
                                              r + 1, options.warmup, ms)
                            : absl::StrFormat("profiling %s: run %d/%d, %.1f ms", where,
                                              r - options.warmup + 1, options.repeats, ms));
    }
    if (warm) continue;
    run_ms.push_back(ms);
    for (size_t n = 0; n < node_ms.size(); ++n) node_ms[n].push_back((*sample)[n]);
  }
  return absl::OkStatus();
}

// Records micro-batch size index `si` (size m): every node's timing with its output and
// workspace bytes (the reference figures for the first size), and the whole-run figures.
void RecordSize(proto::Profile& profile, int si, int m,
                const std::vector<std::vector<double>>& node_ms,
                const std::vector<uint64_t>& output_bytes,
                const std::vector<uint64_t>& workspace_bytes, const std::vector<double>& run_ms,
                uint64_t arena_bytes, uint64_t weight_bytes, uint64_t executor_workspace) {
  double node_sum = 0.0;
  for (size_t n = 0; n < node_ms.size(); ++n) {
    proto::NodeProfile* np = profile.mutable_nodes(static_cast<int>(n));
    proto::NodeTiming* t = np->add_timings();
    t->set_microbatch(m);
    t->set_min_ms(Min(node_ms[n]));
    t->set_median_ms(Median(node_ms[n]));
    t->set_output_bytes(output_bytes[n]);
    t->set_workspace_bytes(workspace_bytes[n]);
    node_sum += t->median_ms();
    if (si == 0) {
      np->set_time_ms(t->median_ms());
      np->set_output_bytes(t->output_bytes());
      np->set_workspace_bytes(t->workspace_bytes());
    }
  }
  proto::MicrobatchRun* run = profile.add_runs();
  run->set_microbatch(m);
  run->set_run_min_ms(Min(run_ms));
  run->set_run_median_ms(Median(run_ms));
  run->set_node_sum_ms(node_sum);
  run->set_arena_bytes(arena_bytes);
  run->set_weight_bytes(weight_bytes);
  run->set_workspace_bytes(executor_workspace);
}

void SetTotal(proto::Profile& profile) {
  double total = 0.0;
  for (const proto::NodeProfile& np : profile.nodes()) total += np.time_ms();
  profile.set_total_ms(total);
}

// The CUDA half of ProfileModel (see the header).
absl::StatusOr<proto::Profile> ProfileOnCuda(const Model& model, int64_t imgsz,
                                             const ProfilerOptions& options) {
  if (!options.load_devices.empty()) {
    return absl::InvalidArgumentError("background load devices apply to CPU profiling only");
  }
  if (options.cuda_precision != DType::kFloat16 && options.cuda_precision != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat("cuda_precision must be float16 or float32, got ",
                                                   DTypeName(options.cuda_precision)));
  }
  YP_ASSIGN_OR_RETURN(const std::vector<CudaDeviceInfo> gpus, ListCudaDevices());
  if (options.device.index < 0 || options.device.index >= static_cast<int>(gpus.size())) {
    return absl::InvalidArgumentError(absl::StrCat(options.device.ToString(), " does not exist: ",
                                                   gpus.size(), " CUDA device(s) visible"));
  }
  auto progress = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  const std::vector<int>& sizes = options.microbatch_sizes;
  const int num_sizes = static_cast<int>(sizes.size());
  proto::Profile profile = NewProfile(model, options);
  profile.mutable_device()->set_description(
      absl::StrCat(profile.device().description(), "; CUDA executor, ",
                   options.cuda_precision == DType::kFloat16 ? "fp16" : "fp32"));
  const size_t element = DTypeSize(options.cuda_precision);

  for (int si = 0; si < num_sizes; ++si) {
    const int m = sizes[si];
    const std::string where = absl::StrFormat("micro-batch %d (%d/%d)", m, si + 1, num_sizes);
    auto fail = [&](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("profiling ", where, ": ", s.message()));
    };
    progress(absl::StrCat("preparing ", where));
    absl::StatusOr<Shape> shape = InputShapeFor(model, m, imgsz);
    if (!shape.ok()) return fail(shape.status());
    absl::StatusOr<Graph> prepared = PrepareForExecution(model.graph, *shape);
    if (!prepared.ok()) return fail(prepared.status());
    const Graph& g = *prepared;
    if (si == 0) {
      for (int64_t d : *shape) profile.add_input_shape(d);
      if (absl::Status s = FillStructure(g, m, profile); !s.ok()) return fail(s);
    } else if (absl::Status s = CheckSameNodes(g, profile, m); !s.ok()) {
      return fail(s);
    }
    CudaExecutorOptions co;
    co.device = options.device.index;
    co.precision = options.cuda_precision;
    co.use_cuda_graph = false;
    absl::StatusOr<std::unique_ptr<CudaExecutor>> executor = CudaExecutor::Create(g, co);
    if (!executor.ok()) return fail(executor.status());
    const CudaLoweringPlan& plan = (*executor)->plan();
    absl::StatusOr<std::vector<std::vector<int>>> step_nodes = CudaStepNodes(g, plan);
    if (!step_nodes.ok()) return fail(step_nodes.status());

    const size_t num_nodes = g.nodes().size();
    std::vector<std::vector<double>> node_ms(num_nodes);
    std::vector<double> run_ms;
    const Tensor input = SyntheticInput(*shape, 1);
    auto run_once = [&]() -> absl::StatusOr<std::vector<double>> {
      YP_ASSIGN_OR_RETURN(const std::vector<double> step_ms, (*executor)->TimeSteps({input}));
      std::vector<double> sample(num_nodes, 0.0);
      for (size_t s = 0; s < step_ms.size(); ++s) {
        const std::vector<int>& owners = (*step_nodes)[s];
        for (int n : owners) sample[n] += step_ms[s] / static_cast<double>(owners.size());
      }
      return sample;
    };
    if (absl::Status s = TimeRuns(options, where, run_once, node_ms, run_ms); !s.ok()) {
      return fail(s);
    }
    std::vector<uint64_t> output_bytes(num_nodes, 0);
    for (size_t n = 0; n < num_nodes; ++n) {
      for (const std::string& out : g.nodes()[n].outputs) {
        output_bytes[n] += ValueBytes(g, out) / sizeof(float) * element;
      }
    }
    RecordSize(profile, si, m, node_ms, output_bytes, std::vector<uint64_t>(num_nodes, 0), run_ms,
               plan.arena_bytes, plan.weights.size(), (*executor)->workspace_bytes());
  }
  SetTotal(profile);
  return profile;
}

}  // namespace

absl::StatusOr<proto::Profile> ProfileModel(const Model& model, int64_t imgsz,
                                            const ProfilerOptions& options) {
  YP_RETURN_IF_ERROR(ValidateProfilerOptions(options));
  if (model.graph.inputs().size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model.source, "' has ", model.graph.inputs().size(), " inputs (",
                     absl::StrJoin(model.graph.inputs(), ", "),
                     "); the profiler feeds exactly one image batch"));
  }
  if (options.device.kind == DeviceKind::kCuda) return ProfileOnCuda(model, imgsz, options);
  const std::vector<int>& sizes = options.microbatch_sizes;
  const int num_sizes = static_cast<int>(sizes.size());
  auto progress = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };

  proto::Profile profile = NewProfile(model, options);
  for (const DeviceSpec& d : options.load_devices) {
    profile.add_load_devices(absl::StrCat("cpu:", d.index));
  }
  // Under load the profiling thread is pinned like a pipeline stage; its affinity is restored.
  cpu_set_t saved_affinity;
  const bool pinned = !options.load_devices.empty() &&
                      pthread_getaffinity_np(pthread_self(), sizeof(saved_affinity),
                                             &saved_affinity) == 0;
  if (pinned) PinCurrentThread(options.device);
  struct RestoreAffinity {
    bool active;
    cpu_set_t set;
    ~RestoreAffinity() {
      if (active) (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    }
  } restore{pinned, saved_affinity};

  for (int si = 0; si < num_sizes; ++si) {
    const int m = sizes[si];
    const std::string where = absl::StrFormat("micro-batch %d (%d/%d)", m, si + 1, num_sizes);
    auto fail = [&](const absl::Status& s) {
      return absl::Status(s.code(), absl::StrCat("profiling ", where, ": ", s.message()));
    };
    progress(absl::StrCat("preparing ", where));
    absl::StatusOr<Shape> shape = InputShapeFor(model, m, imgsz);
    if (!shape.ok()) return fail(shape.status());
    SessionOptions session_options;
    session_options.device = options.device;
    session_options.record_step_times = true;
    absl::StatusOr<std::unique_ptr<Session>> session =
        Session::Create(model, *shape, session_options);
    if (!session.ok()) return fail(session.status());
    const Graph& g = (*session)->prepared_graph();
    Executor& executor = (*session)->executor();
    const std::vector<ExecutionStep>& steps = executor.steps();
    absl::StatusOr<std::vector<int>> owner = AttributeStepsToNodes(g, steps);
    if (!owner.ok()) return fail(owner.status());
    if (si == 0) {
      for (int64_t d : *shape) profile.add_input_shape(d);
      if (absl::Status s = FillStructure(g, m, profile); !s.ok()) return fail(s);
    } else if (absl::Status s = CheckSameNodes(g, profile, m); !s.ok()) {
      return fail(s);
    }

    // Background load: the same model, same shape, on every load device until this size is done.
    std::vector<std::unique_ptr<Session>> load_sessions;
    for (const DeviceSpec& d : options.load_devices) {
      SessionOptions lo;
      lo.device = d;
      absl::StatusOr<std::unique_ptr<Session>> ls = Session::Create(model, *shape, lo);
      if (!ls.ok()) return fail(ls.status());
      load_sessions.push_back(std::move(*ls));
    }
    // Declared before the joiner below, so it outlives the load threads that read it.
    const Tensor load_input = SyntheticInput(*shape, 2);
    std::atomic<bool> stop_load{false};
    std::vector<std::thread> load_threads;
    struct JoinLoad {
      std::atomic<bool>& stop;
      std::vector<std::thread>& threads;
      ~JoinLoad() {
        stop = true;
        for (std::thread& t : threads) t.join();
      }
    } join_load{stop_load, load_threads};
    for (size_t i = 0; i < load_sessions.size(); ++i) {
      load_threads.emplace_back([&, i] {
        PinCurrentThread(options.load_devices[i]);
        while (!stop_load.load()) {
          if (!load_sessions[i]->Run(load_input).ok()) return;  // load only; errors are moot
        }
      });
    }

    const size_t num_nodes = g.nodes().size();
    std::vector<std::vector<double>> node_ms(num_nodes);
    std::vector<double> run_ms;
    const Tensor input = SyntheticInput(*shape, 1);
    auto run_once = [&]() -> absl::StatusOr<std::vector<double>> {
      YP_RETURN_IF_ERROR((*session)->Run(input).status());
      std::vector<double> sample(num_nodes, 0.0);
      for (size_t s = 0; s < steps.size(); ++s) {
        if (!steps[s].view) sample[(*owner)[s]] += steps[s].last_ms;
      }
      return sample;
    };
    if (absl::Status s = TimeRuns(options, where, run_once, node_ms, run_ms); !s.ok()) {
      return fail(s);
    }

    // The node's own kernel step carries its output and workspace bytes.
    std::vector<uint64_t> output_bytes(num_nodes, 0), workspace_bytes(num_nodes, 0);
    for (size_t s = 0; s < steps.size(); ++s) {
      if (steps[s].op_type == kConversionOp) continue;
      output_bytes[(*owner)[s]] = steps[s].output_bytes;
      workspace_bytes[(*owner)[s]] = steps[s].workspace_bytes;
    }
    RecordSize(profile, si, m, node_ms, output_bytes, workspace_bytes, run_ms,
               executor.arena_bytes(), executor.weight_bytes(), executor.workspace_bytes());
  }

  SetTotal(profile);
  return profile;
}

}  // namespace yolopipe
