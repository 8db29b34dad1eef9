// CLI contract tests of `yolopipe profile`: run the real binary, check exit status, output and the
// artifact it writes.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli_runner.h"
#include "runtime/artifact_io.h"
#include "runtime/proto/profile.pb.h"

namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }

std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// Small and quick: yolov8n at 64x64.
const char kQuick[] = "profile --model=yolov8n --imgsz=64 ";

TEST(ProfileCliTest, WritesJsonWithPerNodeFields) {
  const std::string path = Tmp("n64.json");
  std::remove(path.c_str());
  Result r = Yolopipe(std::string(kQuick) + "--batch=2 --repeats=2 -o " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + path));
  EXPECT_THAT(r.out, HasSubstr("top 10 of"));
  EXPECT_THAT(r.err, HasSubstr("profiling micro-batch 2 (2/2): run 2/2"));

  // The JSON contract of issue 3, read as text first...
  const std::string json = ReadFile(path);
  for (const char* key : {"\"nodes\"", "\"name\"", "\"op\"", "\"time_ms\"", "\"output_bytes\"",
                          "\"weight_bytes\"", "\"model_fingerprint\""}) {
    EXPECT_THAT(json, HasSubstr(key));
  }
  // ...then through the proto JSON parser.
  yolopipe::proto::Profile p;
  ASSERT_TRUE(yolopipe::ReadArtifact(path, &p).ok());
  EXPECT_EQ(p.model(), "yolov8n");
  EXPECT_THAT(p.model_fingerprint(), MatchesRegex("[0-9a-f]{16}"));
  EXPECT_THAT(std::vector<int>(p.microbatch_sizes().begin(), p.microbatch_sizes().end()),
              ElementsAre(1, 2));
  EXPECT_THAT(std::vector<int64_t>(p.input_shape().begin(), p.input_shape().end()),
              ElementsAre(1, 3, 64, 64));
  EXPECT_EQ(p.repeats(), 2);
  ASSERT_GT(p.nodes_size(), 100);
  uint64_t conv_weights = 0;
  for (const auto& n : p.nodes()) {
    EXPECT_FALSE(n.name().empty());
    EXPECT_FALSE(n.op().empty());
    EXPECT_GE(n.time_ms(), 0.0);
    ASSERT_EQ(n.timings_size(), 2) << n.name();
    EXPECT_GT(n.output_bytes(), 0u) << n.name();
    EXPECT_EQ(n.timings(1).output_bytes(), 2 * n.timings(0).output_bytes()) << n.name();
    if (n.op() == "Conv") conv_weights += n.weight_bytes();
  }
  EXPECT_EQ(conv_weights, 4u * 3151904u);  // yolov8n's published parameter count, fp32
  EXPECT_EQ(p.device().kind(), "cpu");
}

