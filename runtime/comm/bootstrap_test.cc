#include "runtime/comm/bootstrap.h"

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

// Four "ranks" (threads with their own FileBootstrap on one directory) broadcast from different
// roots and take maxima, in the same order, as processes would.
TEST(FileBootstrapTest, BroadcastAndMaxAcrossRanks) {
  const std::string dir = FreshDir("boot4");
  constexpr int kRanks = 4;
  std::vector<std::string> got0(kRanks), got2(kRanks);
  std::vector<int> max(kRanks, -1);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      auto b = FileBootstrap::Create(r, kRanks, dir, absl::Seconds(30));
      ASSERT_TRUE(b.ok()) << b.status();
      std::string bytes = r == 0 ? std::string("id\0bytes", 8) : "";
      ASSERT_TRUE((*b)->Broadcast(&bytes, 0).ok());
      got0[r] = bytes;
      auto m = (*b)->MaxOverRanks(10 * r + 1);
      ASSERT_TRUE(m.ok()) << m.status();
      max[r] = *m;
      std::string again = r == 2 ? "from two" : "";
      ASSERT_TRUE((*b)->Broadcast(&again, 2).ok());
      got2[r] = again;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(got0[r], std::string("id\0bytes", 8)) << "rank " << r;
    EXPECT_EQ(max[r], 31) << "rank " << r;
    EXPECT_EQ(got2[r], "from two") << "rank " << r;
  }
}

TEST(FileBootstrapTest, AMissingRankTimesOutNamingIt) {
  const std::string dir = FreshDir("boot_missing");
  auto b = FileBootstrap::Create(0, 3, dir, absl::Milliseconds(100));
  ASSERT_TRUE(b.ok());
  auto m = (*b)->MaxOverRanks(1);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("rank 1 did not take part"));
  // A fresh directory: rank 0 above already wrote step 0 into `dir`.
  auto follower = FileBootstrap::Create(1, 2, FreshDir("boot_missing_root"), absl::Milliseconds(100));
  ASSERT_TRUE(follower.ok());
  std::string bytes;
  EXPECT_EQ((*follower)->Broadcast(&bytes, 0).code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(FileBootstrapTest, RejectsBadArguments) {
  const std::string dir = FreshDir("boot_bad");
  EXPECT_EQ(FileBootstrap::Create(2, 2, dir, absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FileBootstrap::Create(0, 2, dir + "/nope", absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
  auto b = FileBootstrap::Create(0, 1, dir, absl::Seconds(1));
  ASSERT_TRUE(b.ok());
  std::string bytes;
  EXPECT_EQ((*b)->Broadcast(&bytes, 5).code(), absl::StatusCode::kInvalidArgument);
  unsetenv("YOLOPIPE_BOOTSTRAP_DIR");
  EXPECT_EQ(FileBootstrap::FromEnvironment(absl::Seconds(1)).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace yolopipe
