// The pipeline's device path (PipelineOptions::nccl) on machines without a GPU: the CUDA
// executors and NCCL are replaced by host emulations (runtime/pipeline/testing/
// emulated_device_path.h) whose link fabric models NCCL's ordering strictly (a rank's groups run
// one after another; a transfer moves only when both sides' groups are running). So these tests
// exercise the pipeline's announcements, grouped transfers, slot hand-back and failure handling,
// and would hang (caught by the watchdog) on a protocol that can deadlock under NCCL's rules.
// The reference is the plain CPU pipeline in single mode, compared bitwise (same CPU kernels).
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "graph/partition.h"
#include "graph/prepare.h"
#include "gtest/gtest.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/device_path.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/pipeline/testing/test_util.h"
#include "runtime/pipeline/testing/emulated_device_path.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kImgsz = 64;
constexpr int64_t kBatch = 7;  // with micro-batch 2: three full micro-batches and a partial one

const Model& Yolov8n() { return testing::CachedBuiltin("yolov8n", kImgsz); }

Tensor DistinctBatch() { return testing::DistinctBatch(kBatch, kImgsz, 300); }

DeviceSpec OneThreadCpu() {
  DeviceSpec d;
  d.num_threads = 1;
  return d;
}

const DevicePathForTesting& Emulation() {
  static const DevicePathForTesting* emulation =
      new DevicePathForTesting(testing::EmulatedDevicePath());
  return *emulation;
}

PipelineOptions DevicePath(Mode mode, int devices, int microbatch) {
  PipelineOptions o;
  o.mode = mode;
  o.devices.assign(devices, OneThreadCpu());
  o.microbatch = microbatch;
  o.nccl = true;
  o.device_path_for_testing = &Emulation();
  o.timeout = absl::Seconds(30);  // a deadlock fails the test instead of hanging it
  return o;
}

// The same batch through single mode on one CPU thread, with the same micro-batch.
Tensor Reference(const Tensor& batch, int microbatch) {
  PipelineOptions o;
  o.devices = {OneThreadCpu()};
  o.microbatch = microbatch;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return Tensor();
  auto out = (*p)->Run(batch);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : Tensor();
}

void ExpectBitwiseEqual(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_EQ(std::memcmp(got.raw_data(), want.raw_data(), want.bytes()), 0);
}

// Tensors crossing between stages per micro-batch: (tensor, consuming stage) pairs and bytes,
// from the pipeline's own split, computed independently of the transports.
struct Crossings {
  int64_t pairs = 0;
  int64_t bytes = 0;
};
Crossings CrossingsOf(const Pipeline& p) {
  Crossings c;
  auto prepared = PrepareForExecution(Yolov8n().graph, p.microbatch_shape());
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  if (!prepared.ok()) return c;
  auto stages = PartitionGraph(*prepared, p.stage_nodes());
  EXPECT_TRUE(stages.ok()) << stages.status();
  if (!stages.ok()) return c;
  for (const StageGraph& sg : *stages) {
    for (const auto& send : sg.sends) {
      const Value* v = sg.graph.FindValue(send.tensor);
      for (int to : send.to_stages) {
        if (to < 0) continue;  // the host
        ++c.pairs;
        c.bytes += static_cast<int64_t>(NumElements(v->shape) * DTypeSize(v->dtype));
      }
    }
  }
  return c;
}

