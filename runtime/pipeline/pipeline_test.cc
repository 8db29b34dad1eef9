#include "runtime/pipeline/pipeline.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "graph/ir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/device.h"
#include "graph/fingerprint.h"
#include "runtime/model.h"
#include "runtime/planner/planner.h"
#include "runtime/profiler/profiler.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/session.h"
#include "runtime/pipeline/tagged_stream.h"
#include "runtime/pipeline/testing/test_util.h"
#include "runtime/trace/trace.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
constexpr int64_t kBatch = 8;

const Model& Yolov8n() { return testing::CachedBuiltin("yolov8n", kImgsz); }

Tensor DistinctBatch() { return testing::DistinctBatch(kBatch, kImgsz, 100); }

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

// A 2-stage pipeline whose stage 1 hits `fault` at micro-batch 3 fails that Run with `code` and
// a message naming the stage, the micro-batch and `says`; a later Run builds fresh channels and
// works.
void ExpectFaultFailsOneRun(const Tensor& batch,
                            const std::function<absl::Status()>& fault, absl::StatusCode code,
                            const std::string& says) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 1);
  std::atomic<bool> inject{true};
  o.fault_injector = [&](int replica, int stage, int64_t mb) -> absl::Status {
    if (inject && stage == 1 && mb == 3) return fault();
    return absl::OkStatus();
  };
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto out = (*p)->Run(batch);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), code);
  EXPECT_THAT(out.status().message(), HasSubstr("stage 1 micro-batch 3"));
  EXPECT_THAT(out.status().message(), HasSubstr(says));
  inject = false;
  auto again = (*p)->Run(batch);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(SameBytes(*again, SessionReference(batch, 1, 1)));
}

TEST_F(ModesTest, FaultAtStageOneMicroBatchThreeThenRunAgain) {
  ExpectFaultFailsOneRun(
      *batch_, [] { return absl::InternalError("injected kernel failure"); },
      absl::StatusCode::kInternal, "injected kernel failure");
}

// A stage whose kernels throw (oneDNN and the standard library report errors by exception) fails
// that micro-batch by name instead of ending the process; the pipeline stays usable.
TEST_F(ModesTest, StageThatThrowsFailsTheRunCleanly) {
  ExpectFaultFailsOneRun(
      *batch_, []() -> absl::Status { throw std::runtime_error("kernel library error"); },
      absl::StatusCode::kInternal, "exception: kernel library error");
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

// B = 8 with micro-batches of 3: the last micro-batch holds 2 images. The reference runs the
// Session on 3-image batches, zero-padding the last one itself, and keeps the real rows.
TEST_F(ModesTest, PartialLastMicroBatchIsPaddedAndTrimmed) {
  SessionOptions so;
  so.device.num_threads = 1;
  auto session = Session::Create(Yolov8n(), {3, 3, kImgsz, kImgsz}, so);
  ASSERT_TRUE(session.ok()) << session.status();
  const size_t in_image = 3 * kImgsz * kImgsz * sizeof(float);
  std::vector<Tensor> parts;
  for (int64_t first = 0; first < kBatch; first += 3) {
    Tensor in(DType::kFloat32, {3, 3, kImgsz, kImgsz});
    std::memset(in.raw_data(), 0, in.bytes());
    const int64_t n = std::min<int64_t>(3, kBatch - first);
    std::memcpy(in.raw_data(), static_cast<const char*>(batch_->raw_data()) + first * in_image,
                n * in_image);
    auto out = (*session)->Run(in);
    ASSERT_TRUE(out.ok()) << out.status();
    parts.push_back(*out);
  }
  const size_t out_image = parts[0].bytes() / 3;
  for (Mode mode : {Mode::kSingle, Mode::kPipeline, Mode::kData}) {
    SCOPED_TRACE(ModeName(mode));
    PipelineStats stats;
    auto out = RunMode(Options(mode, mode == Mode::kSingle ? 1 : 2, 3), *batch_, &stats);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->dim(0), kBatch);
    for (int64_t i = 0; i < kBatch; ++i) {
      EXPECT_EQ(std::memcmp(static_cast<const char*>(out->raw_data()) + i * out_image,
                            static_cast<const char*>(parts[i / 3].raw_data()) + (i % 3) * out_image,
                            out_image),
                0)
          << "image " << i;
    }
    EXPECT_EQ(stats.images, kBatch);
    EXPECT_EQ(stats.num_microbatches, 3);
  }
}

