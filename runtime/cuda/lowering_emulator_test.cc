#include "runtime/cuda/lowering_emulator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/partition.h"
#include "graph/testing/contiguous_stages.h"
#include "graph/prepare.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/executor.h"
#include "runtime/model.h"

namespace yolopipe {
namespace {

using ::yolopipe::testing::ContiguousStages;

using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
constexpr int64_t kBatch = 2;
const Shape kImageShape = {kBatch, 3, kImgsz, kImgsz};

absl::StatusOr<Graph> PreparedYolov8n() {
  BuiltinModelOptions options;
  options.imgsz = kImgsz;
  absl::StatusOr<Model> model = LoadModel("yolov8n", options);
  if (!model.ok()) return model.status();
  absl::StatusOr<Shape> shape = InputShapeFor(*model, kBatch, kImgsz);
  if (!shape.ok()) return shape.status();
  return PrepareForExecution(model->graph, *shape);
}

// The CPU executor (oneDNN convolutions, reference kernels elsewhere): the oracle.
absl::StatusOr<std::vector<Tensor>> RunOnCpu(const Graph& graph,
                                             const std::vector<Tensor>& inputs) {
  ExecutorOptions options;
  options.backend = ops::Backend::kCpu;
  options.num_threads = 2;
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(graph, options);
  if (!executor.ok()) return executor.status();
  return (*executor)->Run(inputs);
}

// ---- Comparisons ---------------------------------------------------------------------------------

// Detections (B, 4 + nc, A): rows 0-3 boxes in input pixels, rows 4.. class scores in [0, 1].
struct DetectionTolerance {
  double box_relative;  // |got - want| <= box_relative * max(1, |want|) + box_abs
  double box_abs;
  double score_abs;
};
// float32 plan: the emulator does every operation in float32 like the CPU executor; only the
// order of the convolution sums differs (a few ulp per layer). Measured worst differences at
// imgsz 64 are 1.2e-4 px on boxes (16 ulp of a 64 px coordinate) and 1e-8 on scores. These bounds
// (the GPU test's in cuda_executor_test.cc) leave an order of magnitude of room on boxes and four
// on scores, while every layout fault the emulator exists to catch moves results by whole pixels
// or gives NaN (see EmulatorCorruptionTest).
constexpr DetectionTolerance kFloat32Tolerance = {1e-3, 0.0, 1e-4};
// float16 plan: every activation and weight rounded to binary16 (2^-11 relative each) through
// ~60 layers. The GPU test's bounds at imgsz 64: boxes within half a pixel, scores within 2e-3;
// measured worst at imgsz 64 are 0.09-0.10 px and 3e-5 (yolov8n and yolov8s, built-in and ONNX).
constexpr DetectionTolerance kFloat16Tolerance = {0.0, 0.5, 2e-3};

struct Mismatch {
  int64_t bad = 0;  // elements outside the tolerance, NaN and infinities included
  double worst_box = 0.0;
  double worst_score = 0.0;
  std::string ToString() const {
    return absl::StrCat(bad, " elements outside the tolerance; worst box error ", worst_box,
                        " px, worst score error ", worst_score);
  }
};

Mismatch CompareDetections(const Tensor& got, const Tensor& want, const DetectionTolerance& tol) {
  Mismatch m;
  if (got.shape() != want.shape() || got.shape().size() != 3) {
    m.bad = want.num_elements() + 1;
    return m;
  }
  const int64_t batch = got.shape()[0], rows = got.shape()[1], anchors = got.shape()[2];
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t a = 0; a < anchors; ++a) {
        const int64_t i = (b * rows + r) * anchors + a;
        const double diff = std::fabs(static_cast<double>(g[i]) - w[i]);
        if (!std::isfinite(g[i])) {
          ++m.bad;
          continue;
        }
        if (r < 4) {
          m.worst_box = std::max(m.worst_box, diff);
          if (diff > tol.box_relative * std::max(1.0, std::fabs(static_cast<double>(w[i]))) +
                         tol.box_abs) {
            ++m.bad;
          }
        } else {
          m.worst_score = std::max(m.worst_score, diff);
          if (diff > tol.score_abs) ++m.bad;
        }
      }
    }
  }
  return m;
}

