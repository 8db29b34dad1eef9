#include "runtime/pipeline/pipeline.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/device.h"
#include "graph/fingerprint.h"
#include "runtime/model.h"
#include "runtime/planner/planner.h"
#include "runtime/profiler/profiler.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/session.h"
#include "runtime/trace/trace.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
constexpr int64_t kBatch = 8;

const Model& Yolov8n() {
  static const Model* model = [] {
    BuiltinModelOptions o;
    o.imgsz = kImgsz;
    auto m = LoadModel("yolov8n", o);
    EXPECT_TRUE(m.ok()) << m.status();
    return new Model(*m);
  }();
  return *model;
}

// Distinct images: each image of the batch comes from its own seed, so a reordering of
// micro-batches changes the output.
Tensor DistinctBatch() {
  Tensor batch(DType::kFloat32, {kBatch, 3, kImgsz, kImgsz});
  const size_t image_bytes = 3 * kImgsz * kImgsz * sizeof(float);
  for (int64_t i = 0; i < kBatch; ++i) {
    Tensor one = SyntheticInput({1, 3, kImgsz, kImgsz}, 100 + i);
    std::memcpy(static_cast<char*>(batch.raw_data()) + i * image_bytes, one.raw_data(),
                image_bytes);
  }
  return batch;
}

// The reference: one Session per micro-batch size run image group by image group would reuse
// the code under test's idea of splitting; instead this runs the plain single-device Session on
// micro-batches of `m` images, sequentially, and concatenates.
Tensor SessionReference(const Tensor& batch, int m, int threads) {
  SessionOptions so;
  so.device.num_threads = threads;
  auto session = Session::Create(Yolov8n(), {m, 3, kImgsz, kImgsz}, so);
  EXPECT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> parts;
  const size_t in_bytes = static_cast<size_t>(m) * 3 * kImgsz * kImgsz * sizeof(float);
  for (int64_t j = 0; j < kBatch / m; ++j) {
    Tensor in(DType::kFloat32, {m, 3, kImgsz, kImgsz});
    std::memcpy(in.raw_data(), static_cast<const char*>(batch.raw_data()) + j * in_bytes, in_bytes);
    auto out = (*session)->Run(in);
    EXPECT_TRUE(out.ok()) << out.status();
    parts.push_back(*out);
  }
  Shape shape = parts[0].shape();
  shape[0] = kBatch;
  Tensor all(DType::kFloat32, shape);
  for (size_t j = 0; j < parts.size(); ++j) {
    std::memcpy(static_cast<char*>(all.raw_data()) + j * parts[j].bytes(), parts[j].raw_data(),
                parts[j].bytes());
  }
  return all;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.bytes() == b.bytes() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

std::vector<DeviceSpec> Cpus(int k) {
  auto d = ParseDevices(absl::StrCat("cpu:", k), /*threads_per_device=*/1);
  EXPECT_TRUE(d.ok()) << d.status();
  return *d;
}

PipelineOptions Options(Mode mode, int devices, int m) {
  PipelineOptions o;
  o.mode = mode;
  o.devices = Cpus(devices);
  o.microbatch = m;
  o.timeout = absl::Seconds(30);
  return o;
}

absl::StatusOr<Tensor> RunMode(const PipelineOptions& o, const Tensor& batch,
                               PipelineStats* stats = nullptr) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  if (!p.ok()) return p.status();
  return (*p)->Run(batch, stats);
}

TEST(ParseModeTest, KnownAndUnknown) {
  EXPECT_EQ(*ParseMode("single"), Mode::kSingle);
  EXPECT_EQ(*ParseMode("pipeline"), Mode::kPipeline);
  EXPECT_EQ(*ParseMode("data"), Mode::kData);
  EXPECT_EQ(*ParseMode("hybrid"), Mode::kHybrid);
  EXPECT_THAT(ParseMode("pipe").status().message(), HasSubstr("'pipe'"));
}

class ModesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    batch_ = new Tensor(DistinctBatch());
    reference_ = new Tensor(SessionReference(*batch_, 2, 1));
  }
  static Tensor* batch_;
  static Tensor* reference_;
};
Tensor* ModesTest::batch_ = nullptr;
Tensor* ModesTest::reference_ = nullptr;

