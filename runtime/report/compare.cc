#include "runtime/report/compare.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/file_io.h"
#include "runtime/simulator/simulator.h"

namespace yolopipe {
namespace {

std::string Bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 3) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f B", bytes) : absl::StrFormat("%.1f %s", bytes, units[u]);
}

// One warm-up Run, then `repeats` timed Runs; keeps the median run's stats and trace.
absl::Status TimeMode(Pipeline& p, const Tensor& input, const CompareOptions& o, ModeResult* out,
                      Tensor* output) {
  if (absl::StatusOr<Tensor> warm = p.Run(input); !warm.ok()) return warm.status();
  struct Timed {
    PipelineStats stats;
    std::unique_ptr<TraceWriter> trace;
  };
  std::vector<Timed> runs;
  for (int i = 0; i < o.repeats; ++i) {
    Timed t;
    if (o.record_traces) t.trace = std::make_unique<TraceWriter>();
    absl::StatusOr<Tensor> r = p.Run(input, &t.stats, t.trace.get());
    if (!r.ok()) return r.status();
    *output = *std::move(r);
    runs.push_back(std::move(t));
  }
  std::sort(runs.begin(), runs.end(), [](const Timed& a, const Timed& b) {
    return a.stats.images_per_second < b.stats.images_per_second;
  });
  Timed& median = runs[runs.size() / 2];
  out->stats = median.stats;
  out->trace = std::move(median.trace);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompareResult> RunComparison(const Model& model, const CompareOptions& o) {
  if (o.devices.empty()) return absl::InvalidArgumentError("compare needs at least one device");
  if (o.batch < 1 || o.microbatch < 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "batch (%d) and microbatch (%d) must be >= 1", o.batch, o.microbatch));
  }
  if (o.repeats < 1) return absl::InvalidArgumentError("repeats must be >= 1");
  const int K = static_cast<int>(o.devices.size());
  absl::StatusOr<Shape> shape = InputShapeFor(model, o.batch, o.imgsz);
  if (!shape.ok()) return shape.status();
  const Tensor input = SyntheticInput(*shape, o.input_seed);
  const int64_t imgsz = (*shape)[2];

  CompareResult result;
  result.model = model.source;
  result.input_shape = *shape;

  struct Config {
    Mode mode;
    int replicas, stages;
  };
  std::vector<Config> configs = {{Mode::kSingle, 1, 1}};
  if (K >= 2) {
    configs.push_back({Mode::kData, K, 1});
    configs.push_back({Mode::kPipeline, 1, K});
  }
  if (K >= 4 && K % 2 == 0) configs.push_back({Mode::kHybrid, 2, K / 2});

  Tensor single_output;
  proto::Plan pipeline_plan;
  std::unique_ptr<Pipeline> pipeline_for_sweep;
  for (const Config& c : configs) {
    const std::string prefix = absl::StrCat(ModeName(c.mode), ": ");
    PipelineOptions po;
    po.mode = c.mode;
    po.devices = o.devices;
    po.microbatch = o.microbatch;
    po.cuda_precision = o.cuda_precision;
    po.cuda_graph = o.cuda_graph;
    po.nccl = o.nccl && (c.mode == Mode::kPipeline || c.mode == Mode::kHybrid);
    ModeResult mr;
    mr.mode = c.mode;
    mr.replicas = c.replicas;
    mr.stages = c.stages;
    mr.num_devices = c.mode == Mode::kSingle ? 1 : c.replicas * c.stages;
    proto::Plan plan;
    if (c.mode == Mode::kPipeline || c.mode == Mode::kHybrid) {
      absl::StatusOr<proto::Plan> made =
          MakeQuickPlan(model, o.imgsz, o.devices, o.microbatch, c.stages, c.replicas, o.batch,
                        o.cuda_precision);
      if (!made.ok()) {
        return absl::Status(made.status().code(), prefix + std::string(made.status().message()));
      }
      plan = *std::move(made);
      po.plan = &plan;
      po.stages = c.stages;
      po.replicas = c.replicas;
      // The simulator's prediction for this batch (fill and drain included), so the ratio
      // compares like with like; the plan's steady state goes to the summary.
      mr.steady_state_throughput = plan.predicted_throughput();
      SimulationOptions so;
      so.batch = o.batch;
      absl::StatusOr<SimulationResult> sim = Simulate(plan, so);
      if (!sim.ok()) {
        return absl::Status(sim.status().code(), prefix + std::string(sim.status().message()));
      }
      mr.predicted_throughput = sim->throughput;
      for (const proto::StagePlan& s : plan.stages()) {
        if (s.replica() == 0) mr.planned_memory_bytes.push_back(s.memory_bytes());
      }
    }
    absl::StatusOr<std::unique_ptr<Pipeline>> p = Pipeline::Create(model, imgsz, po);
    if (!p.ok()) return absl::Status(p.status().code(), prefix + std::string(p.status().message()));
    Tensor output;
    if (absl::Status s = TimeMode(**p, input, o, &mr, &output); !s.ok()) {
      return absl::Status(s.code(), prefix + std::string(s.message()));
    }
    if (c.mode == Mode::kSingle) {
      single_output = output;
    } else {
      mr.bitwise_equal = BitwiseEqual(output, single_output);
      result.all_bitwise_equal = result.all_bitwise_equal && mr.bitwise_equal;
    }
    if (c.mode == Mode::kPipeline) {
      pipeline_plan = plan;
      pipeline_for_sweep = *std::move(p);
    }
    result.modes.push_back(std::move(mr));
  }

  // Sweep: the same pipeline (one micro-batch shape) on batches of M micro-batches.
  if (pipeline_for_sweep != nullptr) {
    for (int m : o.sweep_microbatches) {
      if (m < 1) continue;
      absl::StatusOr<Shape> s = InputShapeFor(model, int64_t{m} * o.microbatch, o.imgsz);
      if (!s.ok()) return s.status();
      const Tensor in = SyntheticInput(*s, o.input_seed);
      if (absl::StatusOr<Tensor> warm = pipeline_for_sweep->Run(in); !warm.ok()) {
        return absl::Status(warm.status().code(),
                            absl::StrCat("sweep M=", m, ": ", warm.status().message()));
      }
      PipelineStats stats;
      if (absl::StatusOr<Tensor> r = pipeline_for_sweep->Run(in, &stats); !r.ok()) {
        return absl::Status(r.status().code(),
                            absl::StrCat("sweep M=", m, ": ", r.status().message()));
      }
      SweepPoint pt;
      pt.num_microbatches = m;
      pt.measured = stats.images_per_second;
      SimulationOptions so;
      so.batch = m * o.microbatch;
      if (absl::StatusOr<SimulationResult> sim = Simulate(pipeline_plan, so); sim.ok()) {
        pt.predicted = sim->throughput;
      }
      result.sweep.push_back(pt);
    }
  }
  return result;
}

