// Devices: what a stage runs on. `--devices cpu:4` is four CPU devices that split the machine's
// cores; `cuda:0,1` two GPUs.
#ifndef YOLOPIPE_RUNTIME_DEVICE_H_
#define YOLOPIPE_RUNTIME_DEVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace yolopipe {

enum class DeviceKind : int { kCpu = 0, kCuda = 1 };

// A device and its share of the machine. Value type.
struct DeviceSpec {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;        // CPU device number or CUDA ordinal
  int num_threads = 1;  // CPU devices: threads of its pool
  int first_core = 0;   // CPU devices: first core of its contiguous share

  std::string ToString() const;  // "cpu:0 (2 threads, cores 0-1)", "cuda:1"
};

// The CPUs this process may use (sched_getaffinity of the first caller, captured once so threads
// pinned later do not change it), in increasing order; never empty.
const std::vector<int>& AllowedCpus();

// Number of cores this process may use: AllowedCpus().size().
int AvailableCores();

// Best effort: pins the calling thread to a CPU device's cores: device cores [first_core,
// first_core + num_threads) are indices into AllowedCpus() (modulo its size), so `taskset -c 4-7`
// gives cpu:2 the CPUs 4-5 and 6-7. Failures (EINVAL, EPERM) are ignored:
// pinning is an optimisation, never a requirement. CUDA devices: no-op.
void PinCurrentThread(const DeviceSpec& device);

// Parses "cpu" (one device, all cores), "cpu:K" (K devices splitting the cores as evenly as
// possible; K may exceed the core count, then devices share cores), "cuda" (= cuda:0) and
// "cuda:0,1,..." (a GPU may be listed more than once: each listing is one device of the run, and
// stages on the same GPU share it). `threads_per_device` > 0 overrides the thread count of CPU devices.
absl::StatusOr<std::vector<DeviceSpec>> ParseDevices(const std::string& text,
                                                     int threads_per_device = 0);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DEVICE_H_