TEST(ProfileCliTest, DefaultMicrobatchesArePowersOfTwoThenTheBatch) {
  const std::string path = Tmp("b6.pb");
  Result r = Yolopipe(std::string(kQuick) + "--batch=6 --repeats=1 --warmup=0 --output=" + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  yolopipe::proto::Profile p;
  ASSERT_TRUE(yolopipe::ReadArtifact(path, &p).ok());
  EXPECT_THAT(std::vector<int>(p.microbatch_sizes().begin(), p.microbatch_sizes().end()),
              ElementsAre(1, 2, 4, 6));
  EXPECT_EQ(p.warmup(), 0);
}

TEST(ProfileCliTest, ExplicitMicrobatchesToText) {
  const std::string path = Tmp("m13.pbtxt");
  Result r = Yolopipe(std::string(kQuick) +
                      "--microbatches=1,3 --repeats=1 --warmup=0 --device=cpu:2 -o " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  yolopipe::proto::Profile p;
  ASSERT_TRUE(yolopipe::ReadArtifact(path, &p).ok());
  EXPECT_THAT(std::vector<int>(p.microbatch_sizes().begin(), p.microbatch_sizes().end()),
              ElementsAre(1, 3));
  EXPECT_EQ(p.device().name(), "cpu:0");
  ASSERT_GT(p.tensors_size(), 0);
  EXPECT_EQ(p.tensors(0).name(), "images");
  EXPECT_EQ(p.tensors(0).bytes_per_image(), 3u * 64 * 64 * 4);
}

// A roofline estimate for a device that is not here (a GPU): written without running anything,
// labelled as an estimate, and accepted by plan (same model fingerprint).
TEST(ProfileCliTest, RooflineEstimateForAnAbsentGpuFeedsPlan) {
  const std::string path = Tmp("est.pbtxt");
  Result r = Yolopipe("profile --imgsz 64 --device cuda --estimate roofline --conv_tflops 100 "
                      "--memory_gbps 1000 --node_us 5 --microbatches 1,2 -o " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ESTIMATED, not measured"));
  const std::string text = ReadFile(path);
  EXPECT_THAT(text, HasSubstr("kind: \"cuda\""));
  EXPECT_THAT(text, HasSubstr("yolopipe profile --estimate roofline"));
  Result plan = Yolopipe("plan --profile " + path + " --stages 2 --batch 4 -o " + Tmp("est.json"));
  ASSERT_EQ(plan.exit_code, 0) << plan.err;
  EXPECT_THAT(plan.out, HasSubstr("nvlink4"));  // a cuda profile defaults to NVLink
  Result bad = Yolopipe("profile --imgsz 64 --estimate magic -o " + path);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--estimate must be roofline"));
  Result zero = Yolopipe("profile --imgsz 64 --estimate roofline --conv_tflops 0 -o " + path);
  EXPECT_EQ(zero.exit_code, 2);
}

TEST(ProfileCliTest, HelpListsFlags) {
  Result r = Yolopipe("profile --help");
  EXPECT_EQ(r.exit_code, 0);
  for (const char* flag : {"--microbatches", "--repeats", "--warmup", "--device", "--batch"}) {
    EXPECT_THAT(r.out, HasSubstr(flag));
  }
}

struct BadCase {
  std::string args;
  int exit_code;
  std::string message;
};

TEST(ProfileCliTest, BadFlagsAreRefusedClearly) {
  const std::string out = Tmp("bad.json");
  const std::vector<BadCase> cases = {
      {"", 2, "-o FILE (.pbtxt, .json or .pb) is required"},
      {"-o " + Tmp("bad.txt"), 2, "unknown artifact extension"},
      {"--microbatches=0 -o " + out, 2, "--microbatches: micro-batch sizes must be 1..4096, got 0"},
      {"--microbatches=2,1 -o " + out, 2, "strictly increasing"},
      {"--microbatches=1,,2 -o " + out, 2, "is not a whole number"},
      {"--microbatches=x -o " + out, 2, "'x' is not a whole number"},
      {"--repeats=0 -o " + out, 2, "--repeats must be >= 1, got 0"},
      {"--warmup=-1 -o " + out, 2, "--warmup must be >= 0, got -1"},
      {"--batch=0 -o " + out, 2, "--batch must be 1..4096, got 0"},
      {"--threads=-1 -o " + out, 2, "--threads must be 0..4096, got -1"},
      {"--device=tpu -o " + out, 2, "unknown device kind"},
      {"--imgsz=50 -o " + out, 2, "--imgsz must be 0 (the model's own) or a multiple of 32"},
      {"-o " + Tmp("no_such_dir") + "/p.json", 1, "does not exist or is not writable"},
  };
  for (const BadCase& c : cases) {
    std::remove(out.c_str());
    Result r = Yolopipe("profile --model=yolov8n --imgsz=64 " + c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("error: ")) << c.args;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_FALSE(Exists(out)) << c.args;
  }
}

// A CUDA device is profiled on the GPU; without one (or without a CUDA build) the probe's reason.
TEST(ProfileCliTest, CudaDeviceWithoutGpuFailsClearly) {
  const std::string out = Tmp("cuda.json");
  std::remove(out.c_str());
  Result r = Yolopipe(std::string(kQuick) + "--device=cuda:0 -o " + out);
  if (r.exit_code == 0) {
    EXPECT_TRUE(Exists(out)) << "a GPU profiled the model: the profile must be written";
    return;
  }
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("error: no CUDA devices"));
  EXPECT_FALSE(Exists(out));
  Result bad = Yolopipe(std::string(kQuick) + "--device=cuda:0 --precision=int8 -o " + out);
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("--precision must be fp16 or fp32"));
}

}  // namespace
