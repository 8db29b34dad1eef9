#include "runtime/profiler/profiler.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/fingerprint.h"
#include "graph/prepare.h"
#include "graph/yolov8/stats.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/session.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

constexpr int64_t kImgsz = 64;

// One profile of yolov8n at 64x64, micro-batches {1, 2}, shared by the tests below.
class ProfileYoloV8nTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = LoadModel("yolov8n", BuiltinModelOptions{80, 0, kImgsz});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = new Model(*std::move(model));
    ProfilerOptions options;
    options.microbatch_sizes = {1, 2};
    options.repeats = 2;
    options.warmup = 1;
    progress_ = new std::vector<std::string>();
    options.progress = [](const std::string& line) { progress_->push_back(line); };
    auto profile = ProfileModel(*model_, kImgsz, options);
    ASSERT_TRUE(profile.ok()) << profile.status();
    profile_ = new proto::Profile(*std::move(profile));
    // The expectations come from preparing the graph here, independently of the profiler.
    auto p1 = PrepareForExecution(model_->graph, {1, 3, kImgsz, kImgsz});
    auto p2 = PrepareForExecution(model_->graph, {2, 3, kImgsz, kImgsz});
    ASSERT_TRUE(p1.ok() && p2.ok());
    prepared1_ = new Graph(*std::move(p1));
    prepared2_ = new Graph(*std::move(p2));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete profile_;
    delete progress_;
    delete prepared1_;
    delete prepared2_;
  }
  void SetUp() override { ASSERT_NE(profile_, nullptr); }

  static uint64_t OutputBytes(const Graph& g, const Node& node) {
    uint64_t bytes = 0;
    for (const std::string& out : node.outputs) {
      const Value* v = g.FindValue(out);
      bytes += static_cast<uint64_t>(NumElements(v->shape)) * DTypeSize(v->dtype);
    }
    return bytes;
  }

  static Model* model_;
  static proto::Profile* profile_;
  static std::vector<std::string>* progress_;
  static Graph* prepared1_;
  static Graph* prepared2_;
};

Model* ProfileYoloV8nTest::model_ = nullptr;
proto::Profile* ProfileYoloV8nTest::profile_ = nullptr;
std::vector<std::string>* ProfileYoloV8nTest::progress_ = nullptr;
Graph* ProfileYoloV8nTest::prepared1_ = nullptr;
Graph* ProfileYoloV8nTest::prepared2_ = nullptr;

TEST_F(ProfileYoloV8nTest, NodesFollowThePreparedGraph) {
  const proto::Profile& p = *profile_;
  ASSERT_EQ(p.nodes_size(), static_cast<int>(prepared1_->nodes().size()));
  ASSERT_GT(p.nodes_size(), 100);
  for (int i = 0; i < p.nodes_size(); ++i) {
    const Node& node = prepared1_->nodes()[i];
    EXPECT_EQ(p.nodes(i).name(), node.name);
    EXPECT_EQ(p.nodes(i).op(), node.op_type);
    EXPECT_EQ(p.nodes(i).index(), i);
    EXPECT_THAT(std::vector<std::string>(p.nodes(i).outputs().begin(), p.nodes(i).outputs().end()),
                ::testing::ContainerEq(node.outputs));
    for (const std::string& in : p.nodes(i).inputs()) {
      EXPECT_FALSE(prepared1_->IsInitializer(in)) << node.name << " lists constant " << in;
      EXPECT_NE(std::find(node.inputs.begin(), node.inputs.end(), in), node.inputs.end());
    }
  }
}

TEST_F(ProfileYoloV8nTest, EveryNodeHasOneTimingPerSize) {
  for (const proto::NodeProfile& n : profile_->nodes()) {
    ASSERT_EQ(n.timings_size(), 2) << n.name();
    EXPECT_EQ(n.timings(0).microbatch(), 1);
    EXPECT_EQ(n.timings(1).microbatch(), 2);
    for (const proto::NodeTiming& t : n.timings()) {
      EXPECT_GE(t.min_ms(), 0.0) << n.name();
      EXPECT_LE(t.min_ms(), t.median_ms()) << n.name();
    }
    EXPECT_EQ(n.time_ms(), n.timings(0).median_ms());
    EXPECT_EQ(n.output_bytes(), n.timings(0).output_bytes());
    EXPECT_EQ(n.workspace_bytes(), n.timings(0).workspace_bytes());
  }
}

