#include "runtime/pipeline/testing/emulated_device_path.h"

#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/dtype.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "graph/prepare.h"
#include "gtest/gtest.h"
#include "runtime/cuda/nccl_communicator.h"
#include "runtime/executor.h"
#include "runtime/model.h"
#include "runtime/pipeline/device_path.h"

namespace yolopipe {
namespace testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// ---- EmulatedStageRunner ----------------------------------------------------------------------

Tensor RandomTensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// x(1,3,8,8) -> conv 3x3 -> a(1,4,8,8); s = a + y, y(1,4,8,8); d = maxpool 2x2 (s) (1,4,4,4);
// flat = reshape(d) (1,4,16). Outputs: s (a 4-D activation the CPU backend keeps channels-last)
// and flat (a zero-copy view of d): two inputs and two outputs, like a pipeline stage's graph.
Graph TwoInputGraph() {
  Graph g;
  g.AddInput({"x", DType::kFloat32, {1, 3, 8, 8}});
  g.AddInput({"y", DType::kFloat32, {1, 4, 8, 8}});
  g.AddInitializer("w", RandomTensor({4, 3, 3, 3}, 11));
  g.AddInitializer("b", RandomTensor({4}, 12));
  g.AddInitializer("shape", Tensor::FromInt64s({3}, {1, 4, -1}));
  Node conv;
  conv.name = "conv";
  conv.op_type = "Conv";
  conv.inputs = {"x", "w", "b"};
  conv.outputs = {"a"};
  conv.attrs.Set("kernel_shape", std::vector<int64_t>{3, 3});
  conv.attrs.Set("pads", std::vector<int64_t>{1, 1, 1, 1});
  conv.attrs.Set("strides", std::vector<int64_t>{1, 1});
  g.AddNode(conv);
  Node add;
  add.name = "add";
  add.op_type = "Add";
  add.inputs = {"a", "y"};
  add.outputs = {"s"};
  g.AddNode(add);
  Node pool;
  pool.name = "pool";
  pool.op_type = "MaxPool";
  pool.inputs = {"s"};
  pool.outputs = {"d"};
  pool.attrs.Set("kernel_shape", std::vector<int64_t>{2, 2});
  pool.attrs.Set("strides", std::vector<int64_t>{2, 2});
  g.AddNode(pool);
  Node reshape;
  reshape.name = "reshape";
  reshape.op_type = "Reshape";
  reshape.inputs = {"d", "shape"};
  reshape.outputs = {"flat"};
  g.AddNode(reshape);
  g.AddOutput("s");
  g.AddOutput("flat");
  g.SetValue({"a", DType::kFloat32, {1, 4, 8, 8}});
  g.SetValue({"s", DType::kFloat32, {1, 4, 8, 8}});
  g.SetValue({"d", DType::kFloat32, {1, 4, 4, 4}});
  g.SetValue({"flat", DType::kFloat32, {1, 4, 16}});
  return g;
}

const Shape kX = {1, 3, 8, 8};
const Shape kY = {1, 4, 8, 8};
const Shape kS = {1, 4, 8, 8};
const Shape kFlat = {1, 4, 16};

// What a plain CPU executor (a separate instance) computes for `inputs`.
std::vector<Tensor> ExecutorOutputs(const Graph& graph, const std::vector<Tensor>& inputs) {
  ExecutorOptions options;
  options.backend = ops::Backend::kCpu;
  options.num_threads = 1;
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(graph, options);
  EXPECT_TRUE(executor.ok()) << executor.status();
  if (!executor.ok()) return {};
  absl::StatusOr<std::vector<Tensor>> outputs = (*executor)->Run(inputs);
  EXPECT_TRUE(outputs.ok()) << outputs.status();
  return outputs.ok() ? *std::move(outputs) : std::vector<Tensor>();
}

// A copy of `shape`'s worth of float32 bytes at `data` ("device" memory) as a plain tensor.
Tensor FromBuffer(const void* data, const Shape& shape) {
  Tensor t(DType::kFloat32, shape);
  std::memcpy(t.raw_data(), data, t.bytes());
  return t;
}

void ExpectBitwiseEqual(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  EXPECT_TRUE(BitwiseEqual(actual, expected))
      << what << ": " << actual.DebugString() << " vs " << expected.DebugString();
}

std::unique_ptr<DeviceStageRunner> MakeRunner(const Graph& graph, int io_sets) {
  absl::StatusOr<std::unique_ptr<DeviceStageRunner>> runner =
      EmulatedStageRunner::Create(graph, io_sets);
  EXPECT_TRUE(runner.ok()) << runner.status();
  return runner.ok() ? *std::move(runner) : nullptr;
}

TEST(EmulatedStageRunnerTest, MatchesExecutorAndFillsOutputBuffers) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 2);
  ASSERT_NE(runner, nullptr);
  EXPECT_EQ(runner->io_sets(), 2);
  const Tensor x = RandomTensor(kX, 1), y = RandomTensor(kY, 2);
  const std::vector<Tensor> expected = ExecutorOutputs(g, {x, y});
  ASSERT_EQ(expected.size(), 2u);

  absl::StatusOr<std::vector<Tensor>> got = runner->RunSet(0, {x, y}, {true, true});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  ExpectBitwiseEqual((*got)[0], expected[0], "downloaded s");
  ExpectBitwiseEqual((*got)[1], expected[1], "downloaded flat");
  // The set's buffers hold the inputs and the plain outputs.
  ExpectBitwiseEqual(FromBuffer(runner->input_buffer(0, 0), kX), x, "input buffer x");
  ExpectBitwiseEqual(FromBuffer(runner->input_buffer(0, 1), kY), y, "input buffer y");
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(0, 0), kS), expected[0], "buffer s");
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(0, 1), kFlat), expected[1], "buffer flat");
  // A downloaded tensor is the caller's own copy, not a view of the buffer.
  EXPECT_NE((*got)[0].raw_data(), runner->output_buffer(0, 0));
}

