// CLI contract tests of `yolopipe plan`: run the real binary on profiles written here, check the
// exit status, the table it prints and the plan it writes.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli_runner.h"
#include "runtime/artifact_io.h"
#include "runtime/planner/synthetic_profile.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }

std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// A yolov8n profile (synthetic costs, real graph) written once as .pbtxt.
class PlanCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    SyntheticProfileOptions options;
    options.microbatch_sizes = {1, 2, 4};
    options.device_kind = "cuda";
    auto p = SyntheticYoloV8Profile('n', 640, options);
    ASSERT_TRUE(p.ok()) << p.status();
    profile_ = new proto::Profile(*std::move(p));
    ASSERT_TRUE(WriteArtifact(ProfilePath(), *profile_).ok());
  }
  static void TearDownTestSuite() { delete profile_; }
  static std::string ProfilePath() { return Tmp("yolov8n_profile.pbtxt"); }

  // Median time of `node` at micro-batch m, from the profile.
  static double NodeMs(const std::string& node, int m) {
    for (const auto& n : profile_->nodes()) {
      if (n.name() != node) continue;
      for (const auto& t : n.timings()) {
        if (t.microbatch() == m) return t.median_ms();
      }
    }
    ADD_FAILURE() << "no timing for " << node << " at " << m;
    return 0;
  }

  static proto::Profile* profile_;
};
proto::Profile* PlanCliTest::profile_ = nullptr;

TEST_F(PlanCliTest, PrintsTheTableAndWritesJson) {
  const std::string path = Tmp("plan.json");
  std::remove(path.c_str());
  Result r = Yolopipe("plan --profile " + ProfilePath() +
                      " --stages 3 --batch 8 --devices cuda:0,1,2 --link pcie4 -o " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text : {"3 stages on cuda:0, cuda:1, cuda:2", "link pcie4 (32 GB/s, 10 us)",
                           "compute ms", "send ms", "recv ms", "memory", "bubble",
                           "predicted:", "img/s steady state", "latency", "wrote "}) {
    EXPECT_THAT(r.out, HasSubstr(text));
  }
  const std::string json = ReadFile(path);
  for (const char* key : {"\"stages\"", "\"nodes\"", "\"compute_ms\"", "\"predicted_throughput\"",
                          "\"model_fingerprint\"", "\"transfers\""}) {
    EXPECT_THAT(json, HasSubstr(key));
  }
  proto::Plan plan;
  ASSERT_TRUE(ReadArtifact(path, &plan).ok());
  EXPECT_EQ(plan.model(), "yolov8n");
  EXPECT_EQ(plan.model_fingerprint(), profile_->model_fingerprint());
  ASSERT_EQ(plan.stages_size(), 3);
  EXPECT_GT(plan.predicted_throughput(), 0);
  // The stages tile the node order, and each stage's compute is the sum of its nodes' profiled
  // times at the chosen micro-batch size.
  std::vector<std::string> all;
  for (const proto::StagePlan& s : plan.stages()) {
    double ms = 0;
    for (const std::string& node : s.nodes()) {
      all.push_back(node);
      ms += NodeMs(node, plan.microbatch());
    }
    EXPECT_NEAR(s.compute_ms(), ms, 1e-9);
    EXPECT_THAT(r.out, HasSubstr(s.device()));
  }
  EXPECT_EQ(all, std::vector<std::string>(plan.node_order().begin(), plan.node_order().end()));
  EXPECT_EQ(static_cast<int>(all.size()), profile_->nodes_size());
  EXPECT_NEAR(plan.predicted_throughput(), plan.microbatch() * 1000.0 / plan.bottleneck_ms(), 1e-6);
  EXPECT_DOUBLE_EQ(plan.link().bandwidth_gbps(), 32);
}

