// yolopipe compare: every mode the devices allow on the same input, a table and a report folder.
#include <iostream>

#include "absl/strings/str_format.h"
#include "runtime/device.h"
#include "runtime/report/compare.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {

int CompareCommand(const std::vector<std::string>& args) {
  FlagSet flags("compare",
                "Run single, data, pipeline and hybrid (where the devices allow) on the same "
                "input; print img/s, latency, memory, bubble, bytes moved and predicted vs "
                "measured throughput; optionally write a report folder.");
  AddModelFlags(flags);
  flags.AddString("devices", "cpu:2",
                  "cpu:K (K CPU devices splitting the cores) or cuda:0,1,... (GPUs; one may be "
                  "listed twice)");
  AddPrecisionFlag(flags);
  AddCudaGraphFlag(flags);
  AddNcclFlag(flags);
  flags.AddInt("batch", 8, "images per batch (the last micro-batch may be partial)");
  flags.AddInt("microbatch", 1, "images per micro-batch");
  flags.AddInt("repeats", 1, "timed runs per mode after one warm-up (median img/s)");
  flags.AddInt("input_seed", 1, "seed of the synthetic input's pixel values");
  flags.AddInt("threads", 0, "threads per CPU device (0: the device's share of the cores)");
  flags.AddString("report", "", "write traces, SVG timelines, a throughput plot and summary.md here");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  const int64_t batch = flags.GetInt("batch"), microbatch = flags.GetInt("microbatch");
  if (batch < 1 || microbatch < 1) {
    std::cerr << "error: --batch and --microbatch must be >= 1 (got " << batch << " and "
              << microbatch << ")\n";
    return kExitUsage;
  }
  if (flags.GetInt("repeats") < 1) {
    std::cerr << "error: --repeats must be >= 1\n";
    return kExitUsage;
  }
  auto devices = ParseDevices(flags.GetString("devices"), static_cast<int>(flags.GetInt("threads")));
  if (!devices.ok()) {
    std::cerr << "error: " << devices.status().message() << "\n";
    return kExitUsage;
  }
  const absl::StatusOr<DType> precision = ParsePrecisionFlag(flags);
  if (!precision.ok()) {
    std::cerr << "error: " << precision.status().message() << "\n";
    return kExitUsage;
  }
  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());

  CompareOptions options;
  options.devices = *devices;
  options.cuda_precision = *precision;
  options.cuda_graph = flags.GetBool("cuda_graph");
  options.nccl = flags.GetBool("nccl");
  options.imgsz = flags.GetInt("imgsz");
  options.batch = static_cast<int>(batch);
  options.microbatch = static_cast<int>(microbatch);
  options.repeats = static_cast<int>(flags.GetInt("repeats"));
  options.input_seed = static_cast<uint64_t>(flags.GetInt("input_seed"));
  options.record_traces = !flags.GetString("report").empty();
  if (!options.record_traces) options.sweep_microbatches.clear();

  std::cout << "yolopipe compare: " << model->source << " on " << devices->size()
            << " device(s), batch " << batch << ", micro-batch " << microbatch << "\n";
  auto result = RunComparison(*model, options);
  if (!result.ok()) return ReportError(result.status());
  std::cout << FormatCompareTable(*result);
  std::cout << "memory/device: measured peak bytes held per device (weights, activations, "
               "workspace, buffers); pred img/s: the simulator's throughput for the plan that "
               "ran, on this batch\n";
  if (!flags.GetString("report").empty()) {
    if (absl::Status s = WriteCompareReport(*result, flags.GetString("report")); !s.ok()) {
      return ReportError(s);
    }
    std::cout << "wrote " << flags.GetString("report") << "/summary.md\n";
  }
  if (!result->all_bitwise_equal) {
    std::cout << "warning: some mode's output differs from single's (see the bitwise column)\n";
    std::cerr << "error: outputs are not bitwise equal to single's\n";
    return kExitError;
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
