// CLI contract tests of `yolopipe simulate`: run the real binary on hand-made plans and check the
// exit status, the figures it prints and the trace it writes.
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cli_runner.h"
#include "runtime/artifact_io.h"
#include "runtime/proto/plan.pb.h"

namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

using Result = ::yolopipe::testing::CliResult;
using ::yolopipe::testing::ReadFile;

Result Yolopipe(const std::string& args) { return ::yolopipe::testing::RunYolopipe(args); }

std::string Tmp(const std::string& name) { return ::testing::TempDir() + "/" + name; }

// The line of `text` that starts (after indentation) with `label`, or "" if none.
std::string LineStartingWith(const std::string& text, const std::string& label) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    const size_t first = line.find_first_not_of(' ');
    if (first != std::string::npos && line.compare(first, label.size(), label) == 0) return line;
    start = end + 1;
  }
  return "";
}

// K uniform stages of t ms per micro-batch, no transfer time, with the predictions a planner would
// make for them.
yolopipe::proto::Plan UniformPlan(int k, double t, int microbatch, int batch) {
  yolopipe::proto::Plan plan;
  plan.set_model("yolov8n");
  plan.set_num_stages(k);
  plan.set_replicas(1);
  plan.set_batch(batch);
  plan.set_microbatch(microbatch);
  const int m = (batch + microbatch - 1) / microbatch;
  plan.set_num_microbatches(m);
  plan.set_bottleneck_ms(t);
  plan.set_predicted_throughput(microbatch * 1000.0 / t);
  plan.set_predicted_batch_ms((m + k - 1) * t);
  plan.set_predicted_latency_ms(k * t);
  plan.set_bubble_fraction(static_cast<double>(k - 1) / (m + k - 1));
  for (int s = 0; s < k; ++s) {
    auto* stage = plan.add_stages();
    stage->set_index(s);
    stage->set_device("cpu:" + std::to_string(s));
    stage->set_compute_ms(t);
  }
  return plan;
}

std::string WritePlan(const yolopipe::proto::Plan& plan, const std::string& name) {
  const std::string path = Tmp(name);
  const absl::Status status = yolopipe::WriteArtifact(path, plan);
  EXPECT_TRUE(status.ok()) << status;
  return path;
}

TEST(SimulateCliTest, UniformStagesGiveTheFillAndDrainFigures) {
  // K = 4, M = 48 / 4 = 12, t = 2.5 ms: makespan (M + K - 1) t = 37.5 ms, bubble 3 / 15.
  const int k = 4, microbatch = 4, batch = 48;
  const double t = 2.5;
  const int m = batch / microbatch;
  const std::string plan = WritePlan(UniformPlan(k, t, microbatch, batch), "uniform.pbtxt");
  Result r = Yolopipe("simulate --plan " + plan);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch 48 = 12 micro-batches"));
  const double makespan = (m + k - 1) * t;
  EXPECT_THAT(LineStartingWith(r.out, "makespan"), HasSubstr(absl::StrFormat("%.3f ms", makespan)));
  EXPECT_THAT(LineStartingWith(r.out, "throughput, this batch"),
              HasSubstr(absl::StrFormat("%.1f img/s", batch * 1000.0 / makespan)));
  // Steady state: one micro-batch per t, the plan's own prediction, shown beside it.
  const std::string steady = absl::StrFormat("%.1f img/s", microbatch * 1000.0 / t);
  const std::string steady_line = LineStartingWith(r.out, "throughput, steady state");
  EXPECT_THAT(steady_line, MatchesRegex(".*" + steady + ".*" + steady + ".*"));
  EXPECT_THAT(LineStartingWith(r.out, "bubble"), HasSubstr("20.0%"));
  EXPECT_THAT(r.out, Not(HasSubstr("with in-order streams")));  // a chain: no difference
  // With double buffering micro-batch i >= 2 waits one stage time for its input slot: it takes (K +
  // 1) t, the first K t.
  EXPECT_THAT(LineStartingWith(r.out, "latency per micro-batch"),
              HasSubstr(absl::StrFormat("p50 %.3f ms", (k + 1) * t)));
  EXPECT_THAT(LineStartingWith(r.out, "latency, fastest"),
              HasSubstr(absl::StrFormat("%.3f ms", k * t)));
  // Every stage computes M t of the makespan and idles (K - 1) t.
  for (int s = 0; s < k; ++s) {
    const std::string row = LineStartingWith(r.out, std::to_string(s) + " ");
    EXPECT_THAT(row, HasSubstr("cpu:" + std::to_string(s))) << r.out;
    EXPECT_THAT(row, HasSubstr("80.0%"));
    EXPECT_THAT(row, HasSubstr("20.0%"));
  }
}

