// yolopipe profile: every node's cost on one device at several micro-batch sizes -> a Profile
// artifact for `yolopipe plan`.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "graph/fingerprint.h"
#include "graph/prepare.h"
#include "runtime/artifact_io.h"
#include "runtime/device.h"
#include "runtime/planner/synthetic_profile.h"
#include "runtime/profiler/profiler.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {
namespace {

int UsageError(const FlagSet& flags, const std::string& message) {
  std::cerr << "error: " << message << "\n\n" << flags.Usage();
  return kExitUsage;
}

// "1,2,4" -> {1, 2, 4}; the profiler checks the values themselves.
absl::StatusOr<std::vector<int>> ParseSizes(const std::string& text) {
  std::vector<int> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    int m;
    if (!absl::SimpleAtoi(part, &m)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--microbatches: '", part, "' is not a whole number (expected e.g. 1,2,4,8)"));
    }
    sizes.push_back(m);
  }
  return sizes;
}

std::string Directory(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void PrintSummary(const proto::Profile& p) {
  std::cout << absl::StrFormat("profile of %s (fingerprint %s), input (%s), %d repeats\n",
                               p.model(), p.model_fingerprint(),
                               absl::StrJoin(p.input_shape(), ", "), p.repeats());
  std::cout << "device: " << p.device().description() << "\n\n";
  std::cout << absl::StrFormat("%12s %14s %12s %10s\n", "micro-batch", "nodes ms", "run ms",
                               "img/s");
  for (const proto::MicrobatchRun& r : p.runs()) {
    const double img_s = r.node_sum_ms() > 0 ? r.microbatch() * 1000.0 / r.node_sum_ms() : 0.0;
    std::cout << absl::StrFormat("%12d %14.3f %12.3f %10.1f\n", r.microbatch(), r.node_sum_ms(),
                                 r.run_median_ms(), img_s);
  }
  std::cout << "(nodes ms: sum of the nodes' median times; run ms: median of whole runs; img/s "
               "from nodes ms)\n\n";

  std::vector<int> order(p.nodes_size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return p.nodes(a).time_ms() > p.nodes(b).time_ms(); });
  const int shown = std::min<int>(10, p.nodes_size());
  std::cout << absl::StrFormat(
      "top %d of %d nodes by time at micro-batch %d (total %.3f ms):\n", shown, p.nodes_size(),
      p.microbatch_sizes_size() > 0 ? p.microbatch_sizes(0) : 0, p.total_ms());
  std::cout << absl::StrFormat("  %-32s %-10s %10s %7s %11s %11s\n", "node", "op", "ms", "share",
                               "output", "weights");
  for (int i = 0; i < shown; ++i) {
    const proto::NodeProfile& n = p.nodes(order[i]);
    const double share = p.total_ms() > 0 ? 100.0 * n.time_ms() / p.total_ms() : 0.0;
    std::cout << absl::StrFormat("  %-32s %-10s %10.3f %6.1f%% %11s %11s\n", n.name(), n.op(),
                                 n.time_ms(), share, FormatBytes(n.output_bytes()),
                                 FormatBytes(n.weight_bytes()));
  }
}

}  // namespace

