#include "runtime/planner/link_model.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace yolopipe {
namespace {

// Latencies are per message, as a transfer sees them end to end (launch, protocol, wake-up),
// not the wire's: NCCL point-to-point over NVLink costs a few microseconds, over PCIe somewhat
// more; InfiniBand with GPUDirect RDMA is in the NVLink range; NCCL's socket transport goes
// through the kernel's TCP stack (tens of microseconds); an in-process channel is a memcpy at
// memory bandwidth plus waking the receiving thread.
struct Preset {
  const char* name;
  double bandwidth_gbps;
  double latency_us;
};
constexpr Preset kPresets[] = {
    {"nvlink4", 450, 5}, {"pcie5", 64, 10},      {"pcie4", 32, 10},         {"ib-ndr", 50, 5},
    {"loopback", 1, 50}, {"nccl-socket", 1, 50}, {"shared-memory", 10, 10},
};

}  // namespace

std::vector<std::string> LinkPresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

absl::StatusOr<LinkModel> LinkPreset(const std::string& name) {
  for (const Preset& p : kPresets) {
    if (name == p.name) return LinkModel{p.name, p.bandwidth_gbps, p.latency_us};
  }
  return absl::NotFoundError(absl::StrCat("unknown link '", name,
                                          "' (presets: ", absl::StrJoin(LinkPresetNames(), ", "),
                                          "; or custom:BW_GBPS:LAT_US, or BW_GBPS,LAT_US)"));
}

absl::StatusOr<LinkModel> ParseLink(const std::string& spec) {
  absl::string_view body = spec;
  std::vector<std::string> parts;
  if (absl::ConsumePrefix(&body, "custom:")) {
    parts = absl::StrSplit(body, ':');
  } else if (spec.find(',') != std::string::npos) {
    parts = absl::StrSplit(spec, ',');
  } else {
    absl::StatusOr<LinkModel> preset = LinkPreset(spec);
    if (!preset.ok()) return absl::InvalidArgumentError(preset.status().message());
    return preset;
  }
  double bandwidth = 0, latency = 0;
  if (parts.size() != 2 || !absl::SimpleAtod(parts[0], &bandwidth) ||
      !absl::SimpleAtod(parts[1], &latency)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad link '", spec, "': expected a preset, custom:BW_GBPS:LAT_US or BW_GBPS,LAT_US"));
  }
  if (!std::isfinite(bandwidth) || bandwidth <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad link '", spec, "': bandwidth must be > 0 GB/s"));
  }
  if (!std::isfinite(latency) || latency < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad link '", spec, "': latency must be >= 0 us"));
  }
  return LinkModel{"custom", bandwidth, latency};
}

std::string LinkToString(const LinkModel& link) {
  return absl::StrFormat("%s (%g GB/s, %g us)", link.name, link.bandwidth_gbps, link.latency_us);
}

absl::StatusOr<LinkModel> LinkFromProfile(const proto::LinkProfile& profile) {
  if (!(profile.bandwidth_gbps() > 0) || !std::isfinite(profile.bandwidth_gbps()) ||
      !(profile.latency_us() >= 0) || !std::isfinite(profile.latency_us())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the link profile has no usable fit (bandwidth ", profile.bandwidth_gbps(),
        " GB/s, latency ", profile.latency_us(), " us): was it written by yolopipe profile-link?"));
  }
  LinkModel link;
  link.name = absl::StrCat("measured (", profile.transport().empty() ? "unknown"
                                                                     : profile.transport(), ")");
  link.bandwidth_gbps = profile.bandwidth_gbps();
  link.latency_us = profile.latency_us();
  return link;
}

}  // namespace yolopipe
