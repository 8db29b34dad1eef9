// CLI tests of `yolopipe run --mode ...`: pipelined runs give the single-mode bytes.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli_runner.h"

namespace {

using ::testing::HasSubstr;
using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }
std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

TEST(PipelineCliTest, PipelineOutputIsByteForByteSingle) {
  Result p = Yolopipe("run --mode pipeline --devices cpu:2 --stages 2 --imgsz 64 --batch 4 "
                      "--microbatch 2 --output " + Tmp("a.npy") + " --trace " + Tmp("trace.json"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("img/s"));
  EXPECT_THAT(p.out, HasSubstr("p50"));
  EXPECT_THAT(p.out, HasSubstr("stage 1 busy"));
  EXPECT_THAT(p.out, HasSubstr("bubble"));
  EXPECT_THAT(p.out, HasSubstr("bytes moved"));
  Result s = Yolopipe("run --imgsz 64 --batch 4 --output " + Tmp("b.npy"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string a = ReadFile(Tmp("a.npy")), b = ReadFile(Tmp("b.npy"));
  ASSERT_GT(a.size(), 128u);
  EXPECT_TRUE(a == b) << "pipeline output differs from single";
  EXPECT_THAT(ReadFile(Tmp("trace.json")), HasSubstr("\"traceEvents\""));
  EXPECT_THAT(ReadFile(Tmp("trace.json")), HasSubstr("\"mb 1\""));
}

TEST(PipelineCliTest, DataAndHybridMatchSingle) {
  Result s = Yolopipe("run --imgsz 64 --batch 4 --input_seed 7 --output " + Tmp("s.npy"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  Result d = Yolopipe("run --mode data --devices cpu:2 --imgsz 64 --batch 4 --input_seed 7 "
                      "--microbatch 1 --output " + Tmp("d.npy"));
  ASSERT_EQ(d.exit_code, 0) << d.err;
  Result h = Yolopipe("run --mode hybrid --devices cpu:4 --replicas 2 --imgsz 64 --batch 4 "
                      "--input_seed 7 --microbatch 1 --output " + Tmp("h.npy"));
  ASSERT_EQ(h.exit_code, 0) << h.err;
  const std::string single = ReadFile(Tmp("s.npy"));
  ASSERT_GT(single.size(), 128u);
  EXPECT_TRUE(ReadFile(Tmp("d.npy")) == single);
  EXPECT_TRUE(ReadFile(Tmp("h.npy")) == single);
}

TEST(PipelineCliTest, BadModeIsUsageError) {
  Result r = Yolopipe("run --mode sideways --imgsz 64");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sideways"));
}

// 3 images in micro-batches of 2: the last one is partial; the output equals single's with the
// same micro-batch size, row for row.
TEST(PipelineCliTest, PartialLastMicroBatch) {
  Result p = Yolopipe("run --mode pipeline --devices cpu:2 --imgsz 64 --batch 3 --microbatch 2 "
                      "--input_seed 5 --output " + Tmp("p3.npy"));
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("3 images in"));
  EXPECT_THAT(p.out, HasSubstr("(2 micro-batches)"));
  Result s = Yolopipe("run --mode single --imgsz 64 --batch 3 --microbatch 2 --input_seed 5 "
                      "--output " + Tmp("s3.npy"));
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const std::string single = ReadFile(Tmp("s3.npy"));
  ASSERT_GT(single.size(), 128u);
  EXPECT_TRUE(ReadFile(Tmp("p3.npy")) == single);
}

// Open-stream mode: 6 micro-batches streamed; the figures and peak memory are printed.
TEST(PipelineCliTest, StreamMode) {
  Result r = Yolopipe("run --mode pipeline --devices cpu:2 --imgsz 64 --batch 2 --microbatch 2 --stream 6");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("12 images in"));
  EXPECT_THAT(r.out, HasSubstr("6 micro-batches, open stream"));
  EXPECT_THAT(r.out, HasSubstr("stage 1 busy"));
  EXPECT_THAT(r.out, HasSubstr("peak memory"));
  EXPECT_THAT(r.err, HasSubstr("streaming 6/6 (100%)"));
  Result bad = Yolopipe("run --mode pipeline --devices cpu:2 --imgsz 64 --stream -1");
  EXPECT_EQ(bad.exit_code, 2);
}

TEST(PipelineCliTest, MissingPlanFileIsAnError) {
  Result r = Yolopipe("run --mode pipeline --devices cpu:2 --imgsz 64 --plan " +
                      Tmp("no_such_plan.pbtxt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no_such_plan.pbtxt"));
}

}  // namespace
