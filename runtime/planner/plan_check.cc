#include "runtime/planner/plan_check.h"

#include <cmath>
#include <set>

#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

absl::Status Bad(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid plan: ", what));
}

bool NonNegative(double v) { return std::isfinite(v) && v >= 0; }

}  // namespace

absl::Status CheckPlanMatchesModel(const proto::Plan& plan, const std::string& fingerprint) {
  const std::string name = plan.model().empty() ? "" : absl::StrCat(" (", plan.model(), ")");
  if (plan.model_fingerprint().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("plan", name, " carries no model fingerprint; this model is ", fingerprint,
                     " (make the plan from a profile of this model)"));
  }
  if (plan.model_fingerprint() != fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat("plan was made for model ",
                                                      plan.model_fingerprint(), name,
                                                      ", this model is ", fingerprint));
  }
  return absl::OkStatus();
}

absl::Status ValidatePlan(const proto::Plan& plan) {
  const int k = plan.num_stages(), r = plan.replicas();
  if (k < 1) return Bad(absl::StrCat("num_stages is ", k));
  if (r < 1) return Bad(absl::StrCat("replicas is ", r));
  const int n = plan.node_order_size();
  if (n < k) return Bad(absl::StrCat(n, " nodes in node_order for ", k, " stages"));
  std::set<std::string> names;
  for (const std::string& name : plan.node_order()) {
    if (!names.insert(name).second) return Bad(absl::StrCat("node '", name, "' appears twice"));
  }
  if (plan.batch() < 1) return Bad(absl::StrCat("batch is ", plan.batch()));
  if (plan.microbatch() < 1) return Bad(absl::StrCat("microbatch is ", plan.microbatch()));
  if (plan.num_microbatches() < 1) {
    return Bad(absl::StrCat("num_microbatches is ", plan.num_microbatches()));
  }
  if (plan.stages_size() != k * r) {
    return Bad(absl::StrCat(plan.stages_size(), " stages for ", k, " stages x ", r, " replicas"));
  }
  for (int i = 0; i < plan.stages_size(); ++i) {
    const proto::StagePlan& s = plan.stages(i);
    const int rep = i / k, index = i % k;
    const std::string where =
        absl::StrCat("stage entry ", i, " (replica ", rep, ", stage ", index, ")");
    if (s.index() != index || s.replica() != rep) {
      return Bad(absl::StrCat(where, " says replica ", s.replica(), ", stage ", s.index()));
    }
    const int expected_first = index == 0 ? 0 : plan.stages(i - 1).last_node() + 1;
    if (s.first_node() != expected_first || s.last_node() < s.first_node() || s.last_node() >= n) {
      return Bad(absl::StrCat(where, " covers nodes ", s.first_node(), "-", s.last_node(),
                              "; expected a range starting at ", expected_first, " within 0-",
                              n - 1));
    }
    if (index == k - 1 && s.last_node() != n - 1) {
      return Bad(
          absl::StrCat(where, " ends at node ", s.last_node(), ", not the last node ", n - 1));
    }
    if (rep > 0 && (s.first_node() != plan.stages(index).first_node() ||
                    s.last_node() != plan.stages(index).last_node())) {
      return Bad(absl::StrCat(where, " covers other nodes than replica 0's stage ", index));
    }
    if (s.nodes_size() != s.last_node() - s.first_node() + 1) {
      return Bad(absl::StrCat(where, " lists ", s.nodes_size(), " nodes for the range ",
                              s.first_node(), "-", s.last_node()));
    }
    for (int j = 0; j < s.nodes_size(); ++j) {
      if (s.nodes(j) != plan.node_order(s.first_node() + j)) {
        return Bad(absl::StrCat(where, " lists node '", s.nodes(j), "' where node_order has '",
                                plan.node_order(s.first_node() + j), "'"));
      }
    }
    if (!NonNegative(s.compute_ms()) || !NonNegative(s.send_ms()) || !NonNegative(s.recv_ms())) {
      return Bad(absl::StrCat(where, " has a negative or non-finite time"));
    }
    if (!std::isfinite(s.speed_factor()) || s.speed_factor() <= 0) {
      return Bad(absl::StrCat(where, " has speed factor ", s.speed_factor()));
    }
  }
  for (const proto::Transfer& t : plan.transfers()) {
    if (t.from_stage() < 0 || t.from_stage() >= k || t.to_stages_size() == 0) {
      return Bad(absl::StrCat("transfer of '", t.tensor(), "' from stage ", t.from_stage(), " to ",
                              t.to_stages_size(), " stages"));
    }
    int previous = t.from_stage();
    for (int to : t.to_stages()) {
      if (to <= previous || to >= k) {
        return Bad(absl::StrCat("transfer of '", t.tensor(), "' from stage ", t.from_stage(),
                                " to stage ", to,
                                " (destinations must be later stages, "
                                "ascending, < ",
                                k, ")"));
      }
      previous = to;
    }
  }
  if (!std::isfinite(plan.link().bandwidth_gbps()) || plan.link().bandwidth_gbps() <= 0 ||
      !NonNegative(plan.link().latency_us())) {
    return Bad(absl::StrCat("link '", plan.link().name(), "' has bandwidth ",
                            plan.link().bandwidth_gbps(), " GB/s, latency ",
                            plan.link().latency_us(), " us"));
  }
  if (!NonNegative(plan.predicted_throughput()) || !NonNegative(plan.bottleneck_ms()) ||
      !NonNegative(plan.bubble_fraction()) || plan.bubble_fraction() >= 1) {
    return Bad("predictions are negative, non-finite or the bubble fraction is not in [0, 1)");
  }
  return absl::OkStatus();
}

}  // namespace yolopipe