TEST_F(ProfileYoloV8nTest, OutputBytesMatchShapesAndScaleWithTheBatch) {
  for (int i = 0; i < profile_->nodes_size(); ++i) {
    const proto::NodeProfile& n = profile_->nodes(i);
    const uint64_t at1 = OutputBytes(*prepared1_, prepared1_->nodes()[i]);
    const uint64_t at2 = OutputBytes(*prepared2_, prepared2_->nodes()[i]);
    ASSERT_GT(at1, 0u) << n.name();
    EXPECT_EQ(at2, 2 * at1) << n.name();
    EXPECT_EQ(n.timings(0).output_bytes(), at1) << n.name();
    EXPECT_EQ(n.timings(1).output_bytes(), at2) << n.name();
  }
}

TEST_F(ProfileYoloV8nTest, WeightBytesAndFlops) {
  uint64_t conv_weight_bytes = 0;
  double flops = 0.0;
  int convs = 0;
  for (const proto::NodeProfile& n : profile_->nodes()) {
    if (n.op() == "Conv") {
      ++convs;
      conv_weight_bytes += n.weight_bytes();
      EXPECT_GT(n.flops(), 0.0) << n.name();
    } else {
      EXPECT_EQ(n.flops(), 0.0) << n.name();
    }
    if (n.op() == "MaxPool" || n.op() == "Sigmoid") {
      EXPECT_EQ(n.weight_bytes(), 0u) << n.name();
    }
    flops += n.flops();
  }
  EXPECT_EQ(convs, 64);  // yolov8n: every Conv survives fusion (YOLOV8.md's export has 64)
  // fp32 parameters; built-in yolov8n at 640 has the published 3,151,904 (the count does not
  // depend on the image size).
  EXPECT_EQ(conv_weight_bytes, 4u * 3151904u);
  EXPECT_EQ(conv_weight_bytes, 4u * static_cast<uint64_t>(model_->graph.ParameterCount()));
  EXPECT_DOUBLE_EQ(flops, static_cast<double>(*ConvFlops(*prepared1_)));
  // The executor counts each constant once; nodes count what they read.
  ASSERT_EQ(profile_->runs_size(), 2);
  uint64_t all_weights = 0;
  for (const proto::NodeProfile& n : profile_->nodes()) all_weights += n.weight_bytes();
  EXPECT_GE(all_weights, profile_->runs(0).weight_bytes());
  EXPECT_GE(profile_->runs(0).weight_bytes(), conv_weight_bytes);
}

