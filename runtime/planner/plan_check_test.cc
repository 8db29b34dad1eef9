#include "runtime/planner/plan_check.h"

#include <functional>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/planner/planner.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

// A chain of 6 nodes with one skip, planned into 3 stages x 2 replicas: a real plan to mutate.
proto::Plan MakePlan() {
  proto::Profile profile;
  profile.set_model("yolov8x");
  profile.set_model_fingerprint("fp-x");
  auto* in = profile.add_tensors();
  in->set_name("in");
  in->set_bytes_per_image(1000);
  for (int i = 0; i < 6; ++i) {
    auto* node = profile.add_nodes();
    node->set_name("n" + std::to_string(i));
    node->add_inputs(i == 0 ? "in" : "t" + std::to_string(i - 1));
    if (i == 5) node->add_inputs("t1");
    node->add_outputs("t" + std::to_string(i));
    node->set_time_ms(1 + i % 2);
    auto* t = profile.add_tensors();
    t->set_name("t" + std::to_string(i));
    t->set_bytes_per_image(1000);
  }
  PlannerOptions options;
  options.num_stages = 3;
  options.replicas = 2;
  options.batch = 2;
  auto plan = PlanPipeline(profile, options);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return *plan;
}

TEST(PlanCheckTest, AcceptsTheRightModel) {
  const proto::Plan plan = MakePlan();
  EXPECT_TRUE(CheckPlanMatchesModel(plan, "fp-x").ok());
}

TEST(PlanCheckTest, RefusesAnotherModel) {
  const proto::Plan plan = MakePlan();
  absl::Status status = CheckPlanMatchesModel(plan, "fp-n");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "plan was made for model fp-x (yolov8x), this model is fp-n");
  proto::Plan anonymous = plan;
  anonymous.clear_model_fingerprint();
  status = CheckPlanMatchesModel(anonymous, "fp-x");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("carries no model fingerprint"));
}

TEST(PlanCheckTest, AcceptsAPlannedPlan) {
  const proto::Plan plan = MakePlan();
  ASSERT_EQ(plan.stages_size(), 6);
  ASSERT_GT(plan.transfers_size(), 0);
  EXPECT_TRUE(ValidatePlan(plan).ok()) << ValidatePlan(plan);
}

TEST(PlanCheckTest, RejectsInconsistentPlans) {
  const proto::Plan good = MakePlan();
  auto fails = [&](const std::function<void(proto::Plan&)>& mutate, const std::string& text) {
    proto::Plan plan = good;
    mutate(plan);
    absl::Status status = ValidatePlan(plan);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(status.message(), HasSubstr(text));
  };
  fails([](proto::Plan& p) { p.set_num_stages(0); }, "num_stages is 0");
  fails([](proto::Plan& p) { p.set_replicas(0); }, "replicas is 0");
  fails([](proto::Plan& p) { p.set_num_stages(7); }, "6 nodes in node_order for 7 stages");
  fails([](proto::Plan& p) { p.set_node_order(1, p.node_order(0)); }, "appears twice");
  fails([](proto::Plan& p) { p.set_microbatch(0); }, "microbatch is 0");
  fails([](proto::Plan& p) { p.set_num_microbatches(0); }, "num_microbatches is 0");
  fails([](proto::Plan& p) { p.set_batch(-1); }, "batch is -1");
  fails([](proto::Plan& p) { p.mutable_stages()->RemoveLast(); }, "5 stages for 3 stages x 2");
  fails([](proto::Plan& p) { p.mutable_stages(1)->set_index(2); }, "says replica 0, stage 2");
  fails([](proto::Plan& p) { p.mutable_stages(3)->set_replica(0); }, "says replica 0, stage 0");
  fails([](proto::Plan& p) { p.mutable_stages(1)->set_first_node(p.stages(1).first_node() + 1); },
        "expected a range starting at");
  fails([](proto::Plan& p) { p.mutable_stages(2)->set_last_node(4); }, "not the last node 5");
  fails(
      [](proto::Plan& p) {
        // Replica 1 cut elsewhere (consistently within itself).
        proto::StagePlan* a = p.mutable_stages(3);
        proto::StagePlan* b = p.mutable_stages(4);
        if (a->last_node() + 1 < b->last_node()) {
          b->set_first_node(b->first_node() + 1);
          b->mutable_nodes()->erase(b->mutable_nodes()->begin());
          a->add_nodes(p.node_order(a->last_node() + 1));
          a->set_last_node(a->last_node() + 1);
        } else {
          a->set_last_node(a->last_node() - 1);
          a->mutable_nodes()->RemoveLast();
          b->set_first_node(b->first_node() - 1);
          b->mutable_nodes()->Add();
          for (int i = b->nodes_size() - 1; i > 0; --i) b->set_nodes(i, b->nodes(i - 1));
          b->set_nodes(0, p.node_order(b->first_node()));
        }
      },
      "covers other nodes than replica 0's stage 0");
  fails([](proto::Plan& p) { p.mutable_stages(0)->add_nodes("extra"); }, "lists");
  fails([](proto::Plan& p) { p.mutable_stages(0)->set_nodes(0, "zz"); },
        "lists node 'zz' where node_order has");
  fails([](proto::Plan& p) { p.mutable_stages(0)->set_compute_ms(-1); }, "negative or non-finite");
  fails([](proto::Plan& p) { p.mutable_stages(0)->set_speed_factor(0); }, "speed factor 0");
  fails([](proto::Plan& p) { p.mutable_transfers(0)->set_from_stage(3); }, "transfer of");
  fails([](proto::Plan& p) { p.mutable_transfers(0)->set_to_stages(0, 0); },
        "destinations must be later stages");
  fails([](proto::Plan& p) { p.mutable_link()->set_bandwidth_gbps(0); }, "has bandwidth 0");
  fails([](proto::Plan& p) { p.set_bubble_fraction(1.5); }, "bubble fraction");
}

}  // namespace
}  // namespace yolopipe
