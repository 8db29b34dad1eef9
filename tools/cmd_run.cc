// yolopipe run: run a model on a batch and report throughput.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "runtime/artifact_io.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/device.h"
#include "runtime/npy.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/session.h"
#include "runtime/trace/trace.h"
#include "tools/cli_common.h"
#include "tools/interrupt.h"

namespace yolopipe::cli {
namespace {

absl::StatusOr<ops::Backend> ParseBackend(const std::string& name) {
  if (name == "cpu") return ops::Backend::kCpu;
  if (name == "reference") return ops::Backend::kReference;
  return absl::InvalidArgumentError(
      absl::StrCat("--kernels must be cpu or reference, got '", name, "'"));
}

// Streams `count` micro-batches through `p`, cutting them from `input` in turn (wrapping around),
// pushing from one thread and popping on this one. Returns the last output. SIGINT/SIGTERM stop the
// pushing; what is in flight still comes out and the stats cover it.
absl::StatusOr<Tensor> StreamRun(Pipeline& p, const Tensor& input, int64_t count,
                                 PipelineStats* stats, TraceWriter* trace) {
  YP_ASSIGN_OR_RETURN(std::unique_ptr<PipelineStream> stream, p.OpenStream(trace));
  const int64_t m = p.microbatch(), batch = input.dim(0);
  const size_t image_bytes = input.bytes() / static_cast<size_t>(batch);
  const int64_t per_pass = (batch + m - 1) / m;
  GracefulInterruptScope graceful;
  std::thread feeder([&] {
    for (int64_t j = 0; j < count && !InterruptRequested(); ++j) {
      const int64_t first = (j % per_pass) * m;
      Shape shape = input.shape();
      shape[0] = std::min<int64_t>(m, batch - first);
      Tensor part(input.buffer(), input.offset() + static_cast<size_t>(first) * image_bytes,
                  DType::kFloat32, shape);
      if (!stream->Push(part, /*share=*/true).ok()) break;  // the failure reaches Pop
    }
    stream->CloseInput();
  });
  absl::StatusOr<Tensor> last = absl::InternalError("nothing was streamed");
  ProgressLine progress("streaming", count);
  int64_t popped = 0;
  absl::Status error;
  while (popped < count) {
    absl::StatusOr<Tensor> out = stream->Pop();
    if (!out.ok()) {
      // The end of the stream before `count`: the feeder stopped for an interrupt.
      if (!(absl::IsOutOfRange(out.status()) && InterruptRequested())) error = out.status();
      break;
    }
    last = std::move(out);
    progress.Update(++popped);
  }
  progress.Done();
  if (!error.ok()) stream->Cancel(error);
  feeder.join();
  absl::Status finished = stream->Finish(stats);
  YP_RETURN_IF_ERROR(error);
  YP_RETURN_IF_ERROR(finished);
  if (popped == 0) {
    return absl::CancelledError(absl::StrCat("interrupted by ", InterruptSignalName(),
                                             " before any micro-batch came out"));
  }
  if (InterruptRequested()) {
    std::cerr << absl::StrFormat("interrupted by %s after %d of %d micro-batches; every one "
                                 "pushed came out\n",
                                 InterruptSignalName(), popped, count);
  }
  return last;
}

// Every mode through runtime/pipeline: micro-batches, stats and an optional trace. With `mpi`
// (launched by mpirun/srun) each rank runs one stage; rank 0 drives and reports.
int RunPipelined(const FlagSet& flags, const PipelineFlags& run_flags, const Model& model,
                 const Tensor& input, const MpiRuntime* mpi) {
  const Mode mode = run_flags.mode;
  const bool serving = mpi != nullptr && mpi->rank() != 0;
  proto::Plan plan;
  absl::StatusOr<PipelineOptions> options =
      PipelineOptionsFromFlags(flags, run_flags, /*default_microbatch=*/1, &plan);
  if (!options.ok()) return ReportError(options.status());
  options->mpi = mpi;
  auto pipeline = Pipeline::Create(model, input.dim(2), *options);
  if (!pipeline.ok()) return FailRank(mpi, pipeline.status());
  Pipeline& p = **pipeline;
  if (mpi != nullptr) ExplainTermination(*mpi, p);
  if (serving) {
    // One stream per stream rank 0 opens: its warm-up and timed runs, or its one open stream.
    const int64_t streams = flags.GetInt("stream") > 0
                                ? 1
                                : flags.GetInt("warmup") + flags.GetInt("repeats");
    for (int64_t i = 0; i < streams; ++i) {
      if (absl::Status s = p.Serve(); !s.ok()) return FailRank(mpi, s);
    }
    return kExitOk;
  }
  if (mpi != nullptr) {
    std::cout << "MPI: " << mpi->size() << " ranks, one stage each; rank 0 feeds and collects\n";
  }
  std::cout << "yolopipe run: " << model.source << ", mode " << ModeName(mode) << ", "
            << p.num_replicas() << " replica(s) x " << p.num_stages() << " stage(s), micro-batch "
            << p.microbatch() << ", input " << ShapeToString(input.shape()) << "\n";
  for (int r = 0; r < p.num_replicas(); ++r) {
    for (int s = 0; s < p.num_stages(); ++s) {
      const int d = p.topology().DeviceIndex(r, s);
      const std::string where = mpi == nullptr ? p.device(r, s).ToString()
                                : d == mpi->rank() ? absl::StrCat("MPI rank ", d, ", ",
                                                                  p.device(r, s).ToString())
                                                   : absl::StrCat("MPI rank ", d);
      std::cout << absl::StrFormat("  replica %d stage %d on %s: %d nodes (%s .. %s)\n", r, s,
                                   where, p.stage_nodes()[s].size(),
                                   p.stage_nodes()[s].front(), p.stage_nodes()[s].back());
    }
  }
  const int64_t repeats = flags.GetInt("repeats"), warmup = flags.GetInt("warmup");
  for (int64_t i = 0; i < warmup; ++i) {
    if (auto r = p.Run(input); !r.ok()) return FailRank(mpi, r.status());
  }
  std::unique_ptr<TraceWriter> trace;
  absl::StatusOr<Tensor> output;
  PipelineStats stats;
  const int64_t stream_mbs = flags.GetInt("stream");
  if (stream_mbs > 0) {
    // Open-stream mode: micro-batches cut from the input, cycled, pushed continuously.
    if (!flags.GetString("trace").empty()) trace = std::make_unique<TraceWriter>();
    output = StreamRun(p, input, stream_mbs, &stats, trace.get());
    if (!output.ok()) return FailRank(mpi, output.status());
  }
  for (int64_t i = 0; stream_mbs == 0 && i < repeats; ++i) {
    // The trace records the last timed run only.
    if (i == repeats - 1 && !flags.GetString("trace").empty()) trace = std::make_unique<TraceWriter>();
    output = p.Run(input, &stats, trace.get());
    if (!output.ok()) return FailRank(mpi, output.status());
  }
  std::cout << absl::StrFormat(
      "%d images in %.1f ms (%d micro-batches%s): %.2f img/s\n", stats.images,
      stats.seconds * 1e3, stats.num_microbatches, stream_mbs > 0 ? ", open stream" : "",
      stats.images_per_second);
  std::cout << absl::StrFormat("latency per micro-batch: p50 %.2f ms, p99 %.2f ms\n",
                               stats.latency_p50_ms, stats.latency_p99_ms);
  for (size_t i = 0; i < stats.stage_busy_fraction.size(); ++i) {
    if (mpi != nullptr && static_cast<int>(i) != mpi->rank()) {
      std::cout << absl::StrFormat("  replica %d stage %d on MPI rank %d\n", i / p.num_stages(),
                                   i % p.num_stages(), i);
      continue;
    }
    std::cout << absl::StrFormat("  replica %d stage %d busy %.1f%%, peak memory %s\n",
                                 i / p.num_stages(), i % p.num_stages(),
                                 100.0 * stats.stage_busy_fraction[i],
                                 FormatBytes(static_cast<double>(stats.stage_peak_bytes[i])));
  }
  std::cout << absl::StrFormat("bubble %.1f%%, bytes moved %s%s\n", 100.0 * stats.bubble_fraction,
                               FormatBytes(static_cast<double>(stats.bytes_moved)),
                               mpi != nullptr ? " (rank 0's stages only)" : "");
  std::cout << "output " << ShapeToString(output->shape()) << "\n";
  if (InterruptRequested()) {
    // The stream stopped early: its last output is not the one asked for.
    std::cout << "interrupted: --output and --trace not written\n";
    return InterruptExitCode();
  }
  if (trace != nullptr) {
    if (absl::Status s = trace->WriteFile(flags.GetString("trace")); !s.ok()) return ReportError(s);
    std::cout << "wrote " << flags.GetString("trace") << "\n";
  }
  if (!flags.GetString("output").empty()) {
    if (absl::Status s = WriteNpyFile(flags.GetString("output"), *output); !s.ok()) {
      return ReportError(s);
    }
    std::cout << "wrote " << flags.GetString("output") << "\n";
  }
  return kExitOk;
}

}  // namespace

int RunCommand(const std::vector<std::string>& args) {
  FlagSet flags("run", "Run a model on an input batch and report throughput and latency.");
  AddModelFlags(flags);
  flags.AddString("input", "", ".npy float32 (B, 3, H, W) input; default: synthetic");
  flags.AddInt("batch", 1, "synthetic input: images per batch");
  flags.AddInt("input_seed", 1, "synthetic input: seed of the pixel values");
  flags.AddString("output", "", "write the output (B, 4+nc, A) to this .npy file");
  AddPipelineFlags(flags, "images per micro-batch (0: the plan's, else 1)");
  flags.AddString("trace", "", "write a Chrome trace (Perfetto) of the last run to this file");
  flags.AddString("kernels", "cpu", "cpu (oneDNN) or reference (naive oracle kernels)");
  flags.AddInt("repeats", 1, "timed runs (the output is that of the last)");
  flags.AddInt("stream", 0,
               "open-stream mode: push this many micro-batches continuously (cut from the input "
               "in turn) instead of --repeats finite runs; reports steady-state figures");
  flags.AddInt("warmup", 0, "untimed runs before the timed ones");
  flags.AddInt("top_steps", 0, "print the N slowest steps of the last run");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  absl::StatusOr<PipelineFlags> run_flags = ParsePipelineFlags(flags);
  if (!run_flags.ok()) {
    std::cerr << "error: " << run_flags.status().message() << "\n";
    return kExitUsage;
  }
  // `single` on a CPU device without micro-batching or a trace keeps the plain Session path (and
  // --kernels, --top_steps); everything else, CUDA devices included, runs through
  // runtime/pipeline.
  const bool pipelined = run_flags->mode != Mode::kSingle || flags.GetInt("microbatch") > 0 ||
                         !flags.GetString("trace").empty() || flags.GetInt("stream") > 0 ||
                         run_flags->devices[0].kind == DeviceKind::kCuda;
  if (flags.GetInt("stream") < 0) {
    std::cerr << "error: --stream must be >= 0\n";
    return kExitUsage;
  }
  if (pipelined && (flags.GetString("kernels") != "cpu" || flags.GetInt("top_steps") > 0)) {
    std::cerr << "error: --kernels and --top_steps apply to plain --mode single only\n";
    return kExitUsage;
  }
  const int64_t repeats = flags.GetInt("repeats"), warmup = flags.GetInt("warmup");
  if (repeats < 1 || warmup < 0) {
    std::cerr << "error: --repeats must be >= 1 and --warmup >= 0\n";
    return kExitUsage;
  }
  auto backend = ParseBackend(flags.GetString("kernels"));
  if (!backend.ok()) {
    std::cerr << "error: " << backend.status().message() << "\n";
    return kExitUsage;
  }

  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());

