// yolopipe simulate: plays a plan's pipeline schedule forward (runtime/simulator) and prints
// throughput, latency, makespan, bubble and per-stage busy/idle time beside the plan's own
// predictions; optionally writes the schedule as a Chrome trace.
#include <climits>
#include <cmath>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/artifact_io.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/simulator/simulator.h"
#include "runtime/trace/trace.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {
namespace {

std::string Percent(double part, double whole) {
  return absl::StrFormat("%.1f%%", whole > 0.0 ? 100.0 * part / whole : 0.0);
}

// "1600.0 img/s", or "-" when the plan carries no such prediction.
std::string Predicted(double value, const char* format) {
  return value > 0.0 ? absl::StrFormat(format, value) : std::string("-");
}

std::string Row(const std::string& what, const std::string& simulated,
                const std::string& predicted) {
  return absl::StrFormat("  %-26s %-44s %s\n", what, simulated, predicted);
}

}  // namespace

int SimulateCommand(const std::vector<std::string>& args) {
  FlagSet flags("simulate",
                "Simulate a plan's pipeline schedule (compute, transfers on their own streams, "
                "buffers in flight): throughput, latency, idle time per stage, and a Chrome "
                "trace.");
  flags.AddString("plan", "", "the plan to simulate (.pbtxt, .json or .pb), from `yolopipe plan`");
  flags.AddInt("batch", 0, "images in the batch, all replicas together; not given: the plan's");
  flags.AddInt("buffers", 0,
               "micro-batch buffers in flight per stage; not given: the plan's, else 2");
  flags.AddString("stream_order", "ready",
                  "which message a free stream carries next: ready (the oldest ready one: a "
                  "channel per peer stage) or in_order (micro-batch, then peer order: one "
                  "in-order stream per stage)");
  flags.AddString("trace", "",
                  "write the simulated schedule here as a Chrome trace (Perfetto, "
                  "chrome://tracing)");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;
  const std::string plan_path = flags.GetString("plan");
  if (plan_path.empty()) {
    std::cerr << "error: --plan is required\n\n" << flags.Usage();
    return kExitUsage;
  }
  if (flags.IsSet("batch") && (flags.GetInt("batch") < 1 || flags.GetInt("batch") > INT_MAX)) {
    std::cerr << "error: --batch must be between 1 and " << INT_MAX << " images (got "
              << flags.GetInt("batch") << ")\n";
    return kExitUsage;
  }
  if (flags.IsSet("buffers") && (flags.GetInt("buffers") < 1 || flags.GetInt("buffers") > 1024)) {
    std::cerr << "error: --buffers must be between 1 and 1024 (got " << flags.GetInt("buffers")
              << ")\n";
    return kExitUsage;
  }
  const std::string stream_order = flags.GetString("stream_order");
  if (stream_order != "ready" && stream_order != "in_order") {
    std::cerr << "error: --stream_order must be ready or in_order (got '" << stream_order << "')\n";
    return kExitUsage;
  }

  proto::Plan plan;
  if (absl::Status status = ReadArtifact(plan_path, &plan); !status.ok()) {
    return ReportError(status);
  }
  if (!flags.IsSet("batch") && plan.batch() < 1) {
    return ReportError(absl::InvalidArgumentError(
        absl::StrCat("'", plan_path, "' has no batch (", plan.batch(), "); pass --batch")));
  }

  SimulationOptions options;
  options.batch = static_cast<int>(flags.GetInt("batch"));
  options.buffers_in_flight = static_cast<int>(flags.GetInt("buffers"));
  options.stream_order = stream_order == "ready" ? StreamOrder::kReady : StreamOrder::kInOrder;
  const std::string trace_path = flags.GetString("trace");
  TraceWriter trace;
  auto result = Simulate(plan, options, trace_path.empty() ? nullptr : &trace);
  if (!result.ok()) {
    return ReportError(absl::Status(result.status().code(),
                                    absl::StrCat(plan_path, ": ", result.status().message())));
  }
  // The plan's throughput prediction is a steady state: compare it with the simulated one.
  SimulationOptions steady_options = options;
  steady_options.open_stream = true;
  auto steady = Simulate(plan, steady_options);
  if (!steady.ok()) return ReportError(steady.status());
  // The other stream order, to show what head-of-line blocking costs (or would save).
  steady_options.stream_order =
      options.stream_order == StreamOrder::kReady ? StreamOrder::kInOrder : StreamOrder::kReady;
  auto steady_other = Simulate(plan, steady_options);
  if (!steady_other.ok()) return ReportError(steady_other.status());
  const SimulationResult& r = *result;

  std::string link = "none";
  if (r.uses_transfer_list) {
    link = absl::StrFormat("%s (%g GB/s, %g us per message)",
                           plan.link().name().empty() ? "custom" : plan.link().name(),
                           plan.link().bandwidth_gbps(), plan.link().latency_us());
  }
  std::string out;
  absl::StrAppend(
      &out, absl::StrFormat("plan       %s: model %s, %d stage%s x %d replica%s, "
                            "micro-batch %d, link %s\n",
                            plan_path, plan.model().empty() ? "?" : plan.model(),
                            r.stages_per_replica, r.stages_per_replica == 1 ? "" : "s", r.replicas,
                            r.replicas == 1 ? "" : "s", r.microbatch, link));
  absl::StrAppend(
      &out,
      absl::StrFormat(
          "simulated  batch %d = %d micro-batches%s, %d buffers in flight, %s streams; "
          "transfer times from %s\n\n",
          r.batch, r.num_microbatches, r.replicas > 1 ? " (all replicas)" : "", r.buffers_in_flight,
          stream_order == "ready" ? "ready-order" : "in-order",
          r.uses_transfer_list ? "the plan's transfers and link" : "the stages' send_ms/recv_ms"));
  absl::StrAppend(&out, Row("", "simulated", "plan predicts"));
  absl::StrAppend(&out,
                  Row("throughput, this batch", absl::StrFormat("%.1f img/s", r.throughput), ""));
  absl::StrAppend(&out,
                  Row("throughput, steady state", absl::StrFormat("%.1f img/s", steady->throughput),
                      Predicted(plan.predicted_throughput(), "%.1f img/s")));
  if (std::abs(steady_other->throughput - steady->throughput) > 0.01 * steady->throughput) {
    absl::StrAppend(&out, Row(stream_order == "ready" ? "  with in-order streams"
                                                      : "  with ready-order streams",
                              absl::StrFormat("%.1f img/s", steady_other->throughput), ""));
  }
  absl::StrAppend(&out, Row("makespan (batch time)", absl::StrFormat("%.3f ms", r.makespan_ms),
                            Predicted(plan.predicted_batch_ms(), "%.3f ms")));
  absl::StrAppend(&out, Row("latency per micro-batch",
                            absl::StrFormat("mean %.3f ms, p50 %.3f ms, p99 %.3f ms",
                                            r.latency_ms_mean, r.latency_ms_p50, r.latency_ms_p99),
                            ""));
  absl::StrAppend(&out, Row("latency, fastest", absl::StrFormat("%.3f ms", r.latency_ms_min),
                            Predicted(plan.predicted_latency_ms(), "%.3f ms")));
  absl::StrAppend(&out, Row("bubble (idle stage-time)", Percent(r.bubble_fraction, 1.0),
                            plan.bubble_fraction() > 0.0 ? Percent(plan.bubble_fraction(), 1.0)
                                                         : std::string("-")));
  absl::StrAppend(&out, "\n",
                  absl::StrFormat("  %-8s %-10s %10s %8s %8s %9s %8s %8s\n", "stage", "device",
                                  "ms/mb", "busy", "idle", "compute", "send", "recv"));
  for (int g = 0; g < static_cast<int>(r.stages.size()); ++g) {
    const StageStats& s = r.stages[g];
    const double window = s.busy_ms + s.idle_ms;
    const std::string name =
        r.replicas > 1 ? absl::StrCat(s.replica, "/", s.position) : absl::StrCat(s.position);
    absl::StrAppend(&out, absl::StrFormat("  %-8s %-10s %10.3f %8s %8s %9s %8s %8s\n", name,
                                          s.device.empty() ? "-" : s.device,
                                          plan.stages(g).compute_ms(), Percent(s.busy_ms, window),
                                          Percent(s.idle_ms, window), Percent(s.compute_ms, window),
                                          Percent(s.send_ms, window), Percent(s.recv_ms, window)));
  }
  absl::StrAppend(&out, "  (busy: computing, sending or receiving; percentages of the makespan)\n");
  std::cout << out;

  if (!trace_path.empty()) {
    if (absl::Status status = trace.WriteFile(trace_path); !status.ok()) {
      return ReportError(status);
    }
    std::cout << absl::StrFormat(
        "trace      %s: %d events (open in https://ui.perfetto.dev or chrome://tracing)\n",
        trace_path, trace.size());
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