TEST_F(ModesTest, ReferenceImagesDiffer) {
  // Guards the order checks below: distinct inputs give distinct per-image outputs.
  const size_t per_image = reference_->bytes() / kBatch;
  const char* base = static_cast<const char*>(reference_->raw_data());
  EXPECT_NE(std::memcmp(base, base + per_image, per_image), 0);
  EXPECT_NE(std::memcmp(base + 2 * per_image, base + 4 * per_image, per_image), 0);
}

TEST_F(ModesTest, SingleIsBitwiseTheSessionAndMovesNothing) {
  PipelineStats stats;
  auto out = RunMode(Options(Mode::kSingle, 1, 2), *batch_, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
  EXPECT_EQ(stats.bytes_moved, 0);
  EXPECT_EQ(stats.num_microbatches, 4);
  ASSERT_EQ(stats.stage_busy_fraction.size(), 1u);
}

TEST_F(ModesTest, SingleWholeBatchMatchesMicroBatchedSession) {
  // Does the micro-batch size change the bytes? (oneDNN may choose other algorithms.)
  Tensor whole = SessionReference(*batch_, kBatch, 1);
  EXPECT_TRUE(SameBytes(whole, *reference_));
}

TEST_F(ModesTest, PipelineTwoStagesBitwise) {
  PipelineStats stats;
  auto out = RunMode(Options(Mode::kPipeline, 2, 2), *batch_, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
  EXPECT_GT(stats.bytes_moved, 0);
  EXPECT_EQ(stats.num_microbatches, 4);
  ASSERT_EQ(stats.stage_busy_fraction.size(), 2u);
  for (double b : stats.stage_busy_fraction) {
    EXPECT_GT(b, 0.0);
    EXPECT_LE(b, 1.0);
  }
  EXPECT_GE(stats.bubble_fraction, 0.0);
  EXPECT_LT(stats.bubble_fraction, 1.0);
  EXPECT_GT(stats.latency_p50_ms, 0.0);
  EXPECT_LE(stats.latency_p50_ms, stats.latency_p99_ms);
  EXPECT_GT(stats.images_per_second, 0.0);
}

TEST_F(ModesTest, PipelineThreeStagesBitwiseWithTrace) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 3, 2));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->num_stages(), 3);
  TraceWriter trace;
  auto out = (*p)->Run(*batch_, nullptr, &trace);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
  // 4 micro-batches x 3 stages computed, each with a receive and a send span.
  int compute = 0;
  for (const TraceEvent& e : trace.events()) {
    if (e.category == "compute") ++compute;
  }
  EXPECT_EQ(compute, 12);
  EXPECT_THAT(trace.ToJson(), HasSubstr("\"mb 3\""));
}

TEST_F(ModesTest, PipelineOneImageMicroBatches) {
  Tensor ref1 = SessionReference(*batch_, 1, 1);
  auto out = RunMode(Options(Mode::kPipeline, 2, 1), *batch_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, ref1));
}

TEST_F(ModesTest, DataBitwiseAndMovesNothing) {
  PipelineStats stats;
  auto out = RunMode(Options(Mode::kData, 2, 2), *batch_, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
  EXPECT_EQ(stats.bytes_moved, 0);
  EXPECT_EQ(stats.stage_busy_fraction.size(), 2u);
}

TEST_F(ModesTest, HybridTwoByTwoBitwise) {
  PipelineOptions o = Options(Mode::kHybrid, 4, 2);
  o.replicas = 2;
  o.stages = 2;
  PipelineStats stats;
  auto out = RunMode(o, *batch_, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
  EXPECT_GT(stats.bytes_moved, 0);
  EXPECT_EQ(stats.stage_busy_fraction.size(), 4u);
}

TEST_F(ModesTest, FaultAtStageOneMicroBatchThreeThenRunAgain) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 1);
  std::atomic<bool> inject{true};
  o.fault_injector = [&inject](int replica, int stage, int64_t mb) -> absl::Status {
    if (inject && stage == 1 && mb == 3) return absl::InternalError("injected kernel failure");
    return absl::OkStatus();
  };
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto out = (*p)->Run(*batch_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("stage 1 micro-batch 3"));
  EXPECT_THAT(out.status().message(), HasSubstr("injected kernel failure"));
  // A later Run builds fresh channels and works.
  inject = false;
  auto again = (*p)->Run(*batch_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(SameBytes(*again, SessionReference(*batch_, 1, 1)));
}

TEST_F(ModesTest, FaultAtFirstStageInHybridNamesReplica) {
  PipelineOptions o = Options(Mode::kHybrid, 4, 1);
  o.replicas = 2;
  o.fault_injector = [](int replica, int stage, int64_t mb) -> absl::Status {
    if (stage == 0 && mb == 5) return absl::UnavailableError("boom");
    return absl::OkStatus();
  };
  auto out = RunMode(o, *batch_);
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(), HasSubstr("replica 1 stage 0 micro-batch 5: boom"));
}

