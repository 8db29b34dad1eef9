// Link profiling: what moving one message of B bytes between two endpoints costs, by ping-pong over
// any Communicator (in-process, MPI, NCCL), and the line time = latency + B / bandwidth fitted to it
// (the planner's link model, runtime/planner/link_model.h).
#ifndef YOLOPIPE_RUNTIME_COMM_LINK_PROFILER_H_
#define YOLOPIPE_RUNTIME_COMM_LINK_PROFILER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/comm/communicator.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

struct LinkProfileOptions {
  std::vector<int64_t> sizes = {4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20};  // bytes, > 0
  int repeats = 20;  // timed round trips per size (>= 1)
  int warmup = 3;    // untimed round trips per size first (>= 0)
  absl::Duration timeout = absl::Seconds(60);  // every Send/Recv
  // Optional: called on the initiator after each size ("1 MiB: 0.21 ms, 4.9 GB/s").
  std::function<void(const std::string&)> progress;
};

// InvalidArgument naming the bad option.
absl::Status ValidateLinkProfileOptions(const LinkProfileOptions& options);

// One side of a ping-pong: what ProfileLink needs from a transport. Messages are float32 arrays
// of bytes / 4 elements; the ids of one direction increase, as Communicator requires.
class LinkEndpoint {
 public:
  virtual ~LinkEndpoint() = default;
  // Makes the messages `bytes` long. The initiator's outgoing message holds i % 251 at element i.
  virtual absl::Status Prepare(int64_t bytes, bool initiator) = 0;
  // The initiator sends its message; the other side sends back what it last received.
  virtual absl::Status Send(MicroBatchId id, absl::Duration timeout) = 0;
  virtual absl::Status Recv(MicroBatchId id, absl::Duration timeout) = 0;
  // The last received message's elements at `indices` (the initiator checks the echo).
  virtual absl::StatusOr<std::vector<float>> Received(const std::vector<int64_t>& indices) = 0;
};

// Ping-pong between `endpoint` and its peer: the initiator sends a float32 message of each size
// and the other side sends it back; one-way time = round trip / 2. Both sides call this with the
// same options (initiator true on one). The initiator checks the echo (DataLoss if it differs),
// and returns the profile (points, fitted line, repeats; `transport` and `endpoints` are the
// caller's to fill); the other side returns an empty profile. Errors: the endpoint's,
// InvalidArgument for bad options.
absl::StatusOr<proto::LinkProfile> ProfileLink(LinkEndpoint& endpoint, bool initiator,
                                               const LinkProfileOptions& options);

// The same over host tensors between `comm`'s endpoint and `peer` (in-process, MPI, or NCCL
// staged through host memory). Errors: the communicator's (naming peer and micro-batch).
absl::StatusOr<proto::LinkProfile> ProfileLink(Communicator& comm, int peer, bool initiator,
                                               const LinkProfileOptions& options);

// Least-squares fit of time_us = latency_us + bytes / (bandwidth_gbps * 1e3) over the points'
// median times. The latency is clamped at >= 0 (refitting the bandwidth through the origin then).
// When the times do not grow with the message size (a busy machine: a scheduler tick can cost a
// small message more than a large one's transfer), the line has no positive slope; the fit then
// falls back to a conservative bound, says so in `fit`, and still succeeds: latency = the smallest
// message's median time, bandwidth = the largest message's bytes over its median time (so neither
// end of the measurement is priced cheaper than it was measured). InvalidArgument for
// fewer than 2 distinct sizes or a largest message measured at no time.
absl::Status FitLink(proto::LinkProfile& profile);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_LINK_PROFILER_H_
