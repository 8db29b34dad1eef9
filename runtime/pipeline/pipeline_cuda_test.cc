// Pipeline on CUDA devices. Without a GPU (CI) only the clean refusals and the CUDA quick plan run;
// the rest calls GTEST_SKIP and runs through tools/gpu_check.sh on a GPU machine. The reference is
// the CPU Session in float32 (independent of the CUDA kernels), compared with the precision's
// tolerance (runtime/cuda/detection_tolerance.h).
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/detection_tolerance.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/pipeline/testing/test_util.h"
#include "runtime/planner/plan_check.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/session.h"

namespace yolopipe {
namespace {

using gpu_testing::ExpectDetectionsNear;
using gpu_testing::kFloat16Tolerance;
using gpu_testing::kFloat32Tolerance;
using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
constexpr int64_t kBatch = 6;

const Model& Yolov8n() { return testing::CachedBuiltin("yolov8n", kImgsz); }

DeviceSpec Cuda(int index) {
  DeviceSpec d;
  d.kind = DeviceKind::kCuda;
  d.index = index;
  return d;
}

DeviceSpec Cpu() {
  DeviceSpec d;
  d.num_threads = AvailableCores();
  return d;
}

PipelineOptions Options(Mode mode, std::vector<DeviceSpec> devices, int microbatch) {
  PipelineOptions o;
  o.mode = mode;
  o.devices = std::move(devices);
  o.microbatch = microbatch;
  if (mode == Mode::kHybrid) o.replicas = 2;
  return o;
}

TEST(PipelineCudaTest, WithoutGpuEveryModeFailsCleanly) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  for (Mode mode : {Mode::kSingle, Mode::kPipeline, Mode::kData, Mode::kHybrid}) {
    SCOPED_TRACE(ModeName(mode));
    PipelineOptions o = Options(mode, {Cuda(0), Cuda(0), Cuda(0), Cuda(0)}, 1);
    if (mode == Mode::kPipeline) o.devices.resize(2);
    auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
    EXPECT_THAT(p.status().message(), HasSubstr("no CUDA devices"));
  }
  // A CPU device first does not hide the CUDA one.
  auto mixed = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, {Cpu(), Cuda(0)}, 1));
  EXPECT_THAT(mixed.status().message(), HasSubstr("no CUDA devices"));
}

// Checked before the devices, so it is refused the same way with or without a GPU.
TEST(PipelineCudaTest, RefusesBadPrecision) {
  PipelineOptions o = Options(Mode::kSingle, {Cuda(0)}, 1);
  o.cuda_precision = DType::kInt64;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("cuda_precision must be float16 or float32"));
}

// NCCL between stages: its argument checks come before the devices are looked at, so they read
// the same with or without a GPU.
TEST(PipelineCudaTest, NcclRefusesModesWithoutStagesCpuDevicesAndASharedGpuInOneProcess) {
  PipelineOptions single = Options(Mode::kSingle, {Cuda(0)}, 1);
  single.nccl = true;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, single);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("mode single has none"));

  PipelineOptions data = Options(Mode::kData, {Cuda(0), Cuda(1)}, 1);
  data.nccl = true;
  EXPECT_THAT(Pipeline::Create(Yolov8n(), kImgsz, data).status().message(),
              HasSubstr("mode data has none"));

  PipelineOptions cpu = Options(Mode::kPipeline, {Cuda(0), Cpu()}, 1);
  cpu.nccl = true;
  p = Pipeline::Create(Yolov8n(), kImgsz, cpu);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("every stage on a CUDA device; cpu"));

  PipelineOptions shared = Options(Mode::kHybrid, {Cuda(0), Cuda(1), Cuda(2), Cuda(1)}, 1);
  shared.nccl = true;
  p = Pipeline::Create(Yolov8n(), kImgsz, shared);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  EXPECT_THAT(p.status().message(), HasSubstr("a distinct GPU per stage"));
  EXPECT_THAT(p.status().message(), HasSubstr("device 1 listed twice"));

  if (!ListCudaDevices().ok()) {
    // Valid NCCL options without a GPU: the usual refusal.
    PipelineOptions valid = Options(Mode::kPipeline, {Cuda(0), Cuda(1)}, 1);
    valid.nccl = true;
    p = Pipeline::Create(Yolov8n(), kImgsz, valid);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition) << p.status();
    EXPECT_THAT(p.status().message(), HasSubstr("no CUDA devices"));
  }
}

