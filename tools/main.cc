// yolopipe: command-line entry point. Flag parsing and printing only; the work is in the library.
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli_common.h"
#include "tools/interrupt.h"

namespace {

constexpr char kUsage[] =
    "usage: yolopipe <command> [flags]\n"
    "\n"
    "commands:\n"
    "  info     layers, output shapes, parameters and FLOPs of a model\n"
    "  run      run a model on an input batch (.npy or synthetic) and report img/s\n"
    "  bench    time a model over repeats: img/s min and median\n"
    "  export   write a model (e.g. built-in yolov8n) as an ONNX file\n"
    "  profile  measure every layer's cost on a device (-> profile.pbtxt/.json/.pb)\n"
    "  plan     choose pipeline split points from a profile (-> plan.pbtxt/.json/.pb)\n"
    "  simulate simulate a plan's schedule: throughput, latency, idle time, trace\n"
    "  compare  run every mode on one input: table, traces, SVG report\n"
    "  profile-link  send/recv time by message size (MPI ranks or CPU devices) -> plan --link\n"
    "  detect   detect objects in images: annotated PNGs and JSON, any mode\n"
    "  stream   detect objects in several videos / frame folders at once, per-stream JSON\n"
    "\n"
    "`yolopipe <command> --help` lists the command's flags.\n";

}  // namespace

namespace {

int Dispatch(int argc, char** argv) {
  using namespace yolopipe::cli;
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return kExitOk;
  }
  if (command == "info") return InfoCommand(args);
  if (command == "run") return RunCommand(args);
  if (command == "export") return ExportCommand(args);
  if (command == "bench") return BenchCommand(args);
  if (command == "profile") return ProfileCommand(args);
  if (command == "plan") return PlanCommand(args);
  if (command == "simulate") return SimulateCommand(args);
  if (command == "compare") return CompareCommand(args);
  if (command == "profile-link") return ProfileLinkCommand(args);
  if (command == "detect") return DetectCommand(args);
  if (command == "stream") return StreamCommand(args);
  std::cerr << "error: unknown command '" << command << "'\n\n" << kUsage;
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace yolopipe::cli;
  InstallInterruptHandling();  // before any thread starts, so that every thread inherits the mask
  // Every line reaches a log or a pipe as it is printed, not when a buffer fills or at exit.
  std::cout << std::unitbuf;
  const int code = Dispatch(argc, argv);
  // A command stopped early by SIGINT/SIGTERM exits 128+signal, like a shell would report it.
  return InterruptRequested() ? InterruptExitCode() : code;
}