// A 4-D activation a stage sends: |got - want| <= relative * max(1, max |want|). Scaled by the
// tensor's largest magnitude, since the errors of a convolution scale with its operands, not with
// each (possibly near-zero) output.
struct ActivationMismatch {
  int64_t bad = 0;
  double worst = 0.0;
  double scale = 0.0;
};

ActivationMismatch CompareActivations(const Tensor& got, const Tensor& want, double relative) {
  ActivationMismatch m;
  if (got.shape() != want.shape()) {
    m.bad = want.num_elements() + 1;
    return m;
  }
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    m.scale = std::max(m.scale, std::fabs(static_cast<double>(w[i])));
  }
  const double bound = relative * std::max(1.0, m.scale);
  for (int64_t i = 0; i < want.num_elements(); ++i) {
    const double diff = std::fabs(static_cast<double>(g[i]) - w[i]);
    if (!std::isfinite(g[i]) || diff > bound) ++m.bad;
    if (std::isfinite(g[i])) m.worst = std::max(m.worst, diff);
  }
  return m;
}

// Relative bounds for stage activations (of the largest magnitude, ~5-16 here). Measured worst:
// float32 1.5e-6, float16 1e-3 (binary16 rounding, 4.9e-4 relative per operand, over a stage's
// layers); each bound leaves a margin of 5x or more.
constexpr double kFloat32ActivationTolerance = 1e-4;
constexpr double kFloat16ActivationTolerance = 5e-3;

// ---- The whole model -----------------------------------------------------------------------------

// The prepared yolov8n (imgsz 64, batch 2), one input and the CPU executor's output for it, shared
// by the tests (building them takes most of a test's time).
class EmulatorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Graph> graph = PreparedYolov8n();
    ASSERT_TRUE(graph.ok()) << graph.status();
    graph_ = new Graph(std::move(*graph));
    input_ = new Tensor(SyntheticInput(kImageShape, 7));
    absl::StatusOr<std::vector<Tensor>> want = RunOnCpu(*graph_, {*input_});
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_EQ(want->size(), 1u);
    want_ = new Tensor((*want)[0]);
  }
  static void TearDownTestSuite() {
    delete graph_;
    delete input_;
    delete want_;
    graph_ = nullptr;
    input_ = nullptr;
    want_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(graph_, nullptr);
    ASSERT_NE(want_, nullptr);
  }

  static CudaLoweringPlan Plan(DType precision, bool concat_in_place) {
    absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(*graph_, precision, concat_in_place);
    EXPECT_TRUE(plan.ok()) << plan.status();
    return plan.ok() ? std::move(*plan) : CudaLoweringPlan();
  }

  static Graph* graph_;
  static Tensor* input_;
  static Tensor* want_;
};

Graph* EmulatorTest::graph_ = nullptr;
Tensor* EmulatorTest::input_ = nullptr;
Tensor* EmulatorTest::want_ = nullptr;

struct WholeModelCase {
  DType precision;
  bool concat_in_place;
};

class EmulatorWholeModelTest : public EmulatorTest,
                               public ::testing::WithParamInterface<WholeModelCase> {};

