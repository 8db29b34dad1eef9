// Profiler: measures what every node of a model's fused graph costs on one device, at several
// micro-batch sizes, and writes it as a proto::Profile (runtime/proto/profile.proto) for the
// planner.
//
// How a node's time is measured: for each micro-batch size m, a Session is prepared for input
// (m, 3, H, W) with per-step timing on; after `warmup` untimed runs, each of `repeats` runs gives
// every node one sample; a node's figure is the minimum and the median of its samples.
//
// Attribution of the executor's steps to nodes (see AttributeStepsToNodes):
//   - a kernel step belongs to its node;
//   - a layout conversion step ("<tensor>:to_nhwc" / "<tensor>:to_plain") belongs to the first
//     node after it that consumes <tensor> (the executor inserts a conversion right before the
//     kernel that first needs it; later consumers reuse the converted copy at no cost);
//   - a conversion that no later node consumes (a graph output converted back to plain at the
//     end) belongs to the node that produces <tensor>;
//   - a zero-copy step (ExecutionStep::view, a reshape that aliases its input) costs 0.
// So the node times add up to the whole run minus the input and output copies of Executor::Run
// (Profile.runs[] has both figures).
#ifndef YOLOPIPE_RUNTIME_PROFILER_PROFILER_H_
#define YOLOPIPE_RUNTIME_PROFILER_PROFILER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "runtime/device.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

struct ProfilerOptions {
  // Images per micro-batch to profile: each >= 1, strictly increasing. The usual choice is
  // DefaultMicrobatchSizes(batch). The first size is the profile's reference (NodeProfile.time_ms
  // and friends).
  std::vector<int> microbatch_sizes = {1};
  int repeats = 5;    // timed runs per size (>= 1); min and median kept
  int warmup = 1;     // untimed runs per size first (>= 0)
  DeviceSpec device;  // CPU: its num_threads is the kernels' thread count; or a CUDA device
  DType cuda_precision = DType::kFloat16;  // CUDA devices: kFloat16 or kFloat32
  // Devices kept busy while profiling: each runs the same model at the same micro-batch size in
  // a loop on its own thread pinned to its cores, and the profiling thread is pinned to
  // `device`'s cores. The timings then include the contention (memory bandwidth, shared caches,
  // SMT siblings) that stages side by side in a pipeline have, which profiling alone misses.
  // Empty: profile alone, unpinned.
  std::vector<DeviceSpec> load_devices;
  // Optional. Called from the profiling thread with one line before each micro-batch size is
  // prepared ("preparing micro-batch 4 (2/3)") and after each run
  // ("profiling micro-batch 4 (2/3): run 3/5, 12.3 ms"; a warm-up run says "warm-up 1/1").
  std::function<void(const std::string&)> progress;
};

// Powers of two below `batch`, then `batch` itself: 6 -> {1, 2, 4, 6}; 8 -> {1, 2, 4, 8}.
// `batch` < 1 gives {1}.
std::vector<int> DefaultMicrobatchSizes(int batch);

// OK, or InvalidArgument saying which option is wrong and its value.
absl::Status ValidateProfilerOptions(const ProfilerOptions& options);

// Profiles `model` at input size `imgsz` (InputShapeFor's rule: <= 0 means the model's own).
// Fills every Profile field: nodes in the prepared graph's execution order (the same at every
// micro-batch size, checked), with inputs/outputs (activation tensors only), weight bytes (its
// constant inputs; a constant two nodes read counts for both), FLOPs (2 x MACs of a Conv), and one
// NodeTiming per size; tensors (every activation: the graph input and every node output);
// the device description; model (model.source) and model_fingerprint (graph/fingerprint.h of the
// unbound model.graph). A CUDA device gives the probe's "no CUDA devices: ..." error without a
// GPU; with one, each size is lowered for the CUDA executor (runtime/cuda/cuda_executor.h, in
// options.cuda_precision, no CUDA graph) and every step is timed with CUDA events: a node's time
// is its own step's, the Detect head's decode kernel is shared evenly by the head's nodes, and
// an input conversion is charged to the first node reading the input (CudaStepNodes). Node
// output bytes are then the activations in that precision, per-node workspace 0 (the run
// records the executor's). load_devices must be empty for a CUDA device. Blocks for the whole
// profile; not safe to run two profiles of one device at once (they would time each other).
absl::StatusOr<proto::Profile> ProfileModel(const Model& model, int64_t imgsz,
                                            const ProfilerOptions& options);

// For each executor step, the index (into prepared.nodes()) of the node its time is charged to,
// by the rule in the file comment. `steps` must be an Executor's steps for `prepared`: one kernel
// step per node in node order (same name and op type), conversions named "<tensor>:to_nhwc" or
// "<tensor>:to_plain"; anything else is an InternalError naming the step.
absl::StatusOr<std::vector<int>> AttributeStepsToNodes(const Graph& prepared,
                                                       const std::vector<ExecutionStep>& steps);

// The device as the profile records it: kind, name ("cpu:0"), threads, and a description with the
// CPU model from /proc/cpuinfo where readable (e.g. "AMD EPYC 7B13; cpu:0 (2 threads, cores 0-1)");
// memory_bytes is the host's physical memory (MemTotal, shared by all CPU devices), 0 if unknown.
proto::DeviceDescription DescribeDevice(const DeviceSpec& device);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PROFILER_PROFILER_H_