int ProfileCommand(const std::vector<std::string>& args) {
  FlagSet flags("profile",
                "Measure every node of the fused graph on one device at several micro-batch "
                "sizes (time min and median over repeats, output/weight/workspace bytes) and "
                "write a Profile for `yolopipe plan`.");
  AddModelFlags(flags);
  flags.AddString("device", "cpu",
                  "cpu (all cores), cpu:K (the first of K CPU devices), cuda:N (GPU N: the CUDA "
                  "executor's steps timed with CUDA events)");
  AddPrecisionFlag(flags);
  flags.AddInt("threads", 0, "threads (0: the device's share of the cores)");
  flags.AddInt("batch", 1, "images per batch; the default micro-batch sizes go up to it");
  flags.AddString("microbatches", "",
                  "comma-separated micro-batch sizes, increasing (default: powers of two below "
                  "--batch, then --batch)");
  flags.AddInt("repeats", 5, "timed runs per micro-batch size (min and median kept)");
  flags.AddInt("warmup", 1, "untimed runs per micro-batch size first");
  flags.AddString("estimate", "",
                  "roofline: do not measure; estimate every node from its FLOPs and bytes with "
                  "--conv_tflops, --memory_gbps and --node_us (planning for hardware that is not "
                  "at hand, e.g. --device cuda; the profile says it is an estimate)");
  flags.AddDouble("conv_tflops", 300, "--estimate: sustained convolution rate, TFLOP/s");
  flags.AddDouble("memory_gbps", 2500, "--estimate: memory bandwidth of data-movement ops, GB/s");
  flags.AddDouble("node_us", 4, "--estimate: fixed cost per node and micro-batch, microseconds");
  flags.AddBool("under_load", false,
                "with --device cpu:K: the other K-1 devices run the model in a loop meanwhile, so "
                "the timings include the contention of stages side by side in a pipeline");
  flags.AddString("o", "", "output profile: .pbtxt, .json or .pb (same as --output)");
  flags.AddString("output", "", "output profile: .pbtxt, .json or .pb");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  const std::string path = flags.IsSet("o") ? flags.GetString("o") : flags.GetString("output");
  if (path.empty()) return UsageError(flags, "-o FILE (.pbtxt, .json or .pb) is required");
  if (auto format = ArtifactFormatForPath(path); !format.ok()) {
    return UsageError(flags, std::string(format.status().message()));
  }
  const int64_t batch = flags.GetInt("batch");
  if (batch < 1 || batch > 4096) {
    return UsageError(flags, absl::StrCat("--batch must be 1..4096, got ", batch));
  }
  const int64_t repeats = flags.GetInt("repeats"), warmup = flags.GetInt("warmup");
  if (repeats < 1 || repeats > 100000) {
    return UsageError(flags, absl::StrCat("--repeats must be >= 1, got ", repeats));
  }
  if (warmup < 0 || warmup > 100000) {
    return UsageError(flags, absl::StrCat("--warmup must be >= 0, got ", warmup));
  }
  ProfilerOptions options;
  options.repeats = static_cast<int>(repeats);
  options.warmup = static_cast<int>(warmup);
  if (flags.IsSet("microbatches")) {
    auto sizes = ParseSizes(flags.GetString("microbatches"));
    if (!sizes.ok()) return UsageError(flags, std::string(sizes.status().message()));
    options.microbatch_sizes = *sizes;
  } else {
    options.microbatch_sizes = DefaultMicrobatchSizes(static_cast<int>(batch));
  }
  const int64_t imgsz = flags.GetInt("imgsz");
  if (imgsz < 0 || imgsz % 32 != 0 || imgsz > 8192) {
    return UsageError(flags, absl::StrCat("--imgsz must be 0 (the model's own) or a multiple of "
                                          "32 up to 8192, got ",
                                          imgsz));
  }
  const int64_t threads = flags.GetInt("threads");
  if (threads < 0 || threads > 4096) {
    return UsageError(flags, absl::StrCat("--threads must be 0..4096, got ", threads));
  }
  auto devices = ParseDevices(flags.GetString("device"), static_cast<int>(threads));
  if (!devices.ok()) return UsageError(flags, std::string(devices.status().message()));
  options.device = (*devices)[0];
  const absl::StatusOr<DType> precision = ParsePrecisionFlag(flags);
  if (!precision.ok()) return UsageError(flags, std::string(precision.status().message()));
  options.cuda_precision = *precision;
  if (flags.GetBool("under_load")) {
    if (devices->size() < 2 || options.device.kind != DeviceKind::kCpu) {
      return UsageError(flags, "--under_load needs --device cpu:K with K >= 2");
    }
    options.load_devices.assign(devices->begin() + 1, devices->end());
  }
  if (absl::Status s = ValidateProfilerOptions(options); !s.ok()) {
    return UsageError(
        flags, absl::StrCat(flags.IsSet("microbatches") ? "--microbatches: " : "", s.message()));
  }
  // Fail now, not after a long profile.
  const std::string dir = Directory(path);
  if (access(dir.c_str(), W_OK) != 0) {
    return ReportError(absl::PermissionDeniedError(absl::StrCat(
        "cannot write '", path, "': directory '", dir, "' does not exist or is not writable")));
  }

  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());

  if (!flags.GetString("estimate").empty()) {
    if (flags.GetString("estimate") != "roofline") {
      return UsageError(flags, absl::StrCat("--estimate must be roofline, got '",
                                            flags.GetString("estimate"), "'"));
    }
    const double tflops = flags.GetDouble("conv_tflops"), gbps = flags.GetDouble("memory_gbps"),
                 node_us = flags.GetDouble("node_us");
    if (!(tflops > 0) || !(gbps > 0) || !(node_us >= 0)) {
      return UsageError(flags, "--conv_tflops and --memory_gbps must be > 0, --node_us >= 0");
    }
    auto shape = InputShapeFor(*model, 1, imgsz);
    if (!shape.ok()) return ReportError(shape.status());
    auto prepared = PrepareForExecution(model->graph, *shape);
    if (!prepared.ok()) return ReportError(prepared.status());
    SyntheticProfileOptions so;
    so.model = model->source;
    so.fingerprint = ModelFingerprint(model->graph);
    so.microbatch_sizes = options.microbatch_sizes;
    so.conv_gflops = tflops * 1e3;
    so.memory_gbps = gbps;
    so.node_overhead_ms = node_us * 1e-3;
    so.device_kind = options.device.kind == DeviceKind::kCuda ? "cuda" : "cpu";
    auto estimated = SyntheticProfileFromGraph(*prepared, so);
    if (!estimated.ok()) return ReportError(estimated.status());
    estimated->set_model(model->source);
    estimated->mutable_device()->set_name(options.device.ToString());
    estimated->mutable_device()->set_description(absl::StrFormat(
        "ESTIMATED, not measured: roofline with convolutions at %.0f TFLOP/s, data movement at "
        "%.0f GB/s, %.1f us per node",
        tflops, gbps, node_us));
    estimated->set_created_by("yolopipe profile --estimate roofline");
    if (absl::Status s = WriteArtifact(path, *estimated); !s.ok()) return ReportError(s);
    PrintSummary(*estimated);
    std::cout << "(an estimate: " << estimated->device().description() << ")\n";
    std::cout << "wrote " << path << "\n";
    return kExitOk;
  }

  // On a terminal each size's runs overwrite one line; in a log every line stays.
  const bool tty = isatty(STDERR_FILENO) != 0;
  bool line_open = false;
  options.progress = [&](const std::string& line) {
    if (!tty) {
      std::cerr << line << "\n";
      return;
    }
    if (line_open && absl::StartsWith(line, "preparing")) std::cerr << "\n";
    std::cerr << "\r" << line << "\033[K" << std::flush;
    line_open = true;
  };
  auto profile = ProfileModel(*model, imgsz, options);
  if (line_open) std::cerr << "\n";
  if (!profile.ok()) return ReportError(profile.status());

  if (absl::Status s = WriteArtifact(path, *profile); !s.ok()) return ReportError(s);
  PrintSummary(*profile);
  std::cout << "wrote " << path << "\n";
  return kExitOk;
}

}  // namespace yolopipe::cli