TEST_P(EmulatorWholeModelTest, MatchesCpuExecutor) {
  const WholeModelCase& c = GetParam();
  const CudaLoweringPlan plan = Plan(c.precision, c.concat_in_place);
  ASSERT_FALSE(plan.steps.empty());
  // Both modes: the layout check must find nothing in a correct plan, and must not change the
  // numbers.
  CudaEmulatorOptions checked;
  checked.check_layout = true;
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_}, checked);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  const Tensor& out = (*got)[0];
  ASSERT_EQ(out.shape(), (Shape{kBatch, 84, 84}));
  const Mismatch m = CompareDetections(
      out, *want_, c.precision == DType::kFloat16 ? kFloat16Tolerance : kFloat32Tolerance);
  EXPECT_EQ(m.bad, 0) << m.ToString();
  std::printf("[ measured ] %s concat_in_place=%d: %s\n", DTypeName(c.precision).c_str(),
              c.concat_in_place, m.ToString().c_str());

  absl::StatusOr<std::vector<Tensor>> unchecked = EmulateCudaPlan(plan, {*input_});
  ASSERT_TRUE(unchecked.ok()) << unchecked.status();
  EXPECT_EQ(std::memcmp((*unchecked)[0].raw_data(), out.raw_data(), out.bytes()), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Plans, EmulatorWholeModelTest,
    ::testing::Values(WholeModelCase{DType::kFloat32, true}, WholeModelCase{DType::kFloat32, false},
                      WholeModelCase{DType::kFloat16, true},
                      WholeModelCase{DType::kFloat16, false}),
    [](const ::testing::TestParamInfo<WholeModelCase>& info) {
      return absl::StrCat(info.param.precision == DType::kFloat16 ? "Float16" : "Float32",
                          info.param.concat_in_place ? "InPlace" : "Copies");
    });

// In-place and copied Concats are the same computation in the same order: identical bits.
TEST_F(EmulatorTest, ConcatInPlaceEqualsCopies) {
  absl::StatusOr<std::vector<Tensor>> a = EmulateCudaPlan(Plan(DType::kFloat16, true), {*input_});
  absl::StatusOr<std::vector<Tensor>> b =
      EmulateCudaPlan(Plan(DType::kFloat16, false), {*input_});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ((*a)[0].shape(), (*b)[0].shape());
  EXPECT_EQ(std::memcmp((*a)[0].raw_data(), (*b)[0].raw_data(), (*a)[0].bytes()), 0);
}

TEST_F(EmulatorTest, AcceptsChannelsLastInput) {
  const CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  absl::StatusOr<Tensor> nhwc = input_->ToLayout(Layout::kNHWC);
  ASSERT_TRUE(nhwc.ok()) << nhwc.status();
  absl::StatusOr<std::vector<Tensor>> a = EmulateCudaPlan(plan, {*input_});
  absl::StatusOr<std::vector<Tensor>> b = EmulateCudaPlan(plan, {*nhwc});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(std::memcmp((*a)[0].raw_data(), (*b)[0].raw_data(), (*a)[0].bytes()), 0);
}

// Another scale, and an Ultralytics-style ONNX export made by PyTorch (tests/fixtures): a Detect
// head this project did not build, so DetectDecode's semantics are checked against the exporter's.
struct OtherModelCase {
  std::string model;
  int64_t batch;
  DType precision;
};

class EmulatorOtherModelTest : public ::testing::TestWithParam<OtherModelCase> {};

TEST_P(EmulatorOtherModelTest, MatchesCpuExecutor) {
  const OtherModelCase& c = GetParam();
  BuiltinModelOptions options;
  options.imgsz = kImgsz;
  absl::StatusOr<Model> model = LoadModel(c.model, options);
  ASSERT_TRUE(model.ok()) << model.status();
  absl::StatusOr<Shape> shape = InputShapeFor(*model, c.batch, kImgsz);
  ASSERT_TRUE(shape.ok()) << shape.status();
  absl::StatusOr<Graph> graph = PrepareForExecution(model->graph, *shape);
  ASSERT_TRUE(graph.ok()) << graph.status();
  const Tensor input = SyntheticInput(*shape, 3);
  absl::StatusOr<std::vector<Tensor>> want = RunOnCpu(*graph, {input});
  ASSERT_TRUE(want.ok()) << want.status();
  absl::StatusOr<CudaLoweringPlan> plan = PlanCudaLowering(*graph, c.precision);
  ASSERT_TRUE(plan.ok()) << plan.status();
  CudaEmulatorOptions checked;
  checked.check_layout = true;
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(*plan, {input}, checked);
  ASSERT_TRUE(got.ok()) << got.status();
  const Mismatch m =
      CompareDetections((*got)[0], (*want)[0],
                        c.precision == DType::kFloat16 ? kFloat16Tolerance : kFloat32Tolerance);
  EXPECT_EQ(m.bad, 0) << m.ToString();
  std::printf("[ measured ] %s b%lld %s: %s\n", c.model.c_str(), static_cast<long long>(c.batch),
              DTypeName(c.precision).c_str(), m.ToString().c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Models, EmulatorOtherModelTest,
    ::testing::Values(OtherModelCase{"yolov8s", 2, DType::kFloat32},
                      OtherModelCase{"yolov8s", 2, DType::kFloat16},
                      OtherModelCase{"tests/fixtures/yolov8n_dynamic.onnx", 1, DType::kFloat32},
                      OtherModelCase{"tests/fixtures/yolov8n_dynamic.onnx", 1, DType::kFloat16}),
    [](const ::testing::TestParamInfo<OtherModelCase>& info) {
      return absl::StrCat(info.param.model == "yolov8s" ? "Yolov8sBuiltin" : "Yolov8nOnnx",
                          info.param.precision == DType::kFloat16 ? "Float16" : "Float32");
    });

// ---- Corrupted plans: the emulator must really use the plan's layout -------------------------------

int StepIndex(const CudaLoweringPlan& plan, const std::string& name) {
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    if (plan.steps[s].name == name) return static_cast<int>(s);
  }
  return -1;
}