// The plan made on the spot profiles the GPU: without one it fails cleanly.
TEST(PipelineCudaTest, QuickPlanWithoutGpuFailsCleanly) {
  if (ListCudaDevices().ok()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<proto::Plan> plan =
      MakeQuickPlan(Yolov8n(), kImgsz, {Cuda(0), Cuda(0)}, 1, 2, 1, 2);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
  EXPECT_THAT(plan.status().message(), HasSubstr("no CUDA devices"));
}

// ---- On a GPU --------------------------------------------------------------------------------

class PipelineGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto gpus = ListCudaDevices();
    if (!gpus.ok()) GTEST_SKIP() << gpus.status();
    input_ = testing::DistinctBatch(kBatch, kImgsz, 200);
    SessionOptions so;
    so.device.num_threads = AvailableCores();
    auto session = Session::Create(Yolov8n(), input_.shape(), so);
    ASSERT_TRUE(session.ok()) << session.status();
    auto want = (*session)->Run(input_);
    ASSERT_TRUE(want.ok()) << want.status();
    reference_ = *want;
  }

  // Runs the batch twice (the second run replays the stages' CUDA graphs) and compares both with
  // the CPU reference.
  void ExpectMatchesCpu(const PipelineOptions& o) {
    auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
    ASSERT_TRUE(p.ok()) << p.status();
    for (int run = 0; run < 2; ++run) {
      SCOPED_TRACE(absl::StrCat("run ", run));
      PipelineStats stats;
      auto got = (*p)->Run(input_, &stats);
      ASSERT_TRUE(got.ok()) << got.status();
      ExpectDetectionsNear(
          *got, reference_,
          o.cuda_precision == DType::kFloat16 ? kFloat16Tolerance : kFloat32Tolerance);
      EXPECT_EQ(stats.images, kBatch);
      for (int64_t bytes : stats.stage_peak_bytes) EXPECT_GT(bytes, 0);
    }
  }

  Tensor input_;
  Tensor reference_;
};

TEST_F(PipelineGpuTest, SingleFp16AndFp32) {
  PipelineOptions o = Options(Mode::kSingle, {Cuda(0)}, 2);
  ExpectMatchesCpu(o);
  o.cuda_precision = DType::kFloat32;
  ExpectMatchesCpu(o);
}

// Two stages on one GPU (each its own executor, stream and graph), partial last micro-batch.
TEST_F(PipelineGpuTest, PipelineTwoStagesOnOneGpu) {
  ExpectMatchesCpu(Options(Mode::kPipeline, {Cuda(0), Cuda(0)}, 4));
}

TEST_F(PipelineGpuTest, PipelineThreeStagesWithoutCudaGraphs) {
  PipelineOptions o = Options(Mode::kPipeline, {Cuda(0), Cuda(0), Cuda(0)}, 1);
  o.cuda_graph = false;
  ExpectMatchesCpu(o);
}

TEST_F(PipelineGpuTest, DataAndHybrid) {
  ExpectMatchesCpu(Options(Mode::kData, {Cuda(0), Cuda(0)}, 2));
  ExpectMatchesCpu(Options(Mode::kHybrid, {Cuda(0), Cuda(0), Cuda(0), Cuda(0)}, 1));
}

// A CPU stage and a CUDA stage in one pipeline: tensors cross as float32 host tensors.
TEST_F(PipelineGpuTest, CpuStageThenCudaStage) {
  ExpectMatchesCpu(Options(Mode::kPipeline, {Cpu(), Cuda(0)}, 2));
}

// A 2-stage plan whose second stage is only the last three nodes of the plan's node order
// (inside the Detect head), with consistent node ranges. (Made on the CPU: a plan names nodes,
// which are the same whatever the device.)
proto::Plan PlanCuttingInsideTheHead() {
  auto quick = MakeQuickPlan(Yolov8n(), kImgsz, {Cpu(), Cpu()}, 2, 2, 1, 2);
  EXPECT_TRUE(quick.ok()) << quick.status();
  if (!quick.ok()) return proto::Plan();
  proto::Plan plan = *quick;
  const int n = plan.node_order_size();
  for (int s = 0; s < 2; ++s) {
    proto::StagePlan* stage = plan.mutable_stages(s);
    stage->clear_nodes();
    stage->set_first_node(s == 0 ? 0 : n - 3);
    stage->set_last_node(s == 0 ? n - 4 : n - 1);
    for (int i = stage->first_node(); i <= stage->last_node(); ++i) {
      stage->add_nodes(plan.node_order(i));
    }
  }
  plan.clear_transfers();
  return plan;
}