TEST_F(ModesTest, RejectsBadShape) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 2, 3));
  ASSERT_TRUE(p.ok()) << p.status();
  Tensor wrong(DType::kFloat32, {3, 3, 32, 32});
  EXPECT_EQ((*p)->Run(wrong).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*p)->Run(Tensor()).status().code(), absl::StatusCode::kInvalidArgument);
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

// ---------------------------------------------------------------------------------------------
// Streams

Tensor Image(const Tensor& batch, int64_t i, int64_t n = 1) {
  const size_t image_bytes = batch.bytes() / batch.dim(0);
  Tensor t(DType::kFloat32, {n, 3, kImgsz, kImgsz});
  std::memcpy(t.raw_data(), static_cast<const char*>(batch.raw_data()) + i * image_bytes,
              n * image_bytes);
  return t;
}

bool RowsEqual(const Tensor& out, const Tensor& reference, int64_t first) {
  const size_t row = reference.bytes() / reference.dim(0);
  return out.bytes() % row == 0 &&
         std::memcmp(out.raw_data(), static_cast<const char*>(reference.raw_data()) + first * row,
                     out.bytes()) == 0;
}

// Pushes from one thread, pops from another: outputs come back in push order, bitwise equal to
// the Session on the same micro-batches; after CloseInput, Pop reports the end.
TEST_F(ModesTest, StreamDeliversEveryOutputOnceInOrder) {
  for (Mode mode : {Mode::kPipeline, Mode::kHybrid}) {
    SCOPED_TRACE(ModeName(mode));
    PipelineOptions o = Options(mode, mode == Mode::kHybrid ? 4 : 2, 2);
    if (mode == Mode::kHybrid) o.replicas = 2;
    auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
    ASSERT_TRUE(p.ok()) << p.status();
    auto stream = (*p)->OpenStream();
    ASSERT_TRUE(stream.ok()) << stream.status();
    PipelineStream* st = stream->get();
    constexpr int kRounds = 3;  // the same 4 micro-batches three times: 12 in all
    std::thread pusher([&] {
      for (int round = 0; round < kRounds; ++round) {
        for (int64_t j = 0; j < kBatch / 2; ++j) ASSERT_TRUE(st->Push(Image(*batch_, 2 * j, 2)).ok());
      }
      st->CloseInput();
    });
    for (int k = 0; k < kRounds * kBatch / 2; ++k) {
      auto out = st->Pop();
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(out->dim(0), 2);
      EXPECT_TRUE(RowsEqual(*out, *reference_, 2 * (k % (kBatch / 2)))) << "micro-batch " << k;
    }
    pusher.join();
    EXPECT_EQ(st->Pop().status().code(), absl::StatusCode::kOutOfRange);
    PipelineStats stats;
    ASSERT_TRUE(st->Finish(&stats).ok());
    EXPECT_EQ(stats.num_microbatches, kRounds * kBatch / 2);
    EXPECT_EQ(stats.images, kRounds * kBatch);
    EXPECT_GT(stats.bytes_moved, 0);
    EXPECT_GT(stats.latency_p99_ms, 0);
    EXPECT_GE(stats.latency_p99_ms, stats.latency_p50_ms);
  }
}