TEST(EmulatedStageRunnerTest, AcceptsChannelsLastInputs) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 1);
  ASSERT_NE(runner, nullptr);
  const Tensor x = RandomTensor(kX, 3), y = RandomTensor(kY, 4);
  const std::vector<Tensor> expected = ExecutorOutputs(g, {x, y});
  ASSERT_EQ(expected.size(), 2u);
  absl::StatusOr<Tensor> x_nhwc = x.ToLayout(Layout::kNHWC);
  ASSERT_TRUE(x_nhwc.ok()) << x_nhwc.status();

  absl::StatusOr<std::vector<Tensor>> got = runner->RunSet(0, {*x_nhwc, y}, {true, true});
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectBitwiseEqual((*got)[0], expected[0], "s");
  ExpectBitwiseEqual((*got)[1], expected[1], "flat");
  // The buffer is plain (NCHW), whatever layout the host tensor had.
  ExpectBitwiseEqual(FromBuffer(runner->input_buffer(0, 0), kX), x, "input buffer x");
}

TEST(EmulatedStageRunnerTest, ResidentInputsAreReadFromTheBuffer) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 2);
  ASSERT_NE(runner, nullptr);
  const Tensor x = RandomTensor(kX, 5), y = RandomTensor(kY, 6);
  const std::vector<Tensor> expected = ExecutorOutputs(g, {x, y});
  ASSERT_EQ(expected.size(), 2u);

  // Both written into set 1's buffers by "the transport".
  std::memcpy(runner->input_buffer(1, 0), x.raw_data(), x.bytes());
  std::memcpy(runner->input_buffer(1, 1), y.raw_data(), y.bytes());
  absl::StatusOr<std::vector<Tensor>> got = runner->RunSet(1, {Tensor(), Tensor()}, {true, true});
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectBitwiseEqual((*got)[0], expected[0], "s, both resident");
  ExpectBitwiseEqual((*got)[1], expected[1], "flat, both resident");

  // One given, one resident: y stays in set 0's buffer from an earlier run.
  const Tensor x2 = RandomTensor(kX, 7);
  const std::vector<Tensor> expected2 = ExecutorOutputs(g, {x2, y});
  ASSERT_EQ(expected2.size(), 2u);
  ASSERT_TRUE(runner->RunSet(0, {x, y}, {}).ok());
  got = runner->RunSet(0, {x2, Tensor()}, {true, true});
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectBitwiseEqual((*got)[0], expected2[0], "s, y resident");
  ExpectBitwiseEqual((*got)[1], expected2[1], "flat, y resident");
}

TEST(EmulatedStageRunnerTest, SetsAreIndependent) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 2);
  ASSERT_NE(runner, nullptr);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(runner->input_buffer(0, i), runner->input_buffer(1, i)) << i;
    EXPECT_NE(runner->output_buffer(0, i), runner->output_buffer(1, i)) << i;
  }
  const Tensor x0 = RandomTensor(kX, 8), y0 = RandomTensor(kY, 9);
  const Tensor x1 = RandomTensor(kX, 10), y1 = RandomTensor(kY, 11);
  const std::vector<Tensor> expected0 = ExecutorOutputs(g, {x0, y0});
  const std::vector<Tensor> expected1 = ExecutorOutputs(g, {x1, y1});
  ASSERT_EQ(expected0.size(), 2u);
  ASSERT_EQ(expected1.size(), 2u);

  ASSERT_TRUE(runner->RunSet(0, {x0, y0}, {}).ok());
  ASSERT_TRUE(runner->RunSet(1, {x1, y1}, {}).ok());
  // Running set 1 left set 0's buffers alone.
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(0, 0), kS), expected0[0], "set 0 s");
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(0, 1), kFlat), expected0[1], "set 0 flat");
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(1, 0), kS), expected1[0], "set 1 s");
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(1, 1), kFlat), expected1[1], "set 1 flat");
  // And set 0's resident inputs are still its own.
  absl::StatusOr<std::vector<Tensor>> again = runner->RunSet(0, {Tensor(), Tensor()}, {true, true});
  ASSERT_TRUE(again.ok()) << again.status();
  ExpectBitwiseEqual((*again)[0], expected0[0], "set 0 rerun s");
  ExpectBitwiseEqual((*again)[1], expected0[1], "set 0 rerun flat");
}

