// Session: one model prepared for one input shape, running on one device (mode `single`).
// The pipeline, data-parallel and hybrid modes build on the same pieces.
#ifndef YOLOPIPE_RUNTIME_SESSION_H_
#define YOLOPIPE_RUNTIME_SESSION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "runtime/device.h"
#include "runtime/executor.h"
#include "runtime/model.h"

namespace yolopipe {

struct SessionOptions {
  DeviceSpec device;  // a CPU device; its num_threads is the executor's thread count
  ops::Backend backend = ops::Backend::kCpu;
  bool channels_last = true;
  bool record_step_times = false;
};

// Thread-safe (Run is serialised by the executor).
class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(const Model& model,
                                                         const Shape& input_shape,
                                                         const SessionOptions& options);
  // `input` must have exactly input_shape(); returns the model's first output.
  absl::StatusOr<Tensor> Run(const Tensor& input);

  const Shape& input_shape() const { return input_shape_; }
  const Graph& prepared_graph() const { return prepared_; }
  Executor& executor() { return *executor_; }

 private:
  Shape input_shape_;
  Graph prepared_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_SESSION_H_
