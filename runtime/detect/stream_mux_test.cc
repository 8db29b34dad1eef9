#include "runtime/detect/stream_mux.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

// The payload carries its own identity so a mixed-up tag is visible.
struct Payload {
  int source = -1;
  int64_t frame = -1;
};

TEST(StreamMuxTest, ParsesPolicies) {
  EXPECT_EQ(*ParseBackpressurePolicy("block"), BackpressurePolicy::kBlock);
  EXPECT_EQ(*ParseBackpressurePolicy("drop"), BackpressurePolicy::kDropOldest);
  EXPECT_EQ(*ParseBackpressurePolicy("drop-oldest"), BackpressurePolicy::kDropOldest);
  auto bad = ParseBackpressurePolicy("newest");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("newest"), std::string::npos);
  EXPECT_STREQ(BackpressurePolicyName(BackpressurePolicy::kDropOldest), "drop");
}

TEST(StreamMuxTest, RoundRobinAcrossSources) {
  StreamMultiplexer<int> mux(3, 8, BackpressurePolicy::kBlock);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(mux.Push(0, 100 + i).ok());
  ASSERT_TRUE(mux.Push(1, 200).ok());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(mux.Push(2, 300 + i).ok());
  auto batch = mux.NextBatch(10);
  const std::vector<std::pair<int, int64_t>> expected = {{0, 0}, {1, 0}, {2, 0},
                                                         {0, 1}, {2, 1}, {0, 2}};
  ASSERT_EQ(batch.size(), expected.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(batch[i].tag.source, expected[i].first) << i;
    EXPECT_EQ(batch[i].tag.frame, expected[i].second) << i;
    EXPECT_EQ(batch[i].frame, 100 * (expected[i].first + 1) + expected[i].second) << i;
  }
}

TEST(StreamMuxTest, RoundRobinResumesAfterLastServedSource) {
  StreamMultiplexer<int> mux(3, 8, BackpressurePolicy::kBlock);
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(mux.Push(s, s * 10 + i).ok());
  }
  // Batches of 2: sources 0,1 then 2,0 then 1,2 - nobody starves.
  const std::vector<int> order = {0, 1, 2, 0, 1, 2};
  std::vector<int> got;
  for (int b = 0; b < 3; ++b) {
    for (auto& f : mux.NextBatch(2)) got.push_back(f.tag.source);
  }
  EXPECT_EQ(got, order);
}

TEST(StreamMuxTest, DropOldestCountsAndKeepsNewest) {
  StreamMultiplexer<int> mux(2, 2, BackpressurePolicy::kDropOldest);
  for (int i = 0; i < 5; ++i) {
    auto index = mux.Push(0, i);
    ASSERT_TRUE(index.ok());
    EXPECT_EQ(*index, i);  // indices count dropped frames too
  }
  ASSERT_TRUE(mux.Push(1, 7).ok());
  EXPECT_EQ(mux.dropped(0), 3);
  EXPECT_EQ(mux.dropped(1), 0);
  EXPECT_EQ(mux.pushed(0), 5);
  mux.CloseSource(0);
  mux.CloseSource(1);
  auto batch = mux.NextBatch(8);
  ASSERT_EQ(batch.size(), 3u);
  EXPECT_EQ(batch[0].tag, (FrameTag{0, 3}));
  EXPECT_EQ(batch[0].frame, 3);
  EXPECT_EQ(batch[1].tag, (FrameTag{1, 0}));
  EXPECT_EQ(batch[2].tag, (FrameTag{0, 4}));
  EXPECT_EQ(batch[2].frame, 4);
  EXPECT_TRUE(mux.NextBatch(8).empty());  // all closed and drained
}

