// Compare: runs one model in every mode the devices allow (single, data, pipeline, hybrid) on the
// same deterministic input, checks each mode's output is bitwise equal to single's, and writes a
// report folder (Chrome traces, SVG timelines, a throughput-vs-micro-batch-count plot, summary.md).
//
// Plans: pipeline (K = #devices stages) and hybrid (R = 2, K/2 stages; only when #devices >= 4 and
// even) are planned here the way Pipeline plans on the spot (MakeQuickPlan: one quick profile at
// the micro-batch size on device 0 with the other devices as background load; PlanPipeline at
// that micro-batch) and the plan is passed to Pipeline, so the predicted throughput printed (the
// simulator's for this batch, fill and drain included) is that of the split that actually ran.
//
// Memory: the table shows each device's measured peak (PipelineStats::stage_peak_bytes); the
// summary also lists the plan's estimate (StagePlan.memory_bytes) for pipeline/hybrid.
//
// Blocking; not thread-safe (it times runs on the machine's cores).
#ifndef YOLOPIPE_RUNTIME_REPORT_COMPARE_H_
#define YOLOPIPE_RUNTIME_REPORT_COMPARE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/report/svg.h"
#include "runtime/trace/trace.h"

namespace yolopipe {

struct CompareOptions {
  std::vector<DeviceSpec> devices;  // K CPU or CUDA devices
  DType cuda_precision = DType::kFloat16;  // PipelineOptions::cuda_precision
  bool cuda_graph = true;                  // PipelineOptions::cuda_graph
  bool nccl = false;                       // PipelineOptions::nccl, for pipeline and hybrid
  int64_t imgsz = 0;                // InputShapeFor's rule
  int batch = 1;                    // images (the last micro-batch may be partial)
  int microbatch = 1;
  int repeats = 1;                  // timed runs per mode (median img/s), after one warm-up
  uint64_t input_seed = 1;
  // Pipeline-mode sweep for the plot: batch = M * microbatch for each M (empty: none).
  std::vector<int> sweep_microbatches = {1, 2, 4, 8};
  bool record_traces = true;
};

struct ModeResult {
  Mode mode = Mode::kSingle;
  int replicas = 1;
  int stages = 1;
  int num_devices = 1;
  PipelineStats stats;  // of the median timed run
  // Predicted figures of the plan that ran (pipeline/hybrid only).
  std::optional<double> predicted_throughput;     // Simulate(plan, this batch).throughput
  std::optional<double> steady_state_throughput;  // plan.predicted_throughput (endless stream)
  std::vector<uint64_t> planned_memory_bytes;  // per stage of replica 0
  bool bitwise_equal = true;                   // output == single's output
  std::unique_ptr<TraceWriter> trace;          // of the last timed run (record_traces)
};

struct SweepPoint {
  int num_microbatches = 0;
  double measured = 0;   // img/s
  double predicted = 0;  // Simulate(plan, batch) throughput, img/s; 0 when unavailable
};

struct CompareResult {
  std::string model;
  Shape input_shape;
  std::vector<ModeResult> modes;  // single first
  std::vector<SweepPoint> sweep;
  bool all_bitwise_equal = true;
};

// Errors: InvalidArgument for bad options (no devices, batch/microbatch < 1, repeats < 1); otherwise what profiling, planning or Pipeline give, prefixed with
// the mode.
absl::StatusOr<CompareResult> RunComparison(const Model& model, const CompareOptions& options);

// The table: one row per mode with devices, img/s, latency p50/p99, memory per device, bubble %,
// bytes moved, predicted img/s and measured/predicted.
std::string FormatCompareTable(const CompareResult& result);

// Writes into `dir` (created if missing): trace_<mode>.json per mode with a trace,
// timeline_<mode>.svg per parallel mode with a trace, throughput.svg (when there is a sweep) and
// summary.md linking them with the table. Internal/IO errors name the file.
absl::Status WriteCompareReport(const CompareResult& result, const std::string& dir);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_REPORT_COMPARE_H_
