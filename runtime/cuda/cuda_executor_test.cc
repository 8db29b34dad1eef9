#include "runtime/cuda/cuda_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/partition.h"
#include "graph/testing/contiguous_stages.h"
#include "graph/prepare.h"
#include "gtest/gtest.h"
#include "ops/cuda/cuda_status.h"
#include "ops/cuda/half.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/detection_tolerance.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/session.h"

namespace yolopipe {
namespace {

using ::yolopipe::testing::ContiguousStages;

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using gpu_testing::ExpectDetectionsNear;
using gpu_testing::kFloat16Tolerance;
using gpu_testing::kFloat32Tolerance;
using gpu_testing::Tolerance;

Graph PreparedBuiltin(const std::string& name, int64_t imgsz, int64_t batch = 1) {
  BuiltinModelOptions options;
  options.imgsz = imgsz;
  absl::StatusOr<Model> model = LoadModel(name, options);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return Graph();
  absl::StatusOr<Shape> shape = InputShapeFor(*model, batch, imgsz);
  EXPECT_TRUE(shape.ok()) << shape.status();
  absl::StatusOr<Graph> prepared = PrepareForExecution(model->graph, *shape);
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  return prepared.ok() ? *prepared : Graph();
}

Graph PreparedOnnx(const std::string& path, int64_t imgsz) {
  absl::StatusOr<Model> model = LoadModel(path);
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) return Graph();
  absl::StatusOr<Shape> shape = InputShapeFor(*model, 1, imgsz);
  EXPECT_TRUE(shape.ok()) << shape.status();
  absl::StatusOr<Graph> prepared = PrepareForExecution(model->graph, *shape);
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  return prepared.ok() ? *prepared : Graph();
}

std::set<std::string> NodeNames(const Graph& graph, const std::vector<int>& indices) {
  std::set<std::string> names;
  for (int i : indices) names.insert(graph.nodes()[i].name);
  return names;
}

// ---- FindDetectHead ----------------------------------------------------------------------------

TEST(FindDetectHeadTest, BuiltinYolov8nAt64) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(head->level_tensors,
              ElementsAre("model.22.cat.0", "model.22.cat.1", "model.22.cat.2"));
  EXPECT_THAT(head->heights, ElementsAre(8, 4, 2));
  EXPECT_THAT(head->widths, ElementsAre(8, 4, 2));
  EXPECT_THAT(head->strides, ElementsAre(8, 16, 32));
  EXPECT_EQ(head->num_classes, 80);
  EXPECT_EQ(head->batch, 1);
  EXPECT_EQ(head->anchors, 8 * 8 + 4 * 4 + 2 * 2);
  EXPECT_EQ(head->output, "output0");
  // Everything after the per-level concats (YOLOV8.md: flatten, concat, split, DFL, dist2bbox,
  // sigmoid, final concat).
  const std::string d = "model.22.";
  const std::set<std::string> expected = {d + "view.0",        d + "view.1",      d + "view.2",
                                          d + "cat",           d + "split",       d + "dfl.view",
                                          d + "dfl.transpose", d + "dfl.softmax", d + "dfl",
                                          d + "dfl.view_out",  d + "lt",          d + "rb",
                                          d + "x1y1",          d + "x2y2",        d + "xy_sum",
                                          d + "c_xy",          d + "wh",          d + "dbox_cat",
                                          d + "dbox",          d + "cls_sigmoid", d + "output"};
  EXPECT_EQ(NodeNames(graph, head->nodes), expected);
}

TEST(FindDetectHeadTest, BuiltinYolov8sAt320Batch2) {
  const Graph graph = PreparedBuiltin("yolov8s", 320, /*batch=*/2);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(head->heights, ElementsAre(40, 20, 10));
  EXPECT_THAT(head->strides, ElementsAre(8, 16, 32));
  EXPECT_EQ(head->batch, 2);
  EXPECT_EQ(head->anchors, 40 * 40 + 20 * 20 + 10 * 10);
}

TEST(FindDetectHeadTest, OnnxFixtureDynamicAt64) {
  const Graph graph = PreparedOnnx("tests/fixtures/yolov8n_dynamic.onnx", 64);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(head->level_tensors,
              ElementsAre("/model.22/Concat_output_0", "/model.22/Concat_1_output_0",
                          "/model.22/Concat_2_output_0"));
  EXPECT_THAT(head->strides, ElementsAre(8, 16, 32));
  EXPECT_EQ(head->anchors, 84);
  EXPECT_EQ(head->num_classes, 80);
  EXPECT_EQ(head->output, "output0");
}

TEST(FindDetectHeadTest, OnnxFixtureStaticAt640) {
  const Graph graph = PreparedOnnx("tests/fixtures/yolov8n_static.onnx", 640);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_THAT(head->heights, ElementsAre(80, 40, 20));
  EXPECT_THAT(head->strides, ElementsAre(8, 16, 32));
  EXPECT_EQ(head->anchors, 8400);
  EXPECT_EQ(head->nodes.size(), 21u);
}

// Replaces initializer `name` by a copy with element `index` changed by `delta`.
void PerturbInitializer(Graph* graph, const std::string& name, int64_t index, float delta) {
  const Tensor* t = graph->FindInitializer(name);
  ASSERT_NE(t, nullptr) << name;
  Tensor copy = t->Clone();
  copy.data<float>()[index] += delta;
  graph->AddInitializer(name, copy);
}

