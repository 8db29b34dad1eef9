#include "runtime/embed/yolopipe.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/artifact_io.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/embed/engine_test_peer.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/planner/planner.h"
#include "runtime/profiler/profiler.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
// YOLOv8 anchors at imgsz 64: strides 8, 16, 32 -> 8*8 + 4*4 + 2*2.
constexpr int64_t kAnchors = 64 + 16 + 4;
constexpr int64_t kClasses = 80;

EngineOptions SmallOptions() {
  EngineOptions o;
  o.model = "yolov8n";
  o.imgsz = kImgsz;
  return o;
}

std::unique_ptr<Engine> MakeEngine(const EngineOptions& o) {
  auto engine = Engine::Create(o);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

Tensor Images(int64_t n, uint64_t seed) { return SyntheticInput({n, 3, kImgsz, kImgsz}, seed); }

// The reference: the runtime's single-mode Pipeline used directly, not through the engine.
Tensor DirectSingle(const Tensor& images) {
  static Pipeline* pipeline = [] {
    BuiltinModelOptions mo;
    mo.imgsz = kImgsz;
    auto model = LoadModel("yolov8n", mo);
    EXPECT_TRUE(model.ok()) << model.status();
    PipelineOptions po;
    po.mode = Mode::kSingle;
    auto devices = ParseDevices("cpu");
    EXPECT_TRUE(devices.ok()) << devices.status();
    po.devices = *devices;
    auto p = Pipeline::Create(*model, kImgsz, po);
    EXPECT_TRUE(p.ok()) << p.status();
    return p->release();
  }();
  auto out = pipeline->Run(images);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Tensor();
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

bool IsReady(std::future<absl::StatusOr<Tensor>>& f) {
  return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

TEST(EngineTest, InferEqualsDirectSinglePipelineBitwise) {
  auto engine = MakeEngine(SmallOptions());
  ASSERT_NE(engine, nullptr);
  const Tensor images = Images(2, 7);
  auto out = engine->Infer(images);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape(), (Shape{2, 4 + kClasses, kAnchors}));
  EXPECT_TRUE(SameBytes(*out, DirectSingle(images)));
  // A different image gives a different output (the comparison can fail).
  EXPECT_FALSE(SameBytes(*out, DirectSingle(Images(2, 8))));
}

TEST(EngineTest, ConcurrentSubmitsMatchTheirOwnInputs) {
  auto engine = MakeEngine(SmallOptions());
  ASSERT_NE(engine, nullptr);
  constexpr int kThreads = 4, kPerThread = 5;
  std::vector<Tensor> inputs(kThreads * kPerThread);
  for (int i = 0; i < kThreads * kPerThread; ++i) inputs[i] = Images(1 + i % 2, 1000 + i);
  std::vector<std::future<absl::StatusOr<Tensor>>> futures(inputs.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int k = t * kPerThread + i;
        futures[k] = engine->Submit(inputs[k]);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t k = 0; k < inputs.size(); ++k) {
    auto out = futures[k].get();
    ASSERT_TRUE(out.ok()) << "request " << k << ": " << out.status();
    EXPECT_TRUE(SameBytes(*out, DirectSingle(inputs[k]))) << "request " << k;
  }
}

TEST(EngineTest, PipelineModeOnTwoCpuDevicesEqualsSingleBitwise) {
  EngineOptions o = SmallOptions();
  o.mode = "pipeline";
  o.devices = "cpu:2";
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  const Tensor images = Images(4, 21);
  auto out = engine->Infer(images);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, DirectSingle(images)));
  // Several requests in flight through the two stages keep their order.
  auto f1 = engine->Submit(Images(2, 22));
  auto f2 = engine->Submit(Images(2, 23));
  auto o1 = f1.get(), o2 = f2.get();
  ASSERT_TRUE(o1.ok() && o2.ok()) << o1.status() << " " << o2.status();
  EXPECT_TRUE(SameBytes(*o1, DirectSingle(Images(2, 22))));
  EXPECT_TRUE(SameBytes(*o2, DirectSingle(Images(2, 23))));
}

TEST(EngineTest, ShutdownFinishCompletesEveryPendingRequest) {
  auto engine = MakeEngine(SmallOptions());
  ASSERT_NE(engine, nullptr);
  const Tensor images = Images(2, 31);
  const Tensor expected = DirectSingle(images);
  std::vector<std::future<absl::StatusOr<Tensor>>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(engine->Submit(images));
  engine->Shutdown(Engine::ShutdownMode::kFinish);
  for (auto& f : futures) {
    ASSERT_TRUE(IsReady(f));
    auto out = f.get();
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(SameBytes(*out, expected));
  }
}

