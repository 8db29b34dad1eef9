// yolopipe profile-link: send/recv time by message size between two endpoints, and the fitted
// latency + bandwidth line that `yolopipe plan --link FILE` prices transfers with.
//   mpirun -np 2 yolopipe profile-link -o link.pbtxt    ranks 0 and 1 over MPI (any hosts)
//   yolopipe profile-link -o link.pbtxt                  two CPU devices in this process
//   mpirun -np 2 yolopipe profile-link --transport nccl  ranks 0 and 1 over NCCL, GPU buffers
//   (or, without MPI, each rank started with YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK and
//   YOLOPIPE_WORLD_SIZE: ranks meet through that directory)
#include <cstdlib>
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
#include "runtime/comm/bootstrap.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/cuda/cuda_probe.h"
#include "runtime/cuda/nccl_communicator.h"
#include "runtime/cuda/nccl_link.h"
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

// --transport nccl: ranks 0 and 1 of an NCCL communicator over every rank ping-pong device
// buffers; the other ranks only take part in creating it. Returns the initiator's profile on
// rank 0, an empty profile elsewhere; a failure on any rank fails every rank.
absl::StatusOr<proto::LinkProfile> ProfileNccl(const std::string& device_flag,
                                               const LinkProfileOptions& options) {
  std::unique_ptr<MpiRuntime> mpi;
  std::unique_ptr<FileBootstrap> file;
  const Bootstrap* bootstrap = nullptr;
  int local_rank = 0;
  if (MpiRuntime::LaunchedByMpi()) {
    auto init = MpiRuntime::Init(nullptr, nullptr);
    if (!init.ok()) return init.status();
    mpi = *std::move(init);
    bootstrap = mpi.get();
    local_rank = mpi->local_rank();
  } else {
    auto from_env = FileBootstrap::FromEnvironment(absl::Seconds(120));
    if (absl::IsNotFound(from_env.status())) {
      return absl::InvalidArgumentError(
          "--transport nccl needs its ranks: start them with mpirun, or each with "
          "YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK and YOLOPIPE_WORLD_SIZE set");
    }
    if (!from_env.ok()) return from_env.status();
    file = *std::move(from_env);
    bootstrap = file.get();
    const char* local = std::getenv("YOLOPIPE_LOCAL_RANK");
    local_rank = local != nullptr ? std::atoi(local) : file->rank();
  }
  if (bootstrap->size() < 2) {
    return absl::InvalidArgumentError("profile-link over NCCL needs >= 2 ranks");
  }
  // The device is checked before the collective creation, so a machine without a GPU fails at
  // once instead of waiting for the other ranks.
  auto gpus = ListCudaDevices();
  if (!gpus.ok()) return gpus.status();
  int device = local_rank % static_cast<int>(gpus->size());
  if (!device_flag.empty()) {
    auto parsed = ParseDevices(device_flag);
    if (!parsed.ok()) return parsed.status();
    if (parsed->size() != 1 || (*parsed)[0].kind != DeviceKind::kCuda ||
        (*parsed)[0].index >= static_cast<int>(gpus->size())) {
      return absl::InvalidArgumentError(absl::StrCat("--device must be one visible GPU cuda:N (",
                                                     gpus->size(), " visible), got '",
                                                     device_flag, "'"));
    }
    device = (*parsed)[0].index;
  }
  auto fabric = NcclFabric::Create(*bootstrap, device);
  if (!fabric.ok()) return fabric.status();
  const int rank = bootstrap->rank();
  absl::StatusOr<proto::LinkProfile> profile = proto::LinkProfile();
  if (rank <= 1) {
    auto endpoint = MakeNcclDeviceLinkEndpoint((*fabric)->endpoint(rank), 1 - rank);
    profile = endpoint.ok() ? ProfileLink(**endpoint, rank == 0, options) : endpoint.status();
    if (!profile.ok()) (*fabric)->Abort(profile.status());
  }
  // Every rank learns whether the two that measured succeeded, then all leave together.
  auto worst = bootstrap->MaxOverRanks(profile.ok() ? 0 : 1);
  if (!profile.ok()) return profile.status();
  if (!worst.ok()) return worst.status();
  if (*worst != 0) return absl::AbortedError("the other measuring rank failed (see its error)");
  profile->set_transport("nccl");
  profile->set_endpoints(absl::StrCat("rank 0 (cuda:", device, ") <-> rank 1 of ",
                                      bootstrap->size(), ", device buffers"));
  return profile;
}

}  // namespace

int ProfileLinkCommand(const std::vector<std::string>& args) {
  FlagSet flags("profile-link",
                "Measure send/recv time by message size between two endpoints (ping-pong) and "
                "fit latency + bandwidth for `yolopipe plan --link FILE`. Under mpirun: ranks 0 "
                "and 1 over MPI; otherwise two CPU devices of this process. --transport nccl: "
                "ranks 0 and 1 over NCCL with GPU buffers (mpirun, or ranks started with "
                "YOLOPIPE_BOOTSTRAP_DIR, YOLOPIPE_RANK, YOLOPIPE_WORLD_SIZE).");
  flags.AddString("transport", "", "mpi (under mpirun), local (otherwise) or nccl");
  flags.AddString("device", "", "--transport nccl: this rank's GPU cuda:N (default: local rank "
                                "modulo the visible GPUs)");
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
  std::string transport = flags.GetString("transport");
  if (transport.empty()) transport = MpiRuntime::LaunchedByMpi() ? "mpi" : "local";
  if (transport != "mpi" && transport != "local" && transport != "nccl") {
    std::cerr << "error: --transport must be mpi, local or nccl, got '" << transport << "'\n";
    return kExitUsage;
  }
  if (transport == "mpi" && !MpiRuntime::LaunchedByMpi()) {
    std::cerr << "error: --transport mpi needs the ranks started by mpirun or srun\n";
    return kExitUsage;
  }
  if (transport == "local" && MpiRuntime::LaunchedByMpi()) {
    std::cerr << "error: --transport local measures two devices of one process; run it "
                 "without mpirun\n";
    return kExitUsage;
  }
  if (!flags.GetString("device").empty() && transport != "nccl") {
    std::cerr << "error: --device applies to --transport nccl\n";
    return kExitUsage;
  }

  absl::StatusOr<proto::LinkProfile> profile;
  if (transport == "nccl") {
    profile = ProfileNccl(flags.GetString("device"), options);
    if (!profile.ok()) {
      if (absl::IsInvalidArgument(profile.status())) {
        std::cerr << "error: " << profile.status().message() << "\n";
        return kExitUsage;
      }
      if (MpiRuntime::LaunchedByMpi()) {
        MpiRuntime::AbortJob(absl::StrCat("error: ", profile.status().message()), kExitError);
      }
      return ReportError(profile.status());
    }
    if (profile->points_size() == 0) return kExitOk;  // not rank 0: only took part
  } else if (MpiRuntime::LaunchedByMpi()) {
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
