#include "runtime/comm/local_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

// Checks that `sent` carries exactly the names of `into` with matching dtype, shape and layout.
absl::Status CheckMatches(const NamedTensors& sent_tensors, const NamedTensors& into,
                          const std::string& where) {
  absl::flat_hash_map<std::string, const Tensor*> sent;
  for (const auto& [name, tensor] : sent_tensors) sent[name] = &tensor;
  for (const auto& [name, tensor] : into) {
    auto it = sent.find(name);
    if (it == sent.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", name, "' expected but not sent"));
    }
    const Tensor& got = *it->second;
    if (got.dtype() != tensor.dtype() || got.shape() != tensor.shape() ||
        got.layout() != tensor.layout()) {
      return absl::FailedPreconditionError(absl::StrCat(where, ": tensor '", name, "': expected ",
                                                        tensor.DebugString(), ", got ",
                                                        got.DebugString()));
    }
  }
  if (into.size() != sent_tensors.size()) {
    absl::flat_hash_set<std::string> wanted;
    for (const auto& entry : into) wanted.insert(entry.first);
    for (const auto& [name, tensor] : sent_tensors) {
      if (!wanted.contains(name)) {
        return absl::FailedPreconditionError(absl::StrCat(
            where, ": tensor '", name, "' (", tensor.DebugString(), ") sent but not expected"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LocalFabric

absl::StatusOr<std::unique_ptr<LocalFabric>> LocalFabric::Create(int num_endpoints, int capacity) {
  if (num_endpoints < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LocalFabric needs at least 1 endpoint, got ", num_endpoints));
  }
  if (capacity < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "LocalFabric channel capacity must be >= 0 messages (0: rendezvous), got ", capacity));
  }
  return std::unique_ptr<LocalFabric>(new LocalFabric(num_endpoints, capacity));
}

LocalFabric::LocalFabric(int num_endpoints, int capacity) : capacity_(capacity) {
  endpoints_.reserve(num_endpoints);
  for (int r = 0; r < num_endpoints; ++r) {
    endpoints_.push_back(std::unique_ptr<LocalCommunicator>(new LocalCommunicator(this, r)));
  }
  std::lock_guard<std::mutex> lock(mu_);
  channels_.resize(static_cast<size_t>(num_endpoints) * num_endpoints);
  queued_bytes_.assign(num_endpoints, 0);
  peak_queued_bytes_.assign(num_endpoints, 0);
}

template <typename Ready>
bool LocalFabric::WaitUntil(std::unique_lock<std::mutex>& lock, absl::Time deadline,
                            Ready ready) {
  if (deadline == absl::InfiniteFuture()) {
    cv_.wait(lock, ready);
    return true;
  }
  const auto until = std::chrono::system_clock::now() +
                     std::chrono::nanoseconds(absl::ToInt64Nanoseconds(
                         std::max(absl::ZeroDuration(), deadline - absl::Now())));
  return cv_.wait_until(lock, until, ready);
}

void LocalFabric::Abort(const absl::Status& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!abort_status_.ok()) return;  // the first reason wins
    const std::string why =
        reason.ok() ? std::string("aborted without a reason") : reason.ToString();
    abort_status_ = absl::AbortedError(absl::StrCat("communicator aborted: ", why));
  }
  cv_.notify_all();
}

absl::Status LocalFabric::abort_status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abort_status_;
}

int64_t LocalFabric::peak_queued_bytes(int dst) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (dst < 0 || dst >= static_cast<int>(peak_queued_bytes_.size())) return 0;
  return peak_queued_bytes_[dst];
}

// ---------------------------------------------------------------------------------------------
// LocalCommunicator

int LocalCommunicator::size() const { return fabric_->size(); }

void LocalCommunicator::Abort(const absl::Status& reason) { fabric_->Abort(reason); }

absl::Status LocalCommunicator::CheckPeer(int peer, const char* what) const {
  return CheckPeerRank(rank_, size(), peer, what);
}

