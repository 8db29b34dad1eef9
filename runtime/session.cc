#include "runtime/session.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "graph/prepare.h"

namespace yolopipe {

absl::StatusOr<std::unique_ptr<Session>> Session::Create(const Model& model,
                                                         const Shape& input_shape,
                                                         const SessionOptions& options) {
  if (options.device.kind != DeviceKind::kCpu) {
    return absl::UnimplementedError(
        absl::StrCat("device ", options.device.ToString(), " is not supported yet"));
  }
  auto session = std::unique_ptr<Session>(new Session());
  session->input_shape_ = input_shape;
  YP_ASSIGN_OR_RETURN(session->prepared_, PrepareForExecution(model.graph, input_shape));
  ExecutorOptions exec;
  exec.backend = options.backend;
  exec.num_threads = options.device.num_threads;
  exec.channels_last = options.channels_last;
  exec.record_step_times = options.record_step_times;
  YP_ASSIGN_OR_RETURN(session->executor_, Executor::Create(session->prepared_, exec));
  return session;
}

absl::StatusOr<Tensor> Session::Run(const Tensor& input) {
  if (input.shape() != input_shape_) {
    return absl::InvalidArgumentError(absl::StrCat("input shape ", ShapeToString(input.shape()),
                                                   " differs from the session's ",
                                                   ShapeToString(input_shape_)));
  }
  YP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, executor_->Run({input}));
  if (outputs.empty()) return absl::InternalError("model produced no output");
  return outputs[0];
}

}  // namespace yolopipe
