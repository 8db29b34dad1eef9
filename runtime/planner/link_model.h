// The link model the planner prices transfers with: one link type between every two devices,
// with a bandwidth (one direction) and a per-message latency. A transfer of B bytes takes
// B / bandwidth + latency.
#ifndef YOLOPIPE_RUNTIME_PLANNER_LINK_MODEL_H_
#define YOLOPIPE_RUNTIME_PLANNER_LINK_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

struct LinkModel {
  std::string name = "nvlink4";  // preset name, or "custom"
  double bandwidth_gbps = 450;   // gigabytes (1e9 bytes) per second, one direction
  double latency_us = 5;         // per message

  // Milliseconds to move `bytes` in one message.
  double TransferMs(double bytes) const {
    return bytes / (bandwidth_gbps * 1e6) + latency_us * 1e-3;
  }
};

// Named presets (bandwidths from shared/BASELINES.md; latencies are assumptions, see
// link_model.cc): nvlink4 450 GB/s 5 us, pcie5 64 GB/s 10 us, pcie4 32 GB/s 10 us, ib-ndr 50 GB/s
// 5 us, loopback and nccl-socket 1 GB/s 50 us (NCCL's socket transport), shared-memory 10 GB/s
// 10 us (CPU devices in one process: a memcpy plus a thread wake-up). NotFound for other names,
// listing the presets.
absl::StatusOr<LinkModel> LinkPreset(const std::string& name);
std::vector<std::string> LinkPresetNames();

// "nvlink4" (a preset), "custom:BW_GBPS:LAT_US" or "BW_GBPS,LAT_US". The bandwidth must be a
// positive finite number and the latency a finite number >= 0; InvalidArgument otherwise.
absl::StatusOr<LinkModel> ParseLink(const std::string& spec);

// The fitted line of a measured link (`yolopipe profile-link`): name "measured (<transport>)".
// InvalidArgument when the profile has no positive bandwidth or a negative latency.
absl::StatusOr<LinkModel> LinkFromProfile(const proto::LinkProfile& profile);

// "nvlink4 (450 GB/s, 5 us)".
std::string LinkToString(const LinkModel& link);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PLANNER_LINK_MODEL_H_