TEST(StreamMuxTest, RejectsBadSourceClosedSourceAndCancel) {
  StreamMultiplexer<int> mux(2, 1, BackpressurePolicy::kBlock);
  EXPECT_EQ(mux.Push(2, 0).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(mux.Push(-1, 0).status().code(), absl::StatusCode::kOutOfRange);
  mux.CloseSource(1);
  EXPECT_EQ(mux.Push(1, 0).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(mux.Push(0, 0).ok());
  // Queue of source 0 is full: the next Push blocks until Cancel releases it.
  absl::Status blocked;
  std::thread t([&] { blocked = mux.Push(0, 1).status(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  mux.Cancel();
  t.join();
  EXPECT_EQ(blocked.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(mux.NextBatch(4).empty());
}

// Producers push at random moments; the consumer delivers each batch's results in a random
// order; the demultiplexer must still hand every source's frames back in order, all of them.
TEST(StreamMuxTest, BlockPolicyUnderRandomArrivalLosesNothingAndKeepsOrder) {
  constexpr int kSources = 4;
  constexpr int kFrames = 60;
  StreamMultiplexer<Payload> mux(kSources, 2, BackpressurePolicy::kBlock);
  StreamDemultiplexer<Payload> demux(kSources);
  std::vector<std::thread> producers;
  for (int s = 0; s < kSources; ++s) {
    producers.emplace_back([&mux, s] {
      std::mt19937 rng(1234 + s);
      for (int i = 0; i < kFrames; ++i) {
        if (rng() % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
        auto index = mux.Push(s, Payload{s, i});
        ASSERT_TRUE(index.ok()) << index.status();
        ASSERT_EQ(*index, i);
      }
      mux.CloseSource(s);
    });
  }
  std::mt19937 rng(99);
  std::vector<std::vector<int64_t>> received(kSources);
  while (true) {
    auto batch = mux.NextBatch(3);
    if (batch.empty()) break;
    for (const auto& f : batch) ASSERT_TRUE(demux.Expect(f.tag).ok());
    std::shuffle(batch.begin(), batch.end(), rng);
    for (auto& f : batch) {
      EXPECT_EQ(f.frame.source, f.tag.source);
      EXPECT_EQ(f.frame.frame, f.tag.frame);
      ASSERT_TRUE(demux.Deliver(f.tag, f.frame).ok());
    }
    for (int s = 0; s < kSources; ++s) {
      for (auto& [index, payload] : demux.TakeReady(s)) {
        EXPECT_EQ(payload.frame, index);
        received[s].push_back(index);
      }
    }
    if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (auto& t : producers) t.join();
  for (int s = 0; s < kSources; ++s) {
    ASSERT_EQ(received[s].size(), static_cast<size_t>(kFrames)) << "source " << s;
    for (int i = 0; i < kFrames; ++i) EXPECT_EQ(received[s][i], i) << "source " << s;
    EXPECT_EQ(mux.dropped(s), 0);
  }
  EXPECT_EQ(demux.outstanding(), 0);
}

TEST(StreamMuxTest, DropPolicyUnderSlowConsumerKeepsOrderAndAccountsForEveryFrame) {
  constexpr int kSources = 3;
  constexpr int kFrames = 200;
  StreamMultiplexer<Payload> mux(kSources, 2, BackpressurePolicy::kDropOldest);
  StreamDemultiplexer<Payload> demux(kSources);
  std::vector<std::thread> producers;
  for (int s = 0; s < kSources; ++s) {
    producers.emplace_back([&mux, s] {
      for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(mux.Push(s, Payload{s, i}).ok());
      mux.CloseSource(s);
    });
  }
  std::vector<std::vector<int64_t>> received(kSources);
  while (true) {
    auto batch = mux.NextBatch(2);
    if (batch.empty()) break;
    for (auto& f : batch) {
      ASSERT_TRUE(demux.Expect(f.tag).ok());
      ASSERT_TRUE(demux.Deliver(f.tag, f.frame).ok());
    }
    for (int s = 0; s < kSources; ++s) {
      for (auto& [index, payload] : demux.TakeReady(s)) received[s].push_back(index);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  for (auto& t : producers) t.join();
  for (int s = 0; s < kSources; ++s) {
    // Strictly increasing, and received + dropped == produced.
    for (size_t i = 1; i < received[s].size(); ++i) EXPECT_LT(received[s][i - 1], received[s][i]);
    EXPECT_EQ(static_cast<int64_t>(received[s].size()) + mux.dropped(s), kFrames)
        << "source " << s;
    ASSERT_FALSE(received[s].empty());
    EXPECT_EQ(received[s].back(), kFrames - 1);  // the newest frame is never the one dropped
  }
}

TEST(StreamDemuxTest, RejectsUnexpectedDuplicateAndOutOfOrderExpect) {
  StreamDemultiplexer<int> demux(2);
  EXPECT_EQ(demux.Expect({2, 0}).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(demux.Expect({0, 0}).ok());
  ASSERT_TRUE(demux.Expect({0, 2}).ok());  // frame 1 was dropped: a gap is fine
  EXPECT_EQ(demux.Expect({0, 2}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(demux.Expect({0, 1}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(demux.Deliver({0, 1}, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(demux.Deliver({1, 0}, 1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(demux.Deliver({0, 2}, 22).ok());
  EXPECT_EQ(demux.Deliver({0, 2}, 22).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(demux.TakeReady(0).empty());  // frame 0 still missing
  ASSERT_TRUE(demux.Deliver({0, 0}, 10).ok());
  auto ready = demux.TakeReady(0);
  ASSERT_EQ(ready.size(), 2u);
  EXPECT_EQ(ready[0], (std::pair<int64_t, int>{0, 10}));
  EXPECT_EQ(ready[1], (std::pair<int64_t, int>{2, 22}));
  EXPECT_EQ(demux.outstanding(), 0);
}

}  // namespace
}  // namespace yolopipe
