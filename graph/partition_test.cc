#include "graph/partition.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "graph/prepare.h"
#include "graph/yolov8/yolov8.h"
#include "gtest/gtest.h"
#include "ops/kernel.h"
#include "runtime/executor.h"
#include "runtime/model.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using StageLists = std::vector<std::vector<std::string>>;

// ---------------------------------------------------------------------------------------------
// Helpers

// Splits the graph's node order at the given node indices (ascending, each in (0, N)).
StageLists Contiguous(const Graph& g, const std::vector<int>& cuts) {
  StageLists lists(cuts.size() + 1);
  size_t stage = 0;
  for (size_t i = 0; i < g.nodes().size(); ++i) {
    while (stage < cuts.size() && static_cast<int>(i) >= cuts[stage]) ++stage;
    lists[stage].push_back(g.nodes()[i].name);
  }
  return lists;
}

// "model.12.cv1" -> 12; -1 when the name has no layer number.
int LayerOf(const std::string& name) {
  if (name.rfind("model.", 0) != 0) return -1;
  const char* begin = name.c_str() + 6;
  char* end = nullptr;
  long layer = std::strtol(begin, &end, 10);
  if (end == begin || (*end != '.' && *end != '\0')) return -1;
  return static_cast<int>(layer);
}

// Stages by layer: stage s holds layers [first_layers[s], first_layers[s+1]).
StageLists ByLayers(const Graph& g, const std::vector<int>& first_layers) {
  StageLists lists(first_layers.size());
  for (const Node& node : g.nodes()) {
    const int layer = LayerOf(node.name);
    size_t s = 0;
    while (s + 1 < first_layers.size() && layer >= first_layers[s + 1]) ++s;
    lists[s].push_back(node.name);
  }
  return lists;
}

// (tensor, from stage, to stage); -1 is the host.
using Edge = std::tuple<std::string, int, int>;

// The transfers a split needs, worked out directly from the prepared graph.
std::set<Edge> ExpectedEdges(const Graph& g, const StageLists& lists) {
  std::map<std::string, int> stage_of_node;
  for (size_t s = 0; s < lists.size(); ++s) {
    for (const std::string& n : lists[s]) stage_of_node[n] = static_cast<int>(s);
  }
  std::map<std::string, int> stage_of_tensor;
  for (const std::string& in : g.inputs()) stage_of_tensor[in] = -1;
  for (const Node& node : g.nodes()) {
    for (const std::string& out : node.outputs) stage_of_tensor[out] = stage_of_node[node.name];
  }
  std::set<Edge> edges;
  for (const Node& node : g.nodes()) {
    const int to = stage_of_node[node.name];
    for (const std::string& in : node.inputs) {
      auto it = stage_of_tensor.find(in);
      if (it == stage_of_tensor.end() || it->second == to) continue;  // initializer / internal
      edges.insert({in, it->second, to});
    }
  }
  for (const std::string& out : g.outputs()) edges.insert({out, stage_of_tensor[out], -1});
  return edges;
}