TEST(EmulatedStageRunnerTest, DownloadSelectsTheReturnedOutputs) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 1);
  ASSERT_NE(runner, nullptr);
  const Tensor x = RandomTensor(kX, 12), y = RandomTensor(kY, 13);
  const std::vector<Tensor> expected = ExecutorOutputs(g, {x, y});
  ASSERT_EQ(expected.size(), 2u);

  absl::StatusOr<std::vector<Tensor>> got = runner->RunSet(0, {x, y}, {false, true});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_FALSE((*got)[0].defined());
  ExpectBitwiseEqual((*got)[1], expected[1], "flat");
  // Not downloaded, but computed into the buffer all the same.
  ExpectBitwiseEqual(FromBuffer(runner->output_buffer(0, 0), kS), expected[0], "buffer s");

  got = runner->RunSet(0, {x, y}, {});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_FALSE((*got)[0].defined());
  EXPECT_FALSE((*got)[1].defined());
}

TEST(EmulatedStageRunnerTest, RejectsBadSetsInputsAndDownloads) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 2);
  ASSERT_NE(runner, nullptr);
  const Tensor x = RandomTensor(kX, 14), y = RandomTensor(kY, 15);

  for (int set : {-1, 2}) {
    absl::StatusOr<std::vector<Tensor>> r = runner->RunSet(set, {x, y}, {});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << set;
    EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat("I/O set ", set))) << set;
  }
  absl::StatusOr<std::vector<Tensor>> r = runner->RunSet(0, {x}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("expected 2 inputs, got 1"));

  r = runner->RunSet(0, {x, y}, {true});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("download lists 1 outputs, the graph has 2"));

  // A refused call copies nothing: x's buffer keeps what it held before.
  ASSERT_TRUE(runner->RunSet(0, {x, y}, {}).ok());
  const Tensor other_x = RandomTensor(kX, 16);
  r = runner->RunSet(0, {other_x, RandomTensor({1, 4, 8, 9}, 17)}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("input 'y' must be float32(1, 4, 8, 8)"));
  EXPECT_THAT(r.status().message(), HasSubstr("(1, 4, 8, 9)"));
  ExpectBitwiseEqual(FromBuffer(runner->input_buffer(0, 0), kX), x, "x buffer after refusal");

  r = runner->RunSet(0, {Tensor(DType::kInt64, kX), y}, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("input 'x' must be float32"));
  EXPECT_THAT(r.status().message(), HasSubstr("int64"));
}

TEST(EmulatedStageRunnerTest, CreateRejectsBadArguments) {
  const Graph good = TwoInputGraph();
  absl::StatusOr<std::unique_ptr<DeviceStageRunner>> r = EmulatedStageRunner::Create(good, 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("io_sets must be >= 1, got 0"));

  Graph int_input = TwoInputGraph();
  int_input.SetValue({"y", DType::kInt64, {1, 4, 8, 8}});
  r = EmulatedStageRunner::Create(int_input, 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("input 'y' must be float32"));
  EXPECT_THAT(r.status().message(), HasSubstr("int64"));

  Graph unbound_output = TwoInputGraph();
  unbound_output.SetValue({"flat", DType::kFloat32, {1, 4, kUnknownDim}});
  r = EmulatedStageRunner::Create(unbound_output, 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("output 'flat' must be float32 with a concrete"));
}

TEST(EmulatedStageRunnerTest, BuffersOutOfRangeAreNull) {
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(TwoInputGraph(), 2);
  ASSERT_NE(runner, nullptr);
  EXPECT_NE(runner->input_buffer(1, 1), nullptr);
  EXPECT_NE(runner->output_buffer(1, 1), nullptr);
  EXPECT_EQ(runner->input_buffer(2, 0), nullptr);
  EXPECT_EQ(runner->input_buffer(-1, 0), nullptr);
  EXPECT_EQ(runner->input_buffer(0, 2), nullptr);
  EXPECT_EQ(runner->input_buffer(0, -1), nullptr);
  EXPECT_EQ(runner->output_buffer(2, 0), nullptr);
  EXPECT_EQ(runner->output_buffer(0, 2), nullptr);
}

TEST(EmulatedStageRunnerTest, HeldBytesCountsTheExecutorAndEverySet) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 3);
  ASSERT_NE(runner, nullptr);
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(g, ExecutorOptions());
  ASSERT_TRUE(executor.ok()) << executor.status();
  const int64_t per_set =
      (NumElements(kX) + NumElements(kY) + NumElements(kS) + NumElements(kFlat)) *
      static_cast<int64_t>(sizeof(float));
  const int64_t executor_bytes = static_cast<int64_t>(
      (*executor)->weight_bytes() + (*executor)->arena_bytes() + (*executor)->workspace_bytes());
  EXPECT_GT(executor_bytes, 0);
  EXPECT_EQ(runner->held_bytes(), executor_bytes + 3 * per_set);
}

