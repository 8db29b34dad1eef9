// Fuzz target: Plan artifacts as `yolopipe simulate` and the pipeline modes (--plan) read them:
// ParseArtifact in each format, ValidatePlan (what the pipeline checks before running a plan),
// and, independently (`yolopipe simulate` does not call ValidatePlan; the simulator checks the
// plan itself), the simulations `yolopipe simulate` runs with its defaults: the plan's batch
// (the CLI refuses a batch < 1 first) and buffers, the finite batch, then the steady state in
// both stream orders.
#include "absl/status/status.h"
#include "base/status_macros.h"
#include "fuzz/artifact_formats.h"
#include "fuzz/fuzz_target.h"
#include "runtime/planner/plan_check.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/simulator/simulator.h"

namespace yolopipe::fuzz {
namespace {

absl::Status SimulateAsTheCliDoes(const proto::Plan& plan) {
  if (plan.batch() < 1) return absl::InvalidArgumentError("no batch");
  SimulationOptions options;  // batch 0, buffers 0: the plan's own
  YP_RETURN_IF_ERROR(Simulate(plan, options).status());
  options.open_stream = true;
  YP_RETURN_IF_ERROR(Simulate(plan, options).status());
  options.stream_order = StreamOrder::kInOrder;
  return Simulate(plan, options).status();
}

absl::Status CheckAndSimulate(const proto::Plan& plan) {
  const absl::Status valid = ValidatePlan(plan);
  const absl::Status simulated = SimulateAsTheCliDoes(plan);
  return valid.ok() ? simulated : valid;
}

}  // namespace

absl::Status FuzzOne(const std::string& bytes) {
  return ParseInEveryFormat<proto::Plan>(bytes, CheckAndSimulate);
}

}  // namespace yolopipe::fuzz
