#include "runtime/pipeline/handoff_queue.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

TEST(HandoffQueueTest, FifoAcrossThreadsWithBackpressure) {
  HandoffQueue<int> q(2);
  constexpr int kItems = 1000;
  std::atomic<int> max_size{0};
  std::thread producer([&] {
    for (int i = 0; i < kItems; ++i) {
      ASSERT_TRUE(q.Push(i));
      int s = static_cast<int>(q.size());
      int m = max_size.load();
      while (s > m && !max_size.compare_exchange_weak(m, s)) {
      }
    }
  });
  std::vector<int> got;
  for (int i = 0; i < kItems; ++i) {
    auto v = q.Pop();
    ASSERT_TRUE(v.has_value());
    got.push_back(*v);
  }
  producer.join();
  for (int i = 0; i < kItems; ++i) EXPECT_EQ(got[i], i);
  EXPECT_LE(max_size.load(), 2);  // never more than the capacity queued
}

TEST(HandoffQueueTest, AbortWakesBlockedPopAndPush) {
  HandoffQueue<int> empty(1);
  HandoffQueue<int> full(1);
  ASSERT_TRUE(full.Push(7));
  std::optional<int> popped = 42;
  bool pushed = true;
  std::thread a([&] { popped = empty.Pop(); });
  std::thread b([&] { pushed = full.Push(8); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  empty.Abort();
  full.Abort();
  a.join();
  b.join();
  EXPECT_FALSE(popped.has_value());
  EXPECT_FALSE(pushed);
  // After an abort every call fails at once, even with items queued.
  EXPECT_FALSE(full.Pop().has_value());
  EXPECT_FALSE(full.Push(9));
}

TEST(HandoffQueueTest, ZeroCapacityMeansOne) {
  HandoffQueue<int> q(0);
  ASSERT_TRUE(q.Push(1));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.Pop().value(), 1);
}

}  // namespace
}  // namespace yolopipe