TEST(EmulatedStageRunnerTest, ConcurrentRunsOnDifferentSets) {
  const Graph g = TwoInputGraph();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(g, 2);
  ASSERT_NE(runner, nullptr);
  std::vector<Tensor> xs, ys;
  std::vector<std::vector<Tensor>> expected;
  for (int s = 0; s < 2; ++s) {
    xs.push_back(RandomTensor(kX, 20 + s));
    ys.push_back(RandomTensor(kY, 30 + s));
    expected.push_back(ExecutorOutputs(g, {xs[s], ys[s]}));
    ASSERT_EQ(expected[s].size(), 2u);
  }
  std::vector<int> mismatches(2, 0);
  std::vector<std::thread> threads;
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < 20; ++i) {
        absl::StatusOr<std::vector<Tensor>> got = runner->RunSet(s, {xs[s], ys[s]}, {true, true});
        if (!got.ok() || !BitwiseEqual((*got)[0], expected[s][0]) ||
            !BitwiseEqual((*got)[1], expected[s][1])) {
          ++mismatches[s];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches[0], 0);
  EXPECT_EQ(mismatches[1], 0);
}

TEST(EmulatedStageRunnerTest, Yolov8nMatchesExecutor) {
  BuiltinModelOptions model_options;
  model_options.imgsz = 64;
  absl::StatusOr<Model> model = LoadModel("yolov8n", model_options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Shape image = {1, 3, 64, 64};
  absl::StatusOr<Graph> prepared = PrepareForExecution(model->graph, image);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  std::unique_ptr<DeviceStageRunner> runner = MakeRunner(*prepared, 2);
  ASSERT_NE(runner, nullptr);
  const Tensor input = SyntheticInput(image, 1);
  const std::vector<Tensor> expected = ExecutorOutputs(*prepared, {input});
  ASSERT_EQ(expected.size(), prepared->outputs().size());

  absl::StatusOr<std::vector<Tensor>> got =
      runner->RunSet(1, {input}, std::vector<bool>(expected.size(), true));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), expected.size());
  for (size_t o = 0; o < expected.size(); ++o) {
    ExpectBitwiseEqual((*got)[o], expected[o], absl::StrCat("output ", o));
    ExpectBitwiseEqual(
        FromBuffer(runner->output_buffer(1, static_cast<int>(o)), expected[o].shape()), expected[o],
        absl::StrCat("output buffer ", o));
  }
}

// ---- EmulatedLinkFabric -----------------------------------------------------------------------

// Generous for the cases that must succeed (a broken fabric fails instead of hanging); short for
// the cases that must time out.
constexpr absl::Duration kPlenty = absl::Seconds(30);
constexpr absl::Duration kShort = absl::Seconds(2);

// Element i of tensor `tensor` that `sender` sends for micro-batch `mb`: identifies all three.
float PatternValue(int sender, int64_t mb, int tensor, int i) {
  return static_cast<float>(sender * 1000000 + mb * 10000 + tensor * 1000 + i);
}

std::vector<float> Pattern(int sender, int64_t mb, int tensor, int n) {
  std::vector<float> v(n);
  for (int i = 0; i < n; ++i) v[i] = PatternValue(sender, mb, tensor, i);
  return v;
}

constexpr float kUntouched = -1.0f;

std::pair<std::string, DeviceTensorRef> Ref(const std::string& name, std::vector<float>& data) {
  return {name, DeviceTensorRef{data.data(), DType::kFloat32,
                                Shape{static_cast<int64_t>(data.size())}, Layout::kPlain}};
}

DevicePeerTransfer To(int peer, DeviceNamedTensors tensors) {
  DevicePeerTransfer t;
  t.peer = peer;
  t.tensors = std::move(tensors);
  return t;
}

struct TestFabric {
  std::unique_ptr<DeviceLinkFabric> owned;
  EmulatedLinkFabric* fabric = nullptr;
  DeviceLink* link(int rank) { return fabric->endpoint(rank); }
};

TestFabric MakeFabric(int size) {
  absl::StatusOr<std::unique_ptr<DeviceLinkFabric>> created = EmulatedLinkFabric::Create(size);
  EXPECT_TRUE(created.ok()) << created.status();
  TestFabric f;
  if (!created.ok()) return f;
  f.owned = *std::move(created);
  f.fabric = static_cast<EmulatedLinkFabric*>(f.owned.get());
  return f;
}