// Checks the partition's structure against the graph: sends and receives, values, metadata.
void CheckStructure(const Graph& prepared, const StageLists& lists,
                    const std::vector<StageGraph>& stages) {
  ASSERT_EQ(stages.size(), lists.size());
  std::set<Edge> sent, received;
  size_t total_nodes = 0;
  for (size_t s = 0; s < stages.size(); ++s) {
    const StageGraph& st = stages[s];
    SCOPED_TRACE(absl::StrCat("stage ", s));
    EXPECT_EQ(st.stage, static_cast<int>(s));
    EXPECT_TRUE(st.graph.Validate().ok()) << st.graph.Validate();
    EXPECT_EQ(st.graph.metadata(), prepared.metadata());
    total_nodes += st.graph.nodes().size();
    EXPECT_EQ(st.graph.nodes().size(), lists[s].size());
    // Nodes keep the prepared (topological) order.
    int last_index = -1;
    for (const Node& node : st.graph.nodes()) {
      const int index = prepared.FindNode(node.name);
      ASSERT_GE(index, 0) << node.name;
      EXPECT_GT(index, last_index) << node.name;
      last_index = index;
    }
    // Every tensor the stage uses carries the prepared dtype and shape.
    for (const Node& node : st.graph.nodes()) {
      std::vector<std::string> tensors = node.inputs;
      tensors.insert(tensors.end(), node.outputs.begin(), node.outputs.end());
      for (const std::string& t : tensors) {
        if (t.empty()) continue;
        const Value* v = st.graph.FindValue(t);
        ASSERT_NE(v, nullptr) << t;
        EXPECT_EQ(v->dtype, prepared.FindValue(t)->dtype) << t;
        EXPECT_EQ(v->shape, prepared.FindValue(t)->shape) << t;
      }
    }
    // Only the initializers the stage reads.
    for (const auto& [name, tensor] : st.graph.initializers()) {
      bool read = false;
      for (const Node& node : st.graph.nodes()) {
        for (const std::string& in : node.inputs) read |= in == name;
      }
      EXPECT_TRUE(read) << name;
    }
    // Graph inputs/outputs are the receives/sends, each once.
    std::vector<std::string> receive_names, send_names;
    for (const auto& r : st.receives) {
      receive_names.push_back(r.tensor);
      received.insert({r.tensor, r.from_stage, static_cast<int>(s)});
    }
    for (const auto& snd : st.sends) {
      send_names.push_back(snd.tensor);
      EXPECT_TRUE(std::is_sorted(snd.to_stages.begin(), snd.to_stages.end() -
                                 (snd.to_stages.back() == -1 ? 1 : 0)));
      for (int t : snd.to_stages) {
        EXPECT_TRUE(t == -1 || t > static_cast<int>(s)) << snd.tensor << " to " << t;
        sent.insert({snd.tensor, static_cast<int>(s), t});
      }
    }
    EXPECT_EQ(st.graph.inputs(), receive_names);
    EXPECT_EQ(st.graph.outputs(), send_names);
    EXPECT_EQ(std::set<std::string>(receive_names.begin(), receive_names.end()).size(),
              receive_names.size());
    EXPECT_EQ(std::set<std::string>(send_names.begin(), send_names.end()).size(),
              send_names.size());
  }
  EXPECT_EQ(total_nodes, prepared.nodes().size());

  const std::set<Edge> expected = ExpectedEdges(prepared, lists);
  std::set<Edge> expected_sent, expected_received;
  for (const Edge& e : expected) {
    if (std::get<1>(e) >= 0) expected_sent.insert(e);  // host inputs are not sent by a stage
    if (std::get<2>(e) >= 0) expected_received.insert(e);
  }
  EXPECT_EQ(sent, expected_sent);
  EXPECT_EQ(received, expected_received);
}

// Runs the stages in sequence, passing tensors by name; returns the model outputs.
absl::StatusOr<std::vector<Tensor>> RunStages(const Graph& prepared,
                                              const std::vector<StageGraph>& stages,
                                              const Tensor& input) {
  std::map<std::string, Tensor> available;
  available[prepared.inputs()[0]] = input;
  for (const StageGraph& st : stages) {
    ExecutorOptions options;
    options.backend = ops::Backend::kCpu;
    absl::StatusOr<std::unique_ptr<Executor>> exec = Executor::Create(st.graph, options);
    if (!exec.ok()) return exec.status();
    std::vector<Tensor> inputs;
    for (const std::string& name : st.graph.inputs()) {
      auto it = available.find(name);
      if (it == available.end()) {
        return absl::InternalError(absl::StrCat("stage ", st.stage, " needs '", name,
                                                "' which no earlier stage sent"));
      }
      inputs.push_back(it->second);
    }
    absl::StatusOr<std::vector<Tensor>> outputs = (*exec)->Run(inputs);
    if (!outputs.ok()) return outputs.status();
    for (size_t i = 0; i < outputs->size(); ++i) {
      available[st.graph.outputs()[i]] = (*outputs)[i];
    }
  }
  std::vector<Tensor> result;
  for (const std::string& out : prepared.outputs()) result.push_back(available.at(out));
  return result;
}

