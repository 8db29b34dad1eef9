#include "runtime/planner/cut_model.h"

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/planner/synthetic_profile.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Builds a profile from "name: inputs -> outputs" lines; every tensor has `bytes` bytes.
struct Spec {
  std::string name;
  std::vector<std::string> inputs, outputs;
};

proto::Profile MakeProfile(const std::vector<Spec>& nodes, const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs, uint64_t bytes = 100) {
  proto::Profile profile;
  std::set<std::string> listed;
  auto tensor = [&](const std::string& name, const std::string& producer) {
    if (!listed.insert(name).second) return;
    proto::TensorProfile* t = profile.add_tensors();
    t->set_name(name);
    t->set_producer(producer);
    t->set_bytes_per_image(bytes);
  };
  for (const std::string& in : inputs) tensor(in, "");
  for (const Spec& spec : nodes) {
    proto::NodeProfile* node = profile.add_nodes();
    node->set_name(spec.name);
    for (const std::string& in : spec.inputs) node->add_inputs(in);
    for (const std::string& out : spec.outputs) {
      node->add_outputs(out);
      tensor(out, spec.name);
    }
  }
  for (const std::string& out : outputs) profile.add_output_tensors(out);
  return profile;
}

std::vector<std::string> Names(const CutModel& model, const std::vector<int>& ids) {
  std::vector<std::string> names;
  for (int id : ids) names.push_back(model.tensors()[id].name);
  return names;
}

std::vector<std::string> OrderNames(const proto::Profile& profile, const CutModel& model) {
  std::vector<std::string> names;
  for (int i : model.order()) names.push_back(profile.nodes(i).name());
  return names;
}

TEST(CutModelTest, CrossingSetsWithASkip) {
  // A -> B -> C -> D, and D also reads A's output: ta crosses every cut up to D.
  const proto::Profile profile = MakeProfile({{"A", {"in"}, {"ta"}},
                                              {"B", {"ta"}, {"tb"}},
                                              {"C", {"tb"}, {"tc"}},
                                              {"D", {"ta", "tc"}, {"td"}}},
                                             {"in"}, {"td"});
  auto model = CutModel::Build(profile);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->num_nodes(), 4);
  EXPECT_THAT(OrderNames(profile, *model), ElementsAre("A", "B", "C", "D"));
  EXPECT_TRUE(model->crossing(0).empty());  // the graph input comes from the host
  EXPECT_THAT(Names(*model, model->crossing(1)), ElementsAre("ta"));
  EXPECT_THAT(Names(*model, model->crossing(2)), ElementsAre("ta", "tb"));
  EXPECT_THAT(Names(*model, model->crossing(3)), ElementsAre("ta", "tc"));
  EXPECT_TRUE(model->crossing(4).empty());  // td goes to the host
  EXPECT_EQ(model->crossing_bytes_per_image(2), 200u);
  const CutSetStats stats = model->stats();
  EXPECT_EQ(stats.max_tensors, 2);
  EXPECT_DOUBLE_EQ(stats.mean_tensors, 5.0 / 3);
  EXPECT_EQ(stats.max_bytes, 200u);
  // Tensors: producer and reader positions.
  for (const CutTensor& t : model->tensors()) {
    if (t.name == "ta") {
      EXPECT_EQ(t.producer, 0);
      EXPECT_THAT(t.consumers, ElementsAre(1, 3));
    }
    if (t.name == "in") {
      EXPECT_EQ(t.producer, -1);
      EXPECT_THAT(t.consumers, ElementsAre(0));
    }
    if (t.name == "td") EXPECT_TRUE(t.graph_output);
  }
  EXPECT_THAT(Names(*model, model->consumed(3)), ElementsAre("ta", "tc"));
  EXPECT_THAT(Names(*model, model->produced(3)), ElementsAre("td"));
}

TEST(CutModelTest, ProfileOrderIsMadeTopological) {
  // Listed out of order: the profile order keeps the listing where it can (ties by index).
  const proto::Profile profile = MakeProfile(
      {{"D", {"tc"}, {"td"}}, {"A", {"in"}, {"ta"}}, {"C", {"tb"}, {"tc"}}, {"B", {"ta"}, {"tb"}}},
      {"in"}, {"td"});
  auto model = CutModel::Build(profile, NodeOrder::kProfile);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_THAT(OrderNames(profile, *model), ElementsAre("A", "B", "C", "D"));
  EXPECT_EQ(model->position_of(0), 3);  // D
  EXPECT_EQ(model->order_kind(), NodeOrder::kProfile);
}

TEST(CutModelTest, MinLiveOrderFinishesABranchBeforeStartingAnother) {
  // Two independent branches interleaved in the profile: the greedy order finishes one first
  // and keeps fewer tensors alive.
  const proto::Profile profile = MakeProfile({{"A", {"in"}, {"a"}},
                                              {"X", {"in"}, {"x"}},
                                              {"B", {"a"}, {"b"}},
                                              {"Y", {"x"}, {"y"}},
                                              {"J", {"b", "y"}, {"out"}}},
                                             {"in"}, {"out"});
  auto as_listed = CutModel::Build(profile, NodeOrder::kProfile);
  auto greedy = CutModel::Build(profile, NodeOrder::kMinLive);
  auto best = CutModel::Build(profile);
  ASSERT_TRUE(as_listed.ok() && greedy.ok() && best.ok());
  EXPECT_THAT(OrderNames(profile, *as_listed), ElementsAre("A", "X", "B", "Y", "J"));
  EXPECT_THAT(OrderNames(profile, *greedy), ElementsAre("A", "B", "X", "Y", "J"));
  // Cut sets: listed {a}, {a, x}, {x, b}, {b, y}; greedy {a}, {b}, {b, x}, {b, y}.
  EXPECT_DOUBLE_EQ(as_listed->stats().mean_tensors, 7.0 / 4);
  EXPECT_DOUBLE_EQ(greedy->stats().mean_tensors, 6.0 / 4);
  EXPECT_EQ(best->order_kind(), NodeOrder::kMinLive);
  EXPECT_THAT(OrderNames(profile, *best), ElementsAre("A", "B", "X", "Y", "J"));
  EXPECT_DOUBLE_EQ(best->profile_order_stats().mean_tensors, 7.0 / 4);
  EXPECT_DOUBLE_EQ(best->min_live_order_stats().mean_tensors, 6.0 / 4);
}