TEST(FindDetectHeadTest, RejectsWrongAnchorConstant) {
  Graph graph = PreparedBuiltin("yolov8n", 64);
  PerturbInitializer(&graph, "model.22.anchors", 5, 1.0f);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("'model.22.anchors'"));
  EXPECT_THAT(head.status().message(), HasSubstr("anchor centres"));
}

TEST(FindDetectHeadTest, RejectsWrongStrideConstant) {
  Graph graph = PreparedBuiltin("yolov8n", 64);
  PerturbInitializer(&graph, "model.22.strides", 70, 8.0f);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("node 'model.22.dbox'"));
  EXPECT_THAT(head.status().message(), HasSubstr("per-anchor strides"));
}

TEST(FindDetectHeadTest, RejectsWrongDflWeights) {
  Graph graph = PreparedBuiltin("yolov8n", 64);
  PerturbInitializer(&graph, "model.22.dfl.weight", 3, 0.5f);
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("node 'model.22.dfl' (op Conv)"));
}

TEST(FindDetectHeadTest, RejectsForeignOpInHead) {
  Graph graph = PreparedBuiltin("yolov8n", 64);
  const int index = graph.FindNode("model.22.cls_sigmoid");
  ASSERT_GE(index, 0);
  graph.mutable_nodes()[index].op_type = "Relu";
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("node 'model.22.cls_sigmoid' (op Relu)"));
}

TEST(FindDetectHeadTest, RejectsOutsideReaderOfHeadValue) {
  Graph graph = PreparedBuiltin("yolov8n", 64);
  const int dfl = graph.FindNode("model.22.dfl");
  ASSERT_GE(dfl, 0);
  const std::string dfl_out = graph.nodes()[dfl].outputs[0];
  graph.SetValue(Value{"spy_out", DType::kFloat32, graph.FindValue(dfl_out)->shape});
  graph.AddNode(Node{"spy", "Identity", {dfl_out}, {"spy_out"}, Attributes()});
  graph.AddOutput("spy_out");
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("node 'spy' (op Identity) reads"));
}

TEST(FindDetectHeadTest, RejectsGraphWithoutHead) {
  // A 4-D output is not a Detect head.
  Graph graph;
  graph.AddInput(Value{"x", DType::kFloat32, {1, 3, 8, 8}});
  graph.SetValue(Value{"y", DType::kFloat32, {1, 3, 8, 8}});
  graph.AddNode(Node{"sig", "Sigmoid", {"x"}, {"y"}, Attributes()});
  graph.AddOutput("y");
  absl::StatusOr<DetectHeadInfo> head = FindDetectHead(graph);
  ASSERT_EQ(head.status().code(), absl::StatusCode::kUnimplemented) << head.status();
  EXPECT_THAT(head.status().message(), HasSubstr("output 'y'"));
}

// ---- PlanCudaLowering --------------------------------------------------------------------------

const CudaStep* FindStep(const CudaLoweringPlan& plan, const std::string& name) {
  for (const CudaStep& step : plan.steps) {
    if (step.name == name) return &step;
  }
  return nullptr;
}