TEST(PipelineDevicePathTest, PipelinesOfTwoToFourStagesEqualSingle) {
  const Tensor batch = DistinctBatch();
  const Tensor want = Reference(batch, 2);
  for (int k : {2, 3, 4}) {
    SCOPED_TRACE(absl::StrCat(k, " stages"));
    auto p = Pipeline::Create(Yolov8n(), kImgsz, DevicePath(Mode::kPipeline, k, 2));
    ASSERT_TRUE(p.ok()) << p.status();
    // Twice: the links outlive the first stream.
    for (int run = 0; run < 2; ++run) {
      PipelineStats stats;
      auto got = (*p)->Run(batch, &stats);
      ASSERT_TRUE(got.ok()) << got.status();
      ExpectBitwiseEqual(*got, want);
      // Every crossing tensor moved once per micro-batch over the links, plus one 8-byte size
      // per tensor in its announcement on the host fabric.
      const Crossings c = CrossingsOf(**p);
      ASSERT_GT(c.pairs, 0);
      EXPECT_EQ(stats.num_microbatches, 4);
      EXPECT_EQ(stats.bytes_moved, 4 * (c.bytes + 8 * c.pairs));
    }
  }
}

TEST(PipelineDevicePathTest, OneTwoAndThreeSlotsPerStage) {
  const Tensor batch = DistinctBatch();
  const Tensor want = Reference(batch, 1);
  for (int buffers : {1, 2, 3}) {
    SCOPED_TRACE(absl::StrCat(buffers, " slots"));
    PipelineOptions o = DevicePath(Mode::kPipeline, 3, 1);
    o.buffers = buffers;
    auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
    ASSERT_TRUE(p.ok()) << p.status();
    auto got = (*p)->Run(batch);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectBitwiseEqual(*got, want);
  }
}

TEST(PipelineDevicePathTest, HybridReplicasHaveTheirOwnLinks) {
  const Tensor batch = DistinctBatch();
  PipelineOptions o = DevicePath(Mode::kHybrid, 4, 1);
  o.replicas = 2;
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ((*p)->num_replicas(), 2);
  auto got = (*p)->Run(batch);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectBitwiseEqual(*got, Reference(batch, 1));
}

// Each image is popped before the next is pushed: a receive posted for a micro-batch that does not
// exist yet would hold the rank's later sends behind it (strict ordering), and nothing would come
// out.
TEST(PipelineDevicePathTest, StreamOneImageAtATime) {
  const Tensor batch = DistinctBatch();
  const Tensor want = Reference(batch, 1);
  auto p = Pipeline::Create(Yolov8n(), kImgsz, DevicePath(Mode::kPipeline, 4, 1));
  ASSERT_TRUE(p.ok()) << p.status();
  auto stream = (*p)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  for (int64_t i = 0; i < kBatch; ++i) {
    SCOPED_TRACE(absl::StrCat("image ", i));
    ASSERT_TRUE((*stream)->Push(testing::RowOf(batch, i)).ok());
    auto out = (*stream)->Pop();
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectBitwiseEqual(*out, testing::RowOf(want, i));
  }
  EXPECT_TRUE((*stream)->Finish().ok());
}

// A stage failing mid-run fails the run with its name; the links it aborted are replaced, and the
// next run is correct.
TEST(PipelineDevicePathTest, FailureAbortsTheLinksAndTheNextRunRecovers) {
  const Tensor batch = DistinctBatch();
  bool fail = true;
  PipelineOptions o = DevicePath(Mode::kPipeline, 3, 1);
  o.fault_injector = [&fail](int replica, int stage, int64_t microbatch) {
    if (fail && stage == 1 && microbatch == 2) return absl::InternalError("injected");
    return absl::OkStatus();
  };
  auto p = Pipeline::Create(Yolov8n(), kImgsz, o);
  ASSERT_TRUE(p.ok()) << p.status();
  auto failed = (*p)->Run(batch);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInternal) << failed.status();
  EXPECT_THAT(failed.status().message(), HasSubstr("stage 1 micro-batch 2: injected"));
  fail = false;
  auto got = (*p)->Run(batch);
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectBitwiseEqual(*got, Reference(batch, 1));
}

TEST(PipelineDevicePathTest, ModesWithoutStagesAreRefused) {
  auto single = Pipeline::Create(Yolov8n(), kImgsz, DevicePath(Mode::kSingle, 1, 1));
  EXPECT_EQ(single.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(single.status().message(), HasSubstr("mode single has none"));
}

}  // namespace
}  // namespace yolopipe