TEST_F(ProfileYoloV8nTest, TensorsAreConsistentWithTheGraph) {
  const proto::Profile& p = *profile_;
  EXPECT_EQ(p.input_tensor(), "images");
  EXPECT_THAT(std::vector<std::string>(p.output_tensors().begin(), p.output_tensors().end()),
              ElementsAre("output0"));
  std::map<std::string, const proto::NodeProfile*> nodes;
  for (const proto::NodeProfile& n : p.nodes()) nodes[n.name()] = &n;
  std::map<std::string, const proto::TensorProfile*> tensors;
  size_t node_outputs = 0;
  for (const Node& n : prepared1_->nodes()) node_outputs += n.outputs.size();
  EXPECT_EQ(static_cast<size_t>(p.tensors_size()), 1 + node_outputs);
  for (const proto::TensorProfile& t : p.tensors()) {
    EXPECT_TRUE(tensors.emplace(t.name(), &t).second) << "duplicate tensor " << t.name();
    if (t.name() == "images") {
      EXPECT_EQ(t.producer(), "");
    } else {
      ASSERT_TRUE(nodes.count(t.producer())) << t.name() << " producer " << t.producer();
      const auto& outs = nodes[t.producer()]->outputs();
      EXPECT_NE(std::find(outs.begin(), outs.end(), t.name()), outs.end()) << t.name();
    }
    for (const std::string& c : t.consumers()) {
      ASSERT_TRUE(nodes.count(c)) << t.name() << " consumer " << c;
      const auto& ins = nodes[c]->inputs();
      EXPECT_NE(std::find(ins.begin(), ins.end(), t.name()), ins.end())
          << c << " does not list " << t.name();
    }
    EXPECT_EQ(t.graph_output(), t.name() == "output0");
    const Value* v = prepared1_->FindValue(t.name());
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(t.bytes_per_image(), NumElements(v->shape) * DTypeSize(v->dtype)) << t.name();
  }
  // Every activation input of every node is a listed tensor that names the node as a consumer.
  for (const proto::NodeProfile& n : p.nodes()) {
    for (const std::string& in : n.inputs()) {
      ASSERT_TRUE(tensors.count(in)) << in;
      const auto& cons = tensors[in]->consumers();
      EXPECT_NE(std::find(cons.begin(), cons.end(), n.name()), cons.end()) << in;
    }
  }
  EXPECT_EQ(tensors["images"]->bytes_per_image(), 3u * kImgsz * kImgsz * 4u);
  // A = 8*8 + 4*4 + 2*2 anchors at 64x64.
  EXPECT_EQ(tensors["output0"]->bytes_per_image(), (4u + 80u) * 84u * 4u);
  EXPECT_TRUE(tensors["output0"]->consumers().empty());
}

TEST_F(ProfileYoloV8nTest, HeaderFields) {
  const proto::Profile& p = *profile_;
  EXPECT_EQ(p.model(), "yolov8n");
  EXPECT_THAT(p.model_fingerprint(), MatchesRegex("[0-9a-f]{16}"));
  EXPECT_EQ(p.model_fingerprint(), ModelFingerprint(model_->graph));
  EXPECT_THAT(std::vector<int64_t>(p.input_shape().begin(), p.input_shape().end()),
              ElementsAre(1, 3, kImgsz, kImgsz));
  EXPECT_THAT(std::vector<int>(p.microbatch_sizes().begin(), p.microbatch_sizes().end()),
              ElementsAre(1, 2));
  EXPECT_EQ(p.repeats(), 2);
  EXPECT_EQ(p.warmup(), 1);
  EXPECT_EQ(p.created_by(), "yolopipe profile");
  EXPECT_EQ(p.device().kind(), "cpu");
  EXPECT_EQ(p.device().name(), "cpu:0");
  EXPECT_EQ(p.device().threads(), 1);
  EXPECT_THAT(p.device().description(), HasSubstr("cpu:0 (1 thread"));
  double sum = 0.0;
  for (const proto::NodeProfile& n : p.nodes()) sum += n.time_ms();
  EXPECT_NEAR(p.total_ms(), sum, 1e-9 * (1.0 + sum));
  for (int r = 0; r < p.runs_size(); ++r) {
    const proto::MicrobatchRun& run = p.runs(r);
    EXPECT_EQ(run.microbatch(), p.microbatch_sizes(r));
    EXPECT_LE(run.run_min_ms(), run.run_median_ms());
    EXPECT_GT(run.arena_bytes(), 0u);
    double node_sum = 0.0;
    for (const proto::NodeProfile& n : p.nodes()) node_sum += n.timings(r).median_ms();
    EXPECT_NEAR(run.node_sum_ms(), node_sum, 1e-9 * (1.0 + node_sum));
  }
}

TEST_F(ProfileYoloV8nTest, ReportsProgress) {
  // Per size: one "preparing" line, one warm-up and two timed runs.
  EXPECT_EQ(progress_->size(), 2u * (1 + 1 + 2));
  EXPECT_EQ(progress_->front(), "preparing micro-batch 1 (1/2)");
  EXPECT_THAT((*progress_)[1], HasSubstr("profiling micro-batch 1 (1/2): warm-up 1/1"));
  EXPECT_THAT(progress_->back(), HasSubstr("profiling micro-batch 2 (2/2): run 2/2"));
}