int ActivationId(const CudaLoweringPlan& plan, const std::string& name) {
  for (size_t i = 0; i < plan.activations.size(); ++i) {
    if (plan.activations[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// Activations alive at the same step never share bytes; all sit aligned inside the arena; an
// alias is a channel range of a dense tensor that is alive whenever the alias is.
void ExpectValidArena(const CudaLoweringPlan& plan) {
  const auto& acts = plan.activations;
  for (size_t i = 0; i < acts.size(); ++i) {
    EXPECT_EQ(acts[i].offset % 256, 0u) << acts[i].name;
    EXPECT_LE(acts[i].offset + acts[i].bytes, plan.arena_bytes) << acts[i].name;
    EXPECT_LE(acts[i].first_step, acts[i].last_step) << acts[i].name;
    if (acts[i].alias_of >= 0) {
      const CudaActivation& root = acts[acts[i].alias_of];
      EXPECT_LT(root.alias_of, 0) << acts[i].name;
      EXPECT_EQ(acts[i].offset, root.offset) << acts[i].name;
      EXPECT_GE(acts[i].channel_offset, 0) << acts[i].name;
      EXPECT_LE(acts[i].channel_offset + acts[i].shape.c, root.shape.c) << acts[i].name;
      EXPECT_EQ(acts[i].shape.pixels(), root.shape.pixels()) << acts[i].name;
      EXPECT_LE(root.first_step, acts[i].first_step) << acts[i].name;
      EXPECT_GE(root.last_step, acts[i].last_step) << acts[i].name;
      continue;
    }
    for (size_t j = i + 1; j < acts.size(); ++j) {
      if (acts[j].alias_of >= 0) continue;
      const bool live_together =
          acts[i].first_step <= acts[j].last_step && acts[j].first_step <= acts[i].last_step;
      const bool overlap = acts[i].offset < acts[j].offset + acts[j].bytes &&
                           acts[j].offset < acts[i].offset + acts[i].bytes;
      EXPECT_FALSE(live_together && overlap) << acts[i].name << " and " << acts[j].name;
    }
  }
}

class PlanPrecisionTest : public ::testing::TestWithParam<DType> {};

TEST_P(PlanPrecisionTest, Yolov8nAt64) {
  const DType precision = GetParam();
  const size_t element = precision == DType::kFloat16 ? 2 : 4;
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(graph, precision);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->has_detect_head);
  EXPECT_EQ(plan->inputs[0].shape, (Shape{1, 3, 64, 64}));
  EXPECT_EQ(plan->outputs[0].shape, (Shape{1, 84, 84}));
  // One step per node outside the head, plus the input conversion and DetectDecode.
  ASSERT_EQ(plan->steps.size(), graph.nodes().size() - 21 + 2);
  EXPECT_EQ(plan->steps.front().kind, CudaStepKind::kInputToNhwc);
  const CudaStep& decode = plan->steps.back();
  EXPECT_EQ(decode.kind, CudaStepKind::kDetectDecode);
  ASSERT_EQ(decode.inputs.size(), 3u);
  EXPECT_EQ(plan->activations[decode.inputs[0]].name, "model.22.cat.0");
  EXPECT_EQ(plan->activations[decode.inputs[2]].name, "model.22.cat.2");
  for (const CudaActivation& a : plan->activations) {
    EXPECT_EQ(a.bytes, static_cast<size_t>(a.shape.elements()) * element) << a.name;
  }
  // The first activation (the input) is NHWC (1, 64, 64, 3).
  EXPECT_TRUE((plan->activations[0].shape == ops::cuda::NhwcShape{1, 64, 64, 3}));
  ExpectValidArena(*plan);
  EXPECT_LT(plan->arena_bytes, plan->unplanned_bytes);  // memory is reused

  // model.0: Conv k3 s2 p1, 3 -> 16, SiLU, with bias.
  const CudaStep* conv0 = FindStep(*plan, "model.0");
  ASSERT_NE(conv0, nullptr);
  EXPECT_EQ(conv0->kind, CudaStepKind::kConv);
  EXPECT_EQ(conv0->conv.dtype, precision);
  EXPECT_EQ(conv0->conv.c_in, 3);
  EXPECT_EQ(conv0->conv.c_out, 16);
  EXPECT_EQ(conv0->conv.kernel_h, 3);
  EXPECT_EQ(conv0->conv.stride_h, 2);
  EXPECT_EQ(conv0->conv.pad_h, 1);
  EXPECT_TRUE(conv0->silu);
  EXPECT_TRUE(conv0->has_bias);
  EXPECT_FALSE(conv0->has_residual);
  EXPECT_EQ(conv0->inputs, std::vector<int>{0});

  // Its weights are OIHW -> OHWI in the precision; its bias stays float32.
  const Node& node0 = graph.nodes()[graph.FindNode("model.0")];
  const Tensor& w = *graph.FindInitializer(node0.inputs[1]);
  const Tensor& b = *graph.FindInitializer(node0.inputs[2]);
  ASSERT_EQ(w.shape(), (Shape{16, 3, 3, 3}));
  ASSERT_LE(conv0->weight_offset + w.num_elements() * element, plan->weights.size());
  EXPECT_EQ(conv0->weight_offset % 256, 0u);
  for (int64_t o = 0; o < 16; ++o) {
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t y = 0; y < 3; ++y) {
        for (int64_t x = 0; x < 3; ++x) {
          const float want = w.data<float>()[((o * 3 + i) * 3 + y) * 3 + x];
          const size_t at = conv0->weight_offset + (((o * 3 + y) * 3 + x) * 3 + i) * element;
          if (precision == DType::kFloat16) {
            uint16_t got;
            std::memcpy(&got, plan->weights.data() + at, 2);
            ASSERT_EQ(got, ops::cuda::FloatToHalfBits(want)) << o << i << y << x;
          } else {
            float got;
            std::memcpy(&got, plan->weights.data() + at, 4);
            ASSERT_EQ(got, want) << o << i << y << x;
          }
        }
      }
    }
  }
  for (int64_t o = 0; o < 16; ++o) {
    float got;
    std::memcpy(&got, plan->weights.data() + conv0->bias_offset + o * 4, 4);
    EXPECT_EQ(got, b.data<float>()[o]);
  }

  // A Bottleneck's second conv adds its residual.
  const CudaStep* bottleneck = FindStep(*plan, "model.2.m.0.cv2");
  ASSERT_NE(bottleneck, nullptr);
  ASSERT_TRUE(bottleneck->has_residual);
  const Node& bnode = graph.nodes()[graph.FindNode("model.2.m.0.cv2")];
  ASSERT_EQ(bottleneck->inputs.size(), 2u);
  EXPECT_EQ(plan->activations[bottleneck->inputs[1]].name, bnode.inputs[3]);

  // C2f's split and concat as channel offsets; SPPF's pool; the neck's upsample.
  const CudaStep* split = FindStep(*plan, "model.2.split");
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->kind, CudaStepKind::kSplit);
  EXPECT_THAT(split->channel_offsets, ElementsAre(0, 16));
  const CudaStep* cat = FindStep(*plan, "model.2.cat");
  ASSERT_NE(cat, nullptr);
  EXPECT_EQ(cat->kind, CudaStepKind::kConcat);
  EXPECT_THAT(cat->channel_offsets, ElementsAre(0, 16, 32));
  EXPECT_EQ(plan->activations[cat->outputs[0]].shape.c, 48);
  // The split halves are copied; the last Bottleneck (read only by the concat) writes in place.
  EXPECT_THAT(cat->written_in_place, ElementsAre(false, false, true));
  const CudaActivation& m0 = plan->activations[bottleneck->outputs[0]];
  EXPECT_EQ(m0.alias_of, cat->outputs[0]);
  EXPECT_EQ(m0.channel_offset, 32);
  // Both branches of each Detect level write into the level tensor: no copies.
  for (const char* name : {"model.22.cat.0", "model.22.cat.1", "model.22.cat.2"}) {
    const CudaStep* level_cat = FindStep(*plan, name);
    ASSERT_NE(level_cat, nullptr) << name;
    EXPECT_THAT(level_cat->written_in_place, ElementsAre(true, true)) << name;
    EXPECT_THAT(level_cat->channel_offsets, ElementsAre(0, 64)) << name;
  }
  const CudaStep* box = FindStep(*plan, "model.22.cv2.0.2");
  const CudaStep* cls = FindStep(*plan, "model.22.cv3.0.2");
  ASSERT_NE(box, nullptr);
  ASSERT_NE(cls, nullptr);
  EXPECT_EQ(plan->activations[cls->outputs[0]].alias_of, ActivationId(*plan, "model.22.cat.0"));
  EXPECT_EQ(plan->activations[cls->outputs[0]].channel_offset, 64);
  EXPECT_EQ(plan->activations[box->outputs[0]].channel_offset, 0);
  // model.4 has two Bottlenecks: the first one's output is also read by the second, so it is
  // copied; the second's is written in place.
  const CudaStep* cat4 = FindStep(*plan, "model.4.cat");
  ASSERT_NE(cat4, nullptr);
  EXPECT_THAT(cat4->written_in_place, ElementsAre(false, false, false, true));
  const CudaStep* pool = FindStep(*plan, "model.9.m.0");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->kind, CudaStepKind::kMaxPool);
  EXPECT_EQ(pool->pool.kernel_h, 5);
  EXPECT_EQ(pool->pool.stride_h, 1);
  EXPECT_EQ(pool->pool.pad_h, 2);
  const CudaStep* resize = FindStep(*plan, "model.10");
  ASSERT_NE(resize, nullptr);
  EXPECT_EQ(resize->kind, CudaStepKind::kResize);
  EXPECT_TRUE((plan->activations[resize->outputs[0]].shape == ops::cuda::NhwcShape{1, 4, 4, 256}));
  // The head's levels stay alive until DetectDecode (the last step).
  const int level = ActivationId(*plan, "model.22.cat.0");
  ASSERT_GE(level, 0);
  EXPECT_EQ(plan->activations[level].last_step, static_cast<int>(plan->steps.size()) - 1);
}