TEST(SimulateCliTest, WritesAChromeTraceWithATrackPerStage) {
  const std::string plan = WritePlan(UniformPlan(4, 2.5, 4, 48), "traced.pbtxt");
  const std::string trace = Tmp("simulated_trace.json");
  std::remove(trace.c_str());
  Result r = Yolopipe("simulate --plan " + plan + " --trace " + trace);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("trace      " + trace + ": 48 events"));
  const std::string json = ReadFile(trace);
  EXPECT_THAT(json, HasSubstr("\"traceEvents\""));
  for (int s = 0; s < 4; ++s) {
    EXPECT_THAT(json, HasSubstr("\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(s) +
                                ",\"tid\":0,\"args\":{\"name\":\"stage " + std::to_string(s) +
                                " (cpu:" + std::to_string(s) + ")\"}"));
  }
  EXPECT_THAT(json, HasSubstr("\"name\":\"mb 11\""));
  EXPECT_THAT(json, HasSubstr("\"args\":{\"microbatch\":11}"));
  // Balanced brackets outside strings: a cheap structural check of the JSON.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : json) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') ++depth;
    if (c == '}' || c == ']') --depth;
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
  EXPECT_FALSE(in_string);
}

TEST(SimulateCliTest, BatchAndBuffersFlagsOverrideThePlan) {
  const std::string plan = WritePlan(UniformPlan(4, 2.5, 4, 48), "override.pbtxt");
  Result r = Yolopipe("simulate --plan " + plan + " --batch 8 --buffers 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch 8 = 2 micro-batches, 3 buffers in flight"));
  EXPECT_THAT(LineStartingWith(r.out, "makespan"), HasSubstr(absl::StrFormat("%.3f ms", 5 * 2.5)));
  EXPECT_THAT(LineStartingWith(r.out, "bubble"),
              HasSubstr("60.0%"));  // 3 / (2 + 3)
}

TEST(SimulateCliTest, TransferBoundJsonPlanIsLimitedByItsLink) {
  // Two stages of 1 ms, 4 MB per micro-batch over a 2 GB/s link with 50 us latency: 2.05 ms.
  yolopipe::proto::Plan plan;
  plan.set_model("yolov8s");
  plan.set_num_stages(2);
  plan.set_replicas(1);
  plan.set_batch(64);
  plan.set_microbatch(2);
  plan.mutable_link()->set_name("slow");
  plan.mutable_link()->set_bandwidth_gbps(2.0);
  plan.mutable_link()->set_latency_us(50.0);
  for (int s = 0; s < 2; ++s) {
    auto* stage = plan.add_stages();
    stage->set_index(s);
    stage->set_device("cuda:" + std::to_string(s));
    stage->set_compute_ms(1.0);
  }
  auto* transfer = plan.add_transfers();
  transfer->set_tensor("p3");
  transfer->set_from_stage(0);
  transfer->add_to_stages(1);
  transfer->set_bytes(4'000'000);
  Result r = Yolopipe("simulate --plan " + WritePlan(plan, "link.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("link slow (2 GB/s, 50 us per message)"));
  EXPECT_THAT(r.out, HasSubstr("transfer times from the plan's transfers and link"));
  EXPECT_THAT(LineStartingWith(r.out, "throughput, steady state"),
              HasSubstr(absl::StrFormat("%.1f img/s", 2 * 1000.0 / 2.05)));
  // 32 micro-batches: 1 ms fill, 32 transfers back to back, 1 ms drain.
  EXPECT_THAT(LineStartingWith(r.out, "makespan"),
              HasSubstr(absl::StrFormat("%.3f ms", 1.0 + 32 * 2.05 + 1.0)));
}

TEST(SimulateCliTest, ShowsWhatInOrderStreamsCostOnSkipConnections) {
  // Four stages of 2 ms; 0 -> {1, 3}, 1 -> {2, 3}, 2 -> 3, 1 ms per message. Stage 3 receives 3 ms
  // per micro-batch (ready order); in-order streams serialise to 4 ms (see
  // runtime/simulator/simulator_test.cc, InOrderStreamsBlockBehindEarlierMicrobatches).
  yolopipe::proto::Plan plan = UniformPlan(4, 2.0, 1, 64);
  plan.mutable_link()->set_bandwidth_gbps(1.0);
  const std::vector<std::pair<int, std::vector<int>>> routes = {{0, {1, 3}}, {1, {2, 3}}, {2, {3}}};
  for (const auto& [from, to] : routes) {
    auto* transfer = plan.add_transfers();
    transfer->set_tensor("t" + std::to_string(from));
    transfer->set_from_stage(from);
    for (int d : to) transfer->add_to_stages(d);
    transfer->set_bytes(1'000'000);
  }
  const std::string path = WritePlan(plan, "skip.pbtxt");
  Result r = Yolopipe("simulate --plan " + path + " --buffers 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ready-order streams"));
  EXPECT_THAT(LineStartingWith(r.out, "throughput, steady state"), HasSubstr("333.3 img/s"));
  EXPECT_THAT(LineStartingWith(r.out, "with in-order streams"), HasSubstr("250.0 img/s"));
  r = Yolopipe("simulate --plan " + path + " --buffers 4 --stream_order in_order");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(LineStartingWith(r.out, "throughput, steady state"), HasSubstr("250.0 img/s"));
  EXPECT_THAT(LineStartingWith(r.out, "with ready-order streams"), HasSubstr("333.3 img/s"));
}

TEST(SimulateCliTest, MissingPlanFlagIsUsageError) {
  Result r = Yolopipe("simulate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: --plan is required"));
}

