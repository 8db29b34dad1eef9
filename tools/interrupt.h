// SIGINT and SIGTERM for the yolopipe CLI. InstallInterruptHandling (first thing in main, before
// any thread exists) blocks both signals in every thread and waits for them on a dedicated thread,
// so the reaction runs as ordinary code, never inside a signal handler.
//
// - While a GracefulInterruptScope is alive (a command that can stop cleanly: run --stream,
//   detect, stream), the first signal only sets InterruptRequested(); the command stops taking
//   input, finishes or cancels what is in flight, writes what it has (marked incomplete) and
//   returns InterruptExitCode(). A second signal exits at once.
// - Otherwise the process exits at once with 128+signal after saying so.
// Either way the temporary files of unfinished atomic writes (base/file_io.h) are removed, so no
// partial output is left under a real name.
#ifndef YOLOPIPE_TOOLS_INTERRUPT_H_
#define YOLOPIPE_TOOLS_INTERRUPT_H_

#include <string>

namespace yolopipe::cli {

void InstallInterruptHandling();

// True once SIGINT or SIGTERM arrived inside a GracefulInterruptScope.
bool InterruptRequested();
// "SIGINT" or "SIGTERM" (empty before any).
std::string InterruptSignalName();
// 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
int InterruptExitCode();

class GracefulInterruptScope {
 public:
  GracefulInterruptScope();
  ~GracefulInterruptScope();
  GracefulInterruptScope(const GracefulInterruptScope&) = delete;
  GracefulInterruptScope& operator=(const GracefulInterruptScope&) = delete;
};

// Replaces the immediate-exit message for SIGTERM (e.g. an MPI rank stopped by its launcher says
// which rank and stage it was). Such a SIGTERM always exits at once.
void SetTerminationMessage(const std::string& message);

}  // namespace yolopipe::cli

#endif  // YOLOPIPE_TOOLS_INTERRUPT_H_