// ---------------------------------------------------------------------------------------------
// yolov8n at 64x64, batch 2, run whole and in stages.

class YoloPartitionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    YoloV8Config config;
    config.scale = 'n';
    config.num_classes = 3;
    config.imgsz = 64;
    absl::StatusOr<Graph> built = BuildYoloV8(config);
    ASSERT_TRUE(built.ok()) << built.status();
    const Shape input_shape = {2, 3, 64, 64};
    absl::StatusOr<Graph> prepared = PrepareForExecution(*built, input_shape);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    prepared_ = new Graph(*std::move(prepared));
    input_ = new Tensor(SyntheticInput(input_shape, 7));
    ExecutorOptions options;
    options.backend = ops::Backend::kCpu;
    absl::StatusOr<std::unique_ptr<Executor>> exec = Executor::Create(*prepared_, options);
    ASSERT_TRUE(exec.ok()) << exec.status();
    absl::StatusOr<std::vector<Tensor>> out = (*exec)->Run({*input_});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    reference_ = new Tensor((*out)[0]);
  }
  static void TearDownTestSuite() {
    delete prepared_;
    delete input_;
    delete reference_;
  }

  // Partitions, checks the structure and that the staged run equals the whole run bitwise.
  void CheckSplit(const StageLists& lists) {
    absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(*prepared_, lists);
    ASSERT_TRUE(stages.ok()) << stages.status();
    CheckStructure(*prepared_, lists, *stages);
    absl::StatusOr<std::vector<Tensor>> out = RunStages(*prepared_, *stages, *input_);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    const Tensor& got = (*out)[0];
    ASSERT_EQ(got.shape(), reference_->shape());
    ASSERT_EQ(got.layout(), Layout::kPlain);
    const float* a = got.data<float>();
    const float* b = reference_->data<float>();
    int64_t differing = 0;
    for (int64_t i = 0; i < got.num_elements(); ++i) {
      if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) ++differing;
    }
    EXPECT_EQ(differing, 0) << "of " << got.num_elements() << " output elements differ";
  }

  static Graph* prepared_;
  static Tensor* input_;
  static Tensor* reference_;
};

Graph* YoloPartitionTest::prepared_ = nullptr;
Tensor* YoloPartitionTest::input_ = nullptr;
Tensor* YoloPartitionTest::reference_ = nullptr;

TEST_F(YoloPartitionTest, ReferenceIsNotTrivial) {
  // Guards the bitwise comparisons below against a degenerate (e.g. all-zero) output.
  ASSERT_EQ(reference_->shape(), (Shape{2, 4 + 3, 64 + 16 + 4}));
  std::set<float> distinct(reference_->data<float>(),
                           reference_->data<float>() + reference_->num_elements());
  EXPECT_GT(distinct.size(), 100u);
}

TEST_F(YoloPartitionTest, OneStageIsTheWholeGraph) {
  const StageLists lists = Contiguous(*prepared_, {});
  CheckSplit(lists);
  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(*prepared_, lists);
  ASSERT_TRUE(stages.ok());
  ASSERT_EQ(stages->size(), 1u);
  const StageGraph& st = (*stages)[0];
  ASSERT_EQ(st.receives.size(), 1u);
  EXPECT_EQ(st.receives[0].tensor, "images");
  EXPECT_EQ(st.receives[0].from_stage, -1);
  ASSERT_EQ(st.sends.size(), 1u);
  EXPECT_EQ(st.sends[0].tensor, "output0");
  EXPECT_THAT(st.sends[0].to_stages, ElementsAre(-1));
  EXPECT_EQ(st.graph.initializers().size(), prepared_->initializers().size());
}

