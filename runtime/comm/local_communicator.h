// In-process transport: N endpoints in one process (CPU stages as threads), connected by bounded
// channels that hold copies of the tensors.
#ifndef YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/comm/communicator.h"

namespace yolopipe {

class LocalFabric;

// One endpoint of a LocalFabric. Semantics are those of Communicator; in addition:
// - Send copies every tensor into buffers owned by the channel before it returns, so "the sender
// may
//   reuse its buffers" holds as soon as Send returns, and Recv copies them again into the
//   receiver's tensors (two copies per message: a real copy into the receiver's buffer).
// - Each ordered pair (src, dst) has its own FIFO channel of `capacity` messages; Send blocks while
//   the channel to `peer` is full (backpressure).
// Owned by its LocalFabric, which must outlive every call on it.
class LocalCommunicator final : public Communicator {
 public:
  LocalCommunicator(const LocalCommunicator&) = delete;
  LocalCommunicator& operator=(const LocalCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override;
  absl::Status Send(const TensorGroup& group, int peer, absl::Duration timeout) override;
  absl::Status Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                    absl::Duration timeout) override;
  void Abort(const absl::Status& reason) override;
  int64_t bytes_sent() const override { return bytes_sent_.load(std::memory_order_relaxed); }
  int64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }

 private:
  friend class LocalFabric;
  LocalCommunicator(LocalFabric* fabric, int rank) : fabric_(fabric), rank_(rank) {}

  absl::Status CheckPeer(int peer, const char* what) const;

  LocalFabric* const fabric_;
  const int rank_;
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
};

// The in-process "network": N endpoints and the N*(N-1) channels between them. Thread-safe.
class LocalFabric {
 public:
  static constexpr int kDefaultCapacity = 2;  // double buffering per pair

  // InvalidArgument unless num_endpoints >= 1 and capacity >= 1 (messages per channel).
  static absl::StatusOr<std::unique_ptr<LocalFabric>> Create(int num_endpoints,
                                                             int capacity = kDefaultCapacity);
  LocalFabric(const LocalFabric&) = delete;
  LocalFabric& operator=(const LocalFabric&) = delete;

  int size() const { return static_cast<int>(endpoints_.size()); }
  int capacity() const { return capacity_; }
  // Endpoint `rank` in [0, size()); owned by the fabric.
  LocalCommunicator* endpoint(int rank) { return endpoints_[rank].get(); }

  // Same as endpoint(i)->Abort(reason) for any i.
  void Abort(const absl::Status& reason);
  // The status every call returns after an abort; OK while not aborted.
  absl::Status abort_status() const;

 private:
  friend class LocalCommunicator;

  struct Message {
    MicroBatchId microbatch = 0;
    NamedTensors tensors;  // channel-owned copies
    int64_t bytes = 0;
  };
  using Channel = std::deque<Message>;

  LocalFabric(int num_endpoints, int capacity);
  Channel& channel(int src, int dst) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return channels_[static_cast<size_t>(src) * endpoints_.size() + dst];
  }

  const int capacity_;
  std::vector<std::unique_ptr<LocalCommunicator>> endpoints_;

  // One lock for all channels: messages are few and large (the copies happen outside the lock),
  // so contention is negligible, and Abort then wakes every waiter with one state change.
  mutable absl::Mutex mu_;
  std::vector<Channel> channels_ ABSL_GUARDED_BY(mu_);  // [src * size + dst]
  absl::Status abort_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_
