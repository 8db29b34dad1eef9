// Soak: one open pipeline stream on cpu:2 carries kMicroBatches micro-batches, as a service would
// for days. Every input must produce exactly one output, in order and bitwise equal to the plain
// Session's, and the process's memory must stay flat once warm. The peak RSS at the start and the
// end are printed for the reports.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/session.h"

namespace yolopipe {
namespace {

constexpr int64_t kImgsz = 32;
constexpr int kMicroBatches = 10000;
constexpr int kWarmUp = 1000;     // memory is measured from here on
constexpr int kDistinct = 16;     // inputs cycle through this many images
constexpr int64_t kAllowedGrowthKiB = 8 << 10;

// A field of /proc/self/status in KiB ("VmRSS", "VmHWM"), -1 if absent.
int64_t StatusKiB(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

TEST(PipelineSoakTest, TenThousandMicroBatchesInOrderWithFlatMemory) {
  BuiltinModelOptions mo;
  mo.imgsz = kImgsz;
  auto model = LoadModel("yolov8n", mo);
  ASSERT_TRUE(model.ok()) << model.status();

  std::vector<Tensor> inputs, expected;
  SessionOptions so;
  so.device.num_threads = 1;
  auto session = Session::Create(*model, {1, 3, kImgsz, kImgsz}, so);
  ASSERT_TRUE(session.ok()) << session.status();
  for (int i = 0; i < kDistinct; ++i) {
    inputs.push_back(SyntheticInput({1, 3, kImgsz, kImgsz}, 500 + i));
    auto out = (*session)->Run(inputs.back());
    ASSERT_TRUE(out.ok()) << out.status();
    expected.push_back(out->Clone());
  }

  PipelineOptions o;
  o.mode = Mode::kPipeline;
  auto devices = ParseDevices("cpu:2", /*threads_per_device=*/1);
  ASSERT_TRUE(devices.ok()) << devices.status();
  o.devices = *devices;
  o.microbatch = 1;
  auto pipeline = Pipeline::Create(*model, kImgsz, o);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  auto stream = (*pipeline)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  PipelineStream* st = stream->get();

  std::thread pusher([&] {
    for (int k = 0; k < kMicroBatches; ++k) {
      if (!st->Push(inputs[k % kDistinct], /*share=*/true).ok()) break;  // the error reaches Pop
    }
    st->CloseInput();
  });
  int64_t warm_rss = 0, warm_peak = 0, mismatches = 0;
  int popped = 0;
  for (; popped < kMicroBatches; ++popped) {
    if (popped == kWarmUp) {
      warm_rss = StatusKiB("VmRSS");
      warm_peak = StatusKiB("VmHWM");
    }
    auto out = st->Pop();
    ASSERT_TRUE(out.ok()) << "micro-batch " << popped << ": " << out.status();
    const Tensor& want = expected[popped % kDistinct];
    if (out->shape() != want.shape() ||
        std::memcmp(out->raw_data(), want.raw_data(), want.bytes()) != 0) {
      if (++mismatches <= 5) ADD_FAILURE() << "micro-batch " << popped << " differs from its input's";
    }
  }
  pusher.join();
  EXPECT_EQ(st->Pop().status().code(), absl::StatusCode::kOutOfRange);  // nothing extra
  PipelineStats stats;
  ASSERT_TRUE(st->Finish(&stats).ok());
  const int64_t end_rss = StatusKiB("VmRSS"), end_peak = StatusKiB("VmHWM");

  EXPECT_EQ(popped, kMicroBatches);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(stats.num_microbatches, kMicroBatches);
  EXPECT_EQ(stats.images, kMicroBatches);
  std::printf("soak: %d micro-batches, %.1f img/s; RSS after %d: %lld KiB (peak %lld KiB); at the "
              "end: %lld KiB (peak %lld KiB)\n",
              kMicroBatches, stats.images_per_second, kWarmUp, static_cast<long long>(warm_rss),
              static_cast<long long>(warm_peak), static_cast<long long>(end_rss),
              static_cast<long long>(end_peak));
  ASSERT_GT(warm_rss, 0);
  EXPECT_LE(end_rss - warm_rss, kAllowedGrowthKiB) << "resident memory grew while streaming";
  EXPECT_LE(end_peak - warm_peak, kAllowedGrowthKiB) << "peak memory grew while streaming";
}

}  // namespace
}  // namespace yolopipe