// Each output comes back with the context pushed with it, whatever the micro-batch sizes; a push
// the stream refuses leaves no context behind.
TEST_F(ModesTest, TaggedStreamReturnsEachContextWithItsOutput) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 2);
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  struct Where {
    int64_t first;
    int64_t count;
  };
  TaggedStream<Where> tagged(**stream);
  // kBatch images as micro-batches of 1, 2, 1, 2, ... (never more than the micro-batch).
  std::vector<Where> pushed;
  for (int64_t i = 0, k = 0; i < kBatch; ++k) {
    const int64_t n = std::min<int64_t>(kBatch - i, 1 + k % 2);
    pushed.push_back({i, n});
    i += n;
  }
  std::thread pusher([&] {
    for (const Where& w : pushed) ASSERT_TRUE(tagged.Push(Image(*batch_, w.first, w.count), w).ok());
    tagged.stream().CloseInput();
    EXPECT_EQ(tagged.Push(Image(*batch_, 0, 1), Where{-1, -1}).code(),
              absl::StatusCode::kFailedPrecondition);
  });
  for (const Where& want : pushed) {
    auto popped = tagged.Pop();
    ASSERT_TRUE(popped.ok()) << popped.status();
    EXPECT_EQ(popped->context.first, want.first);
    ASSERT_EQ(popped->context.count, want.count);
    EXPECT_EQ(popped->output.dim(0), want.count);
    EXPECT_TRUE(RowsEqual(popped->output, *reference_, want.first)) << "images from " << want.first;
  }
  pusher.join();
  EXPECT_EQ(tagged.Pop().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(tagged.stream().Finish().ok());
}

// A partial micro-batch comes back with only its images' rows.
TEST_F(ModesTest, StreamPartialMicroBatch) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 2, 2));
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Push(Image(*batch_, 4, 1)).ok());
  auto out = (*stream)->Pop();
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->dim(0), 1);
  EXPECT_TRUE(RowsEqual(*out, *reference_, 4));
  EXPECT_TRUE((*stream)->Finish().ok());
}

// Waiting for input is not a stall: the watchdog only counts micro-batches inside the pipeline.
TEST_F(ModesTest, StreamIdleLongerThanTheTimeoutIsFine) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 2);
  o.timeout = absl::Milliseconds(150);
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok());
  for (int64_t j = 0; j < 2; ++j) {
    ASSERT_TRUE((*stream)->Push(Image(*batch_, 2 * j, 2)).ok());
    auto out = (*stream)->Pop();
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(RowsEqual(*out, *reference_, 2 * j));
    absl::SleepFor(absl::Milliseconds(500));  // idle, nothing inside the pipeline
  }
  absl::Status finished = (*stream)->Finish();
  EXPECT_TRUE(finished.ok()) << finished;
}

TEST_F(ModesTest, StreamMisuseIsRefused) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 2, 2));
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok());
  // One stream at a time, and Run needs the stages too.
  EXPECT_EQ((*p)->OpenStream().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*p)->Run(*batch_).status().code(), absl::StatusCode::kFailedPrecondition);
  // Bad tensors: too many images, wrong size, wrong dtype.
  EXPECT_EQ((*stream)->Push(Image(*batch_, 0, 3)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*stream)->Push(Tensor(DType::kFloat32, {1, 3, 32, 32})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*stream)->Push(Tensor(DType::kInt64, {1, 3, kImgsz, kImgsz})).code(),
            absl::StatusCode::kInvalidArgument);
  (*stream)->CloseInput();
  EXPECT_EQ((*stream)->Push(Image(*batch_, 0, 2)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*stream)->Pop().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE((*stream)->Finish().ok());
  stream->reset();
  // Closed: the pipeline takes a new stream or a Run.
  auto out = (*p)->Run(*batch_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
}

// Push blocks once `max_in_flight` micro-batches wait to be popped, and resumes after a Pop.
TEST_F(ModesTest, StreamCapacityBoundsWhatIsInFlight) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 2);
  o.max_in_flight = 2;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ((*stream)->capacity(), 2);
  ASSERT_TRUE((*stream)->Push(Image(*batch_, 0, 2)).ok());
  ASSERT_TRUE((*stream)->Push(Image(*batch_, 2, 2)).ok());
  std::atomic<bool> third_pushed{false};
  std::thread pusher([&] {
    EXPECT_TRUE((*stream)->Push(Image(*batch_, 4, 2)).ok());
    third_pushed = true;
  });
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(third_pushed.load());  // blocked: two are in flight and nobody popped
  for (int64_t j = 0; j < 3; ++j) {
    auto out = (*stream)->Pop();
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(RowsEqual(*out, *reference_, 2 * j));
  }
  pusher.join();
  EXPECT_TRUE(third_pushed.load());
  EXPECT_TRUE((*stream)->Finish().ok());
}

