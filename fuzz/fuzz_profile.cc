// Fuzz target: Profile (and LinkProfile) artifacts as `yolopipe plan` reads them: ParseArtifact
// in each format, then what the CLI does before trusting the profile: the planner's profile
// validation (CutModel::Build, inside PlanPipeline) and a plan with the CLI's defaults (2 stages,
// 1 replica, the smallest batch that covers a profiled micro-batch size). A LinkProfile goes
// through LinkFromProfile, as `plan --link FILE` does.
#include <algorithm>

#include "absl/status/status.h"
#include "fuzz/artifact_formats.h"
#include "fuzz/fuzz_target.h"
#include "runtime/planner/link_model.h"
#include "runtime/planner/planner.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe::fuzz {
namespace {

absl::Status PlanFromProfile(const proto::Profile& profile) {
  PlannerOptions options;  // the CLI's defaults: --stages 2 --replicas 1 --batch 1
  options.num_stages = 2;
  options.replicas = 1;
  options.batch = 1;
  // A profile without micro-batch size 1 would stop at "none <= 1 images per replica"; use its
  // smallest size (bounded, so a fuzzed size cannot make the search large) to reach the search.
  int smallest = 0;
  for (int size : profile.microbatch_sizes()) {
    if (size >= 1 && (smallest == 0 || size < smallest)) smallest = size;
  }
  if (smallest > 1 && smallest <= 64) options.batch = smallest;
  absl::StatusOr<proto::Plan> plan = PlanPipeline(profile, options);
  if (!plan.ok()) return plan.status();
  FormatPlanTable(*plan);
  return absl::OkStatus();
}

}  // namespace

absl::Status FuzzOne(const std::string& bytes) {
  absl::Status link = ParseInEveryFormat<proto::LinkProfile>(
      bytes, [](const proto::LinkProfile& p) { return LinkFromProfile(p).status(); });
  (void)link;  // the seeds are Profiles; a LinkProfile is only explored
  return ParseInEveryFormat<proto::Profile>(bytes, PlanFromProfile);
}

}  // namespace yolopipe::fuzz
