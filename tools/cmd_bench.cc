// yolopipe bench: img/s over repeats, excluding warm-up, as min and median.
#include <algorithm>
#include <chrono>
#include <iostream>

#include "absl/strings/str_format.h"
#include "runtime/device.h"
#include "runtime/session.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {

int BenchCommand(const std::vector<std::string>& args) {
  FlagSet flags("bench", "Time a model on one device: img/s over repeats (min and median).");
  AddModelFlags(flags);
  flags.AddString("device", "cpu", "cpu (all cores), cpu:K (the first of K CPU devices)");
  flags.AddInt("batch", 1, "images per batch");
  flags.AddInt("threads", 0, "threads (0: the device's share of the cores)");
  flags.AddInt("repeats", 10, "timed runs");
  flags.AddInt("warmup", 2, "untimed runs first");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;
  const int64_t repeats = flags.GetInt("repeats"), warmup = flags.GetInt("warmup");
  if (repeats < 1 || warmup < 0) {
    std::cerr << "error: --repeats must be >= 1 and --warmup >= 0\n";
    return kExitUsage;
  }
  auto devices = ParseDevices(flags.GetString("device"), static_cast<int>(flags.GetInt("threads")));
  if (!devices.ok()) {
    std::cerr << "error: " << devices.status().message() << "\n";
    return kExitUsage;
  }
  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());
  auto shape = InputShapeFor(*model, flags.GetInt("batch"), flags.GetInt("imgsz"));
  if (!shape.ok()) return ReportError(shape.status());
  SessionOptions options;
  options.device = (*devices)[0];
  auto session = Session::Create(*model, *shape, options);
  if (!session.ok()) return ReportError(session.status());
  const Tensor input = SyntheticInput(*shape, 1);

  std::cerr << absl::StrFormat("bench %s on %s, input %s: %d warm-up + %d timed runs\n",
                               model->source, options.device.ToString(), ShapeToString(*shape),
                               warmup, repeats);
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto out = (*session)->Run(input);
    const double t =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!out.ok()) return ReportError(out.status());
    if (i >= warmup) ms.push_back(t);
    std::cerr << absl::StrFormat("\r  run %d/%d: %.1f ms%s", i + 1, warmup + repeats, t,
                                 i < warmup ? " (warm-up)" : "           ");
  }
  std::cerr << "\n";
  std::sort(ms.begin(), ms.end());
  const double batch = static_cast<double>((*shape)[0]);
  const double best = ms.front(), median = ms[ms.size() / 2];
  std::cout << absl::StrFormat(
      "%s batch %d on %s: median %.2f ms/batch (%.2f img/s, %.2f ms/img), min %.2f ms/batch "
      "(%.2f img/s)\n",
      model->source, static_cast<int>(batch), options.device.ToString(), median,
      batch * 1000.0 / median, median / batch, best, batch * 1000.0 / best);
  return kExitOk;
}

}  // namespace yolopipe::cli
