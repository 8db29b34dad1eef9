#include "runtime/memory_plan.h"

#include <random>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

TEST(MemoryPlanTest, DisjointLifetimesShareMemory) {
  // A chain a -> b -> c: a and c never live together, so c reuses a's memory.
  std::vector<BufferRequest> reqs = {{1000, 0, 1}, {1000, 1, 2}, {1000, 2, 3}};
  MemoryPlan plan = PlanMemory(reqs);
  EXPECT_TRUE(IsValidPlan(reqs, plan));
  EXPECT_EQ(plan.arena_bytes, 2 * 1024u);  // two 64-byte-aligned 1000-byte slots
  EXPECT_EQ(plan.total_bytes, 3000u);
}

TEST(MemoryPlanTest, OverlappingLifetimesNeverShare) {
  std::vector<BufferRequest> reqs = {{640, 0, 5}, {640, 1, 4}, {640, 2, 3}};
  MemoryPlan plan = PlanMemory(reqs);
  EXPECT_TRUE(IsValidPlan(reqs, plan));
  EXPECT_EQ(plan.arena_bytes, 3 * 640u);
}

TEST(MemoryPlanTest, RandomPlansAreValidAndNoWorseThanPeakLowerBound) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<BufferRequest> reqs;
    const int n = 1 + rng() % 30;
    for (int i = 0; i < n; ++i) {
      int a = rng() % 40, b = rng() % 40;
      reqs.push_back({static_cast<size_t>(1 + rng() % 5000), std::min(a, b), std::max(a, b)});
    }
    MemoryPlan plan = PlanMemory(reqs);
    ASSERT_TRUE(IsValidPlan(reqs, plan)) << "trial " << trial;
    // The arena can never be smaller than the bytes alive at the busiest step.
    size_t peak_live = 0;
    for (int step = 0; step < 40; ++step) {
      size_t live = 0;
      for (const auto& r : reqs) {
        if (r.first_step <= step && step <= r.last_step) live += r.bytes;
      }
      peak_live = std::max(peak_live, live);
    }
    EXPECT_GE(plan.arena_bytes, peak_live);
    EXPECT_LE(plan.arena_bytes, plan.total_bytes + 64 * reqs.size());
  }
}

TEST(MemoryPlanTest, ValidatorCatchesOverlap) {
  std::vector<BufferRequest> reqs = {{100, 0, 2}, {100, 1, 3}};
  MemoryPlan bad;
  bad.offsets = {0, 64};
  bad.arena_bytes = 256;
  EXPECT_FALSE(IsValidPlan(reqs, bad));
}

}  // namespace
}  // namespace yolopipe
