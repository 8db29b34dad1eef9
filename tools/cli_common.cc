#include "tools/cli_common.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <utility>

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

absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      return absl::InternalError(absl::StrCat(path, ": cannot write (temporary file ", tmp, ")"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot rename ", tmp, " into place"));
  }
  return absl::OkStatus();
}

}  // namespace yolopipe::cli
