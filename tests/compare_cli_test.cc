// CLI tests of `yolopipe compare`: the table, the report folder and usage errors.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli_runner.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(CompareCliTest, TableAndReport) {
  const std::string dir = ::testing::TempDir() + "/compare_report";
  Result r = Yolopipe("compare --model yolov8n --imgsz 64 --devices cpu:2 --batch 4 "
                      "--microbatch 1 --report " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("img/s"));
  EXPECT_THAT(r.out, HasSubstr("p50 ms"));
  EXPECT_THAT(r.out, HasSubstr("bubble"));
  EXPECT_THAT(r.out, HasSubstr("bytes moved"));
  EXPECT_THAT(r.out, HasSubstr("pred img/s"));
  EXPECT_THAT(r.out, HasSubstr("\nsingle "));
  EXPECT_THAT(r.out, HasSubstr("\ndata "));
  EXPECT_THAT(r.out, HasSubstr("\npipeline "));
  // cpu:2 allows no hybrid (needs >= 4 devices).
  EXPECT_THAT(r.out, Not(HasSubstr("\nhybrid ")));
  EXPECT_THAT(r.out, Not(HasSubstr("warning")));
  EXPECT_EQ(Count(r.out, " yes\n"), 2) << r.out;  // data and pipeline bitwise equal to single

  for (const char* mode : {"single", "data", "pipeline"}) {
    const std::string trace = ReadFile(dir + "/trace_" + std::string(mode) + ".json");
    EXPECT_THAT(trace, HasSubstr("\"traceEvents\"")) << mode;
    // batch 4 at micro-batch 1: micro-batches 0..3, the last one named in the trace.
    EXPECT_THAT(trace, HasSubstr("\"mb 3\"")) << mode;
  }
  const std::string pipe_svg = ReadFile(dir + "/timeline_pipeline.svg");
  EXPECT_THAT(pipe_svg, HasSubstr("<svg"));
  EXPECT_THAT(pipe_svg, HasSubstr("</svg>"));
  // 2 stages x 4 micro-batches of compute.
  EXPECT_EQ(Count(pipe_svg, "<rect class=\"span\""), 8);
  // data: 2 replicas x 1 stage, 4 micro-batches in all.
  EXPECT_EQ(Count(ReadFile(dir + "/timeline_data.svg"), "<rect class=\"span\""), 4);
  EXPECT_EQ(ReadFile(dir + "/timeline_single.svg"), "");  // single has no timeline
  const std::string plot = ReadFile(dir + "/throughput.svg");
  EXPECT_EQ(Count(plot, "<circle class=\"measured\""), 4);  // M = 1, 2, 4, 8
  const std::string md = ReadFile(dir + "/summary.md");
  EXPECT_THAT(md, HasSubstr("(trace_pipeline.json)"));
  EXPECT_THAT(md, HasSubstr("(timeline_pipeline.svg)"));
  EXPECT_THAT(md, HasSubstr("(throughput.svg)"));
  EXPECT_THAT(md, HasSubstr("bitwise equal"));
}

TEST(CompareCliTest, UsageErrors) {
  Result bad = Yolopipe("compare --imgsz 64 --no_such_flag 1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("error:"));
  Result mb = Yolopipe("compare --imgsz 64 --devices cpu:2 --batch 3 --microbatch 0");
  EXPECT_EQ(mb.exit_code, 2);
  EXPECT_THAT(mb.err, HasSubstr("--microbatch must be >= 1"));
  Result dev = Yolopipe("compare --imgsz 64 --devices gpu:x --batch 2");
  EXPECT_EQ(dev.exit_code, 2);
  EXPECT_THAT(dev.err, HasSubstr("error:"));
}

TEST(CompareCliTest, RuntimeErrorExitsOne) {
  Result r = Yolopipe("compare --model no_such_model.onnx --imgsz 64 --devices cpu:2 --batch 2");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error:"));
}

// --nccl reaches the pipeline and hybrid runs (single and data have no stages to connect).
TEST(CompareCliTest, NcclReachesThePipelineRun) {
  Result r = Yolopipe("compare --imgsz 64 --devices cpu:2 --batch 2 --nccl");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("error: pipeline: nccl needs every stage on a CUDA device"));
}

}  // namespace
