// Pieces every yolopipe command shares: model flags, error reporting, exit codes.
#ifndef YOLOPIPE_TOOLS_CLI_COMMON_H_
#define YOLOPIPE_TOOLS_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/file_io.h"  // WriteFileAtomically for every command
#include "runtime/comm/mpi_communicator.h"
#include "runtime/detect/nms.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/pipeline/pipeline.h"
#include "runtime/proto/plan.pb.h"
#include "tools/flags.h"

namespace yolopipe::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Adds --model, --nc, --seed and --imgsz.
void AddModelFlags(FlagSet& flags);
absl::StatusOr<Model> LoadModelFromFlags(const FlagSet& flags);

// Parses args; on --help prints usage and returns kExitOk; on a usage error prints
// "error: ..." and the usage and returns kExitUsage; otherwise returns -1 (continue).
int ParseOrExit(FlagSet& flags, const std::vector<std::string>& args);

// Prints "error: <message>" on stderr and returns kExitError (1). Usage errors (bad flags) are
// reported by ParseOrExit or by the command itself with kExitUsage (2).
int ReportError(const absl::Status& status);

// "12.3 MiB"
std::string FormatBytes(double bytes);
// "3,151,904"
std::string WithThousands(int64_t n);

// --precision for CUDA devices (bench, compare, profile and the pipeline commands).
void AddPrecisionFlag(FlagSet& flags);
// kFloat16 or kFloat32; InvalidArgument("--precision must be fp16 or fp32, got 'X'") otherwise.
absl::StatusOr<DType> ParsePrecisionFlag(const FlagSet& flags);
// --cuda_graph (bench, compare and the pipeline commands; default on) and --nccl (compare and the
// pipeline commands; default off).
void AddCudaGraphFlag(FlagSet& flags);
void AddNcclFlag(FlagSet& flags);

// --- Running a model through runtime/pipeline (run, detect, stream) ---------------------------
// --devices, --mode, --stages, --replicas, --plan, --microbatch (with `microbatch_help`), --threads.
void AddPipelineFlags(FlagSet& flags, const std::string& microbatch_help);
struct PipelineFlags {
  Mode mode = Mode::kSingle;
  std::vector<DeviceSpec> devices;
  DType cuda_precision = DType::kFloat16;
};
// Usage errors (InvalidArgument): a bad --mode or --devices, --microbatch or --stages < 0,
// --replicas < 1. The message is ready to print after "error: ".
absl::StatusOr<PipelineFlags> ParsePipelineFlags(const FlagSet& flags);
// PipelineOptions from the flags. --plan is read into *plan, which must outlive the options; with
// a plan, hybrid takes the plan's replicas unless --replicas is set. --microbatch 0 means the
// plan's micro-batch, or `default_microbatch` without a plan. Errors: the plan reader's.
absl::StatusOr<PipelineOptions> PipelineOptionsFromFlags(const FlagSet& flags,
                                                         const PipelineFlags& parsed,
                                                         int default_microbatch,
                                                         proto::Plan* plan);

// --- Several processes (run, detect, stream under mpirun/srun) ---------------------------------
// Started by mpirun/srun: initialises MPI into *mpi (and, should the launcher end the job, this
// rank then says so: "error: rank N: terminated by the MPI launcher ..."); otherwise leaves it null. One rank per stage
// (PipelineOptions::mpi); rank 0 reads the inputs, drives the stream and writes every output, the
// other ranks only serve their stages.
absl::Status InitMpiIfLaunched(std::unique_ptr<MpiRuntime>* mpi);
// When the launcher ends the job because another rank failed or died it sends this rank SIGTERM:
// from now on that prints which rank and stage is stopping, so the log names every rank's part.
void ExplainTermination(const MpiRuntime& mpi, const Pipeline& p);
// Under MPI a failure on any rank ends the whole job (MPI_Abort, never returns) after printing
// "error: rank N: reason"; without MPI the usual ReportError.
int FailRank(const MpiRuntime* mpi, const absl::Status& status);
// detect and stream: one pipeline stream takes every input.
struct OpenedStream {
  std::unique_ptr<Pipeline> pipeline;
  std::unique_ptr<PipelineStream> stream;  // destroyed first
};
// Makes the pipeline for `model` at `imgsz` on every rank (options.mpi = mpi). Rank 0, or the only
// process, gets it with its stream open in *out, and -1 is returned. Ranks other than 0 serve
// their stages of that stream and return their exit status. Any failure ends the job (FailRank).
// `inputs` names what rank 0 reads, for the MPI banner ("images", "sources").
int OpenOneStream(const Model& model, int64_t imgsz, PipelineOptions options,
                  const MpiRuntime* mpi, const std::string& inputs, OpenedStream* out);

// --- Detection output (detect, stream) -----------------------------------------------------
// --conf, --iou, --max_det and --max_candidates; `per` names the unit in the help ("image").
void AddPostprocessFlags(FlagSet& flags, const std::string& per);
// Usage errors (InvalidArgument) for out-of-range values, ready to print after "error: ".
absl::StatusOr<PostprocessOptions> PostprocessFromFlags(const FlagSet& flags);

// FlagSet keeps one value per flag: a flag that may be repeated (--image, --source) is taken out
// of `args` here, in order, as `--name VALUE` or `--name=VALUE`. The other arguments go to *rest.
// False (with *error set) for a trailing --name without a value.
bool ExtractRepeatedFlag(const std::vector<std::string>& args, const std::string& name,
                         std::vector<std::string>* rest, std::vector<std::string>* values,
                         std::string* error);

// JSON text for the commands' outputs: a quoted, escaped string; a number with `decimals`
// decimals ("null" for NaN or infinity).
std::string JsonString(const std::string& s);
std::string JsonNumber(double v, int decimals);
// A JSON array of detections, one per line indented by four spaces, closed on its own line indented
// by two: [{"box": [x1, y1, x2, y2], "score": s, "class_id": c, "class_name": "name"}, ...]. Class
// names come from `class_names` where the id is in range, else the id as text.
std::string DetectionsJsonArray(const std::vector<Detection>& detections,
                                const std::vector<std::string>& class_names);

// A progress line on stderr for long work: "label 1234/10000 (12%), 56.7/s". On a terminal it
// redraws in place at most 5 times a second; otherwise it prints a line at every 10%. Not
// thread-safe (one thread updates it).
class ProgressLine {
 public:
  ProgressLine(std::string label, int64_t total);
  void Update(int64_t done);
  void Done();  // prints the final state once

 private:
  void Print(int64_t done, bool final);
  std::string label_;
  int64_t total_;
  bool tty_;
  double start_s_;
  double last_print_s_ = -1;
  int last_decile_ = -1;
  int64_t done_ = 0;
  bool finished_ = false;
};

// Commands (one file each).
int InfoCommand(const std::vector<std::string>& args);
int RunCommand(const std::vector<std::string>& args);
int ExportCommand(const std::vector<std::string>& args);
int BenchCommand(const std::vector<std::string>& args);
int ProfileCommand(const std::vector<std::string>& args);
int PlanCommand(const std::vector<std::string>& args);
int SimulateCommand(const std::vector<std::string>& args);
int CompareCommand(const std::vector<std::string>& args);
int ProfileLinkCommand(const std::vector<std::string>& args);
int DetectCommand(const std::vector<std::string>& args);
int StreamCommand(const std::vector<std::string>& args);

}  // namespace yolopipe::cli

#endif  // YOLOPIPE_TOOLS_CLI_COMMON_H_