INSTANTIATE_TEST_SUITE_P(Precisions, PlanPrecisionTest,
                         ::testing::Values(DType::kFloat16, DType::kFloat32),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return info.param == DType::kFloat16 ? "Float16" : "Float32";
                         });

TEST(PlanCudaLoweringTest, WithoutConcatInPlaceEveryPartIsCopied) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  absl::StatusOr<CudaLoweringPlan> plan =
      PlanCudaLowering(graph, DType::kFloat16, /*concat_in_place=*/false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  int concats = 0;
  for (const CudaStep& step : plan->steps) {
    if (step.kind != CudaStepKind::kConcat) continue;
    ++concats;
    EXPECT_EQ(std::count(step.written_in_place.begin(), step.written_in_place.end(), true), 0)
        << step.name;
  }
  EXPECT_EQ(concats, 19 - 3);  // yolov8n has 19 Concats; 3 are inside the Detect head
  for (const CudaActivation& a : plan->activations) EXPECT_LT(a.alias_of, 0) << a.name;
  ExpectValidArena(*plan);
}

TEST(PlanCudaLoweringTest, OnnxFixturePlans) {
  const Graph graph = PreparedOnnx("tests/fixtures/yolov8n_dynamic.onnx", 64);
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(graph, DType::kFloat16);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->has_detect_head);
  EXPECT_EQ(plan->steps.back().kind, CudaStepKind::kDetectDecode);
  ExpectValidArena(*plan);
}

// ---- Pipeline stages ---------------------------------------------------------------------------

std::vector<std::string> Names(const CudaLoweringPlan& plan, bool inputs) {
  std::vector<std::string> names;
  for (const CudaBoundaryTensor& t : inputs ? plan.inputs : plan.outputs) names.push_back(t.name);
  return names;
}

