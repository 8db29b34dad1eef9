#include "runtime/pipeline/topology.h"

#include <map>
#include <set>
#include <utility>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

TEST(PipelineTopologyTest, RejectsEmptyShapes) {
  EXPECT_EQ(PipelineTopology::Create(0, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PipelineTopology::Create(2, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PipelineTopology::Create(-1, 1).status().code(), absl::StatusCode::kInvalidArgument);
}

// Device indices are a bijection onto [0, R*K), replica-major.
TEST(PipelineTopologyTest, DevicesAreReplicaMajorAndInvertible) {
  for (int R = 1; R <= 4; ++R) {
    for (int K = 1; K <= 5; ++K) {
      auto t = PipelineTopology::Create(R, K);
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t->num_devices(), R * K);
      std::set<int> seen;
      int expected = 0;
      for (int r = 0; r < R; ++r) {
        for (int s = 0; s < K; ++s) {
          const int d = t->DeviceIndex(r, s);
          EXPECT_EQ(d, expected++);  // replica-major enumeration
          EXPECT_EQ(t->ReplicaOfDevice(d), r);
          EXPECT_EQ(t->StageOfDevice(d), s);
          seen.insert(d);
        }
      }
      EXPECT_EQ(static_cast<int>(seen.size()), R * K);
    }
  }
}

// Walking each replica's ids with First/Next visits every id exactly once, in increasing order
// per replica, and agrees with ReplicaOf and MicrobatchesOf (counted by brute force).
TEST(PipelineTopologyTest, MicrobatchRoutingCoversEveryIdOnce) {
  for (int R = 1; R <= 4; ++R) {
    auto t = PipelineTopology::Create(R, 2);
    ASSERT_TRUE(t.ok());
    for (int64_t total : {0, 1, 2, 5, 12, 13}) {
      std::map<int64_t, int> owner;
      for (int r = 0; r < R; ++r) {
        int64_t count = 0, last = -1;
        for (int64_t id = t->FirstMicrobatch(r); id < total; id = t->NextMicrobatch(id)) {
          EXPECT_GT(id, last);
          last = id;
          EXPECT_EQ(t->ReplicaOf(id), r);
          EXPECT_TRUE(owner.emplace(id, r).second) << "id " << id << " visited twice";
          ++count;
        }
        int64_t brute = 0;
        for (int64_t id = 0; id < total; ++id) brute += (id % R == r) ? 1 : 0;
        EXPECT_EQ(t->MicrobatchesOf(r, total), brute) << "R " << R << " total " << total;
        EXPECT_EQ(count, brute);
      }
      EXPECT_EQ(static_cast<int64_t>(owner.size()), total);
    }
  }
}

TEST(PipelineTopologyTest, FabricRanksAndNames) {
  auto t = PipelineTopology::Create(2, 3);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host_rank(), 3);
  EXPECT_EQ(t->fabric_size(), 4);
  EXPECT_EQ(t->RankOfStage(-1), 3);
  EXPECT_EQ(t->RankOfStage(0), 0);
  EXPECT_EQ(t->RankOfStage(2), 2);
  EXPECT_EQ(t->Name(1, 2), "replica 1 stage 2");
  auto one = PipelineTopology::Create(1, 3);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->Name(0, 2), "stage 2");
}

}  // namespace
}  // namespace yolopipe