TEST(CutModelTest, KeepsTheProfileOrderWhenItIsAsGood) {
  const proto::Profile profile =
      MakeProfile({{"A", {"in"}, {"a"}}, {"B", {"a"}, {"b"}}, {"C", {"b"}, {"c"}}}, {"in"}, {"c"});
  auto model = CutModel::Build(profile);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->order_kind(), NodeOrder::kProfile);
}

TEST(CutModelTest, RejectsMalformedProfiles) {
  auto fails = [](const proto::Profile& profile, const std::string& text) {
    auto model = CutModel::Build(profile);
    ASSERT_FALSE(model.ok()) << text;
    EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(model.status().message(), HasSubstr(text));
  };
  fails(proto::Profile(), "the profile has no nodes");
  fails(MakeProfile({{"A", {"in"}, {"a"}}, {"A", {"a"}, {"b"}}}, {"in"}, {"b"}),
        "the profile lists node 'A' twice");
  proto::Profile unnamed = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  unnamed.mutable_nodes(0)->clear_name();
  fails(unnamed, "profile node #0 has no name");
  proto::Profile duplicate_tensor = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  *duplicate_tensor.add_tensors() = duplicate_tensor.tensors(1);
  fails(duplicate_tensor, "the profile lists tensor 'a' twice");
  proto::Profile missing = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  missing.mutable_nodes(0)->add_outputs("ghost");
  fails(missing, "output 'ghost' of node 'A' is not among the profile's tensors");
  fails(MakeProfile({{"A", {"in"}, {"a"}}, {"B", {"in"}, {"a"}}}, {"in"}, {"a"}),
        "tensor 'a' is produced by both 'A' and 'B'");
  proto::Profile unknown = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  unknown.mutable_nodes(0)->add_inputs("nowhere");
  fails(unknown, "node 'A' reads 'nowhere', which no node produces");
  fails(MakeProfile({{"A", {"in", "b"}, {"a"}}, {"B", {"a"}, {"b"}}}, {"in"}, {"b"}),
        "the profile's graph has a cycle through node 'A'");
  proto::Profile wrong_producer = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  wrong_producer.mutable_tensors(1)->set_producer("Z");
  fails(wrong_producer, "tensor 'a' names producer 'Z', but it is produced by 'A'");
  proto::Profile orphan = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"a"});
  orphan.mutable_tensors(0)->set_producer("A");
  fails(orphan, "tensor 'in' names producer 'A', but no node produces it");
  proto::Profile bad_output = MakeProfile({{"A", {"in"}, {"a"}}}, {"in"}, {"zz"});
  fails(bad_output, "the profile's output tensor 'zz' is not among its tensors");
}

TEST(CutModelTest, YoloV8nOrders) {
  auto profile = SyntheticYoloV8Profile('n', 640, {});
  ASSERT_TRUE(profile.ok()) << profile.status();
  auto as_listed = CutModel::Build(*profile, NodeOrder::kProfile);
  auto greedy = CutModel::Build(*profile, NodeOrder::kMinLive);
  auto best = CutModel::Build(*profile);
  ASSERT_TRUE(as_listed.ok() && greedy.ok() && best.ok());
  ASSERT_EQ(best->num_nodes(), profile->nodes_size());
  for (const CutModel* model : {&*as_listed, &*greedy}) {
    // Topological: every input comes from the graph input or an earlier position.
    for (const CutTensor& t : model->tensors()) {
      for (int c : t.consumers) EXPECT_LT(t.producer, c) << t.name;
    }
  }
  const CutSetStats p = best->profile_order_stats(), g = best->min_live_order_stats();
  std::printf(
      "yolov8n (%d nodes) cut sets: profile order max %d mean %.3f (mean %.2f MB); "
      "min-live order max %d mean %.3f (mean %.2f MB); kept %s\n",
      best->num_nodes(), p.max_tensors, p.mean_tensors, p.mean_bytes / 1e6, g.max_tensors,
      g.mean_tensors, g.mean_bytes / 1e6, NodeOrderName(best->order_kind()));
  const CutSetStats kept = best->stats();
  EXPECT_LE(kept.max_tensors, std::min(p.max_tensors, g.max_tensors));
  EXPECT_LE(kept.mean_tensors, std::max(p.mean_tensors, g.mean_tensors));
  // YOLOv8's neck reuses P3 and P4: just after the backbone (SPPF, model.9), their tensors
  // cross the cut together with SPPF's output.
  std::map<std::string, int> position;
  for (int p = 0; p < best->num_nodes(); ++p) position[profile->nodes(best->order()[p]).name()] = p;
  const int after_sppf = position.at("model.9.cv2") + 1;
  std::set<std::string> producers;
  for (int t : best->crossing(after_sppf)) {
    producers.insert(profile->nodes(best->order()[best->tensors()[t].producer]).name());
  }
  EXPECT_EQ(producers, (std::set<std::string>{"model.4.cv2", "model.6.cv2", "model.9.cv2"}));
}

}  // namespace
}  // namespace yolopipe
