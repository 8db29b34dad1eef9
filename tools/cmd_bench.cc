// yolopipe bench: img/s over repeats, excluding warm-up, as min and median.
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>

#include "absl/strings/str_format.h"
#include "graph/prepare.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/device.h"
#include "runtime/session.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {

int BenchCommand(const std::vector<std::string>& args) {
  FlagSet flags("bench", "Time a model on one device: img/s over repeats (min and median).");
  AddModelFlags(flags);
  flags.AddString("device", "cpu",
                  "cpu (all cores), cpu:K (the first of K CPU devices), cuda:N (GPU N)");
  flags.AddInt("batch", 1, "images per batch");
  flags.AddInt("threads", 0, "threads (0: the device's share of the cores)");
  flags.AddInt("repeats", 10, "timed runs");
  flags.AddInt("warmup", 2, "untimed runs first");
  AddPrecisionFlag(flags);
  AddCudaGraphFlag(flags);
  flags.AddBool("cudnn_fusion", false,
                "cuda devices: fuse bias/SiLU/residual in cuDNN (graph API), not our kernel");
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
  const bool cuda = (*devices)[0].kind == DeviceKind::kCuda;
  const absl::StatusOr<DType> precision = ParsePrecisionFlag(flags);
  if (cuda && !precision.ok()) {
    std::cerr << "error: " << precision.status().message() << "\n";
    return kExitUsage;
  }
  if (cuda) {
    auto gpus = ListCudaDevices();  // "no CUDA devices: ..." without a GPU or CUDA support
    if (!gpus.ok()) return ReportError(gpus.status());
  }
  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());
  auto shape = InputShapeFor(*model, flags.GetInt("batch"), flags.GetInt("imgsz"));
  if (!shape.ok()) return ReportError(shape.status());
  SessionOptions options;
  options.device = (*devices)[0];
  std::unique_ptr<Session> session;
  std::unique_ptr<CudaExecutor> executor;
  std::function<absl::StatusOr<Tensor>(const Tensor&)> run;
  if (cuda) {
    auto prepared = PrepareForExecution(model->graph, *shape);
    if (!prepared.ok()) return ReportError(prepared.status());
    CudaExecutorOptions cuda_options;
    cuda_options.device = options.device.index;
    cuda_options.precision = *precision;
    cuda_options.use_cuda_graph = flags.GetBool("cuda_graph");
    if (flags.GetBool("cudnn_fusion")) {
      cuda_options.conv_implementation = ops::cuda::ConvImplementation::kGraphFusion;
    }
    auto created = CudaExecutor::Create(*prepared, cuda_options);
    if (!created.ok()) return ReportError(created.status());
    executor = std::move(*created);
    std::cerr << absl::StrFormat(
        "CUDA executor: %s, CUDA graph %s, %s epilogue, arena %s, cuDNN workspace %s\n",
        flags.GetString("precision"), cuda_options.use_cuda_graph ? "on" : "off",
        flags.GetBool("cudnn_fusion") ? "cuDNN-fused" : "kernel",
        FormatBytes(static_cast<double>(executor->plan().arena_bytes)),
        FormatBytes(static_cast<double>(executor->workspace_bytes())));
    run = [&executor](const Tensor& in) { return executor->Run(in); };
  } else {
    auto created = Session::Create(*model, *shape, options);
    if (!created.ok()) return ReportError(created.status());
    session = std::move(*created);
    run = [&session](const Tensor& in) { return session->Run(in); };
  }
  const Tensor input = SyntheticInput(*shape, 1);

  std::cerr << absl::StrFormat("bench %s on %s, input %s: %d warm-up + %d timed runs\n",
                               model->source, options.device.ToString(), ShapeToString(*shape),
                               warmup, repeats);
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto out = run(input);
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