TEST_F(YoloPartitionTest, TwoStagesAtManyCutPoints) {
  const int n = static_cast<int>(prepared_->nodes().size());
  for (int cut = 1; cut < n; cut += 9) {
    SCOPED_TRACE(absl::StrCat("cut at node ", cut, " of ", n));
    CheckSplit(Contiguous(*prepared_, {cut}));
  }
  CheckSplit(Contiguous(*prepared_, {n - 1}));  // the last node alone
}

TEST_F(YoloPartitionTest, ThreeAndFourStages) {
  const int n = static_cast<int>(prepared_->nodes().size());
  const std::vector<std::vector<int>> cut_sets = {
      {n / 3, 2 * n / 3}, {1, n - 1}, {n / 2, n / 2 + 1}, {n / 4, n / 2, 3 * n / 4},
      {1, 2, 3},          {n / 5, 3 * n / 5, n - 2}};
  for (const auto& cuts : cut_sets) {
    SCOPED_TRACE(absl::StrCat("cuts ", cuts[0], ",", cuts[1], cuts.size() > 2 ? "..." : ""));
    CheckSplit(Contiguous(*prepared_, cuts));
  }
}

TEST_F(YoloPartitionTest, CutsInsideTheNeck) {
  for (const Node& node : prepared_->nodes()) {
    ASSERT_GE(LayerOf(node.name), 0) << node.name;
  }
  // Skip tensors P3 (layer 4), P4 (layer 6), SPPF (layer 9) and layer 12 cross several cuts.
  const std::vector<std::vector<int>> layer_sets = {
      {0, 5, 10, 16}, {0, 7, 13, 19}, {0, 10, 14, 20}, {0, 11, 17, 22},
      {0, 9, 15},     {0, 12, 21},    {0, 6, 18},      {0, 13}};
  for (const auto& first_layers : layer_sets) {
    SCOPED_TRACE(absl::StrCat("stages from layers ", first_layers[1], ",",
                              first_layers.size() > 2 ? first_layers[2] : -1));
    CheckSplit(ByLayers(*prepared_, first_layers));
  }
}

TEST_F(YoloPartitionTest, SkipTensorGoesStraightToItsConsumer) {
  // Stage 0: layers 0-5 (backbone through P3 and the conv after it), 1: 6-8 (P4, P5), 2: 9-12
  // (SPPF, first top-down block), 3: 13-22. P3 (layer 4) is read by layer 5 inside stage 0 and
  // otherwise only by the concat of layer 14, so it goes 0 -> 3.
  const StageLists lists = ByLayers(*prepared_, {0, 6, 9, 13});
  for (const auto& l : lists) ASSERT_FALSE(l.empty());
  const int concat14 = prepared_->FindNode("model.14");
  ASSERT_GE(concat14, 0);
  ASSERT_EQ(prepared_->nodes()[concat14].inputs.size(), 2u);
  const std::string p3 = prepared_->nodes()[concat14].inputs[1];
  const int p3_producer = prepared_->Producers().at(p3);
  ASSERT_EQ(LayerOf(prepared_->nodes()[p3_producer].name), 4) << p3;

  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(*prepared_, lists);
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 4u);

  int p3_sends = 0;
  for (const auto& snd : (*stages)[0].sends) {
    if (snd.tensor != p3) continue;
    ++p3_sends;
    EXPECT_THAT(snd.to_stages, ElementsAre(3));
  }
  EXPECT_EQ(p3_sends, 1);
  int p3_receives = 0;
  for (const auto& r : (*stages)[3].receives) {
    if (r.tensor != p3) continue;
    ++p3_receives;
    EXPECT_EQ(r.from_stage, 0);
  }
  EXPECT_EQ(p3_receives, 1);
  for (int s : {1, 2}) {
    const StageGraph& st = (*stages)[s];
    for (const auto& r : st.receives) EXPECT_NE(r.tensor, p3) << "stage " << s;
    for (const auto& snd : st.sends) EXPECT_NE(snd.tensor, p3) << "stage " << s;
    EXPECT_EQ(st.graph.FindValue(p3), nullptr) << "stage " << s;
  }
  // Layer 12's output is read by two nodes of stage 3 (Resize 13, Concat 17): received once.
  const std::string layer12 = prepared_->nodes()[prepared_->FindNode("model.13")].inputs[0];
  int layer12_receives = 0;
  for (const auto& r : (*stages)[3].receives) {
    if (r.tensor == layer12) {
      ++layer12_receives;
      EXPECT_EQ(r.from_stage, 2);
    }
  }
  EXPECT_EQ(layer12_receives, 1);
  // The model output goes to the host from the last stage only.
  ASSERT_FALSE((*stages)[3].sends.empty());
  EXPECT_EQ((*stages)[3].sends.back().tensor, "output0");
  EXPECT_THAT((*stages)[3].sends.back().to_stages, ElementsAre(-1));

  CheckSplit(lists);
}

