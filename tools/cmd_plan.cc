// yolopipe plan: choose the pipeline split points from a profile (runtime/planner), print the
// plan as a table and write it as .pbtxt, .pb or .json.
#include <cmath>
#include <iostream>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/artifact_io.h"
#include "runtime/device.h"
#include "runtime/planner/planner.h"
#include "runtime/proto/profile.pb.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {
namespace {

int UsageError(const std::string& message, const FlagSet& flags) {
  std::cerr << "error: " << message << "\n\n" << flags.Usage();
  return kExitUsage;
}

// "1,1,2" -> {1, 1, 2}; each a positive finite number.
absl::StatusOr<std::vector<double>> ParseSpeeds(const std::string& text) {
  std::vector<double> speeds;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    double v = 0;
    if (!absl::SimpleAtod(part, &v) || !std::isfinite(v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--speed expects positive numbers separated by commas, got '", text, "'"));
    }
    speeds.push_back(v);
  }
  return speeds;
}

}  // namespace

int PlanCommand(const std::vector<std::string>& args) {
  FlagSet flags("plan",
                "Choose pipeline split points from a profile: exact search for the best split "
                "into K stages (x R replicas), micro-batch size and predictions.");
  flags.AddString("profile", "", "profile written by 'yolopipe profile' (.pbtxt, .pb or .json)");
  flags.AddInt("stages", 2, "K: pipeline stages");
  flags.AddInt("replicas", 1, "R: replicas of the K-stage pipeline (hybrid: R*K devices)");
  flags.AddString("devices", "",
                  "the R*K devices, replica-major: cpu:N or cuda:0,1,... (default: R*K devices "
                  "of the profile's kind)");
  flags.AddString("speed", "",
                  "speed factors, device time = profiled time / factor: one per device, or one "
                  "per stage for every replica (e.g. 1,1,2)");
  flags.AddString("device_profiles", "",
                  "own profiles of unlike devices, comma-separated, one per device (an empty "
                  "entry uses --profile)");
  flags.AddString("link", "",
                  "a link profile from `yolopipe profile-link` (.pbtxt/.json/.pb), or "
                  "nvlink4, pcie5, pcie4, ib-ndr, loopback, nccl-socket, shared-memory, "
                  "custom:BW_GBPS:LAT_US or BW_GBPS,LAT_US (default: shared-memory for cpu "
                  "devices, nvlink4 for cuda)");
  flags.AddDouble("memory_gib", 0, "memory per device in GiB (0: unlimited)");
  flags.AddInt("batch", 1, "images per batch (all replicas together)");
  flags.AddInt("microbatch", 0, "images per micro-batch (0: the best profiled size)");
  flags.AddString("objective", "throughput",
                  "throughput (fastest steady state) or latency (lowest latency per micro-batch "
                  "meeting --min_throughput)");
  flags.AddDouble("min_throughput", 0, "latency objective: throughput floor in img/s");
  flags.AddInt("buffers_in_flight", 2, "activation buffers per stage the memory model assumes");
  flags.AddString("order", "best", "node order the cuts refer to: best, profile or min-live");
  flags.AddString("o", "", "output plan (.pbtxt, .pb or .json; same as --output)");
  flags.AddString("output", "", "output plan path");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  const std::string profile_path = flags.GetString("profile");
  if (profile_path.empty()) return UsageError("--profile is required", flags);
  const std::string output = flags.IsSet("o") ? flags.GetString("o") : flags.GetString("output");
  if (output.empty()) return UsageError("-o FILE (.pbtxt, .pb or .json) is required", flags);
  if (auto format = ArtifactFormatForPath(output); !format.ok()) {
    return UsageError(std::string(format.status().message()), flags);
  }

  PlannerOptions options;
  options.num_stages = static_cast<int>(flags.GetInt("stages"));
  options.replicas = static_cast<int>(flags.GetInt("replicas"));
  options.batch = static_cast<int>(flags.GetInt("batch"));
  options.buffers_in_flight = static_cast<int>(flags.GetInt("buffers_in_flight"));
  options.min_throughput = flags.GetDouble("min_throughput");
  if (options.num_stages < 1) return UsageError("--stages must be >= 1", flags);
  if (options.replicas < 1) return UsageError("--replicas must be >= 1", flags);
  if (options.batch < 1) return UsageError("--batch must be >= 1", flags);
  if (options.buffers_in_flight < 1) return UsageError("--buffers_in_flight must be >= 1", flags);
  if (flags.GetInt("microbatch") < 0) return UsageError("--microbatch must be >= 0", flags);
  if (flags.GetInt("microbatch") > 0) {
    options.microbatch_candidates = {static_cast<int>(flags.GetInt("microbatch"))};
  }
  const std::string objective = flags.GetString("objective");
  if (objective == "latency") {
    options.objective = PlannerOptions::Objective::kLatency;
  } else if (objective != "throughput") {
    return UsageError("--objective must be throughput or latency, got '" + objective + "'", flags);
  }
  if (!std::isfinite(options.min_throughput) || options.min_throughput < 0) {
    return UsageError("--min_throughput must be >= 0", flags);
  }
  const double memory_gib = flags.GetDouble("memory_gib");
  if (!std::isfinite(memory_gib) || memory_gib < 0) {
    return UsageError("--memory_gib must be >= 0", flags);
  }
  options.memory_limit_bytes = static_cast<uint64_t>(std::llround(memory_gib * (1 << 30)));
  const std::string order = flags.GetString("order");
  if (order == "profile") {
    options.node_order = NodeOrder::kProfile;
  } else if (order == "min-live") {
    options.node_order = NodeOrder::kMinLive;
  } else if (order != "best") {
    return UsageError("--order must be best, profile or min-live, got '" + order + "'", flags);
  }

  const int count = options.num_stages * options.replicas;
  std::vector<std::string> names;
  std::string kind;
  if (!flags.GetString("devices").empty()) {
    auto devices = ParseDevices(flags.GetString("devices"));
    if (!devices.ok()) return UsageError(std::string(devices.status().message()), flags);
    if (static_cast<int>(devices->size()) != count) {
      return UsageError(
          absl::StrCat("--devices gives ", devices->size(), " devices; ", options.replicas,
                       " replica(s) x ", options.num_stages, " stages need ", count),
          flags);
    }
    for (const DeviceSpec& d : *devices) {
      kind = d.kind == DeviceKind::kCuda ? "cuda" : "cpu";
      names.push_back(absl::StrCat(kind, ":", d.index));
    }
  }
  std::vector<double> speeds;
  if (!flags.GetString("speed").empty()) {
    auto parsed = ParseSpeeds(flags.GetString("speed"));
    if (!parsed.ok()) return UsageError(std::string(parsed.status().message()), flags);
    speeds = *parsed;
    if (static_cast<int>(speeds.size()) == options.num_stages && options.replicas > 1) {
      for (int r = 1; r < options.replicas; ++r) {
        for (int s = 0; s < options.num_stages; ++s) speeds.push_back(speeds[s]);
      }
    }
    if (static_cast<int>(speeds.size()) != count) {
      return UsageError(
          absl::StrCat("--speed gives ", parsed->size(), " factors; need ", count,
                       " (one per device) or ", options.num_stages, " (one per stage)"),
          flags);
    }
  }
  std::vector<std::string> device_profile_paths;
  if (!flags.GetString("device_profiles").empty()) {
    device_profile_paths = absl::StrSplit(flags.GetString("device_profiles"), ',');
    if (static_cast<int>(device_profile_paths.size()) != count) {
      return UsageError(absl::StrCat("--device_profiles gives ", device_profile_paths.size(),
                                     " entries; need ", count, " (one per device)"),
                        flags);
    }
  }

  proto::Profile profile;
  if (absl::Status s = ReadArtifact(profile_path, &profile); !s.ok()) return ReportError(s);
  if (kind.empty()) kind = profile.device().kind();

  std::string link_spec = flags.GetString("link");
  if (link_spec.empty()) link_spec = kind == "cpu" ? "shared-memory" : "nvlink4";
  if (ArtifactFormatForPath(link_spec).ok()) {
    // A measured link: `yolopipe profile-link -o FILE`.
    proto::LinkProfile measured;
    if (absl::Status s = ReadArtifact(link_spec, &measured); !s.ok()) return ReportError(s);
    auto link = LinkFromProfile(measured);
    if (!link.ok()) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat(link_spec, ": ", link.status().message())));
    }
    options.link = *link;
    if (!measured.fit().empty()) {
      std::cerr << "warning: " << link_spec << ": " << measured.fit() << "\n";
    }
  } else {
    auto link = ParseLink(link_spec);
    if (!link.ok()) return UsageError(std::string(link.status().message()), flags);
    options.link = *link;
  }

  std::vector<std::unique_ptr<proto::Profile>> device_profiles;
  if (!names.empty() || !speeds.empty() || !device_profile_paths.empty()) {
    options.devices.resize(count);
    for (int d = 0; d < count; ++d) {
      PlannerDevice& device = options.devices[d];
      if (!names.empty()) device.name = names[d];
      if (!speeds.empty()) device.speed_factor = speeds[d];
      if (!device_profile_paths.empty() && !device_profile_paths[d].empty()) {
        device_profiles.push_back(std::make_unique<proto::Profile>());
        if (absl::Status s = ReadArtifact(device_profile_paths[d], device_profiles.back().get());
            !s.ok()) {
          return ReportError(s);
        }
        device.profile = device_profiles.back().get();
      }
    }
  }

  auto plan = PlanPipeline(profile, options);
  if (!plan.ok()) return ReportError(plan.status());
  std::cout << FormatPlanTable(*plan);
  if (absl::Status s = WriteArtifact(output, *plan); !s.ok()) return ReportError(s);
  std::cout << "wrote " << output << "\n";
  return kExitOk;
}

}  // namespace yolopipe::cli
