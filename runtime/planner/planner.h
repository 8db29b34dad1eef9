// The pipeline planner: a pure function (no I/O, no clocks) from a Profile, the devices and the
// link between them to a Plan (DESIGN.md, "Planner objective").
//
// Cost model, per micro-batch of m images (times are the profile's median times at m, divided
// by the stage device's speed factor, or taken from the device's own profile):
//   compute(s) = sum of the stage's node times;
//   recv(s)    = sum over the tensors the stage reads that an earlier stage produced, of
//                bytes / bandwidth + latency (once per tensor, whichever stage sent it);
//   send(s)    = sum over the tensors the stage produces, times each distinct later stage that
//                reads them, of bytes / bandwidth + latency;
//   graph inputs come from the host and graph outputs go to the host: neither is priced (every
//   plan pays the same for them, so they cannot change which split is best);
//   stage time = max(compute, send, recv): transfers run on their own streams and overlap
//   compute; the bottleneck is the largest stage time, steady-state throughput = R * m /
//   bottleneck for R replicas;
//   memory(s)  = weights + buffers_in_flight x (the liveness peak of the tensors the stage
//                produces for one micro-batch + the tensors it receives or reads from the host)
//                + the largest workspace of its nodes. The liveness peak is the largest sum of
//                bytes alive when one of the stage's nodes runs: a produced tensor is alive from
//                its node until its last consumer in the stage, or until the stage ends when a
//                later stage or the host reads it. It must fit the device's memory;
//   latency    = sum over stages of compute + recv: one micro-batch alone, each stage receiving
//                all its inputs after its predecessor finishes (transfers from stages further
//                back are not overlapped, so this errs on the slow side);
//   a batch of B images per replica in M = ceil(B / m) micro-batches takes (M + K - 1) x
//   bottleneck under fill-and-drain; bubble = (K - 1) / (M + K - 1). A last, partial
//   micro-batch is priced as a full one.
// Hybrid plans run R identical K-stage pipelines (replica r on devices r*K .. r*K+K-1), each on
// ceil(B / R) images. One split serves all replicas; each stage position is priced on the
// slowest of its R devices and must fit the smallest memory among them.
//
// Search: for every micro-batch candidate the split is found by an exact branch and bound over
// the cut positions (see planner.cc for the bounds and the proof); the result is the true
// optimum of the cost model, never a greedy guess. Throughput objective: the smallest
// bottleneck for each m, then the m with the smallest batch time (ties: lower latency).
// Latency objective: the smallest latency with throughput >= min_throughput, over all m (ties:
// higher throughput).
#ifndef YOLOPIPE_RUNTIME_PLANNER_PLANNER_H_
#define YOLOPIPE_RUNTIME_PLANNER_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/planner/cut_model.h"
#include "runtime/planner/link_model.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

struct PlannerDevice {
  std::string name;           // "cuda:1"; "" -> "<profile device kind>:<index>"
  double speed_factor = 1.0;  // device time = profiled time / speed_factor (> 0)
  uint64_t memory_bytes = 0;  // 0 = no limit of its own (PlannerOptions::memory_limit_bytes)
  // The device's own profile of the same model (same node names), for unlike devices; not
  // owned, must outlive the PlanPipeline call. nullptr: the main profile.
  const proto::Profile* profile = nullptr;
};

struct PlannerOptions {
  int num_stages = 2;  // K
  int replicas = 1;    // R: hybrid plans run R replicas of the K-stage pipeline on R*K devices
  // K (or R*K) devices, replica-major; empty: R*K identical devices of the profile's kind.
  std::vector<PlannerDevice> devices;
  LinkModel link;                   // between any two devices
  uint64_t memory_limit_bytes = 0;  // per device, 0 = unlimited; a device's own limit, if
                                    // smaller, wins
  int batch = 1;                    // images per batch (all replicas together)
  // Micro-batch sizes to consider; each must be profiled and <= the batch of one replica.
  // Empty: every profiled size <= the batch of one replica.
  std::vector<int> microbatch_candidates;
  enum class Objective { kThroughput, kLatency } objective = Objective::kThroughput;
  // Latency objective: floor in images per second (all replicas); met within a relative 1e-9.
  double min_throughput = 0;
  int buffers_in_flight = 2;  // activation buffers per stage (double buffering)
  NodeOrder node_order = NodeOrder::kBest;
};

// The best plan under the cost model above. InvalidArgument for bad options (K < 1, K larger
// than the node count, a device count other than R*K, batch < R, an unprofiled micro-batch
// size, ...) or a malformed profile; ResourceExhausted when no split fits the memory limits
// (saying the smallest maximum per-device memory any split needs) or, in latency mode, none
// reaches the throughput floor (saying the best throughput).
absl::StatusOr<proto::Plan> PlanPipeline(const proto::Profile& profile,
                                         const PlannerOptions& options);

// The human-readable table: one row per stage (device, node range, compute, send and receive
// per micro-batch, memory), the transfers, micro-batching, bubble and the predictions.
std::string FormatPlanTable(const proto::Plan& plan);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PLANNER_PLANNER_H_
