// Executor: runs a prepared graph (or a stage's subgraph) on one device.
//
// Create() turns the graph into a fixed sequence of steps: one kernel per node, plus layout
// conversions where a channels-last (NHWC) region meets a kernel that needs plain NCHW. All
// intermediate tensors live in one arena laid out by the static memory plan (runtime/memory_plan.h),
// so Run() allocates nothing but the returned outputs.
#ifndef YOLOPIPE_RUNTIME_EXECUTOR_H_
#define YOLOPIPE_RUNTIME_EXECUTOR_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "ops/kernel.h"

namespace yolopipe {

struct ExecutorOptions {
  // kCpu uses oneDNN convolutions and falls back to reference kernels for the other ops;
  // kReference runs the naive oracle kernels only.
  ops::Backend backend = ops::Backend::kCpu;
  // Threads the optimized kernels may use.
  int num_threads = 1;
  // Keep 4-D activations channels-last (NHWC) between kernels that accept it; convert to plain only
  // where another op needs it and at the graph outputs.
  bool channels_last = true;
  // Measure each step's wall time during Run (see steps()).
  bool record_step_times = false;
};

// One step of the execution sequence.
struct ExecutionStep {
  std::string name;     // node name, or "<value>:to_nhwc" / "<value>:to_plain" for conversions
  std::string op_type;  // node op type, or "LayoutConversion"
  ops::Backend backend = ops::Backend::kReference;
  Layout output_layout = Layout::kPlain;
  size_t output_bytes = 0;
  size_t workspace_bytes = 0;
  bool view = false;     // a reshape that aliases its input's bytes: no work at run time
  double last_ms = 0.0;  // wall time of this step in the last Run (record_step_times only)
};

// Thread-safe: Run() may be called from any thread; calls are serialised (one arena).
class Executor {
 public:
  // `graph` must be prepared (graph/prepare.h): every value has a concrete shape and the nodes are
  // topologically sorted. The executor keeps its own copy of what it needs.
  static absl::StatusOr<std::unique_ptr<Executor>> Create(const Graph& graph,
                                                          const ExecutorOptions& options);
  ~Executor();

  // `inputs`: one tensor per graph input, in graph order, with exactly the bound dtype and shape
  // (any layout). Returns one plain-layout tensor per graph output, owned by the caller.
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs);

  const std::vector<ExecutionStep>& steps() const { return steps_; }
  // Bytes of the activation arena (peak, after reuse) and without reuse.
  size_t arena_bytes() const { return arena_bytes_; }
  size_t unplanned_activation_bytes() const { return unplanned_bytes_; }
  size_t weight_bytes() const { return weight_bytes_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }

 private:
  struct Slot;
  struct Step;
  Executor() = default;

  ExecutorOptions options_;
  std::vector<Slot> slots_;
  std::vector<Step> exec_steps_;
  std::vector<ExecutionStep> steps_;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<std::string> input_names_;
  std::vector<std::string> output_names_;
  std::shared_ptr<Buffer> arena_;
  std::shared_ptr<Buffer> workspace_;
  size_t arena_bytes_ = 0;
  size_t unplanned_bytes_ = 0;
  size_t weight_bytes_ = 0;
  size_t workspace_bytes_ = 0;
  std::mutex mu_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_EXECUTOR_H_