TEST_F(PlanCliTest, TextAndBinaryPlansMatchJson) {
  const std::string common = "plan --profile " + ProfilePath() + " --stages 2 --batch 4 -o ";
  ASSERT_EQ(Yolopipe(common + Tmp("p.json")).exit_code, 0);
  ASSERT_EQ(Yolopipe(common + Tmp("p.pbtxt")).exit_code, 0);
  ASSERT_EQ(Yolopipe(common + Tmp("p.pb")).exit_code, 0);
  proto::Plan json, text, binary;
  ASSERT_TRUE(ReadArtifact(Tmp("p.json"), &json).ok());
  ASSERT_TRUE(ReadArtifact(Tmp("p.pbtxt"), &text).ok());
  ASSERT_TRUE(ReadArtifact(Tmp("p.pb"), &binary).ok());
  EXPECT_EQ(json.SerializeAsString(), binary.SerializeAsString());
  EXPECT_EQ(text.SerializeAsString(), binary.SerializeAsString());
  // Default link for the profile's cuda devices.
  EXPECT_EQ(json.link().name(), "nvlink4");
}

TEST_F(PlanCliTest, HybridWithSpeedFactors) {
  const std::string path = Tmp("hybrid.json");
  Result r = Yolopipe("plan --profile " + ProfilePath() +
                      " --stages 2 --replicas 2 --speed 1,2 --batch 8 -o " + path);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 stages x 2 replicas"));
  proto::Plan plan;
  ASSERT_TRUE(ReadArtifact(path, &plan).ok());
  ASSERT_EQ(plan.stages_size(), 4);
  EXPECT_EQ(plan.replicas(), 2);
  const double speeds[] = {1, 2, 1, 2};
  for (int i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(plan.stages(i).speed_factor(), speeds[i]);
    EXPECT_EQ(plan.stages(i).replica(), i / 2);
    EXPECT_EQ(plan.stages(i).device(), "cuda:" + std::to_string(i));
  }
}