// Every stage of splits into 2, 3 and 4 stages (one of them cutting inside the Detect head, which
// KeepDetectHeadInLastStage then moves whole to the last stage) lowers: one input conversion per
// received tensor, one output per sent tensor, in the partition's order; the last stage decodes
// the head with the strides of the model's input, not of its own inputs.
TEST(PlanCudaLoweringTest, EveryStageOfSplitsLowers) {
  const Graph graph = PreparedBuiltin("yolov8n", 64, 2);
  ASSERT_FALSE(graph.nodes().empty());
  const size_t n = graph.nodes().size();
  absl::StatusOr<DetectHeadInfo> whole_head = FindDetectHead(graph);
  ASSERT_TRUE(whole_head.ok()) << whole_head.status();
  const std::set<std::string> head_names = NodeNames(graph, whole_head->nodes);
  const std::vector<std::vector<size_t>> splits = {
      {n / 2, n}, {n / 3, 2 * n / 3, n}, {n / 4, n / 2, 3 * n / 4, n}, {n / 2, n - 3, n}};
  for (const std::vector<size_t>& ends : splits) {
    SCOPED_TRACE(absl::StrCat(ends.size(), " stages ending at ", ends[0], ", ", ends[1]));
    std::vector<std::vector<std::string>> stages = ContiguousStages(graph, ends);
    absl::StatusOr<std::vector<std::vector<std::string>>> kept =
        KeepDetectHeadInLastStage(graph, stages);
    ASSERT_TRUE(kept.ok()) << kept.status();
    for (size_t s = 0; s + 1 < kept->size(); ++s) {
      for (const std::string& name : (*kept)[s]) EXPECT_FALSE(head_names.count(name)) << name;
    }
    size_t total = 0;
    for (const auto& nodes : *kept) total += nodes.size();
    EXPECT_EQ(total, n);
    absl::StatusOr<std::vector<StageGraph>> parts = PartitionGraph(graph, *kept);
    ASSERT_TRUE(parts.ok()) << parts.status();
    for (const StageGraph& stage : *parts) {
      SCOPED_TRACE(absl::StrCat("stage ", stage.stage));
      absl::StatusOr<CudaLoweringPlan> plan =
          PlanCudaLowering(stage.graph, DType::kFloat16, true, Shape{2, 3, 64, 64});
      ASSERT_TRUE(plan.ok()) << plan.status();
      std::vector<std::string> receives, sends;
      for (const auto& r : stage.receives) receives.push_back(r.tensor);
      for (const auto& s : stage.sends) sends.push_back(s.tensor);
      EXPECT_EQ(Names(*plan, true), receives);
      EXPECT_EQ(Names(*plan, false), sends);
      for (size_t i = 0; i < receives.size(); ++i) {
        EXPECT_EQ(plan->steps[i].kind, CudaStepKind::kInputToNhwc);
        EXPECT_EQ(plan->steps[i].boundary, static_cast<int>(i));
      }
      for (size_t o = 0; o < sends.size(); ++o) {
        const CudaStep& step = plan->steps[plan->steps.size() - sends.size() + o];
        EXPECT_EQ(step.boundary, static_cast<int>(o));
        EXPECT_EQ(plan->outputs[o].shape, stage.graph.FindValue(sends[o])->shape);
      }
      const bool last = stage.stage + 1 == static_cast<int>(parts->size());
      EXPECT_EQ(plan->has_detect_head, last);
      if (last) {
        EXPECT_THAT(plan->head.strides, ElementsAre(8, 16, 32));
        EXPECT_EQ(plan->steps.back().kind, CudaStepKind::kDetectDecode);
      }
      ExpectValidArena(*plan);
    }
  }
}

// Every node is charged by exactly one step (its own, or the Detect decode for the head's);
// the input conversion goes to the first convolution.
TEST(CudaStepNodesTest, EveryNodeIsChargedOnce) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(graph, DType::kFloat16);
  ASSERT_TRUE(plan.ok()) << plan.status();
  absl::StatusOr<std::vector<std::vector<int>>> nodes = CudaStepNodes(graph, *plan);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), plan->steps.size());
  std::vector<int> charged(graph.nodes().size(), 0);
  for (size_t s = 1; s < nodes->size(); ++s) {  // step 0, the input conversion, is extra
    for (int n : (*nodes)[s]) ++charged[n];
  }
  for (size_t n = 0; n < charged.size(); ++n) {
    EXPECT_EQ(charged[n], 1) << graph.nodes()[n].name;
  }
  ASSERT_EQ((*nodes)[0].size(), 1u);
  EXPECT_EQ(graph.nodes()[(*nodes)[0][0]].op_type, "Conv");
  EXPECT_EQ(NodeNames(graph, nodes->back()), NodeNames(graph, plan->head.nodes));
  EXPECT_EQ(nodes->back().size(), 21u);
}

TEST(PlanCudaLoweringTest, StageWithDetectHeadNeedsTheImageShape) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  const size_t n = graph.nodes().size();
  absl::StatusOr<std::vector<StageGraph>> parts =
      PartitionGraph(graph, ContiguousStages(graph, {n / 2, n}));
  ASSERT_TRUE(parts.ok()) << parts.status();
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering((*parts)[1].graph, DType::kFloat32);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("image shape"));
}

TEST(PlanCudaLoweringTest, KeepDetectHeadRefusesToEmptyAStage) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  const size_t n = graph.nodes().size();
  // The second of three stages holds only the last few nodes before the last one: head nodes.
  absl::StatusOr<std::vector<std::vector<std::string>>> kept =
      KeepDetectHeadInLastStage(graph, ContiguousStages(graph, {n - 4, n - 1, n}));
  EXPECT_EQ(kept.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(kept.status().message(), HasSubstr("use fewer stages"));
}

TEST(PlanCudaLoweringTest, RejectsPrecision) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(graph, DType::kInt64);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("precision"));
}