std::string FormatCompareTable(const CompareResult& r) {
  std::string out = absl::StrFormat("%-9s %7s %10s %9s %9s %-36s %7s %11s %10s %9s %s\n", "mode",
                                    "devices", "img/s", "p50 ms", "p99 ms", "memory/device",
                                    "bubble", "bytes moved", "pred img/s", "meas/pred",
                                    "bitwise");
  for (const ModeResult& m : r.modes) {
    std::vector<std::string> parts;
    for (int64_t b : m.stats.stage_peak_bytes) parts.push_back(Bytes(static_cast<double>(b)));
    std::string memory = parts.empty() ? "n/a" : absl::StrJoin(parts, "/");
    std::string pred = "n/a", ratio = "n/a";
    if (m.predicted_throughput.has_value() && *m.predicted_throughput > 0) {
      pred = absl::StrFormat("%.2f", *m.predicted_throughput);
      ratio = absl::StrFormat("%.0f%%", 100.0 * m.stats.images_per_second / *m.predicted_throughput);
    }
    absl::StrAppendFormat(&out, "%-9s %7d %10.2f %9.2f %9.2f %-36s %6.1f%% %11s %10s %9s %s\n",
                          ModeName(m.mode), m.num_devices, m.stats.images_per_second,
                          m.stats.latency_p50_ms, m.stats.latency_p99_ms, memory,
                          100.0 * m.stats.bubble_fraction,
                          Bytes(static_cast<double>(m.stats.bytes_moved)), pred, ratio,
                          m.mode == Mode::kSingle ? "ref" : (m.bitwise_equal ? "yes" : "NO"));
  }
  return out;
}

