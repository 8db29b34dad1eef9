// Planning time for yolov8x's fused graph (synthetic profile, 4 micro-batch sizes), K = 2, 4, 8,
// over a fast and a slow link (the slow one makes transfers, and so the non-local send costs,
// decide the split). Target: under 100 ms per plan.
//   bazel run //runtime/planner:planner_benchmark
#include <cstdio>
#include <cstdlib>

#include "benchmark/benchmark.h"
#include "runtime/planner/planner.h"
#include "runtime/planner/synthetic_profile.h"

namespace yolopipe {
namespace {

const proto::Profile& YoloV8xProfile() {
  static const proto::Profile* profile = [] {
    SyntheticProfileOptions options;
    options.microbatch_sizes = {1, 2, 4, 8};
    options.conv_gflops = 200000;  // an H100-like device: transfers matter
    options.memory_gbps = 2000;
    options.node_overhead_ms = 0.005;
    auto p = SyntheticYoloV8Profile('x', 640, options);
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
      std::abort();
    }
    return new proto::Profile(*std::move(p));
  }();
  return *profile;
}

void Plan(benchmark::State& state, const char* link, PlannerOptions::Objective objective) {
  const proto::Profile& profile = YoloV8xProfile();
  PlannerOptions options;
  options.num_stages = static_cast<int>(state.range(0));
  options.batch = 8;
  options.link = *LinkPreset(link);
  options.objective = objective;
  double throughput = 0;
  for (auto _ : state) {
    auto plan = PlanPipeline(profile, options);
    if (!plan.ok()) {
      state.SkipWithError(std::string(plan.status().message()).c_str());
      return;
    }
    throughput = plan->predicted_throughput();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["nodes"] = profile.nodes_size();
  state.counters["img_per_s"] = throughput;
}

void BM_PlanYoloV8xNvlink(benchmark::State& state) {
  Plan(state, "nvlink4", PlannerOptions::Objective::kThroughput);
}
void BM_PlanYoloV8xLoopback(benchmark::State& state) {
  Plan(state, "loopback", PlannerOptions::Objective::kThroughput);
}
void BM_PlanYoloV8xPcie4Latency(benchmark::State& state) {
  Plan(state, "pcie4", PlannerOptions::Objective::kLatency);
}

BENCHMARK(BM_PlanYoloV8xNvlink)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanYoloV8xLoopback)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlanYoloV8xPcie4Latency)->Arg(2)->Arg(4)->Arg(8)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace yolopipe

BENCHMARK_MAIN();