// Waits until `rank` has `n` groups in flight, i.e. a call made from another thread has issued
// its group. Polls (what it waits for has no notification); false after a long time.
bool WaitForGroupsInFlight(const EmulatedLinkFabric& fabric, int rank, int n) {
  for (int i = 0; i < 30000; ++i) {
    if (fabric.groups_in_flight(rank) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST(EmulatedLinkFabricTest, CreateAndEndpoints) {
  absl::StatusOr<std::unique_ptr<DeviceLinkFabric>> bad = EmulatedLinkFabric::Create(0);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  TestFabric f = MakeFabric(3);
  ASSERT_NE(f.fabric, nullptr);
  EXPECT_EQ(f.fabric->size(), 3);
  for (int r = 0; r < 3; ++r) {
    ASSERT_NE(f.link(r), nullptr) << r;
    EXPECT_TRUE(f.link(r)->abort_status().ok());
    EXPECT_EQ(f.link(r)->bytes_received(), 0);
    EXPECT_EQ(f.fabric->groups_in_flight(r), 0);
  }
  EXPECT_NE(f.link(0), f.link(1));
  EXPECT_EQ(f.fabric->endpoint(-1), nullptr);
  EXPECT_EQ(f.fabric->endpoint(3), nullptr);
  EXPECT_EQ(f.fabric->groups_in_flight(3), -1);
}

TEST(EmulatedLinkFabricTest, DataArrivesIntactInWireOrder) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  constexpr int kMicroBatches = 3;
  std::vector<std::vector<float>> received_a(kMicroBatches), received_b(kMicroBatches);
  absl::Status send_status, recv_status;
  std::thread sender([&] {
    for (int mb = 0; mb < kMicroBatches && send_status.ok(); ++mb) {
      std::vector<float> a = Pattern(0, mb, 0, 16), b = Pattern(0, mb, 1, 8);
      // Listed out of name order: the wire order sorts by name on both sides.
      send_status = f.link(0)->SendDeviceGroup({To(1, {Ref("b", b), Ref("a", a)})}, mb, kPlenty);
    }
  });
  std::thread receiver([&] {
    for (int mb = 0; mb < kMicroBatches && recv_status.ok(); ++mb) {
      received_a[mb].assign(16, kUntouched);
      received_b[mb].assign(8, kUntouched);
      recv_status = f.link(1)->RecvDeviceGroup(
          {To(0, {Ref("a", received_a[mb]), Ref("b", received_b[mb])})}, mb, kPlenty);
    }
  });
  sender.join();
  receiver.join();
  ASSERT_TRUE(send_status.ok()) << send_status;
  ASSERT_TRUE(recv_status.ok()) << recv_status;
  for (int mb = 0; mb < kMicroBatches; ++mb) {
    EXPECT_EQ(received_a[mb], Pattern(0, mb, 0, 16)) << "micro-batch " << mb;
    EXPECT_EQ(received_b[mb], Pattern(0, mb, 1, 8)) << "micro-batch " << mb;
  }
  EXPECT_EQ(f.link(1)->bytes_received(), kMicroBatches * (16 + 8) * 4);
  EXPECT_EQ(f.link(0)->bytes_received(), 0);
  EXPECT_EQ(f.fabric->groups_in_flight(0), 0);
  EXPECT_EQ(f.fabric->groups_in_flight(1), 0);
}

// Rank 1 issues a receive from rank 0 into `relay`, then (from another thread, before anything
// arrived) a send of `relay` to rank 2, which rank 2 receives. If the send ran before the receive
// completed, rank 2 would get the untouched contents; issue order makes it forward rank 0's data.
TEST(EmulatedLinkFabricTest, GroupsOfARankRunInIssueOrder) {
  TestFabric f = MakeFabric(3);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<float> relay(8, kUntouched), at_2(8, kUntouched);
  std::vector<float> from_0 = Pattern(0, 4, 0, 8);
  absl::Status recv_1, send_1, recv_2;
  std::thread receive_on_1(
      [&] { recv_1 = f.link(1)->RecvDeviceGroup({To(0, {Ref("t", relay)})}, 4, kPlenty); });
  EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, 1, 1));
  std::thread send_from_1(
      [&] { send_1 = f.link(1)->SendDeviceGroup({To(2, {Ref("t", relay)})}, 4, kPlenty); });
  EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, 1, 2));
  std::thread receive_on_2(
      [&] { recv_2 = f.link(2)->RecvDeviceGroup({To(1, {Ref("t", at_2)})}, 4, kPlenty); });
  EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, 2, 1));
  // Rank 1's send and rank 2's receive are both issued and match, yet nothing moved: rank 1's
  // send waits behind its receive.
  EXPECT_EQ(at_2, std::vector<float>(8, kUntouched));

  EXPECT_TRUE(f.link(0)->SendDeviceGroup({To(1, {Ref("t", from_0)})}, 4, kPlenty).ok());
  receive_on_1.join();
  send_from_1.join();
  receive_on_2.join();
  EXPECT_TRUE(recv_1.ok()) << recv_1;
  EXPECT_TRUE(send_1.ok()) << send_1;
  EXPECT_TRUE(recv_2.ok()) << recv_2;
  EXPECT_EQ(relay, Pattern(0, 4, 0, 8));
  EXPECT_EQ(at_2, Pattern(0, 4, 0, 8));
}