TEST_F(ModesTest, RejectsPartialMicroBatchAndBadShape) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 2, 3));
  ASSERT_TRUE(p.ok()) << p.status();
  auto out = (*p)->Run(*batch_);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("not a multiple of the micro-batch"));
  Tensor wrong(DType::kFloat32, {3, 3, 32, 32});
  EXPECT_EQ((*p)->Run(wrong).status().code(), absl::StatusCode::kInvalidArgument);
}


TEST_F(ModesTest, ThreadCountDoesNotChangeTheBytes) {
  // single on a 2-thread device vs the 1-thread devices the pipeline tests use.
  EXPECT_TRUE(SameBytes(SessionReference(*batch_, 2, 2), *reference_));
}

TEST_F(ModesTest, PipelineFollowsAGivenPlan) {
  ProfilerOptions po;
  po.microbatch_sizes = {2};
  po.repeats = 1;
  po.warmup = 0;
  auto profile = ProfileModel(Yolov8n(), kImgsz, po);
  ASSERT_TRUE(profile.ok()) << profile.status();
  PlannerOptions plo;
  plo.num_stages = 3;
  plo.batch = 2;
  auto plan = PlanPipeline(*profile, plo);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Re-cut node_order into thirds, so the split is not one the pipeline would pick itself.
  const int n = plan->node_order_size();
  ASSERT_GE(n, 3);
  const int cuts[4] = {0, n / 3, 2 * n / 3, n};
  for (int st = 0; st < 3; ++st) {
    proto::StagePlan* sp = plan->mutable_stages(st);
    sp->clear_nodes();
    for (int i = cuts[st]; i < cuts[st + 1]; ++i) sp->add_nodes(plan->node_order(i));
    sp->set_first_node(cuts[st]);
    sp->set_last_node(cuts[st + 1] - 1);
  }
  const std::string moved = plan->node_order(n / 3 - 1);
  PipelineOptions o = Options(Mode::kPipeline, 3, 2);
  o.plan = &*plan;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ((*p)->stage_nodes().size(), 3u);
  EXPECT_EQ((*p)->stage_nodes()[0].back(), moved);
  EXPECT_EQ((*p)->stage_nodes()[1].size(), static_cast<size_t>(2 * n / 3 - n / 3));
  EXPECT_EQ((*p)->stage_nodes()[1].front(), plan->node_order(n / 3));
  auto out = (*p)->Run(*batch_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));

  o.stages = 2;  // disagrees with the plan's 3
  EXPECT_THAT(Pipeline::Create(Yolov8n(), kImgsz, o).status().message(),
              HasSubstr("differs from the plan's 3"));
}

TEST(PipelineCreateTest, RejectsBadOptions) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 1);
  o.stages = 3;  // needs 3 devices
  EXPECT_THAT(Pipeline::Create(Yolov8n(), kImgsz, o).status().message(),
              HasSubstr("needs 3 devices, got 2"));
  o = Options(Mode::kPipeline, 2, 0);
  EXPECT_EQ(Pipeline::Create(Yolov8n(), kImgsz, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = Options(Mode::kSingle, 1, 1);
  o.devices.clear();
  EXPECT_EQ(Pipeline::Create(Yolov8n(), kImgsz, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PipelineCreateTest, RefusesPlanForAnotherModel) {
  proto::Plan plan;
  plan.set_model("yolov8x");
  plan.set_model_fingerprint("0123456789abcdef");
  plan.set_num_stages(2);
  plan.set_replicas(1);
  PipelineOptions o = Options(Mode::kPipeline, 2, 1);
  o.plan = &plan;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(p.status().message(), HasSubstr("0123456789abcdef"));
}

}  // namespace
}  // namespace yolopipe
