// Checks a Plan before anything runs it: that it was made for this model, and that it is
// internally consistent (a plan read from a file may be hand-edited or corrupt). Pure functions.
#ifndef YOLOPIPE_RUNTIME_PLANNER_PLAN_CHECK_H_
#define YOLOPIPE_RUNTIME_PLANNER_PLAN_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "runtime/proto/plan.pb.h"

namespace yolopipe {

// OK when the plan's model_fingerprint equals `fingerprint` (the fused graph's fingerprint of
// the model about to run). FailedPrecondition otherwise: "plan was made for model <fp1>
// (yolov8x), this model is <fp2>"; also when the plan carries no fingerprint.
absl::Status CheckPlanMatchesModel(const proto::Plan& plan, const std::string& fingerprint);

// InvalidArgument naming the first inconsistency: num_stages or replicas < 1; stages not
// num_stages x replicas entries, replica-major with index 0..K-1; node ranges that do not tile
// node_order contiguously from 0 to its end, or differ between replicas; stage nodes other than
// the node_order slice they claim; duplicate node names; batch, microbatch or num_microbatches
// < 1; negative or non-finite times or speed factors <= 0; transfers whose stages are out of
// range or not later than the sender; a link with bandwidth <= 0.
absl::Status ValidatePlan(const proto::Plan& plan);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PLANNER_PLAN_CHECK_H_