TEST_F(PlanCliTest, LatencyObjectiveWithAFloor) {
  const std::string path = Tmp("fast.json");
  ASSERT_EQ(
      Yolopipe("plan --profile " + ProfilePath() + " --stages 3 --batch 4 --link 2,20 -o " + path)
          .exit_code,
      0);
  proto::Plan fastest;
  ASSERT_TRUE(ReadArtifact(path, &fastest).ok());
  const double floor = 0.8 * fastest.predicted_throughput();
  Result r = Yolopipe("plan --profile " + ProfilePath() +
                      " --stages 3 --batch 4 --link 2,20 --objective latency --min_throughput " +
                      std::to_string(floor) + " -o " + Tmp("slow.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("objective latency"));
  proto::Plan plan;
  ASSERT_TRUE(ReadArtifact(Tmp("slow.json"), &plan).ok());
  EXPECT_EQ(plan.objective(), "latency");
  EXPECT_GE(plan.predicted_throughput(), floor * (1 - 1e-6));
  EXPECT_LE(plan.predicted_latency_ms(), fastest.predicted_latency_ms() + 1e-9);
}

TEST_F(PlanCliTest, FixedMicrobatch) {
  Result r = Yolopipe("plan --profile " + ProfilePath() + " --stages 2 --batch 8 --microbatch 2 " +
                      "-o " + Tmp("m2.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  proto::Plan plan;
  ASSERT_TRUE(ReadArtifact(Tmp("m2.json"), &plan).ok());
  EXPECT_EQ(plan.microbatch(), 2);
  EXPECT_EQ(plan.num_microbatches(), 4);
}

TEST_F(PlanCliTest, ErrorsExitOne) {
  Result missing = Yolopipe("plan --profile " + Tmp("nope.pbtxt") + " -o " + Tmp("x.json"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, HasSubstr("error: cannot open"));

  std::ofstream(Tmp("corrupt.pbtxt")) << "nodes { name: \"a\" \n garbage {{{";
  Result corrupt = Yolopipe("plan --profile " + Tmp("corrupt.pbtxt") + " -o " + Tmp("x.json"));
  EXPECT_EQ(corrupt.exit_code, 1);
  EXPECT_THAT(corrupt.err, HasSubstr("not a valid Profile"));

  std::ofstream(Tmp("empty.pbtxt")) << "model: \"nothing\"\n";
  Result empty = Yolopipe("plan --profile " + Tmp("empty.pbtxt") + " -o " + Tmp("x.json"));
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_THAT(empty.err, HasSubstr("the profile has no nodes"));

  Result too_many =
      Yolopipe("plan --profile " + ProfilePath() + " --stages 500 -o " + Tmp("x.json"));
  EXPECT_EQ(too_many.exit_code, 1);
  EXPECT_THAT(too_many.err, HasSubstr("cannot split 113 nodes into 500 stages"));

  // 0.001 GiB = 1.02 MiB; yolov8n's weights alone are 12 MiB.
  Result no_fit = Yolopipe("plan --profile " + ProfilePath() +
                           " --stages 2 --memory_gib 0.001 -o " + Tmp("x.json"));
  EXPECT_EQ(no_fit.exit_code, 1);
  EXPECT_THAT(no_fit.err, HasSubstr("no split of yolov8n into 2 stages fits 1.02 MiB per device"));
  EXPECT_THAT(no_fit.err, HasSubstr("the smallest feasible maximum is"));

  Result floor = Yolopipe("plan --profile " + ProfilePath() +
                          " --objective latency --min_throughput 1e9 -o " + Tmp("x.json"));
  EXPECT_EQ(floor.exit_code, 1);
  EXPECT_THAT(floor.err, HasSubstr("reaches the throughput floor"));

  Result unprofiled =
      Yolopipe("plan --profile " + ProfilePath() + " --batch 8 --microbatch 3 -o " + Tmp("x.json"));
  EXPECT_EQ(unprofiled.exit_code, 1);
  EXPECT_THAT(unprofiled.err, HasSubstr("micro-batch 3 was not profiled"));
  for (const Result* r : {&missing, &corrupt, &too_many, &no_fit}) {
    EXPECT_THAT(r->out, Not(HasSubstr("wrote")));
  }
}

TEST_F(PlanCliTest, UsageErrorsExitTwo) {
  const std::string profile = " --profile " + ProfilePath();
  const std::pair<std::string, std::string> cases[] = {
      {"plan -o " + Tmp("x.json"), "--profile is required"},
      {"plan" + profile, "-o FILE (.pbtxt, .pb or .json) is required"},
      {"plan" + profile + " -o " + Tmp("x.txt"), "unknown artifact extension"},
      {"plan" + profile + " --stages 0 -o " + Tmp("x.json"), "--stages must be >= 1"},
      {"plan" + profile + " --objective fastest -o " + Tmp("x.json"),
       "--objective must be throughput or latency"},
      {"plan" + profile + " --link warp -o " + Tmp("x.json"), "unknown link 'warp'"},
      {"plan" + profile + " --link 0,5 -o " + Tmp("x.json"), "bandwidth must be > 0"},
      {"plan" + profile + " --devices cuda:0,1,2 -o " + Tmp("x.json"),
       "--devices gives 3 devices; 1 replica(s) x 2 stages need 2"},
      {"plan" + profile + " --speed 1,x -o " + Tmp("x.json"), "--speed expects positive numbers"},
      {"plan" + profile + " --speed 1,2,3 -o " + Tmp("x.json"), "--speed gives 3 factors"},
      {"plan" + profile + " --memory_gib -1 -o " + Tmp("x.json"), "--memory_gib must be >= 0"},
      {"plan" + profile + " --stages=two -o " + Tmp("x.json"), "expects a whole number"},
  };
  for (const auto& [args, text] : cases) {
    Result r = Yolopipe(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(text)) << args;
  }
}

}  // namespace
}  // namespace yolopipe
