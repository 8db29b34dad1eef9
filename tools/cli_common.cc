#include "tools/cli_common.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/artifact_io.h"
#include "tools/interrupt.h"

namespace yolopipe::cli {

void AddModelFlags(FlagSet& flags) {
  flags.AddString("model", "yolov8n",
                  "an .onnx file, or a built-in model: yolov8n, yolov8s, yolov8m, yolov8l, yolov8x");
  flags.AddInt("nc", 80, "built-in models: number of classes");
  flags.AddInt("seed", 0, "built-in models: seed of the deterministic weights");
  flags.AddInt("imgsz", 0,
               "image size (multiple of 32); 0 = the model's own (640 for built-in models)");
}

absl::StatusOr<Model> LoadModelFromFlags(const FlagSet& flags) {
  BuiltinModelOptions options;
  options.num_classes = flags.GetInt("nc");
  options.seed = static_cast<uint64_t>(flags.GetInt("seed"));
  options.imgsz = flags.GetInt("imgsz") > 0 ? flags.GetInt("imgsz") : 640;
  return LoadModel(flags.GetString("model"), options);
}

int ParseOrExit(FlagSet& flags, const std::vector<std::string>& args) {
  absl::Status status = flags.Parse(args);
  if (!status.ok()) {
    std::cerr << "error: " << status.message() << "\n\n" << flags.Usage();
    return kExitUsage;
  }
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return kExitOk;
  }
  return -1;
}

int ReportError(const absl::Status& status) {
  std::cerr << "error: " << status.message() << "\n";
  return kExitError;
}

absl::Status InitMpiIfLaunched(std::unique_ptr<MpiRuntime>* mpi) {
  if (!MpiRuntime::LaunchedByMpi()) return absl::OkStatus();
  auto runtime = MpiRuntime::Init(nullptr, nullptr);
  if (!runtime.ok()) return runtime.status();
  *mpi = std::move(*runtime);
  // Until the pipeline says which stage this rank runs (ExplainTermination), name the rank alone.
  SetTerminationMessage(absl::StrCat(
      "error: rank ", (*mpi)->rank(),
      ": terminated by the MPI launcher: another rank of the job failed or died\n"));
  return absl::OkStatus();
}

void ExplainTermination(const MpiRuntime& mpi, const Pipeline& p) {
  const PipelineTopology& t = p.topology();
  SetTerminationMessage(absl::StrCat(
      "error: rank ", mpi.rank(), " (", t.Name(t.ReplicaOfDevice(mpi.rank()),
                                              t.StageOfDevice(mpi.rank())),
      "): terminated by the MPI launcher: another rank of the job failed or died\n"));
}

int FailRank(const MpiRuntime* mpi, const absl::Status& status) {
  if (mpi == nullptr) return ReportError(status);
  MpiRuntime::AbortJob(absl::StrCat("error: rank ", mpi->rank(), ": ", status.message()),
                       kExitError);
}

int OpenOneStream(const Model& model, int64_t imgsz, PipelineOptions options,
                  const MpiRuntime* mpi, const std::string& inputs, OpenedStream* out) {
  options.mpi = mpi;
  auto pipeline = Pipeline::Create(model, imgsz, options);
  if (!pipeline.ok()) return FailRank(mpi, pipeline.status());
  if (mpi != nullptr) {
    ExplainTermination(*mpi, **pipeline);
    if (mpi->rank() != 0) {
      if (absl::Status s = (*pipeline)->Serve(); !s.ok()) return FailRank(mpi, s);
      return kExitOk;
    }
    std::cout << "MPI: " << mpi->size() << " ranks, one stage each; rank 0 reads the " << inputs
              << " and writes the outputs\n";
  }
  auto stream = (*pipeline)->OpenStream();
  if (!stream.ok()) return FailRank(mpi, stream.status());
  out->pipeline = std::move(*pipeline);
  out->stream = std::move(*stream);
  return -1;
}

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f B", bytes) : absl::StrFormat("%.1f %s", bytes, units[u]);
}