TEST(EngineTest, ShutdownCancelCompletesEveryPendingRequest) {
  auto engine = MakeEngine(SmallOptions());
  ASSERT_NE(engine, nullptr);
  const Tensor images = Images(4, 41);
  const Tensor expected = DirectSingle(images);
  std::vector<std::future<absl::StatusOr<Tensor>>> futures;
  for (int i = 0; i < 12; ++i) futures.push_back(engine->Submit(images));
  engine->Shutdown(Engine::ShutdownMode::kCancel);
  int cancelled = 0;
  for (size_t i = 0; i < futures.size(); ++i) {
    ASSERT_TRUE(IsReady(futures[i]));  // Shutdown returns only once every future is complete
    auto out = futures[i].get();
    if (out.ok()) {
      // FIFO: once a request was cancelled, every later one was still queued too.
      EXPECT_EQ(cancelled, 0) << "request " << i << " ran after an earlier one was cancelled";
      EXPECT_TRUE(SameBytes(*out, expected));
    } else {
      EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled) << out.status();
      ++cancelled;
    }
  }
  std::cout << cancelled << " of " << futures.size() << " requests cancelled\n";
}

TEST(EngineTest, ShutdownWakesSubmitBlockedOnFullQueue) {
  EngineOptions o = SmallOptions();
  o.max_pending = 1;
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  const Tensor images = Images(4, 51);
  constexpr int kRequests = 10;
  std::vector<std::future<absl::StatusOr<Tensor>>> futures(kRequests);
  std::atomic<int> submitted{0};
  std::thread producer([&] {
    for (int i = 0; i < kRequests; ++i) {
      futures[i] = engine->Submit(images);
      submitted.fetch_add(1);
    }
  });
  while (submitted.load() < 2) std::this_thread::yield();
  engine->Shutdown(Engine::ShutdownMode::kCancel);
  producer.join();
  const Tensor expected = DirectSingle(images);
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(IsReady(futures[i])) << "request " << i;
    auto out = futures[i].get();
    if (out.ok()) {
      EXPECT_TRUE(SameBytes(*out, expected)) << "request " << i;
    } else {
      EXPECT_THAT(out.status().code(),
                  ::testing::AnyOf(absl::StatusCode::kCancelled,
                                   absl::StatusCode::kFailedPrecondition))
          << "request " << i << ": " << out.status();
    }
  }
}