// The real executor inserts layout conversions; each one is charged to a node that reads or
// produces the converted tensor.
TEST_F(ProfileYoloV8nTest, RealConversionsAreChargedToAReaderOrTheProducer) {
  auto session = Session::Create(*model_, {1, 3, kImgsz, kImgsz}, SessionOptions{});
  ASSERT_TRUE(session.ok()) << session.status();
  const Graph& g = (*session)->prepared_graph();
  const auto& steps = (*session)->executor().steps();
  auto owner = AttributeStepsToNodes(g, steps);
  ASSERT_TRUE(owner.ok()) << owner.status();
  int conversions = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    const Node& node = g.nodes()[(*owner)[s]];
    if (steps[s].op_type != "LayoutConversion") {
      EXPECT_EQ(node.name, steps[s].name);
      continue;
    }
    ++conversions;
    const std::string tensor = steps[s].name.substr(0, steps[s].name.rfind(':'));
    const bool reads = std::count(node.inputs.begin(), node.inputs.end(), tensor) > 0;
    const bool produces = std::count(node.outputs.begin(), node.outputs.end(), tensor) > 0;
    EXPECT_TRUE(reads || produces) << steps[s].name << " charged to " << node.name;
  }
  EXPECT_GT(conversions, 0) << "channels-last execution should convert somewhere";
}

// A -> (x -> y), B -> (x -> w), C -> (y, w -> o); outputs o and w.
Graph ThreeNodes() {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {1, 1, 1, 1}});
  g.AddNode(Node{"A", "Conv", {"x"}, {"y"}, {}});
  g.AddNode(Node{"B", "Relu", {"x"}, {"w"}, {}});
  g.AddNode(Node{"C", "Add", {"y", "w"}, {"o"}, {}});
  g.AddOutput("o");
  g.AddOutput("w");
  return g;
}

std::vector<ExecutionStep> Steps(const std::vector<std::pair<std::string, std::string>>& list) {
  std::vector<ExecutionStep> steps;
  for (const auto& [name, op] : list) {
    ExecutionStep s;
    s.name = name;
    s.op_type = op;
    steps.push_back(s);
  }
  return steps;
}

TEST(AttributeStepsToNodesTest, ConversionsGoToTheNextReaderElseTheProducer) {
  const Graph g = ThreeNodes();
  auto owner = AttributeStepsToNodes(
      g, Steps({{"x:to_nhwc", "LayoutConversion"},  // read next by A
                {"A", "Conv"},
                {"y:to_plain", "LayoutConversion"},  // B does not read y; C does
                {"B", "Relu"},
                {"C", "Add"},
                {"o:to_plain", "LayoutConversion"},  // graph outputs: nobody reads them later
                {"w:to_plain", "LayoutConversion"}}));
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_THAT(*owner, ElementsAre(0, 0, 2, 1, 2, 2, 1));
}

TEST(AttributeStepsToNodesTest, RejectsStepsThatDoNotMatchTheGraph) {
  const Graph g = ThreeNodes();
  auto missing = AttributeStepsToNodes(g, Steps({{"A", "Conv"}, {"B", "Relu"}}));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("3 nodes"));

  auto wrong = AttributeStepsToNodes(g, Steps({{"A", "Conv"}, {"C", "Add"}, {"B", "Relu"}}));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("'C'"));

  auto wrong_op = AttributeStepsToNodes(g, Steps({{"A", "Relu"}, {"B", "Relu"}, {"C", "Add"}}));
  EXPECT_EQ(wrong_op.status().code(), absl::StatusCode::kInternal);

  auto extra =
      AttributeStepsToNodes(g, Steps({{"A", "Conv"}, {"B", "Relu"}, {"C", "Add"}, {"D", "Add"}}));
  EXPECT_EQ(extra.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(extra.status().message()), HasSubstr("'D'"));

  auto unnamed = AttributeStepsToNodes(
      g, Steps({{"x:sideways", "LayoutConversion"}, {"A", "Conv"}, {"B", "Relu"}, {"C", "Add"}}));
  EXPECT_EQ(unnamed.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(unnamed.status().message()), HasSubstr("x:sideways"));

  auto orphan = AttributeStepsToNodes(
      g, Steps({{"A", "Conv"}, {"B", "Relu"}, {"C", "Add"}, {"q:to_plain", "LayoutConversion"}}));
  EXPECT_EQ(orphan.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(orphan.status().message()), HasSubstr("q:to_plain"));
}