TEST_F(YoloPartitionTest, NodeOrderInsideAStageDoesNotMatter) {
  StageLists lists = ByLayers(*prepared_, {0, 8, 15});
  StageLists reversed = lists;
  for (auto& l : reversed) std::reverse(l.begin(), l.end());
  absl::StatusOr<std::vector<StageGraph>> a = PartitionGraph(*prepared_, lists);
  absl::StatusOr<std::vector<StageGraph>> b = PartitionGraph(*prepared_, reversed);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t s = 0; s < a->size(); ++s) {
    std::vector<std::string> names_a, names_b;
    for (const Node& n : (*a)[s].graph.nodes()) names_a.push_back(n.name);
    for (const Node& n : (*b)[s].graph.nodes()) names_b.push_back(n.name);
    EXPECT_EQ(names_a, names_b);
    EXPECT_EQ((*a)[s].graph.inputs(), (*b)[s].graph.inputs());
    EXPECT_EQ((*a)[s].graph.outputs(), (*b)[s].graph.outputs());
  }
  CheckSplit(reversed);
}

TEST_F(YoloPartitionTest, RejectsStagesOutOfTopologicalOrder) {
  StageLists lists = ByLayers(*prepared_, {0, 5, 10});
  std::swap(lists[1], lists[2]);
  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(*prepared_, lists);
  ASSERT_FALSE(stages.ok());
  EXPECT_EQ(stages.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stages.status().message(), HasSubstr("in stage 1 reads tensor"));
  EXPECT_THAT(stages.status().message(), HasSubstr("later stage 2"));
}

// ---------------------------------------------------------------------------------------------
// A small hand-built graph (op types are irrelevant to partitioning):
//   x -> A -> a -> B -> b -> C(a, b, w) -> c ; outputs: c and a.

Graph SmallGraph() {
  Graph g;
  g.set_name("small");
  g.mutable_metadata()["names"] = "{0: 'a'}";
  g.AddInput({"x", DType::kFloat32, {1, 4}});
  g.AddInitializer("w", Tensor::FromFloats({1, 4}, {1, 2, 3, 4}));
  g.AddInitializer("unused", Tensor::FromFloats({1}, {5}));
  g.AddNode({"A", "Relu", {"x"}, {"a"}, {}});
  g.AddNode({"B", "Relu", {"a"}, {"b"}, {}});
  g.AddNode({"C", "Sum", {"a", "b", "w", "a"}, {"c"}, {}});
  for (const char* v : {"a", "b", "c"}) g.SetValue({v, DType::kFloat32, {1, 4}});
  g.AddOutput("c");
  g.AddOutput("a");
  return g;
}