TEST(EngineTest, SubmitAfterShutdownFails) {
  auto engine = MakeEngine(SmallOptions());
  ASSERT_NE(engine, nullptr);
  engine->Shutdown();
  engine->Shutdown(Engine::ShutdownMode::kCancel);  // idempotent
  auto f = engine->Submit(Images(1, 61));
  ASSERT_TRUE(IsReady(f));
  auto out = f.get();
  EXPECT_EQ(out.status().code(), absl::StatusCode::kFailedPrecondition) << out.status();
  EXPECT_EQ(engine->Infer(Images(1, 61)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(EngineTest, BadOptionsFailCreate) {
  struct Case {
    std::string what;
    EngineOptions options;
    absl::StatusCode code;
    std::string says;
  };
  std::vector<Case> cases;
  {
    EngineOptions o = SmallOptions();
    o.model = "yolov9_nonexistent";
    cases.push_back({"unknown model", o, absl::StatusCode::kInvalidArgument, "yolov9_nonexistent"});
  }
  {
    EngineOptions o = SmallOptions();
    o.mode = "sideways";
    cases.push_back({"bad mode", o, absl::StatusCode::kInvalidArgument, "sideways"});
  }
  {
    EngineOptions o = SmallOptions();
    o.devices = "tpu:banana";
    cases.push_back({"bad devices", o, absl::StatusCode::kInvalidArgument, "tpu:banana"});
  }
  {
    EngineOptions o = SmallOptions();
    o.max_pending = 0;
    cases.push_back({"max_pending 0", o, absl::StatusCode::kInvalidArgument, "max_pending"});
  }
  {
    EngineOptions o = SmallOptions();
    o.microbatch = 0;
    cases.push_back({"microbatch 0", o, absl::StatusCode::kInvalidArgument, "microbatch"});
  }
  {
    EngineOptions o = SmallOptions();
    o.mode = "pipeline";
    o.plan_path = "/nonexistent/dir/plan.pbtxt";
    cases.push_back({"missing plan file", o, absl::StatusCode::kNotFound, "/nonexistent/dir/plan.pbtxt"});
  }
  for (const Case& c : cases) {
    auto engine = Engine::Create(c.options);
    ASSERT_FALSE(engine.ok()) << c.what;
    EXPECT_EQ(engine.status().code(), c.code) << c.what << ": " << engine.status();
    EXPECT_THAT(engine.status().message(), HasSubstr(c.says)) << c.what;
  }
}

TEST(EngineTest, WrongInputFailsThatRequestOnly) {
  EngineOptions o = SmallOptions();
  o.microbatch = 2;
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  auto small = engine->Submit(SyntheticInput({2, 3, 32, 32}, 71));        // wrong size
  auto empty = engine->Submit(Tensor(DType::kFloat32, {0, 3, kImgsz, kImgsz}));  // no images
  auto ints = engine->Submit(Tensor(DType::kInt64, {2, 3, kImgsz, kImgsz}));  // wrong dtype
  auto good = engine->Submit(Images(2, 73));
  auto r_small = small.get();
  EXPECT_EQ(r_small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r_small.status().message(), HasSubstr("(2, 3, 32, 32)"));
  auto r_empty = empty.get();
  EXPECT_EQ(r_empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r_empty.status().message(), HasSubstr("N >= 1"));
  EXPECT_EQ(ints.get().status().code(), absl::StatusCode::kInvalidArgument);
  auto r_good = good.get();
  ASSERT_TRUE(r_good.ok()) << r_good.status();
  EXPECT_TRUE(SameBytes(*r_good, DirectSingle(Images(2, 73))));
  // And blocking after the failures.
  auto again = engine->Infer(Images(2, 74));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(SameBytes(*again, DirectSingle(Images(2, 74))));
}

// Requests whose size is not a multiple of the micro-batch: the last micro-batch of each is
// partial. Several in flight at once, in pipeline mode, each equal to the direct single run.
TEST(EngineTest, RequestsOfAnySizeOverlapInThePipeline) {
  EngineOptions o = SmallOptions();
  o.mode = "pipeline";
  o.devices = "cpu:2";
  o.microbatch = 2;
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  const int64_t sizes[] = {3, 1, 5, 2, 7};
  std::vector<std::future<absl::StatusOr<Tensor>>> futures;
  for (int i = 0; i < 5; ++i) futures.push_back(engine->Submit(Images(sizes[i], 200 + i)));
  for (int i = 0; i < 5; ++i) {
    auto out = futures[i].get();
    ASSERT_TRUE(out.ok()) << "request " << i << ": " << out.status();
    EXPECT_EQ(out->dim(0), sizes[i]);
    EXPECT_TRUE(SameBytes(*out, DirectSingle(Images(sizes[i], 200 + i)))) << "request " << i;
  }
}

// A stage fails on one micro-batch: the requests in the pipeline at that moment fail with the
// stage's error; the engine reopens its stream and later requests succeed. No future is lost.
TEST(EngineTest, StageFailureFailsInFlightRequestsAndTheEngineRecovers) {
  EngineOptions o = SmallOptions();
  o.mode = "pipeline";
  o.devices = "cpu:2";
  std::atomic<int> calls{0};
  auto engine = EngineTestPeer::Create(o, [&calls](int, int stage, int64_t mb) -> absl::Status {
    // Fails the first time stage 1 sees micro-batch 2 (in the first stream only).
    if (stage == 1 && mb == 2 && calls.fetch_add(1) == 0) {
      return absl::InternalError("injected stage failure");
    }
    return absl::OkStatus();
  });
  ASSERT_TRUE(engine.ok()) << engine.status();
  // Request 0: micro-batches 0..3 of the first stream; the failure hits it.
  auto first = (*engine)->Submit(Images(4, 301));
  auto r_first = first.get();
  ASSERT_FALSE(r_first.ok());
  EXPECT_EQ(r_first.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(r_first.status().message(), HasSubstr("stage 1 micro-batch 2: injected stage failure"));
  // Later requests run on a fresh stream.
  for (int i = 0; i < 3; ++i) {
    auto out = (*engine)->Infer(Images(3, 310 + i));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(SameBytes(*out, DirectSingle(Images(3, 310 + i))));
  }
}

// Writes a 2-stage plan for yolopipe's built-in yolov8n with `num_classes` to a .pbtxt file.
std::string WritePlan(int64_t num_classes, const std::string& name) {
  BuiltinModelOptions mo;
  mo.imgsz = kImgsz;
  mo.num_classes = num_classes;
  auto model = LoadModel("yolov8n", mo);
  EXPECT_TRUE(model.ok()) << model.status();
  ProfilerOptions po;
  po.microbatch_sizes = {1};
  po.repeats = 1;
  po.warmup = 0;
  auto profile = ProfileModel(*model, kImgsz, po);
  EXPECT_TRUE(profile.ok()) << profile.status();
  PlannerOptions plo;
  plo.num_stages = 2;
  plo.batch = 2;
  auto plan = PlanPipeline(*profile, plo);
  EXPECT_TRUE(plan.ok()) << plan.status();
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  absl::Status written = WriteArtifact(path, *plan);
  EXPECT_TRUE(written.ok()) << written;
  return path;
}

TEST(EngineTest, PlanFileDrivesPipelineMode) {
  EngineOptions o = SmallOptions();
  o.mode = "pipeline";
  o.devices = "cpu:2";
  o.plan_path = WritePlan(kClasses, "plan.pbtxt");
  auto engine = MakeEngine(o);
  ASSERT_NE(engine, nullptr);
  auto out = engine->Infer(Images(2, 81));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(SameBytes(*out, DirectSingle(Images(2, 81))));
}

TEST(EngineTest, PlanForAnotherModelFailsCreate) {
  EngineOptions o = SmallOptions();
  o.mode = "pipeline";
  o.devices = "cpu:2";
  o.plan_path = WritePlan(20, "plan20.pbtxt");  // the engine's model has 80 classes
  auto engine = Engine::Create(o);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition) << engine.status();
}

}  // namespace
}  // namespace yolopipe