absl::Status WriteCompareReport(const CompareResult& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  auto write = [&](const std::string& name, const std::string& text) -> absl::Status {
    return WriteFileAtomically(dir + "/" + name, text);
  };
  std::string md = absl::StrFormat("# yolopipe compare: %s\n\nInput %s, one warm-up run then the "
                                   "median timed run per mode.\n\n```\n%s```\n\n",
                                   r.model, ShapeToString(r.input_shape), FormatCompareTable(r));
  absl::StrAppend(&md, r.all_bitwise_equal
                           ? "Every mode's output is bitwise equal to `single`'s.\n\n"
                           : "**WARNING: some mode's output differs from `single`'s.**\n\n");
  absl::StrAppend(&md, "Memory is the measured peak per device (weights, activation arena, "
                       "workspace, receive buffers, outputs waiting to be sent); predicted img/s "
                       "is the simulator's throughput for the plan that ran on this batch.\n\n");
  for (const ModeResult& m : r.modes) {
    if (!m.steady_state_throughput.has_value()) continue;
    absl::StrAppendFormat(&md, "- %s: the plan's steady-state throughput is %.2f img/s (an endless "
                          "stream); the table's prediction is the simulator's for this batch.\n",
                          ModeName(m.mode), *m.steady_state_throughput);
  }
  for (const ModeResult& m : r.modes) {
    if (m.planned_memory_bytes.empty()) continue;
    std::vector<std::string> plan, measured;
    for (uint64_t b : m.planned_memory_bytes) plan.push_back(Bytes(static_cast<double>(b)));
    for (int64_t b : m.stats.stage_peak_bytes) measured.push_back(Bytes(static_cast<double>(b)));
    absl::StrAppend(&md, "- ", ModeName(m.mode), ": the plan estimated ", absl::StrJoin(plan, "/"),
                    " per stage; measured ", absl::StrJoin(measured, "/"), "\n");
  }
  absl::StrAppend(&md, "\n## Traces\n\n");
  for (const ModeResult& m : r.modes) {
    if (m.trace == nullptr) continue;
    const std::string name = ModeName(m.mode);
    const std::string trace_file = absl::StrCat("trace_", name, ".json");
    if (absl::Status s = m.trace->WriteFile(dir + "/" + trace_file); !s.ok()) return s;
    absl::StrAppend(&md, "- ", name, ": [", trace_file, "](", trace_file,
                    ") (open in https://ui.perfetto.dev)\n");
    if (m.mode == Mode::kSingle) continue;
    const std::string svg_file = absl::StrCat("timeline_", name, ".svg");
    std::vector<std::string> tracks;
    for (int r2 = 0; r2 < m.replicas; ++r2) {
      for (int s = 0; s < m.stages; ++s) tracks.push_back(absl::StrFormat("r%d stage %d", r2, s));
    }
    if (absl::Status s = write(svg_file, TimelineSvg(m.trace->events(),
                                                     absl::StrCat(name, " timeline: ", r.model),
                                                     tracks));
        !s.ok()) {
      return s;
    }
    absl::StrAppend(&md, "\n  ![", name, " timeline](", svg_file, ")\n\n");
  }
  if (!r.sweep.empty()) {
    std::vector<PlotPoint> measured, predicted;
    bool have_pred = true;
    for (const SweepPoint& p : r.sweep) {
      measured.push_back({static_cast<double>(p.num_microbatches), p.measured});
      predicted.push_back({static_cast<double>(p.num_microbatches), p.predicted});
      have_pred = have_pred && p.predicted > 0;
    }
    if (!have_pred) predicted.clear();
    if (absl::Status s = write("throughput.svg",
                               ThroughputPlotSvg(measured, predicted,
                                                 "pipeline throughput vs micro-batch count"));
        !s.ok()) {
      return s;
    }
    absl::StrAppend(&md, "## Throughput against micro-batch count (pipeline)\n\n"
                         "![throughput](throughput.svg)\n\n| micro-batches | measured img/s | "
                         "simulated img/s |\n|---:|---:|---:|\n");
    for (const SweepPoint& p : r.sweep) {
      absl::StrAppendFormat(&md, "| %d | %.2f | %s |\n", p.num_microbatches, p.measured,
                            p.predicted > 0 ? absl::StrFormat("%.2f", p.predicted) : "n/a");
    }
  }
  return write("summary.md", md);
}

}  // namespace yolopipe
