#include "tools/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <mutex>
#include <thread>

#include "base/file_io.h"

namespace yolopipe::cli {
namespace {

std::atomic<int> g_signal{0};          // the first signal received in a graceful scope
std::atomic<int> g_graceful_scopes{0};
std::mutex g_message_mu;
std::string* g_termination_message = nullptr;  // guarded by g_message_mu

[[noreturn]] void ExitNow(int signal, const std::string& message) {
  RemovePendingTemporaryFiles();
  std::cerr << message << std::flush;
  _exit(128 + signal);
}

void WaitForSignals(sigset_t set) {
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    {
      std::lock_guard<std::mutex> lock(g_message_mu);
      if (signal == SIGTERM && g_termination_message != nullptr) {
        ExitNow(signal, *g_termination_message);
      }
    }
    const char* name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    int expected = 0;
    if (g_graceful_scopes.load() > 0 && g_signal.compare_exchange_strong(expected, signal)) {
      std::cerr << "\nyolopipe: " << name
                << " received: finishing the work in flight, then stopping (send it again to "
                   "stop at once)\n"
                << std::flush;
      continue;
    }
    ExitNow(signal, std::string("\nyolopipe: interrupted by ") + name +
                        ": stopped at once; no output file was left half-written\n");
  }
}

}  // namespace

void InstallInterruptHandling() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A file size limit then fails the write (EFBIG: reported like a full disk) instead of killing
  // the process.
  signal(SIGXFSZ, SIG_IGN);
  std::thread(WaitForSignals, set).detach();
}

bool InterruptRequested() { return g_signal.load() != 0; }

std::string InterruptSignalName() {
  const int s = g_signal.load();
  return s == SIGINT ? "SIGINT" : s == SIGTERM ? "SIGTERM" : "";
}

int InterruptExitCode() { return 128 + g_signal.load(); }

GracefulInterruptScope::GracefulInterruptScope() { ++g_graceful_scopes; }
GracefulInterruptScope::~GracefulInterruptScope() { --g_graceful_scopes; }

void SetTerminationMessage(const std::string& message) {
  std::lock_guard<std::mutex> lock(g_message_mu);
  delete g_termination_message;
  g_termination_message = new std::string(message);
}

}  // namespace yolopipe::cli