TEST(DefaultMicrobatchSizesTest, PowersOfTwoThenTheBatch) {
  EXPECT_THAT(DefaultMicrobatchSizes(1), ElementsAre(1));
  EXPECT_THAT(DefaultMicrobatchSizes(2), ElementsAre(1, 2));
  EXPECT_THAT(DefaultMicrobatchSizes(6), ElementsAre(1, 2, 4, 6));
  EXPECT_THAT(DefaultMicrobatchSizes(8), ElementsAre(1, 2, 4, 8));
  EXPECT_THAT(DefaultMicrobatchSizes(9), ElementsAre(1, 2, 4, 8, 9));
  EXPECT_THAT(DefaultMicrobatchSizes(0), ElementsAre(1));
}

// Options are checked before any work: an empty Model is never touched.
absl::Status ProfileWith(const ProfilerOptions& options) {
  Model model;
  model.source = "unused";
  model.graph.AddInput(Value{"images", DType::kFloat32, {1, 3, 32, 32}});
  return ProfileModel(model, 32, options).status();
}

TEST(ProfilerOptionsTest, RejectsBadOptions) {
  struct Case {
    std::vector<int> sizes;
    int repeats;
    int warmup;
    int threads;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, 5, 1, 1, "no micro-batch sizes"},
      {{0}, 5, 1, 1, "micro-batch sizes must be 1..4096, got 0"},
      {{1, -2}, 5, 1, 1, "got -2"},
      {{1, 5000}, 5, 1, 1, "got 5000"},
      {{2, 1}, 5, 1, 1, "strictly increasing (sorted, no repeats), got 2,1"},
      {{1, 2, 2}, 5, 1, 1, "strictly increasing (sorted, no repeats), got 1,2,2"},
      {{1}, 0, 1, 1, "repeats must be >= 1, got 0"},
      {{1}, 5, -1, 1, "warmup must be >= 0, got -1"},
      {{1}, 5, 1, 0, "must have >= 1 threads, got 0"},
  };
  for (const Case& c : cases) {
    ProfilerOptions options;
    options.microbatch_sizes = c.sizes;
    options.repeats = c.repeats;
    options.warmup = c.warmup;
    options.device.num_threads = c.threads;
    EXPECT_TRUE(ValidateProfilerOptions(options).code() == absl::StatusCode::kInvalidArgument)
        << c.message;
    const absl::Status status = ProfileWith(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
  ProfilerOptions good;
  EXPECT_TRUE(ValidateProfilerOptions(good).ok());
}

TEST(ProfilerOptionsTest, CudaDeviceWithoutGpuFailsClearly) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  ProfilerOptions options;
  options.device.kind = DeviceKind::kCuda;
  const absl::Status status = ProfileWith(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("no CUDA devices"));
}

// On a GPU: the CUDA profile has the CPU profile's nodes and tensors, a time for every node
// (the Detect head's nodes share one kernel's) and the executor's memory figures.
TEST(ProfilerTest, CudaProfileHasTheCpuProfilesStructure) {
  if (!ListCudaDevices().ok()) GTEST_SKIP() << ListCudaDevices().status();
  auto model = LoadModel("yolov8n", BuiltinModelOptions{80, 0, kImgsz});
  ASSERT_TRUE(model.ok()) << model.status();
  ProfilerOptions cpu;
  cpu.microbatch_sizes = {1, 2};
  cpu.repeats = 2;
  ProfilerOptions gpu = cpu;
  gpu.device.kind = DeviceKind::kCuda;
  auto want = ProfileModel(*model, kImgsz, cpu);
  ASSERT_TRUE(want.ok()) << want.status();
  auto got = ProfileModel(*model, kImgsz, gpu);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->device().kind(), "cuda");
  ASSERT_EQ(got->nodes_size(), want->nodes_size());
  double total = 0;
  for (int i = 0; i < got->nodes_size(); ++i) {
    EXPECT_EQ(got->nodes(i).name(), want->nodes(i).name());
    EXPECT_EQ(got->nodes(i).flops(), want->nodes(i).flops());
    ASSERT_EQ(got->nodes(i).timings_size(), 2);
    EXPECT_GE(got->nodes(i).time_ms(), 0);
    total += got->nodes(i).time_ms();
  }
  EXPECT_GT(total, 0);
  EXPECT_EQ(got->tensors_size(), want->tensors_size());
  ASSERT_EQ(got->runs_size(), 2);
  EXPECT_GT(got->runs(0).arena_bytes(), 0u);
  EXPECT_GT(got->runs(0).weight_bytes(), 0u);
}