TEST(PipelineCudaTest, HeadCuttingPlanIsValid) {
  const proto::Plan plan = PlanCuttingInsideTheHead();
  EXPECT_TRUE(ValidatePlan(plan).ok()) << ValidatePlan(plan);
}

// A plan that cuts inside the Detect head still runs: the head moves to the last stage.
TEST_F(PipelineGpuTest, PlanCuttingInsideTheHead) {
  const proto::Plan plan = PlanCuttingInsideTheHead();
  PipelineOptions o = Options(Mode::kPipeline, {Cuda(0), Cuda(0)}, 2);
  o.plan = &plan;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_GT((*p)->stage_nodes()[1].size(), 3u);  // the rest of the head joined the last stage
  auto got = (*p)->Run(input_);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectDetectionsNear(*got, reference_, kFloat16Tolerance);
}

// With a GPU the plan made on the spot comes from a measured CUDA profile.
TEST_F(PipelineGpuTest, QuickPlanProfilesTheGpu) {
  absl::StatusOr<proto::Plan> plan =
      MakeQuickPlan(Yolov8n(), kImgsz, {Cuda(0), Cuda(0), Cuda(0)}, 2, 3, 1, 8);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->stages_size(), 3);
  for (const proto::StagePlan& stage : plan->stages()) {
    EXPECT_GT(stage.nodes_size(), 0);
    EXPECT_GT(stage.compute_ms(), 0);
  }
  EXPECT_GT(plan->predicted_throughput(), 0);
}

TEST_F(PipelineGpuTest, StreamKeepsOrder) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, {Cuda(0), Cuda(0)}, 1));
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (int64_t i = 0; i < kBatch; ++i) {
    ASSERT_TRUE((*stream)->Push(testing::RowOf(input_, i)).ok());
  }
  (*stream)->CloseInput();
  for (int64_t i = 0; i < kBatch; ++i) {
    auto out = (*stream)->Pop();
    ASSERT_TRUE(out.ok()) << out.status();
    SCOPED_TRACE(absl::StrCat("image ", i));
    ExpectDetectionsNear(*out, testing::RowOf(reference_, i), kFloat16Tolerance);
  }
  EXPECT_EQ((*stream)->Pop().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE((*stream)->Finish().ok());
}

// NCCL between stages in one process needs a GPU per stage (one-GPU machines run it multi-process,
// see tools/gpu_check_remote.sh).
int VisibleGpus() {
  auto gpus = ListCudaDevices();
  return gpus.ok() ? static_cast<int>(gpus->size()) : 0;
}

TEST_F(PipelineGpuTest, NcclBetweenTwoGpus) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs (NCCL refuses two ranks on one GPU)";
  PipelineOptions o = Options(Mode::kPipeline, {Cuda(0), Cuda(1)}, 2);
  o.nccl = true;
  ExpectMatchesCpu(o);  // twice: the communicators outlive the first stream
  o.buffers = 1;        // one slot: receive, compute and send of a micro-batch in turn
  o.cuda_graph = false;
  ExpectMatchesCpu(o);
}

// One image at a time, each popped before the next is pushed: an NCCL receive posted for a
// micro-batch that was never pushed would hold every later send on that communicator.
TEST_F(PipelineGpuTest, NcclStreamOneImageAtATime) {
  if (VisibleGpus() < 2) GTEST_SKIP() << "needs 2 GPUs";
  PipelineOptions o = Options(Mode::kPipeline, {Cuda(0), Cuda(1)}, 1);
  o.nccl = true;
  o.timeout = absl::Seconds(30);
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (int64_t i = 0; i < kBatch; ++i) {
    ASSERT_TRUE((*stream)->Push(testing::RowOf(input_, i)).ok());
    auto out = (*stream)->Pop();
    ASSERT_TRUE(out.ok()) << out.status();
    SCOPED_TRACE(absl::StrCat("image ", i));
    ExpectDetectionsNear(*out, testing::RowOf(reference_, i), kFloat16Tolerance);
  }
  PipelineStats stats;
  EXPECT_TRUE((*stream)->Finish(&stats).ok());
  EXPECT_GT(stats.bytes_moved, 0);
}

TEST_F(PipelineGpuTest, NcclHybridOnFourGpus) {
  if (VisibleGpus() < 4) GTEST_SKIP() << "needs 4 GPUs";
  PipelineOptions o = Options(Mode::kHybrid, {Cuda(0), Cuda(1), Cuda(2), Cuda(3)}, 1);
  o.nccl = true;
  ExpectMatchesCpu(o);
}

}  // namespace
}  // namespace yolopipe