// x (1, 3, 8, 8) -> Conv 3x3 (4 channels, attributes below) -> [an extra op] -> output.
Graph TinyGraph(const std::string& extra_op, const Attributes& conv_attrs,
                const std::string& second_op = "", const Attributes& second_attrs = {}) {
  Graph graph;
  graph.AddInput(Value{"x", DType::kFloat32, {1, 3, 8, 8}});
  std::vector<float> weights(4 * 3 * 3 * 3);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 0.01f * static_cast<float>(i % 7);
  graph.AddInitializer("w", Tensor::FromFloats({4, 3, 3, 3}, weights));
  graph.AddNode(Node{"conv", "Conv", {"x", "w"}, {"c"}, conv_attrs});
  std::string last = "c";
  if (!extra_op.empty()) {
    graph.AddNode(Node{"act", extra_op, {"c"}, {"a"}, Attributes()});
    last = "a";
  }
  if (!second_op.empty()) {
    graph.AddNode(Node{"second", second_op, {last, last}, {"s"}, second_attrs});
    last = "s";
  }
  graph.AddOutput(last);
  return graph;
}

Attributes Conv3x3(std::vector<int64_t> pads = {1, 1, 1, 1}) {
  Attributes attrs;
  attrs.Set("kernel_shape", std::vector<int64_t>{3, 3});
  attrs.Set("pads", std::move(pads));
  return attrs;
}

absl::StatusOr<CudaLoweringPlan> PlanTiny(const Graph& graph) {
  absl::StatusOr<Graph> prepared = PrepareForExecution(graph, {1, 3, 8, 8});
  if (!prepared.ok()) return prepared.status();
  return PlanCudaLowering(*prepared, DType::kFloat16);
}

TEST(PlanCudaLoweringTest, FourDimensionalOutputIsConvertedToNchw) {
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(TinyGraph("", Conv3x3()));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_FALSE(plan->has_detect_head);
  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->steps[1].kind, CudaStepKind::kConv);
  EXPECT_FALSE(plan->steps[1].has_bias);
  EXPECT_FALSE(plan->steps[1].silu);
  EXPECT_EQ(plan->steps[2].kind, CudaStepKind::kOutputToNchw);
  EXPECT_EQ(plan->outputs[0].shape, (Shape{1, 4, 8, 8}));
}

TEST(PlanCudaLoweringTest, RejectsUnsupportedOp) {
  const Graph graph = TinyGraph("Sigmoid", Conv3x3());
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(graph);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented) << plan.status();
  EXPECT_EQ(plan.status().message(), "CUDA executor: node 'act' (op Sigmoid) is not supported");

  // Create lowers before touching a device: Unimplemented in the CUDA build even without a GPU;
  // the default build has no executor at all.
  absl::StatusOr<Graph> prepared = PrepareForExecution(graph, {1, 3, 8, 8});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  auto executor = CudaExecutor::Create(*prepared, CudaExecutorOptions());
  if (ops::cuda::BuiltWithCuda()) {
    EXPECT_EQ(executor.status().code(), absl::StatusCode::kUnimplemented) << executor.status();
    EXPECT_THAT(executor.status().message(), HasSubstr("node 'act' (op Sigmoid)"));
  } else {
    EXPECT_EQ(executor.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(executor.status().message(), HasSubstr("built without CUDA support"));
  }
}

TEST(PlanCudaLoweringTest, RejectsAsymmetricPadding) {
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(TinyGraph("", Conv3x3({1, 1, 0, 0})));
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("node 'conv' (op Conv): asymmetric padding"));
}

TEST(PlanCudaLoweringTest, RejectsConcatOffTheChannelAxis) {
  Attributes axis3;
  axis3.Set("axis", int64_t{3});
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(TinyGraph("", Conv3x3(), "Concat", axis3));
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("node 'second' (op Concat): axis 3"));
}

TEST(PlanCudaLoweringTest, ConcatOnChannelsOfOneTensorTwice) {
  Attributes axis1;
  axis1.Set("axis", int64_t{1});
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(TinyGraph("", Conv3x3(), "Concat", axis1));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const CudaStep& concat = plan->steps[2];
  EXPECT_EQ(concat.kind, CudaStepKind::kConcat);
  EXPECT_THAT(concat.channel_offsets, ElementsAre(0, 4));
  EXPECT_EQ(plan->activations[concat.outputs[0]].shape.c, 8);
}

TEST(PlanCudaLoweringTest, RejectsMaxPoolCeilMode) {
  Graph graph = TinyGraph("", Conv3x3());
  graph.mutable_outputs().clear();
  Attributes pool;
  pool.Set("kernel_shape", std::vector<int64_t>{3, 3});
  pool.Set("strides", std::vector<int64_t>{2, 2});
  pool.Set("ceil_mode", int64_t{1});
  graph.AddNode(Node{"pool", "MaxPool", {"c"}, {"p"}, pool});
  graph.AddOutput("p");
  absl::StatusOr<CudaLoweringPlan> plan = PlanTiny(graph);
  ASSERT_EQ(plan.status().code(), absl::StatusCode::kUnimplemented) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("node 'pool' (op MaxPool)"));
}

// ---- Executor on a GPU -------------------------------------------------------------------------

struct EndToEndCase {
  std::string model;
  int64_t imgsz;
  int64_t batch;
  DType precision;
};

std::string CaseName(const ::testing::TestParamInfo<EndToEndCase>& info) {
  return absl::StrCat(info.param.model, "_", info.param.imgsz, "_b", info.param.batch, "_",
                      info.param.precision == DType::kFloat16 ? "fp16" : "fp32");
}