// Rank 0 sends to ranks 1 and 2 in one group; rank 1 receives from 0, then sends to 2; rank 2
// receives from 0 and 1 in one group. Several micro-batches back to back.
TEST(EmulatedLinkFabricTest, FanOutAndFanInGroupsComplete) {
  TestFabric f = MakeFabric(3);
  ASSERT_NE(f.fabric, nullptr);
  constexpr int kMicroBatches = 4;
  absl::Status status_0, status_1, status_2;
  std::vector<std::vector<float>> at_1(kMicroBatches), at_2_from_0(kMicroBatches),
      at_2_from_1(kMicroBatches);
  std::thread rank_0([&] {
    for (int mb = 0; mb < kMicroBatches && status_0.ok(); ++mb) {
      std::vector<float> to_1 = Pattern(0, mb, 0, 12), to_2 = Pattern(0, mb, 1, 6);
      status_0 = f.link(0)->SendDeviceGroup({To(2, {Ref("p2", to_2)}), To(1, {Ref("p1", to_1)})},
                                            mb, kPlenty);
    }
  });
  std::thread rank_1([&] {
    for (int mb = 0; mb < kMicroBatches && status_1.ok(); ++mb) {
      at_1[mb].assign(12, kUntouched);
      status_1 = f.link(1)->RecvDeviceGroup({To(0, {Ref("p1", at_1[mb])})}, mb, kPlenty);
      if (!status_1.ok()) break;
      std::vector<float> out = Pattern(1, mb, 0, 10);
      status_1 = f.link(1)->SendDeviceGroup({To(2, {Ref("q", out)})}, mb, kPlenty);
    }
  });
  std::thread rank_2([&] {
    for (int mb = 0; mb < kMicroBatches && status_2.ok(); ++mb) {
      at_2_from_0[mb].assign(6, kUntouched);
      at_2_from_1[mb].assign(10, kUntouched);
      status_2 = f.link(2)->RecvDeviceGroup(
          {To(1, {Ref("q", at_2_from_1[mb])}), To(0, {Ref("p2", at_2_from_0[mb])})}, mb, kPlenty);
    }
  });
  rank_0.join();
  rank_1.join();
  rank_2.join();
  ASSERT_TRUE(status_0.ok()) << status_0;
  ASSERT_TRUE(status_1.ok()) << status_1;
  ASSERT_TRUE(status_2.ok()) << status_2;
  for (int mb = 0; mb < kMicroBatches; ++mb) {
    EXPECT_EQ(at_1[mb], Pattern(0, mb, 0, 12)) << mb;
    EXPECT_EQ(at_2_from_0[mb], Pattern(0, mb, 1, 6)) << mb;
    EXPECT_EQ(at_2_from_1[mb], Pattern(1, mb, 0, 10)) << mb;
  }
  EXPECT_EQ(f.link(1)->bytes_received(), kMicroBatches * 12 * 4);
  EXPECT_EQ(f.link(2)->bytes_received(), kMicroBatches * (6 + 10) * 4);
}

