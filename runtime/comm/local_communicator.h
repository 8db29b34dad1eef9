// In-process transport: N endpoints in one process (CPU stages as threads), connected by FIFO
// channels, one per ordered pair.
#ifndef YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/comm/communicator.h"

namespace yolopipe {

class LocalFabric;

// One endpoint of a LocalFabric. Semantics are those of Communicator; in addition, per the
// fabric's capacity:
// - capacity >= 1 (buffered): Send copies every tensor into buffers owned by the channel and
//   returns once the message is queued; it blocks while the channel to `peer` holds `capacity`
//   messages (backpressure). Recv copies them again into the receiver's tensors (two copies).
// - capacity 0 (rendezvous): Send queues a reference to the sender's tensors and blocks until the
//   receiver has copied them straight into its own buffers (one copy, as MPI/NCCL transports do).
//   A timed-out or aborted Send whose message the receiver has not started to take removes it
//   (nothing was sent); once the receiver has started copying, Send waits for the copy to finish.
//   Buffering is then the receiver's business (the pipeline double-buffers its receives).
// - Shared groups (TensorGroup::shared) are never copied in either mode: the receiver gets
//   references to the sender's tensors.
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
// Synchronisation uses std::mutex/std::condition_variable (pthreads), which ThreadSanitizer
// understands without an instrumented Abseil.
class LocalFabric final : public Fabric {
 public:
  static constexpr int kDefaultCapacity = 2;  // double buffering per pair
  static constexpr int kRendezvous = 0;

  // InvalidArgument unless num_endpoints >= 1 and capacity >= 0 (messages per channel; 0 is
  // rendezvous, see LocalCommunicator).
  static absl::StatusOr<std::unique_ptr<LocalFabric>> Create(int num_endpoints,
                                                             int capacity = kDefaultCapacity);
  LocalFabric(const LocalFabric&) = delete;
  LocalFabric& operator=(const LocalFabric&) = delete;

  int size() const override { return static_cast<int>(endpoints_.size()); }
  int capacity() const { return capacity_; }
  // Endpoint `rank` in [0, size()); owned by the fabric.
  LocalCommunicator* endpoint(int rank) override { return endpoints_[rank].get(); }

  // Same as endpoint(i)->Abort(reason) for any i.
  void Abort(const absl::Status& reason) override;
  // The status every call returns after an abort; OK while not aborted.
  absl::Status abort_status() const;

  // The most payload bytes that were ever queued in channel-owned buffers towards endpoint `dst`
  // at once (buffered mode; always 0 in rendezvous mode, where nothing is buffered). Measures the
  // receive-side memory the transport held for that endpoint.
  int64_t peak_queued_bytes(int dst) const override;

 private:
  friend class LocalCommunicator;

  // Rendezvous hand-over state, shared by the blocked sender and the receiver.
  struct Handshake {
    bool taken = false;  // the receiver dequeued the message and is copying
    bool done = false;   // the copy is finished; the sender may return
  };
  struct Message {
    MicroBatchId microbatch = 0;
    bool end_of_stream = false;
    bool shared = false;
    // Buffered: channel-owned copies. Rendezvous: the sender's own tensors (borrowed while the
    // sender is blocked).
    NamedTensors tensors;
    int64_t bytes = 0;
    std::shared_ptr<Handshake> handshake;  // rendezvous only
  };
  using Channel = std::deque<Message>;

  LocalFabric(int num_endpoints, int capacity);
  Channel& channel(int src, int dst) {  // requires mu_
    return channels_[static_cast<size_t>(src) * endpoints_.size() + dst];
  }
  // Waits on cv_ until `ready()` or `deadline`; returns ready(). Requires `lock` on mu_.
  template <typename Ready>
  bool WaitUntil(std::unique_lock<std::mutex>& lock, absl::Time deadline, Ready ready);

  const int capacity_;
  std::vector<std::unique_ptr<LocalCommunicator>> endpoints_;

  // One lock for all channels: messages are few and large (the copies happen outside the lock),
  // so contention is negligible, and Abort then wakes every waiter with one broadcast.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Channel> channels_;         // [src * size + dst], guarded by mu_
  std::vector<int64_t> queued_bytes_;     // [dst], guarded by mu_
  std::vector<int64_t> peak_queued_bytes_;  // [dst], guarded by mu_
  absl::Status abort_status_;             // guarded by mu_
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_LOCAL_COMMUNICATOR_H_