class CudaExecutorGpuTest : public ::testing::TestWithParam<EndToEndCase> {
 protected:
  void SetUp() override {
    auto devices = ListCudaDevices();
    if (!devices.ok()) GTEST_SKIP() << devices.status();
  }
};

TEST_P(CudaExecutorGpuTest, MatchesCpuSession) {
  const EndToEndCase& c = GetParam();
  BuiltinModelOptions model_options;
  model_options.imgsz = c.imgsz;
  absl::StatusOr<Model> model = LoadModel(c.model, model_options);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Shape> shape = InputShapeFor(*model, c.batch, c.imgsz);
  ASSERT_TRUE(shape.ok()) << shape.status();
  SessionOptions session_options;
  session_options.device.num_threads = AvailableCores();
  auto session = Session::Create(*model, *shape, session_options);
  ASSERT_TRUE(session.ok()) << session.status();
  CudaExecutorOptions options;
  options.precision = c.precision;
  auto executor = CudaExecutor::Create((*session)->prepared_graph(), options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  for (uint64_t seed : {1, 2}) {  // the second run replays the CUDA graph
    const Tensor input = SyntheticInput(*shape, seed);
    absl::StatusOr<Tensor> want = (*session)->Run(input);
    ASSERT_TRUE(want.ok()) << want.status();
    absl::StatusOr<Tensor> got = (*executor)->Run(input);
    ASSERT_TRUE(got.ok()) << got.status();
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    ExpectDetectionsNear(*got, *want,
                         c.precision == DType::kFloat16 ? kFloat16Tolerance : kFloat32Tolerance);
  }
  EXPECT_TRUE((*executor)->graph_captured());
}

INSTANTIATE_TEST_SUITE_P(Models, CudaExecutorGpuTest,
                         ::testing::Values(EndToEndCase{"yolov8n", 64, 1, DType::kFloat32},
                                           EndToEndCase{"yolov8n", 64, 2, DType::kFloat32},
                                           EndToEndCase{"yolov8n", 64, 1, DType::kFloat16},
                                           EndToEndCase{"yolov8n", 320, 1, DType::kFloat32},
                                           EndToEndCase{"yolov8n", 320, 1, DType::kFloat16},
                                           EndToEndCase{"yolov8s", 64, 1, DType::kFloat32},
                                           EndToEndCase{"yolov8s", 320, 1, DType::kFloat32},
                                           EndToEndCase{"yolov8s", 320, 1, DType::kFloat16}),
                         CaseName);

class CudaExecutorGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto devices = ListCudaDevices();
    if (!devices.ok()) GTEST_SKIP() << devices.status();
  }
};

TEST_F(CudaExecutorGraphTest, GraphReplayEqualsDirectExecution) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  CudaExecutorOptions with_graph;
  with_graph.precision = DType::kFloat16;
  CudaExecutorOptions without_graph = with_graph;
  without_graph.use_cuda_graph = false;
  auto replayed = CudaExecutor::Create(graph, with_graph);
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  auto direct = CudaExecutor::Create(graph, without_graph);
  ASSERT_TRUE(direct.ok()) << direct.status();
  const Shape shape = {1, 3, 64, 64};
  std::vector<Tensor> first_outputs;
  for (uint64_t seed : {5, 6, 5}) {
    const Tensor input = SyntheticInput(shape, seed);
    absl::StatusOr<Tensor> a = (*replayed)->Run(input);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE((*replayed)->graph_captured());
    absl::StatusOr<Tensor> b = (*direct)->Run(input);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_FALSE((*direct)->graph_captured());
    ASSERT_EQ(a->num_elements(), b->num_elements());
    // Same kernels and algorithms on the same data: identical results.
    EXPECT_EQ(std::memcmp(a->raw_data(), b->raw_data(), a->bytes()), 0) << "seed " << seed;
    first_outputs.push_back(*a);
  }
  // Different inputs give different outputs (the replay reads the new input), and the same input
  // gives the same output (seed 5 directly, then replayed).
  EXPECT_NE(std::memcmp(first_outputs[0].raw_data(), first_outputs[1].raw_data(),
                        first_outputs[0].bytes()),
            0);
  EXPECT_EQ(std::memcmp(first_outputs[0].raw_data(), first_outputs[2].raw_data(),
                        first_outputs[0].bytes()),
            0);
}

TEST_F(CudaExecutorGraphTest, ConcatInPlaceEqualsCopies) {
  const Graph graph = PreparedBuiltin("yolov8s", 64, /*batch=*/2);
  CudaExecutorOptions in_place;
  in_place.precision = DType::kFloat32;
  CudaExecutorOptions copies = in_place;
  copies.concat_in_place = false;
  auto a = CudaExecutor::Create(graph, in_place);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = CudaExecutor::Create(graph, copies);
  ASSERT_TRUE(b.ok()) << b.status();
  const Tensor input = SyntheticInput({2, 3, 64, 64}, 9);
  absl::StatusOr<Tensor> got = (*a)->Run(input);
  ASSERT_TRUE(got.ok()) << got.status();
  absl::StatusOr<Tensor> want = (*b)->Run(input);
  ASSERT_TRUE(want.ok()) << want.status();
  // Same kernels on the same data; only where the convolutions store differs.
  ExpectDetectionsNear(*got, *want, Tolerance{1e-6, 0.0, 1e-6});
}