  Tensor input;
  if (!flags.GetString("input").empty()) {
    if (flags.IsSet("batch")) {
      std::cerr << "error: give either --input or --batch, not both\n";
      return kExitUsage;
    }
    auto loaded = ReadNpyFile(flags.GetString("input"));
    if (!loaded.ok()) return ReportError(loaded.status());
    if (loaded->dtype() != DType::kFloat32) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat(flags.GetString("input"), ": input must be float32, got ",
                       DTypeName(loaded->dtype()))));
    }
    if (loaded->rank() != 4) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat(flags.GetString("input"), ": input must be (batch, 3, height, width), got ",
                       ShapeToString(loaded->shape()))));
    }
    input = *loaded;
  } else {
    auto shape = InputShapeFor(*model, flags.GetInt("batch"), flags.GetInt("imgsz"));
    if (!shape.ok()) return ReportError(shape.status());
    input = SyntheticInput(*shape, static_cast<uint64_t>(flags.GetInt("input_seed")));
  }

  if (pipelined) {
    // Started by mpirun/srun: one rank per stage (see PipelineOptions::mpi).
    std::unique_ptr<MpiRuntime> mpi;
    if (absl::Status s = InitMpiIfLaunched(&mpi); !s.ok()) return ReportError(s);
    return RunPipelined(flags, *run_flags, *model, input, mpi.get());
  }

  SessionOptions options;
  options.device = run_flags->devices[0];
  options.backend = *backend;
  options.record_step_times = flags.GetInt("top_steps") > 0;
  auto session = Session::Create(*model, input.shape(), options);
  if (!session.ok()) return ReportError(session.status());
  Executor& ex = (*session)->executor();
  std::cout << "yolopipe run: " << model->source << ", mode single on "
            << options.device.ToString() << ", " << ops::BackendName(*backend)
            << " kernels, input " << ShapeToString(input.shape()) << "\n";
  std::cout << "prepared " << ex.steps().size() << " steps; activations "
            << FormatBytes(ex.arena_bytes()) << " (" << FormatBytes(ex.unplanned_activation_bytes())
            << " without reuse), weights " << FormatBytes(ex.weight_bytes()) << "\n";

  for (int64_t i = 0; i < warmup; ++i) {
    if (auto r = (*session)->Run(input); !r.ok()) return ReportError(r.status());
  }
  std::vector<double> ms;
  absl::StatusOr<Tensor> output;
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    output = (*session)->Run(input);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count());
    if (!output.ok()) return ReportError(output.status());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const int64_t images = input.dim(0);
  std::cout << absl::StrFormat("%d images in %.1f ms (median of %d): %.2f img/s, %.1f ms/img\n",
                               images, median, ms.size(), images * 1000.0 / median,
                               median / images);
  std::cout << "output " << ShapeToString(output->shape()) << "\n";
  if (const int64_t top = flags.GetInt("top_steps"); top > 0) {
    std::vector<ExecutionStep> steps = ex.steps();
    double total = 0.0;
    for (const ExecutionStep& s : steps) total += s.last_ms;
    std::sort(steps.begin(), steps.end(),
              [](const ExecutionStep& a, const ExecutionStep& b) { return a.last_ms > b.last_ms; });
    std::cout << absl::StrFormat("slowest steps of the last run (%.1f ms in all):\n", total);
    for (int64_t i = 0; i < top && i < static_cast<int64_t>(steps.size()); ++i) {
      std::cout << absl::StrFormat("  %8.2f ms %5.1f%%  %-28s %-16s %s\n", steps[i].last_ms,
                                   100.0 * steps[i].last_ms / total, steps[i].name,
                                   steps[i].op_type,
                                   steps[i].view ? "view" : ops::BackendName(steps[i].backend));
    }
  }
  if (!flags.GetString("output").empty()) {
    if (absl::Status s = WriteNpyFile(flags.GetString("output"), *output); !s.ok()) {
      return ReportError(s);
    }
    std::cout << "wrote " << flags.GetString("output") << "\n";
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
