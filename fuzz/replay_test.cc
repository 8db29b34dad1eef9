// Regression test for one fuzz target (linked with its FuzzOne): every seed in the target's
// corpus is a real, valid file and must be accepted; every input in its regressions folder once
// crashed the loader and must now be handled without crashing (each one's Status is ignored:
// only the absence of a crash, sanitizer report or abort is asserted). Folders come from the
// command line: --corpus=DIR --regressions=DIR (BUILD passes them; data makes them runfiles).
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "fuzz/fuzz_target.h"
#include "fuzz/replay.h"
#include "gtest/gtest.h"

namespace yolopipe::fuzz {
namespace {

std::string g_corpus_dir;
std::string g_regressions_dir;

TEST(FuzzReplay, EverySeedIsAccepted) {
  ASSERT_FALSE(g_corpus_dir.empty()) << "pass --corpus=DIR";
  const std::vector<std::string> files = CollectInputs({g_corpus_dir});
  EXPECT_FALSE(files.empty()) << "no seeds in " << g_corpus_dir;
  for (const std::string& file : files) {
    std::string bytes;
    ASSERT_TRUE(ReadInput(file, &bytes)) << file;
    const absl::Status status = FuzzOne(bytes);
    EXPECT_TRUE(status.ok()) << file << ": " << status;
  }
}

TEST(FuzzReplay, EveryRegressionInputReturns) {
  if (g_regressions_dir.empty()) GTEST_SKIP() << "no --regressions folder";
  int count = 0;
  for (const std::string& file : CollectInputs({g_regressions_dir})) {
    std::string bytes;
    ASSERT_TRUE(ReadInput(file, &bytes)) << file;
    SCOPED_TRACE(file);
    (void)FuzzOne(bytes);  // a crash here fails the whole test binary
    ++count;
  }
  RecordProperty("regression_inputs", count);
}

}  // namespace
}  // namespace yolopipe::fuzz

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--corpus=", 0) == 0) yolopipe::fuzz::g_corpus_dir = arg.substr(9);
    if (arg.rfind("--regressions=", 0) == 0) yolopipe::fuzz::g_regressions_dir = arg.substr(14);
  }
  return RUN_ALL_TESTS();
}