TEST_F(CudaExecutorGraphTest, FourDimensionalOutputMatchesCpu) {
  Attributes conv = Conv3x3();
  conv.Set("activation", std::string("silu"));
  const Graph tiny = TinyGraph("", conv);
  absl::StatusOr<Graph> graph = PrepareForExecution(tiny, {1, 3, 8, 8});
  ASSERT_TRUE(graph.ok()) << graph.status();
  CudaExecutorOptions options;
  options.precision = DType::kFloat32;
  auto executor = CudaExecutor::Create(*graph, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  const Tensor input = SyntheticInput({1, 3, 8, 8}, 3);
  absl::StatusOr<Tensor> got = (*executor)->Run(input);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->shape(), (Shape{1, 4, 8, 8}));
  // Direct convolution on the host (NCHW, pad 1) + SiLU.
  const Tensor& w = *graph->FindInitializer("w");
  for (int64_t o = 0; o < 4; ++o) {
    for (int64_t y = 0; y < 8; ++y) {
      for (int64_t x = 0; x < 8; ++x) {
        double sum = 0.0;
        for (int64_t i = 0; i < 3; ++i) {
          for (int64_t ky = 0; ky < 3; ++ky) {
            for (int64_t kx = 0; kx < 3; ++kx) {
              const int64_t iy = y + ky - 1, ix = x + kx - 1;
              if (iy < 0 || iy >= 8 || ix < 0 || ix >= 8) continue;
              sum += static_cast<double>(input.data<float>()[(i * 8 + iy) * 8 + ix]) *
                     w.data<float>()[((o * 3 + i) * 3 + ky) * 3 + kx];
            }
          }
        }
        const double want = sum / (1.0 + std::exp(-sum));
        EXPECT_NEAR(got->data<float>()[(o * 8 + y) * 8 + x], want, 1e-5)
            << o << "," << y << "," << x;
      }
    }
  }
}

TEST_F(CudaExecutorGraphTest, RejectsWrongInputShape) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  auto executor = CudaExecutor::Create(graph, CudaExecutorOptions());
  ASSERT_TRUE(executor.ok()) << executor.status();
  absl::StatusOr<Tensor> out = (*executor)->Run(SyntheticInput({1, 3, 32, 32}, 1));
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("(1, 3, 64, 64)"));
}

// I/O sets: each set has its own boundary buffers and CUDA graph; an input left undefined is read
// from the set's device buffer as the last run (or the caller) left it there.
TEST_F(CudaExecutorGraphTest, IoSetsKeepTheirOwnBuffersAndGraphs) {
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  CudaExecutorOptions options;
  options.io_sets = 2;
  auto executor = CudaExecutor::Create(graph, options);
  ASSERT_TRUE(executor.ok()) << executor.status();
  CudaExecutor& ex = **executor;
  ASSERT_EQ(ex.io_sets(), 2);
  ASSERT_NE(ex.input_buffer(0, 0), nullptr);
  EXPECT_NE(ex.input_buffer(0, 0), ex.input_buffer(1, 0));
  EXPECT_NE(ex.output_buffer(0, 0), ex.output_buffer(1, 0));
  EXPECT_EQ(ex.input_buffer(2, 0), nullptr);
  EXPECT_EQ(ex.output_buffer(0, 1), nullptr);
  const Tensor a = SyntheticInput({1, 3, 64, 64}, 21);
  const Tensor b = SyntheticInput({1, 3, 64, 64}, 22);
  absl::StatusOr<Tensor> want_a = ex.Run(a);  // set 0
  ASSERT_TRUE(want_a.ok()) << want_a.status();
  absl::StatusOr<Tensor> want_b = ex.Run(b);
  ASSERT_TRUE(want_b.ok()) << want_b.status();
  // Set 1 gets a, set 0 gets b; then each runs again from what its buffer holds (graph replay).
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    auto one = ex.RunSet(1, {round == 0 ? a : Tensor()}, {true});
    ASSERT_TRUE(one.ok()) << one.status();
    auto zero = ex.RunSet(0, {round == 0 ? b : Tensor()}, {true});
    ASSERT_TRUE(zero.ok()) << zero.status();
    EXPECT_EQ(std::memcmp(one->at(0).raw_data(), want_a->raw_data(), want_a->bytes()), 0);
    EXPECT_EQ(std::memcmp(zero->at(0).raw_data(), want_b->raw_data(), want_b->bytes()), 0);
  }
  // Without download the output stays on the device only.
  auto kept = ex.RunSet(1, {Tensor()}, {false});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_FALSE(kept->at(0).defined());
  EXPECT_EQ(ex.RunSet(2, {a}, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ex.RunSet(0, {a}, {true, true}).status().code(), absl::StatusCode::kInvalidArgument);
  // RunAll never reads a stale buffer: every input must be given.
  EXPECT_EQ(ex.RunAll({Tensor()}).status().code(), absl::StatusCode::kInvalidArgument);
  CudaExecutorOptions none;
  none.io_sets = 0;
  EXPECT_EQ(CudaExecutor::Create(graph, none).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaExecutorTest, CreateWithoutGpuFailsCleanly) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  const Graph graph = PreparedBuiltin("yolov8n", 64);
  auto executor = CudaExecutor::Create(graph, CudaExecutorOptions());
  EXPECT_EQ(executor.status().code(), absl::StatusCode::kFailedPrecondition) << executor.status();
}

}  // namespace
}  // namespace yolopipe