TEST(SimulateCliTest, MissingPlanFileNamesThePath) {
  const std::string path = Tmp("no_such_plan.pbtxt");
  Result r = Yolopipe("simulate --plan " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: cannot open '" + path + "'"));
}

TEST(SimulateCliTest, CorruptPlanIsRejected) {
  const std::string path = Tmp("corrupt.pbtxt");
  std::ofstream(path) << "stages { compute_ms: \"fast\" }\n";
  Result r = Yolopipe("simulate --plan " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a valid Plan in text format"));
  const std::string binary = Tmp("corrupt.pb");
  std::ofstream(binary, std::ios::binary) << std::string("\xff\xff\xff\xff garbage", 12);
  r = Yolopipe("simulate --plan " + binary);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("not a valid binary Plan"));
}

TEST(SimulateCliTest, BadFlagValuesAreUsageErrors) {
  const std::string plan = WritePlan(UniformPlan(2, 1.0, 1, 4), "flags.pbtxt");
  Result r = Yolopipe("simulate --plan " + plan + " --batch=0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: --batch must be between 1 and"));
  r = Yolopipe("simulate --plan " + plan + " --buffers=0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: --buffers must be between 1 and 1024 (got 0)"));
  r = Yolopipe("simulate --plan " + plan + " --stream_order=sideways");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: --stream_order must be ready or in_order (got 'sideways')"));
  r = Yolopipe("simulate --plan " + plan + " --bogus=1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --bogus"));
}

TEST(SimulateCliTest, PlanWithoutBatchAsksForOne) {
  const std::string plan = WritePlan(UniformPlan(2, 1.0, 1, 0), "nobatch.pbtxt");
  Result r = Yolopipe("simulate --plan " + plan);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("has no batch (0); pass --batch"));
  r = Yolopipe("simulate --plan " + plan + " --batch 4");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(SimulateCliTest, InvalidPlanContentsAreExplained) {
  yolopipe::proto::Plan plan = UniformPlan(3, 1.0, 1, 4);
  plan.mutable_link()->set_bandwidth_gbps(10);
  auto* transfer = plan.add_transfers();
  transfer->set_tensor("p4");
  transfer->set_from_stage(0);
  transfer->add_to_stages(9);
  const std::string path = WritePlan(plan, "bad_route.pbtxt");
  Result r = Yolopipe("simulate --plan " + path);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: " + path +
                               ": transfer 0 (tensor 'p4'): to_stage 9 is not "
                               "a stage (0..2)"));
  EXPECT_THAT(r.out, Not(HasSubstr("throughput")));

  plan = UniformPlan(2, 1.0, 1, 4);
  plan.set_microbatch(0);
  r = Yolopipe("simulate --plan " + WritePlan(plan, "zero_mb.pbtxt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("microbatch is 0"));

  plan = UniformPlan(2, 1.0, 1, 4);
  plan.clear_stages();
  r = Yolopipe("simulate --plan " + WritePlan(plan, "no_stages.pbtxt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("the plan has no stages"));
}

TEST(SimulateCliTest, UnwritableTracePathIsAnError) {
  const std::string plan = WritePlan(UniformPlan(2, 1.0, 1, 4), "trace_fail.pbtxt");
  const std::string trace = Tmp("no/such/dir/t.json");
  Result r = Yolopipe("simulate --plan " + plan + " --trace " + trace);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: " + trace + ": "));
  EXPECT_THAT(r.err, HasSubstr("No such file or directory"));
}

}  // namespace