TEST(ProfilerOptionsTest, LoadDevicesMustBeCpuDevices) {
  ProfilerOptions options;
  DeviceSpec gpu;
  gpu.kind = DeviceKind::kCuda;
  options.load_devices = {gpu};
  const absl::Status status = ValidateProfilerOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("load devices must be CPU devices"));
  options.load_devices[0] = DeviceSpec();
  options.load_devices[0].num_threads = 0;
  EXPECT_EQ(ValidateProfilerOptions(options).code(), absl::StatusCode::kInvalidArgument);
}

// Under load: the profile names the load devices, has the same structure as one taken alone, and
// the caller thread's CPU affinity is what it was before.
TEST(ProfilerTest, UnderLoadRecordsTheLoadDevicesAndRestoresAffinity) {
  auto model = LoadModel("yolov8n", BuiltinModelOptions{80, 0, kImgsz});
  ASSERT_TRUE(model.ok()) << model.status();
  auto devices = ParseDevices("cpu:3", 1);
  ASSERT_TRUE(devices.ok());
  cpu_set_t before;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  ProfilerOptions options;
  options.microbatch_sizes = {1};
  options.repeats = 1;
  options.warmup = 0;
  options.device = (*devices)[0];
  options.load_devices = {(*devices)[1], (*devices)[2]};
  auto loaded = ProfileModel(*model, kImgsz, options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(loaded->load_devices_size(), 2);
  EXPECT_EQ(loaded->load_devices(0), "cpu:1");
  EXPECT_EQ(loaded->load_devices(1), "cpu:2");
  options.load_devices.clear();
  auto alone = ProfileModel(*model, kImgsz, options);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->load_devices_size(), 0);
  ASSERT_EQ(loaded->nodes_size(), alone->nodes_size());
  for (int i = 0; i < alone->nodes_size(); ++i) {
    EXPECT_EQ(loaded->nodes(i).name(), alone->nodes(i).name());
    // Zero-copy views cost nothing either way; every other node was timed.
    EXPECT_EQ(loaded->nodes(i).time_ms() == 0.0, alone->nodes(i).time_ms() == 0.0)
        << loaded->nodes(i).name();
  }
  EXPECT_GT(loaded->total_ms(), 0.0);
  cpu_set_t after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
}

TEST(ProfilerTest, RejectsAModelWithTwoInputs) {
  Model model;
  model.source = "two.onnx";
  model.graph.AddInput(Value{"a", DType::kFloat32, {1, 3, 32, 32}});
  model.graph.AddInput(Value{"b", DType::kFloat32, {1, 3, 32, 32}});
  auto profile = ProfileModel(model, 32, ProfilerOptions{});
  EXPECT_EQ(profile.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(profile.status().message()), HasSubstr("'two.onnx' has 2 inputs (a, b)"));
}

TEST(DescribeDeviceTest, CpuDevice) {
  DeviceSpec d;
  d.index = 2;
  d.num_threads = 3;
  d.first_core = 4;
  const proto::DeviceDescription desc = DescribeDevice(d);
  EXPECT_EQ(desc.kind(), "cpu");
  EXPECT_EQ(desc.name(), "cpu:2");
  EXPECT_EQ(desc.threads(), 3);
  EXPECT_THAT(desc.description(), HasSubstr("cpu:2 (3 threads, cores 4-6)"));
}

}  // namespace
}  // namespace yolopipe