int ActivationIndex(const CudaLoweringPlan& plan, const std::string& name) {
  for (size_t i = 0; i < plan.activations.size(); ++i) {
    if (plan.activations[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

struct Corruption {
  std::string name;
  // Changes the plan; returns a description of what it did (for the failure messages), or an
  // empty string when the plan does not have what it needs.
  std::function<std::string(CudaLoweringPlan*)> apply;
  // With check_layout, the emulator must refuse the plan (Internal) with this in the message;
  // empty: the fault is in the numbers only (the layout stays consistent).
  std::string layout_message;
};

// The longest-lived dense activation A, and a convolution output B born and dead inside A's
// lifetime, no larger than A, and not made from A: B moved onto A clobbers A while A is still to be
// read (the fault the memory plan must never make).
std::string MoveOntoLiveActivation(CudaLoweringPlan* plan) {
  auto& acts = plan->activations;
  std::vector<bool> is_wide(acts.size(), false);
  for (const CudaActivation& a : acts) {
    if (a.alias_of >= 0) is_wide[a.alias_of] = true;
  }
  int victim = -1;
  for (size_t i = 0; i < acts.size(); ++i) {
    if (acts[i].alias_of >= 0) continue;
    if (victim < 0 || acts[i].last_step - acts[i].first_step >
                          acts[victim].last_step - acts[victim].first_step) {
      victim = static_cast<int>(i);
    }
  }
  if (victim < 0) return "";
  const CudaActivation& a = acts[victim];
  for (size_t j = 0; j < acts.size(); ++j) {
    CudaActivation& b = acts[j];
    if (static_cast<int>(j) == victim || b.alias_of >= 0 || is_wide[j]) continue;
    if (b.first_step <= a.first_step || b.last_step >= a.last_step || b.bytes > a.bytes) continue;
    const CudaStep& producer = plan->steps[b.first_step];
    if (producer.kind != CudaStepKind::kConv) continue;
    if (std::count(producer.inputs.begin(), producer.inputs.end(), victim)) continue;
    b.offset = a.offset;
    return absl::StrCat("moved activation ", j, " '", b.name, "' onto activation ", victim, " '",
                        a.name, "' (alive from step ", a.first_step, " to ", a.last_step, ")");
  }
  return "";
}

std::string FlipInPlaceToCopy(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.2.cat");
  if (s < 0) return "";
  CudaStep& cat = plan->steps[s];
  if (cat.written_in_place.size() != 3 || !cat.written_in_place[2]) return "";
  cat.written_in_place[2] = false;
  return "model.2.cat copies its in-place input 2";
}

std::string FlipCopyToInPlace(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.2.cat");
  if (s < 0) return "";
  CudaStep& cat = plan->steps[s];
  if (cat.written_in_place.empty() || cat.written_in_place[0]) return "";
  cat.written_in_place[0] = true;
  return "model.2.cat skips copying input 0";
}

std::string SwapConcatOffsets(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.2.cat");
  if (s < 0) return "";
  CudaStep& cat = plan->steps[s];
  if (cat.channel_offsets.size() < 2) return "";
  std::swap(cat.channel_offsets[0], cat.channel_offsets[1]);
  return "model.2.cat writes its first two inputs into each other's channels";
}

std::string MoveAliasChannels(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.22.cv3.0.2");
  if (s < 0) return "";
  CudaActivation& cls = plan->activations[plan->steps[s].outputs[0]];
  if (cls.alias_of < 0 || cls.channel_offset != 64) return "";
  cls.channel_offset = 63;
  return "the class logits of level 0 are written one channel early";
}

std::string SwapWeights(CudaLoweringPlan* plan) {
  const int a = StepIndex(*plan, "model.2.m.0.cv1");
  const int b = StepIndex(*plan, "model.2.m.0.cv2");
  if (a < 0 || b < 0) return "";
  std::swap(plan->steps[a].weight_offset, plan->steps[b].weight_offset);
  return "model.2.m.0.cv1 and cv2 (both 16 -> 16, 3x3) use each other's weights";
}

std::string ShiftBias(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.0");
  if (s < 0 || !plan->steps[s].has_bias) return "";
  plan->steps[s].bias_offset += 4;
  return "model.0 reads its bias one float late";
}

std::string SwapSteps(CudaLoweringPlan* plan) {
  const int s = StepIndex(*plan, "model.1");
  if (s < 1 || plan->steps[s - 1].name != "model.0") return "";
  std::swap(plan->steps[s - 1], plan->steps[s]);
  return "model.1 runs before model.0, whose output it reads";
}

class EmulatorCorruptionTest : public EmulatorTest,
                               public ::testing::WithParamInterface<Corruption> {};

TEST_P(EmulatorCorruptionTest, ComparisonFails) {
  const Corruption& c = GetParam();
  CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  const std::string what = c.apply(&plan);
  ASSERT_FALSE(what.empty()) << "the plan no longer has what corruption '" << c.name
                             << "' changes";
  SCOPED_TRACE(what);
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  ASSERT_TRUE(got.ok()) << got.status();
  const Mismatch m = CompareDetections((*got)[0], *want_, kFloat32Tolerance);
  EXPECT_GT(m.bad, 0) << "the corrupted plan still matches: " << m.ToString();

  CudaEmulatorOptions checked;
  checked.check_layout = true;
  absl::StatusOr<std::vector<Tensor>> strict = EmulateCudaPlan(plan, {*input_}, checked);
  if (c.layout_message.empty()) {
    EXPECT_TRUE(strict.ok()) << strict.status();
  } else {
    EXPECT_EQ(strict.status().code(), absl::StatusCode::kInternal) << strict.status();
    EXPECT_THAT(std::string(strict.status().message()), HasSubstr(c.layout_message));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Faults, EmulatorCorruptionTest,
    ::testing::Values(
        Corruption{"MoveOntoLiveActivation", MoveOntoLiveActivation, "which holds activation"},
        Corruption{"FlipInPlaceToCopy", FlipInPlaceToCopy, "overlaps its output"},
        Corruption{"FlipCopyToInPlace", FlipCopyToInPlace, "'model.2.cat' (pixel"},
        Corruption{"SwapConcatOffsets", SwapConcatOffsets, ""},
        Corruption{"MoveAliasChannels", MoveAliasChannels, "'model.22.cat.0' (pixel"},
        Corruption{"SwapWeights", SwapWeights, ""}, Corruption{"ShiftBias", ShiftBias, ""},
        Corruption{"SwapSteps", SwapSteps, "which no step has written"}),
    [](const ::testing::TestParamInfo<Corruption>& info) { return info.param.name; });

// ---- Pipeline stages -------------------------------------------------------------------------------

struct StagesCase {
  DType precision;
  // The second stage ends 3 nodes before the last: inside the Detect head, which
  // KeepDetectHeadInLastStage moves whole into the last stage (which then receives the levels).
  bool cut_in_head;
};

class EmulatorStagesTest : public EmulatorTest,
                           public ::testing::WithParamInterface<StagesCase> {};

TEST_P(EmulatorStagesTest, EveryStageMatchesCpu) {
  const DType precision = GetParam().precision;
  const bool fp16 = precision == DType::kFloat16;
  const size_t n = graph_->nodes().size();
  const std::vector<size_t> ends =
      GetParam().cut_in_head ? std::vector<size_t>{n / 2, n - 3, n}
                             : std::vector<size_t>{n / 3, 2 * n / 3, n};
  absl::StatusOr<std::vector<std::vector<std::string>>> kept =
      KeepDetectHeadInLastStage(*graph_, ContiguousStages(*graph_, ends));
  ASSERT_TRUE(kept.ok()) << kept.status();
  absl::StatusOr<std::vector<StageGraph>> stages = PartitionGraph(*graph_, *kept);
  ASSERT_TRUE(stages.ok()) << stages.status();
  ASSERT_EQ(stages->size(), 3u);

  std::map<std::string, Tensor> sent;  // tensor name -> the emulated value a stage sent
  sent[graph_->inputs()[0]] = *input_;
  Tensor final_output;
  for (const StageGraph& stage : *stages) {
    SCOPED_TRACE(absl::StrCat("stage ", stage.stage));
    absl::StatusOr<CudaLoweringPlan> plan =
        PlanCudaLowering(stage.graph, precision, true, kImageShape);
    ASSERT_TRUE(plan.ok()) << plan.status();
    std::vector<Tensor> inputs;
    for (const StageGraph::Receive& r : stage.receives) {
      auto it = sent.find(r.tensor);
      ASSERT_NE(it, sent.end()) << r.tensor << " from stage " << r.from_stage;
      inputs.push_back(it->second);
    }
    CudaEmulatorOptions checked;
    checked.check_layout = true;
    absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(*plan, inputs, checked);
    ASSERT_TRUE(got.ok()) << got.status();
    absl::StatusOr<std::vector<Tensor>> want = RunOnCpu(stage.graph, inputs);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_EQ(got->size(), stage.sends.size());
    ASSERT_EQ(want->size(), stage.sends.size());
    const bool last = stage.stage + 1 == static_cast<int>(stages->size());
    for (size_t o = 0; o < stage.sends.size(); ++o) {
      const std::string& name = stage.sends[o].tensor;
      if (last && o == 0) {
        ASSERT_TRUE(plan->has_detect_head);
        const Mismatch m = CompareDetections((*got)[o], (*want)[o],
                                             fp16 ? kFloat16Tolerance : kFloat32Tolerance);
        EXPECT_EQ(m.bad, 0) << name << ": " << m.ToString();
        final_output = (*got)[o];
      } else {
        const ActivationMismatch m = CompareActivations(
            (*got)[o], (*want)[o],
            fp16 ? kFloat16ActivationTolerance : kFloat32ActivationTolerance);
        EXPECT_EQ(m.bad, 0) << name << ": worst " << m.worst << " of max |value| " << m.scale;
        std::printf("[ measured ] %s stage %d sends %s: worst %g of max |value| %g\n",
                    DTypeName(precision).c_str(), stage.stage, name.c_str(), m.worst, m.scale);
      }
      sent[name] = (*got)[o];
    }
  }
  ASSERT_TRUE(final_output.defined());
  const Mismatch m =
      CompareDetections(final_output, *want_, fp16 ? kFloat16Tolerance : kFloat32Tolerance);
  EXPECT_EQ(m.bad, 0) << "the chained stages against the whole model: " << m.ToString();
  std::printf("[ measured ] %s chained stages vs whole model: %s\n", DTypeName(precision).c_str(),
              m.ToString().c_str());
}

INSTANTIATE_TEST_SUITE_P(
    Splits, EmulatorStagesTest,
    ::testing::Values(StagesCase{DType::kFloat32, false}, StagesCase{DType::kFloat16, false},
                      StagesCase{DType::kFloat32, true}),
    [](const ::testing::TestParamInfo<StagesCase>& info) {
      return absl::StrCat(info.param.precision == DType::kFloat16 ? "Float16" : "Float32",
                          info.param.cut_in_head ? "CutInHead" : "Thirds");
    });

// ---- Rejections ----------------------------------------------------------------------------------

TEST_F(EmulatorTest, RejectsWrongInputCount) {
  const CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  absl::StatusOr<std::vector<Tensor>> none = EmulateCudaPlan(plan, {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("expected 1 inputs, got 0"));
  absl::StatusOr<std::vector<Tensor>> two = EmulateCudaPlan(plan, {*input_, *input_});
  EXPECT_EQ(two.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(two.status().message(), HasSubstr("expected 1 inputs, got 2"));
}

TEST_F(EmulatorTest, RejectsWrongInputShapeOrDtype) {
  const CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  absl::StatusOr<std::vector<Tensor>> small =
      EmulateCudaPlan(plan, {SyntheticInput({kBatch, 3, 32, 32}, 1)});
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(small.status().message(), HasSubstr("(2, 3, 64, 64)"));
  EXPECT_THAT(small.status().message(), HasSubstr("'images'"));
  absl::StatusOr<std::vector<Tensor>> ints =
      EmulateCudaPlan(plan, {Tensor(DType::kInt64, kImageShape)});
  EXPECT_EQ(ints.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ints.status().message(), HasSubstr("must be float32"));
  absl::StatusOr<std::vector<Tensor>> undefined = EmulateCudaPlan(plan, {Tensor()});
  EXPECT_EQ(undefined.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(undefined.status().message(), HasSubstr("got nothing"));
}

TEST_F(EmulatorTest, RejectsBadPrecision) {
  CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  plan.precision = DType::kInt64;
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("precision"));
}

TEST_F(EmulatorTest, RejectsActivationOutsideTheArena) {
  CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  const int id = ActivationIndex(plan, plan.activations[1].name);
  plan.activations[id].offset = plan.arena_bytes;
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(),
              HasSubstr(absl::StrCat("'", plan.activations[id].name, "'")));
  EXPECT_THAT(got.status().message(), HasSubstr("outside the arena"));
}

TEST_F(EmulatorTest, RejectsWeightsOutsideTheBlob) {
  CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  const int s = StepIndex(plan, "model.0");
  ASSERT_GE(s, 0);
  plan.steps[s].weight_offset = plan.weights.size() - 4;
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(), HasSubstr("'model.0' (Conv): weights"));

  plan = Plan(DType::kFloat32, true);
  plan.steps[s].bias_offset = plan.weights.size();
  got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(), HasSubstr("'model.0' (Conv): bias"));
}

TEST_F(EmulatorTest, RejectsSliceThatDoesNotFit) {
  CudaLoweringPlan plan = Plan(DType::kFloat32, false);
  const int s = StepIndex(plan, "model.2.cat");
  ASSERT_GE(s, 0);
  plan.steps[s].channel_offsets.back() += 1;  // the last input now overhangs the output
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("'model.2.cat' (Concat): CopyChannelSlice"));
  EXPECT_THAT(got.status().message(), HasSubstr("does not fit"));
}

TEST_F(EmulatorTest, RejectsMalformedSteps) {
  CudaLoweringPlan plan = Plan(DType::kFloat32, true);
  const int s = StepIndex(plan, "model.0");
  ASSERT_GE(s, 0);
  plan.steps[s].inputs = {static_cast<int>(plan.activations.size())};
  absl::StatusOr<std::vector<Tensor>> got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(), HasSubstr("'model.0' (Conv): input activation id"));

  plan = Plan(DType::kFloat32, true);
  plan.steps[s].has_residual = true;  // but only one input
  got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(), HasSubstr("expected 2 inputs and 1 outputs"));

  plan = Plan(DType::kFloat32, true);
  plan.steps[s].conv.dtype = DType::kFloat16;
  got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(got.status().message(), HasSubstr("planned in float16"));

  plan = Plan(DType::kFloat32, true);
  plan.steps[s].conv.groups = 5;  // 3 input channels
  got = EmulateCudaPlan(plan, {*input_});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(got.status().message(), HasSubstr("divisible by groups"));
}

}  // namespace
}  // namespace yolopipe
