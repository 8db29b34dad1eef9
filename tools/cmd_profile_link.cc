// yolopipe profile-link: send/recv time by message size between two endpoints, and the fitted
// latency + bandwidth line that `yolopipe plan --link FILE` prices transfers with.
//   mpirun -np 2 yolopipe profile-link -o link.pbtxt    ranks 0 and 1 over MPI (any hosts)
//   yolopipe profile-link -o link.pbtxt                  two CPU devices in this process
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/artifact_io.h"
#include "runtime/comm/link_profiler.h"
#include "runtime/comm/local_communicator.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/device.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {
namespace {

absl::StatusOr<std::vector<int64_t>> ParseSizes(const std::string& text) {
  std::vector<int64_t> sizes;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t scale = 1;
    std::string digits(part);
    if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) scale = 1 << 10;
    if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) scale = 1 << 20;
    if (scale != 1) digits.pop_back();
    int64_t v = 0;
    if (!absl::SimpleAtoi(digits, &v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--sizes: '", part, "' is not a byte count (e.g. 4096, 64K, 16M)"));
    }
    sizes.push_back(v * scale);
  }
  if (sizes.empty()) return absl::InvalidArgumentError("--sizes is empty");
  return sizes;
}

void PrintProfile(const proto::LinkProfile& p) {
  std::cout << "link: " << p.transport() << ", " << p.endpoints() << "\n";
  std::cout << absl::StrFormat("%12s %12s %12s %10s\n", "bytes", "min us", "median us", "GB/s");
  for (const proto::LinkPoint& pt : p.points()) {
    std::cout << absl::StrFormat("%12d %12.1f %12.1f %10.2f\n", pt.bytes(), pt.min_us(),
                                 pt.median_us(), pt.gbps());
  }
  std::cout << absl::StrFormat("fit: latency %.1f us, bandwidth %.2f GB/s%s\n", p.latency_us(),
                               p.bandwidth_gbps(), p.fit().empty() ? "" : " (fallback)");
  if (!p.fit().empty()) std::cerr << "warning: " << p.fit() << "\n";
}

}  // namespace

int ProfileLinkCommand(const std::vector<std::string>& args) {
  FlagSet flags("profile-link",
                "Measure send/recv time by message size between two endpoints (ping-pong) and "
                "fit latency + bandwidth for `yolopipe plan --link FILE`. Under mpirun: ranks 0 "
                "and 1 over MPI; otherwise two CPU devices of this process.");
  flags.AddString("sizes", "4K,64K,1M,4M,16M", "message sizes in bytes (K, M suffixes)");
  flags.AddInt("repeats", 20, "timed round trips per size");
  flags.AddInt("warmup", 3, "untimed round trips per size first");
  flags.AddString("o", "", "output link profile: .pbtxt, .json or .pb (same as --output)");
  flags.AddString("output", "", "output link profile: .pbtxt, .json or .pb");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  const std::string path = flags.IsSet("o") ? flags.GetString("o") : flags.GetString("output");
  if (!path.empty()) {
    if (auto f = ArtifactFormatForPath(path); !f.ok()) {
      std::cerr << "error: " << f.status().message() << "\n";
      return kExitUsage;
    }
  }
  LinkProfileOptions options;
  auto sizes = ParseSizes(flags.GetString("sizes"));
  if (!sizes.ok()) {
    std::cerr << "error: " << sizes.status().message() << "\n";
    return kExitUsage;
  }
  options.sizes = *sizes;
  options.repeats = static_cast<int>(flags.GetInt("repeats"));
  options.warmup = static_cast<int>(flags.GetInt("warmup"));
  if (absl::Status s = ValidateLinkProfileOptions(options); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return kExitUsage;
  }
  options.progress = [](const std::string& line) { std::cerr << line << "\n"; };

  absl::StatusOr<proto::LinkProfile> profile;
  if (MpiRuntime::LaunchedByMpi()) {
    auto mpi = MpiRuntime::Init(nullptr, nullptr);
    if (!mpi.ok()) return ReportError(mpi.status());
    if ((*mpi)->size() < 2) {
      return ReportError(absl::InvalidArgumentError("profile-link under MPI needs >= 2 ranks"));
    }
    auto comm = MpiCommunicator::Create(**mpi);
    if (!comm.ok()) return ReportError(comm.status());
    const int rank = (*mpi)->rank();
    if (rank <= 1) {
      if (rank != 0) options.progress = nullptr;
      profile = ProfileLink(**comm, 1 - rank, rank == 0, options);
      if (!profile.ok()) {
        MpiRuntime::AbortJob(absl::StrCat("error: rank ", rank, ": ", profile.status().message()),
                             kExitError);
      }
    }
    if (rank != 0) return kExitOk;  // rank 0 reports; other ranks only take part
    profile->set_transport("mpi");
    profile->set_endpoints(absl::StrCat("rank 0 <-> rank 1 of ", (*mpi)->size()));
  } else {
    auto fabric = LocalFabric::Create(2, LocalFabric::kRendezvous);
    if (!fabric.ok()) return ReportError(fabric.status());
    auto devices = ParseDevices("cpu:2");
    if (!devices.ok()) return ReportError(devices.status());
    absl::StatusOr<proto::LinkProfile> echo;
    std::thread other([&] {
      PinCurrentThread((*devices)[1]);
      echo = ProfileLink(*(*fabric)->endpoint(1), 0, false, options);
    });
    PinCurrentThread((*devices)[0]);
    profile = ProfileLink(*(*fabric)->endpoint(0), 1, true, options);
    if (!profile.ok()) (*fabric)->Abort(profile.status());
    other.join();
    if (!profile.ok()) return ReportError(profile.status());
    if (!echo.ok()) return ReportError(echo.status());
    profile->set_transport("local");
    profile->set_endpoints(absl::StrCat("cpu:0 <-> cpu:1 of this process (",
                                        (*devices)[0].ToString(), ", ",
                                        (*devices)[1].ToString(), ")"));
  }
  PrintProfile(*profile);
  if (!path.empty()) {
    if (absl::Status s = WriteArtifact(path, *profile); !s.ok()) return ReportError(s);
    std::cout << "wrote " << path << "\n";
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
