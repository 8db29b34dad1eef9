#include "tools/cli_common.h"

#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

}  // namespace yolopipe::cli