std::string WithThousands(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {
double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

ProgressLine::ProgressLine(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), tty_(isatty(2) != 0), start_s_(NowSeconds()) {}

void ProgressLine::Update(int64_t done) {
  done_ = done;
  const double now = NowSeconds();
  if (tty_) {
    if (now - last_print_s_ < 0.2) return;
    last_print_s_ = now;
    Print(done, false);
  } else {
    const int decile = total_ > 0 ? static_cast<int>(10 * done / total_) : 0;
    if (decile == last_decile_ || decile >= 10) return;
    last_decile_ = decile;
    Print(done, false);
  }
}

void ProgressLine::Done() {
  if (finished_) return;
  finished_ = true;
  Print(done_, true);
}

void ProgressLine::Print(int64_t done, bool final) {
  const double elapsed = NowSeconds() - start_s_;
  const double rate = elapsed > 0 ? done / elapsed : 0.0;
  const int pct = total_ > 0 ? static_cast<int>(100 * done / total_) : 100;
  std::string line = absl::StrFormat("%s %d/%d (%d%%), %.1f/s", label_, done, total_, pct, rate);
  if (tty_) {
    std::cerr << "\r" << line << "\x1b[K" << (final ? "\n" : "") << std::flush;
  } else {
    std::cerr << line << "\n";
  }
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string JsonNumber(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.*f", decimals, v);
}

std::string DetectionsJsonArray(const std::vector<Detection>& detections,
                                const std::vector<std::string>& class_names) {
  std::string out = "[";
  for (size_t j = 0; j < detections.size(); ++j) {
    const Detection& d = detections[j];
    const std::string name = d.class_id >= 0 && d.class_id < static_cast<int>(class_names.size())
                                 ? class_names[d.class_id]
                                 : std::to_string(d.class_id);
    absl::StrAppend(&out, j == 0 ? "\n" : ",\n", "    {\"box\": [", JsonNumber(d.x1, 2), ", ",
                    JsonNumber(d.y1, 2), ", ", JsonNumber(d.x2, 2), ", ", JsonNumber(d.y2, 2),
                    "], \"score\": ", JsonNumber(d.score, 5), ", \"class_id\": ", d.class_id,
                    ", \"class_name\": ", JsonString(name), "}");
  }
  return out + (detections.empty() ? "]" : "\n  ]");
}

void AddPrecisionFlag(FlagSet& flags) {
  flags.AddString("precision", "fp16", "cuda devices: fp16 or fp32 weights and activations");
}

absl::StatusOr<DType> ParsePrecisionFlag(const FlagSet& flags) {
  const std::string precision = flags.GetString("precision");
  if (precision == "fp16") return DType::kFloat16;
  if (precision == "fp32") return DType::kFloat32;
  return absl::InvalidArgumentError(
      absl::StrCat("--precision must be fp16 or fp32, got '", precision, "'"));
}

void AddCudaGraphFlag(FlagSet& flags) {
  flags.AddBool("cuda_graph", true,
                "cuda devices: replay each executor's work as a captured CUDA graph (off: "
                "--cuda_graph=false)");
}

void AddNcclFlag(FlagSet& flags) {
  flags.AddBool("nccl", false,
                "pipeline/hybrid on cuda devices: tensors between stages travel over NCCL, device "
                "to device; without it, through host memory over MPI or in-process channels");
}

void AddPipelineFlags(FlagSet& flags, const std::string& microbatch_help) {
  flags.AddString("devices", "cpu",
                  "cpu, cpu:K (K CPU devices splitting the cores), cuda:0,1,... (GPUs; one may "
                  "be listed twice to hold two stages)");
  AddPrecisionFlag(flags);
  AddCudaGraphFlag(flags);
  AddNcclFlag(flags);
  flags.AddString("mode", "single", "single, pipeline, data or hybrid (DESIGN.md)");
  flags.AddInt("stages", 0, "pipeline/hybrid: stages K (0: the plan's, or devices / replicas)");
  flags.AddInt("replicas", 1, "hybrid: replicas R of the K-stage pipeline (devices = R*K)");
  flags.AddString("plan", "",
                  "pipeline/hybrid: plan file (.pbtxt/.pb/.json); default: plan on the spot");
  flags.AddInt("microbatch", 0, microbatch_help);
  flags.AddInt("threads", 0, "threads per CPU device (0: the device's share of the cores)");
}

absl::StatusOr<PipelineFlags> ParsePipelineFlags(const FlagSet& flags) {
  PipelineFlags parsed;
  absl::StatusOr<Mode> mode = ParseMode(flags.GetString("mode"));
  if (!mode.ok()) return absl::InvalidArgumentError(absl::StrCat("--", mode.status().message()));
  parsed.mode = *mode;
  if (flags.GetInt("microbatch") < 0 || flags.GetInt("stages") < 0 ||
      flags.GetInt("replicas") < 1) {
    return absl::InvalidArgumentError(
        "--microbatch and --stages must be >= 0 and --replicas >= 1");
  }
  absl::StatusOr<std::vector<DeviceSpec>> devices =
      ParseDevices(flags.GetString("devices"), static_cast<int>(flags.GetInt("threads")));
  if (!devices.ok()) return devices.status();
  parsed.devices = *std::move(devices);
  absl::StatusOr<DType> precision = ParsePrecisionFlag(flags);
  if (!precision.ok()) return precision.status();
  parsed.cuda_precision = *precision;
  return parsed;
}

absl::StatusOr<PipelineOptions> PipelineOptionsFromFlags(const FlagSet& flags,
                                                         const PipelineFlags& parsed,
                                                         int default_microbatch,
                                                         proto::Plan* plan) {
  PipelineOptions options;
  options.mode = parsed.mode;
  options.devices = parsed.devices;
  options.stages = static_cast<int>(flags.GetInt("stages"));
  options.replicas = static_cast<int>(flags.GetInt("replicas"));
  options.cuda_precision = parsed.cuda_precision;
  options.cuda_graph = flags.GetBool("cuda_graph");
  options.nccl = flags.GetBool("nccl");
  if (!flags.GetString("plan").empty()) {
    if (absl::Status s = ReadArtifact(flags.GetString("plan"), plan); !s.ok()) return s;
    options.plan = plan;
    if (parsed.mode == Mode::kHybrid && !flags.IsSet("replicas")) {
      options.replicas = plan->replicas();
    }
  }
  int64_t microbatch = flags.GetInt("microbatch");
  if (microbatch == 0) microbatch = options.plan != nullptr ? plan->microbatch() : default_microbatch;
  options.microbatch = static_cast<int>(microbatch);
  return options;
}

void AddPostprocessFlags(FlagSet& flags, const std::string& per) {
  flags.AddDouble("conf", 0.25, "confidence threshold (keep best class score > conf)");
  flags.AddDouble("iou", 0.7, "NMS IoU threshold (suppress same-class boxes with IoU > iou)");
  flags.AddInt("max_det", 300, absl::StrCat("at most this many detections per ", per));
  flags.AddInt("max_candidates", 30000, absl::StrCat("at most this many boxes per ", per,
                                                     " enter NMS"));
}

absl::StatusOr<PostprocessOptions> PostprocessFromFlags(const FlagSet& flags) {
  PostprocessOptions post;
  post.conf = static_cast<float>(flags.GetDouble("conf"));
  post.iou = static_cast<float>(flags.GetDouble("iou"));
  post.max_det = static_cast<int>(std::clamp<int64_t>(flags.GetInt("max_det"), -1, 1 << 30));
  post.max_candidates =
      static_cast<int>(std::clamp<int64_t>(flags.GetInt("max_candidates"), -1, 1 << 30));
  if (absl::Status s = ValidatePostprocessOptions(post); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  return post;
}

bool ExtractRepeatedFlag(const std::vector<std::string>& args, const std::string& name,
                         std::vector<std::string>* rest, std::vector<std::string>* values,
                         std::string* error) {
  const std::string with_value = "--" + name + "=";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--" + name || a == "-" + name) {
      if (i + 1 >= args.size()) {
        *error = absl::StrCat("--", name, " needs a value");
        return false;
      }
      values->push_back(args[++i]);
    } else if (a.rfind(with_value, 0) == 0) {
      values->push_back(a.substr(with_value.size()));
    } else {
      rest->push_back(a);
    }
  }
  return true;
}

}  // namespace yolopipe::cli