// Ranks 0 and 1 each issue a send to the other first, then a receive from the other. A model in
// which groups progress independently would complete all four; NCCL (and the emulation) runs
// each rank's send first, and neither peer's receive can become active behind its own send.
TEST(EmulatedLinkFabricTest, CrossedSendsDeadlockUntilTheDeadline) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<std::vector<float>> out = {Pattern(0, 0, 0, 8), Pattern(1, 0, 0, 8)};
  std::vector<std::vector<float>> in(2, std::vector<float>(8, kUntouched));
  std::vector<absl::Status> sends(2), receives(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      sends[r] = f.link(r)->SendDeviceGroup({To(1 - r, {Ref("t", out[r])})}, 0, kShort);
    });
    EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, r, 1));
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      receives[r] = f.link(r)->RecvDeviceGroup({To(1 - r, {Ref("t", in[r])})}, 0, kShort);
    });
  }
  for (std::thread& t : threads) t.join();

  int deadlines = 0;
  for (const absl::Status& s : {sends[0], sends[1], receives[0], receives[1]}) {
    ASSERT_FALSE(s.ok());
    // The first call to time out aborts the fabric; the others may time out too, or wake with
    // Aborted carrying that timeout.
    EXPECT_THAT(s.code(), AnyOf(absl::StatusCode::kDeadlineExceeded, absl::StatusCode::kAborted))
        << s;
    if (s.code() == absl::StatusCode::kDeadlineExceeded) {
      ++deadlines;
      EXPECT_THAT(s.message(), HasSubstr("micro-batch 0"));
    } else {
      EXPECT_THAT(s.message(), HasSubstr("DEADLINE_EXCEEDED"));
    }
  }
  EXPECT_GE(deadlines, 1);
  EXPECT_EQ(in[0], std::vector<float>(8, kUntouched));
  EXPECT_EQ(in[1], std::vector<float>(8, kUntouched));
  // The timeout poisoned the fabric, as an NCCL error does.
  EXPECT_EQ(f.link(0)->abort_status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(f.link(1)->abort_status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(f.fabric->groups_in_flight(0), 0);
  EXPECT_EQ(f.link(0)->SendDeviceGroup({To(1, {Ref("t", out[0])})}, 1, kShort).code(),
            absl::StatusCode::kAborted);
}

TEST(EmulatedLinkFabricTest, SizeMismatchIsDataLossOnBothSides) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<float> sent = Pattern(0, 5, 0, 16);
  std::vector<float> into(8, kUntouched);
  absl::Status send_status;
  std::thread sender(
      [&] { send_status = f.link(0)->SendDeviceGroup({To(1, {Ref("t", sent)})}, 5, kPlenty); });
  const absl::Status recv_status =
      f.link(1)->RecvDeviceGroup({To(0, {Ref("t", into)})}, 5, kPlenty);
  sender.join();
  for (const absl::Status& s : {send_status, recv_status}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
    EXPECT_THAT(s.message(), HasSubstr("rank 0 sends 64 bytes"));
    EXPECT_THAT(s.message(), HasSubstr("rank 1 receives 32 bytes"));
    EXPECT_THAT(s.message(), HasSubstr("micro-batch 5"));
  }
  EXPECT_EQ(into, std::vector<float>(8, kUntouched));
  EXPECT_EQ(f.link(1)->bytes_received(), 0);
  EXPECT_EQ(f.link(0)->abort_status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(f.link(0)->abort_status().message(), HasSubstr("DATA_LOSS"));
}

TEST(EmulatedLinkFabricTest, AbortWakesABlockedReceiveWithTheReason) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<float> into(4, kUntouched);
  absl::Status recv_status;
  std::thread receiver([&] {
    recv_status =
        f.link(1)->RecvDeviceGroup({To(0, {Ref("t", into)})}, 2, absl::InfiniteDuration());
  });
  EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, 1, 1));
  f.fabric->Abort(absl::InternalError("stage 3 failed"));
  receiver.join();
  EXPECT_EQ(recv_status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(recv_status.message(), HasSubstr("stage 3 failed"));
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(f.link(r)->abort_status().code(), absl::StatusCode::kAborted) << r;
    EXPECT_THAT(f.link(r)->abort_status().message(), HasSubstr("stage 3 failed")) << r;
  }
  EXPECT_EQ(f.fabric->groups_in_flight(1), 0);
  // Later calls fail at once, even without a deadline; the first reason stays.
  std::vector<float> data = Pattern(0, 3, 0, 4);
  const absl::Status later =
      f.link(0)->SendDeviceGroup({To(1, {Ref("t", data)})}, 3, absl::InfiniteDuration());
  EXPECT_EQ(later.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(later.message(), HasSubstr("stage 3 failed"));
  f.fabric->Abort(absl::InternalError("second reason"));
  EXPECT_THAT(f.link(1)->abort_status().message(), HasSubstr("stage 3 failed"));
  EXPECT_EQ(into, std::vector<float>(4, kUntouched));
}

TEST(EmulatedLinkFabricTest, ArgumentErrorsIssueNothing) {
  TestFabric f = MakeFabric(3);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<float> a(4, 1.0f), b(4, 2.0f);
  const DeviceTensorRef null_data{nullptr, DType::kFloat32, Shape{4}, Layout::kPlain};
  const std::vector<std::pair<std::string, std::vector<DevicePeerTransfer>>> cases = {
      {"peer -1", {To(-1, {Ref("a", a)})}},
      {"peer 3", {To(3, {Ref("a", a)})}},
      {"peer 0", {To(0, {Ref("a", a)})}},  // the sending rank itself
      {"listed twice", {To(1, {Ref("a", a)}), To(1, {Ref("b", b)})}},
      {"null data", {To(1, {{"a", null_data}})}},
      {"duplicate name", {To(1, {Ref("a", a), Ref("a", b)})}},
  };
  for (const auto& [what, transfers] : cases) {
    const absl::Status s = f.link(0)->SendDeviceGroup(transfers, 9, kShort);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << what << ": " << s;
    EXPECT_THAT(s.message(), HasSubstr("micro-batch 9")) << what;
    const absl::Status r = f.link(0)->RecvDeviceGroup(transfers, 9, kShort);
    EXPECT_EQ(r.code(), absl::StatusCode::kInvalidArgument) << what << ": " << r;
    EXPECT_EQ(f.fabric->groups_in_flight(0), 0) << what;
  }
  EXPECT_TRUE(f.link(0)->abort_status().ok());
  // Nothing was queued: a clean exchange still pairs up.
  std::vector<float> sent = Pattern(0, 10, 0, 4), into(4, kUntouched);
  absl::Status send_status;
  std::thread sender(
      [&] { send_status = f.link(0)->SendDeviceGroup({To(1, {Ref("t", sent)})}, 10, kPlenty); });
  EXPECT_TRUE(f.link(1)->RecvDeviceGroup({To(0, {Ref("t", into)})}, 10, kPlenty).ok());
  sender.join();
  EXPECT_TRUE(send_status.ok()) << send_status;
  EXPECT_EQ(into, sent);
}