// A stage failure mid-stream: outputs before it arrive intact and in order, then Pop returns the
// failure naming stage and micro-batch; nothing is delivered twice and nothing hangs.
TEST_F(ModesTest, StreamFailureEndsPopsWithTheStagesError) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 2);
  o.fault_injector = [](int replica, int stage, int64_t mb) -> absl::Status {
    if (stage == 1 && mb == 2) return absl::DataLossError("corrupt activation");
    return absl::OkStatus();
  };
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok());
  std::thread pusher([&] {
    for (int64_t j = 0; j < 4; ++j) {
      if (!(*stream)->Push(Image(*batch_, 2 * j, 2)).ok()) break;
    }
    (*stream)->CloseInput();
  });
  int good = 0;
  absl::Status end;
  while (true) {
    auto out = (*stream)->Pop();
    if (!out.ok()) {
      end = out.status();
      break;
    }
    EXPECT_TRUE(RowsEqual(*out, *reference_, 2 * good));
    ++good;
  }
  pusher.join();
  EXPECT_LE(good, 2);  // micro-batches 0 and 1 at most
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss) << end;
  EXPECT_THAT(end.message(), HasSubstr("stage 1 micro-batch 2: corrupt activation"));
  EXPECT_EQ((*stream)->Finish().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ModesTest, StreamCancelWakesABlockedPopAndDestroyWithoutFinishJoins) {
  auto p = Pipeline::Create(Yolov8n(), kImgsz, Options(Mode::kPipeline, 2, 2));
  ASSERT_TRUE(p.ok()) << p.status();
  {
    auto stream = (*p)->OpenStream();
    ASSERT_TRUE(stream.ok());
    absl::Status popped;
    std::thread popper([&] { popped = (*stream)->Pop().status(); });
    absl::SleepFor(absl::Milliseconds(50));
    (*stream)->Cancel(absl::CancelledError("service shutting down"));
    popper.join();
    EXPECT_EQ(popped.code(), absl::StatusCode::kCancelled);
    EXPECT_THAT(popped.message(), HasSubstr("service shutting down"));
    EXPECT_EQ((*stream)->Push(Image(*batch_, 0, 2)).code(), absl::StatusCode::kCancelled);
  }
  {
    auto stream = (*p)->OpenStream();  // the cancelled stream's destructor released the stages
    ASSERT_TRUE(stream.ok()) << stream.status();
    ASSERT_TRUE((*stream)->Push(Image(*batch_, 0, 2)).ok());
    // Destroyed with a micro-batch inside and no Finish: cancels and joins.
  }
  auto out = (*p)->Run(*batch_);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, *reference_));
}

// A stage that stops making progress (here: a fault hook that sleeps past the timeout before
// computing) trips the watchdog, whose message says how far each stage got.
TEST_F(ModesTest, WatchdogFailsAStalledStream) {
  PipelineOptions o = Options(Mode::kPipeline, 2, 2);
  o.timeout = absl::Milliseconds(200);
  o.fault_injector = [](int replica, int stage, int64_t mb) -> absl::Status {
    if (stage == 1 && mb == 1) absl::SleepFor(absl::Seconds(2));
    return absl::OkStatus();
  };
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto out = (*p)->Run(*batch_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded) << out.status();
  EXPECT_THAT(out.status().message(), HasSubstr("no progress for 200ms"));
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("stage 1 received 2 computed 0 sent 0"));
}

// Measured memory: each stage holds at least its weights, and the stages together at least the
// model's parameters (fp32), computed from the graph independently of the executor.
TEST_F(ModesTest, StagePeakBytesCoverTheWeights) {
  PipelineStats stats;
  auto out = RunMode(Options(Mode::kPipeline, 2, 2), *batch_, &stats);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(stats.stage_peak_bytes.size(), 2u);
  const int64_t params = Yolov8n().graph.ParameterCount();
  EXPECT_GE(stats.stage_peak_bytes[0] + stats.stage_peak_bytes[1], params * 4);
  for (int64_t b : stats.stage_peak_bytes) EXPECT_GT(b, 0);
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
