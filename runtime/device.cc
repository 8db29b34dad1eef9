#include "runtime/device.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace yolopipe {

std::string DeviceSpec::ToString() const {
  if (kind == DeviceKind::kCuda) return absl::StrCat("cuda:", index);
  const int last = first_core + num_threads - 1;
  return absl::StrCat("cpu:", index, " (", num_threads, num_threads == 1 ? " thread" : " threads",
                      ", cores ", first_core, last > first_core ? absl::StrCat("-", last) : "",
                      ")");
}

const std::vector<int>& AllowedCpus() {
  // Captured once: a thread pinned later (a stage worker) must not shrink what devices map onto.
  static const std::vector<int>* cpus = [] {
    auto* list = new std::vector<int>();
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) list->push_back(c);
      }
    }
    if (list->empty()) {
      const long n = sysconf(_SC_NPROCESSORS_ONLN);
      for (int c = 0; c < std::max(1L, n); ++c) list->push_back(c);
    }
    return list;
  }();
  return *cpus;
}

int AvailableCores() { return static_cast<int>(AllowedCpus().size()); }

void PinCurrentThread(const DeviceSpec& device) {
  if (device.kind != DeviceKind::kCpu) return;
  const std::vector<int>& cpus = AllowedCpus();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < std::max(1, device.num_threads); ++c) {
    const int cpu = cpus[static_cast<size_t>(device.first_core + c) % cpus.size()];
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
  }
  (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

absl::StatusOr<std::vector<DeviceSpec>> ParseDevices(const std::string& text,
                                                     int threads_per_device) {
  const std::string spec(absl::StripAsciiWhitespace(text));
  auto usage = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad --devices '", text, "': ", why, " (expected cpu, cpu:K, cuda or cuda:0,1,...)"));
  };
  std::vector<DeviceSpec> devices;
  if (spec == "cpu" || absl::StartsWith(spec, "cpu:")) {
    int count = 1;
    if (spec != "cpu" && (!absl::SimpleAtoi(spec.substr(4), &count) || count < 1 || count > 256)) {
      return usage("K must be a whole number from 1 to 256");
    }
    const int cores = AvailableCores();
    int next_core = 0;
    for (int i = 0; i < count; ++i) {
      DeviceSpec d;
      d.kind = DeviceKind::kCpu;
      d.index = i;
      // Split cores as evenly as possible; when devices outnumber cores they share.
      const int share = cores >= count ? cores / count + (i < cores % count ? 1 : 0) : 1;
      d.first_core = cores >= count ? next_core : i % cores;
      next_core += share;
      d.num_threads = threads_per_device > 0 ? threads_per_device : share;
      devices.push_back(d);
    }
    return devices;
  }
  if (spec == "cuda" || absl::StartsWith(spec, "cuda:")) {
    const std::string list = spec == "cuda" ? "0" : spec.substr(5);
    for (absl::string_view part : absl::StrSplit(list, ',')) {
      int ordinal;
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &ordinal) || ordinal < 0) {
        return usage(absl::StrCat("'", part, "' is not a GPU ordinal"));
      }
      DeviceSpec d;
      d.kind = DeviceKind::kCuda;
      d.index = ordinal;
      devices.push_back(d);
    }
    return devices;
  }
  return usage("unknown device kind");
}

}  // namespace yolopipe