TEST(EmulatedLinkFabricTest, GroupsWithoutBytesReturnAtOnce) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  // No peer ever posts anything: these must not wait.
  EXPECT_TRUE(f.link(0)->SendDeviceGroup({}, 0, absl::InfiniteDuration()).ok());
  EXPECT_TRUE(f.link(1)->RecvDeviceGroup({}, 0, absl::InfiniteDuration()).ok());
  const DeviceTensorRef empty{nullptr, DType::kFloat32, Shape{0, 4}, Layout::kPlain};
  EXPECT_TRUE(
      f.link(0)->SendDeviceGroup({To(1, {{"e", empty}})}, 1, absl::InfiniteDuration()).ok());
  EXPECT_TRUE(f.link(1)->RecvDeviceGroup({To(0, {})}, 1, absl::InfiniteDuration()).ok());
  EXPECT_EQ(f.fabric->groups_in_flight(0), 0);
  EXPECT_EQ(f.fabric->groups_in_flight(1), 0);
  EXPECT_EQ(f.link(1)->bytes_received(), 0);
}

TEST(EmulatedLinkFabricTest, ZeroByteTensorsAreSkippedOnBothSides) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  const DeviceTensorRef empty{nullptr, DType::kFloat32, Shape{0}, Layout::kPlain};
  std::vector<float> b = Pattern(0, 6, 1, 4), into(4, kUntouched);
  absl::Status send_status;
  std::thread sender([&] {
    send_status = f.link(0)->SendDeviceGroup({To(1, {{"a", empty}, Ref("b", b)})}, 6, kPlenty);
  });
  // The receiver does not list the empty tensor at all.
  const absl::Status recv_status =
      f.link(1)->RecvDeviceGroup({To(0, {Ref("b", into)})}, 6, kPlenty);
  sender.join();
  EXPECT_TRUE(send_status.ok()) << send_status;
  EXPECT_TRUE(recv_status.ok()) << recv_status;
  EXPECT_EQ(into, b);
  EXPECT_EQ(f.link(1)->bytes_received(), 16);
}

// NcclCommunicator issues a rank's sends one at a time: a second send call waits for the first to
// complete. Waiting too long for that is a plain deadline error that poisons nothing.
TEST(EmulatedLinkFabricTest, ASecondSendWaitsForTheFirst) {
  TestFabric f = MakeFabric(2);
  ASSERT_NE(f.fabric, nullptr);
  std::vector<float> first = Pattern(0, 0, 0, 4), second = Pattern(0, 1, 0, 4);
  absl::Status first_status;
  std::thread first_send(
      [&] { first_status = f.link(0)->SendDeviceGroup({To(1, {Ref("t", first)})}, 0, kPlenty); });
  EXPECT_TRUE(WaitForGroupsInFlight(*f.fabric, 0, 1));
  const absl::Status second_status =
      f.link(0)->SendDeviceGroup({To(1, {Ref("t", second)})}, 1, kShort);
  EXPECT_EQ(second_status.code(), absl::StatusCode::kDeadlineExceeded) << second_status;
  EXPECT_THAT(second_status.message(), HasSubstr("an earlier send on this rank"));
  EXPECT_TRUE(f.link(0)->abort_status().ok());
  EXPECT_EQ(f.fabric->groups_in_flight(0), 1);

  // The first send still pairs with the receive, and only it moved.
  std::vector<float> into(4, kUntouched);
  EXPECT_TRUE(f.link(1)->RecvDeviceGroup({To(0, {Ref("t", into)})}, 0, kPlenty).ok());
  first_send.join();
  EXPECT_TRUE(first_status.ok()) << first_status;
  EXPECT_EQ(into, first);
}

TEST(EmulatedDevicePathTest, FactoriesMakeTheEmulations) {
  const DevicePathForTesting path = EmulatedDevicePath();
  ASSERT_TRUE(path.make_runner);
  ASSERT_TRUE(path.make_fabric);
  absl::StatusOr<std::unique_ptr<DeviceStageRunner>> runner = path.make_runner(TwoInputGraph(), 3);
  ASSERT_TRUE(runner.ok()) << runner.status();
  EXPECT_EQ((*runner)->io_sets(), 3);
  absl::StatusOr<std::unique_ptr<DeviceLinkFabric>> fabric = path.make_fabric(4);
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  EXPECT_EQ((*fabric)->size(), 4);
  EXPECT_NE((*fabric)->endpoint(3), nullptr);
}

}  // namespace
}  // namespace testing
}  // namespace yolopipe