absl::Status LocalCommunicator::Send(const TensorGroup& group, int peer, absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Send"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Send from rank ", rank_, " to rank ", peer,
                   group.end_of_stream ? ", end of stream after micro-batch "
                                       : ", micro-batch ",
                   group.end_of_stream ? group.microbatch - 1 : group.microbatch);
  if (absl::Status s = CheckNamedTensors(group.tensors, where); !s.ok()) return s;
  if (group.end_of_stream && !group.tensors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": an end-of-stream marker carries no tensors, got ",
                     group.tensors.size()));
  }
  if (absl::Status s = fabric_->abort_status(); !s.ok()) return s;

  LocalFabric* f = fabric_;
  const bool rendezvous = f->capacity_ == 0;
  LocalFabric::Message message;
  message.microbatch = group.microbatch;
  message.end_of_stream = group.end_of_stream;
  message.shared = group.shared;
  message.tensors.reserve(group.tensors.size());
  for (const auto& [name, tensor] : group.tensors) {
    // Buffered: copy into channel-owned buffers before taking the lock, so a large copy never
    // holds up the other channels. Rendezvous: borrow; the receiver copies. Shared: references.
    message.tensors.emplace_back(name, rendezvous || group.shared ? tensor : tensor.Clone());
    message.bytes += static_cast<int64_t>(tensor.bytes());
  }
  const int64_t bytes = message.bytes;
  std::shared_ptr<LocalFabric::Handshake> handshake;
  if (rendezvous) {
    handshake = std::make_shared<LocalFabric::Handshake>();
    message.handshake = handshake;
  }

  const absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(f->mu_);
  auto& ch = f->channel(rank_, peer);
  if (!rendezvous) {
    const bool ready = f->WaitUntil(lock, deadline, [f, &ch] {
      return !f->abort_status_.ok() || static_cast<int>(ch.size()) < f->capacity_;
    });
    if (!f->abort_status_.ok()) return f->abort_status_;
    if (!ready) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": the channel stayed full (", f->capacity_, " messages) for ",
                       absl::FormatDuration(timeout), "; the receiver is not taking messages"));
    }
    ch.push_back(std::move(message));
    f->queued_bytes_[peer] += bytes;
    f->peak_queued_bytes_[peer] = std::max(f->peak_queued_bytes_[peer], f->queued_bytes_[peer]);
    lock.unlock();
    f->cv_.notify_all();
    bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  ch.push_back(std::move(message));
  f->cv_.notify_all();
  // Wait for the receiver's copy; give up only while it has not started taking the message.
  const bool done = f->WaitUntil(lock, deadline, [f, &handshake] {
    return handshake->done || (!handshake->taken && !f->abort_status_.ok());
  });
  if (!done && handshake->taken) {
    // The deadline passed mid-copy: the copy is bounded, wait for it.
    f->cv_.wait(lock, [&handshake] { return handshake->done; });
  }
  if (handshake->done) {
    lock.unlock();
    bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
    return absl::OkStatus();
  }
  // Not taken: withdraw the message (it may no longer be at the front).
  for (auto it = ch.begin(); it != ch.end(); ++it) {
    if (it->handshake == handshake) {
      ch.erase(it);
      break;
    }
  }
  if (!f->abort_status_.ok()) return f->abort_status_;
  return absl::DeadlineExceededError(
      absl::StrCat(where, ": the receiver did not take the message within ",
                   absl::FormatDuration(timeout)));
}

absl::Status LocalCommunicator::Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                                     absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Recv"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Recv on rank ", rank_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  if (absl::Status s = CheckNamedTensors(*into, where); !s.ok()) return s;
  if (absl::Status s = fabric_->abort_status(); !s.ok()) return s;

  LocalFabric* f = fabric_;
  LocalFabric::Message message;
  const absl::Time deadline = absl::Now() + timeout;
  {
    std::unique_lock<std::mutex> lock(f->mu_);
    auto& ch = f->channel(peer, rank_);
    const bool ready =
        f->WaitUntil(lock, deadline, [f, &ch] { return !f->abort_status_.ok() || !ch.empty(); });
    if (!f->abort_status_.ok()) return f->abort_status_;
    if (!ready) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": nothing arrived within ", absl::FormatDuration(timeout)));
    }
    // Validate against the head before taking it, so a mismatch leaves the channel intact.
    const LocalFabric::Message& head = ch.front();
    if (!head.end_of_stream) {
      if (head.microbatch != microbatch) {
        return absl::FailedPreconditionError(
            absl::StrCat(where, ": the next message from rank ", peer, " is for micro-batch ",
                         head.microbatch, " (messages from one peer arrive in send order)"));
      }
      if (absl::Status s = CheckMatches(head.tensors, *into, where); !s.ok()) return s;
    }
    message = std::move(ch.front());
    ch.pop_front();
    if (message.handshake != nullptr) message.handshake->taken = true;
    if (f->capacity_ > 0) f->queued_bytes_[rank_] -= message.bytes;
  }
  f->cv_.notify_all();  // a slot is free (buffered) or the sender sees `taken` (rendezvous)

  // The message is ours now; copy outside the lock (a rendezvous sender waits for `done`).
  if (!message.end_of_stream) {
    absl::flat_hash_map<std::string, const Tensor*> sent;
    for (const auto& [name, tensor] : message.tensors) sent[name] = &tensor;
    for (auto& [name, tensor] : *into) {
      const Tensor& src = *sent.at(name);
      if (message.shared) {
        tensor = src;  // the sender promised never to modify it again
      } else if (src.bytes() > 0) {
        std::memcpy(tensor.raw_data(), src.raw_data(), src.bytes());
      }
    }
  }
  if (message.handshake != nullptr) {
    message.tensors.clear();  // drop the borrowed references before the sender may reuse them
    {
      std::lock_guard<std::mutex> lock(f->mu_);
      message.handshake->done = true;
    }
    f->cv_.notify_all();
  }
  if (message.end_of_stream) {
    return absl::OutOfRangeError(absl::StrCat("end of stream from rank ", peer, " on rank ",
                                              rank_, " (after micro-batch ",
                                              message.microbatch - 1, ")"));
  }
  bytes_received_.fetch_add(message.bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace yolopipe