TEST(PartitionSmallTest, ModelOutputAlsoSentToALaterStage) {
  const Graph g = SmallGraph();
  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(g, {{"A"}, {"B"}, {"C"}});
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 3u);
  const StageGraph& s0 = (*stages)[0];
  ASSERT_EQ(s0.sends.size(), 1u);
  EXPECT_EQ(s0.sends[0].tensor, "a");
  EXPECT_THAT(s0.sends[0].to_stages, ElementsAre(1, 2, -1));
  ASSERT_EQ(s0.receives.size(), 1u);
  EXPECT_EQ(s0.receives[0].tensor, "x");
  EXPECT_EQ(s0.receives[0].from_stage, -1);
  EXPECT_TRUE(s0.graph.initializers().empty());
  EXPECT_EQ(s0.graph.name(), "small.stage0");

  const StageGraph& s2 = (*stages)[2];
  // Order of first use: a (from 0), then b (from 1); a is received once though read twice.
  ASSERT_EQ(s2.receives.size(), 2u);
  EXPECT_EQ(s2.receives[0].tensor, "a");
  EXPECT_EQ(s2.receives[0].from_stage, 0);
  EXPECT_EQ(s2.receives[1].tensor, "b");
  EXPECT_EQ(s2.receives[1].from_stage, 1);
  EXPECT_THAT(s2.graph.inputs(), ElementsAre("a", "b"));
  ASSERT_EQ(s2.graph.initializers().size(), 1u);
  EXPECT_EQ(s2.graph.initializers().begin()->first, "w");
  EXPECT_EQ(s2.graph.initializers().at("w").buffer(), g.initializers().at("w").buffer());
  EXPECT_EQ(s2.graph.metadata().at("names"), "{0: 'a'}");
  ASSERT_EQ(s2.sends.size(), 1u);
  EXPECT_EQ(s2.sends[0].tensor, "c");
  EXPECT_THAT(s2.sends[0].to_stages, ElementsAre(-1));
  for (const StageGraph& st : *stages) EXPECT_TRUE(st.graph.Validate().ok());
}

void ExpectRejected(const Graph& g, const StageLists& lists, const std::string& message) {
  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(g, lists);
  ASSERT_FALSE(stages.ok()) << "expected an error containing: " << message;
  EXPECT_EQ(stages.status().code(), absl::StatusCode::kInvalidArgument) << stages.status();
  EXPECT_THAT(stages.status().message(), HasSubstr(message));
}

TEST(PartitionSmallTest, RejectsNoStages) { ExpectRejected(SmallGraph(), {}, "no stages"); }

TEST(PartitionSmallTest, RejectsEmptyStage) {
  ExpectRejected(SmallGraph(), {{"A"}, {}, {"B", "C"}}, "stage 1 has no nodes");
}

TEST(PartitionSmallTest, RejectsUnknownNode) {
  ExpectRejected(SmallGraph(), {{"A", "B"}, {"C", "D"}}, "stage 1 lists unknown node 'D'");
}

TEST(PartitionSmallTest, RejectsNodeTwiceInOneStage) {
  ExpectRejected(SmallGraph(), {{"A", "B", "A"}, {"C"}}, "node 'A' is listed twice in stage 0");
}

TEST(PartitionSmallTest, RejectsNodeInTwoStages) {
  ExpectRejected(SmallGraph(), {{"A", "B"}, {"B", "C"}}, "node 'B' is in two stages: 0 and 1");
}

TEST(PartitionSmallTest, RejectsNodeInNoStage) {
  ExpectRejected(SmallGraph(), {{"A"}, {"C"}}, "node 'B' (Relu) is in no stage");
}

TEST(PartitionSmallTest, RejectsReadingFromALaterStage) {
  ExpectRejected(SmallGraph(), {{"B"}, {"A"}, {"C"}},
                 "node 'B' in stage 0 reads tensor 'a' produced by node 'A' in later stage 1");
}

TEST(PartitionSmallTest, RejectsTensorWithoutValue) {
  Graph g;
  g.AddInput({"x", DType::kFloat32, {1}});
  g.AddNode({"A", "Relu", {"x"}, {"a"}, {}});
  g.AddOutput("a");
  ExpectRejected(g, {{"A"}}, "tensor 'a' has no Value");
}

TEST(PartitionSmallTest, RejectsMalformedGraph) {
  Graph g = SmallGraph();
  g.AddOutput("nowhere");
  ExpectRejected(g, {{"A", "B", "C"}}, "graph output 'nowhere' is not produced");
}

}  // namespace
}  // namespace yolopipe
