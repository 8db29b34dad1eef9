#include "runtime/comm/local_communicator.h"

#include <cstring>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

// Undefined tensors and duplicate names are caller bugs on either side.
absl::Status CheckNamedTensors(const NamedTensors& tensors, const std::string& where) {
  absl::flat_hash_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor '", name, "' is undefined (not allocated)"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": duplicate tensor name '", name, "'"));
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
  if (capacity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("LocalFabric channel capacity must be at least 1 message, got ", capacity));
  }
  return std::unique_ptr<LocalFabric>(new LocalFabric(num_endpoints, capacity));
}

LocalFabric::LocalFabric(int num_endpoints, int capacity) : capacity_(capacity) {
  endpoints_.reserve(num_endpoints);
  for (int r = 0; r < num_endpoints; ++r) {
    endpoints_.push_back(std::unique_ptr<LocalCommunicator>(new LocalCommunicator(this, r)));
  }
  absl::MutexLock lock(&mu_);
  channels_.resize(static_cast<size_t>(num_endpoints) * num_endpoints);
}

void LocalFabric::Abort(const absl::Status& reason) {
  absl::MutexLock lock(&mu_);
  if (!abort_status_.ok()) return;  // the first reason wins
  const std::string why = reason.ok() ? std::string("aborted without a reason") : reason.ToString();
  abort_status_ = absl::AbortedError(absl::StrCat("communicator aborted: ", why));
  // Waiters use Mutex::Await conditions that read abort_status_, so releasing the lock wakes them.
}

absl::Status LocalFabric::abort_status() const {
  absl::MutexLock lock(&mu_);
  return abort_status_;
}

// ---------------------------------------------------------------------------------------------
// LocalCommunicator

int LocalCommunicator::size() const { return fabric_->size(); }

void LocalCommunicator::Abort(const absl::Status& reason) { fabric_->Abort(reason); }

absl::Status LocalCommunicator::CheckPeer(int peer, const char* what) const {
  if (peer < 0 || peer >= size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " on rank ", rank_, ": peer ", peer, " out of range [0, ", size(), ")"));
  }
  if (peer == rank_) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " on rank ", rank_, ": peer is this rank itself"));
  }
  return absl::OkStatus();
}

absl::Status LocalCommunicator::Send(const TensorGroup& group, int peer, absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Send"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Send from rank ", rank_, " to rank ", peer, ", micro-batch ", group.microbatch);
  if (absl::Status s = CheckNamedTensors(group.tensors, where); !s.ok()) return s;
  if (absl::Status s = fabric_->abort_status(); !s.ok()) return s;

  // Copy into channel-owned buffers before taking the lock, so a large copy never holds up the
  // other channels.
  LocalFabric::Message message;
  message.microbatch = group.microbatch;
  message.tensors.reserve(group.tensors.size());
  for (const auto& [name, tensor] : group.tensors) {
    message.tensors.emplace_back(name, tensor.Clone());
    message.bytes += static_cast<int64_t>(tensor.bytes());
  }
  const int64_t bytes = message.bytes;

  const absl::Time deadline = absl::Now() + timeout;
  {
    LocalFabric* f = fabric_;
    absl::MutexLock lock(&f->mu_);
    auto& ch = f->channel(rank_, peer);
    auto ready = [f, &ch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(f->mu_) {
      return !f->abort_status_.ok() || static_cast<int>(ch.size()) < f->capacity_;
    };
    // AwaitWithDeadline returns the condition's value: false only on timeout.
    if (!f->mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": the channel stayed full (", f->capacity_, " messages) for ",
                       absl::FormatDuration(timeout), "; the receiver is not taking messages"));
    }
    if (!f->abort_status_.ok()) return f->abort_status_;
    ch.push_back(std::move(message));
  }
  bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status LocalCommunicator::Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                                     absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Recv"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("Recv on rank ", rank_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  if (absl::Status s = CheckNamedTensors(*into, where); !s.ok()) return s;
  if (absl::Status s = fabric_->abort_status(); !s.ok()) return s;

  LocalFabric::Message message;
  const absl::Time deadline = absl::Now() + timeout;
  {
    LocalFabric* f = fabric_;
    absl::MutexLock lock(&f->mu_);
    auto& ch = f->channel(peer, rank_);
    auto ready = [f, &ch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(f->mu_) {
      return !f->abort_status_.ok() || !ch.empty();
    };
    if (!f->mu_.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat(where, ": nothing arrived within ", absl::FormatDuration(timeout)));
    }
    if (!f->abort_status_.ok()) return f->abort_status_;

    // Validate against the head before taking it, so a mismatch leaves the channel intact.
    const LocalFabric::Message& head = ch.front();
    if (head.microbatch != microbatch) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": the next message from rank ", peer, " is for micro-batch ",
                       head.microbatch, " (messages from one peer arrive in send order)"));
    }
    absl::flat_hash_map<std::string, const Tensor*> sent;
    for (const auto& [name, tensor] : head.tensors) sent[name] = &tensor;
    for (const auto& [name, tensor] : *into) {
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
    if (into->size() != head.tensors.size()) {
      absl::flat_hash_set<std::string> wanted;
      for (const auto& entry : *into) wanted.insert(entry.first);
      for (const auto& [name, tensor] : head.tensors) {
        if (!wanted.contains(name)) {
          return absl::FailedPreconditionError(absl::StrCat(
              where, ": tensor '", name, "' (", tensor.DebugString(), ") sent but not expected"));
        }
      }
    }
    message = std::move(ch.front());
    ch.pop_front();  // frees a slot: a Send waiting on this channel wakes when the lock is released
  }

  // The message is ours now; copy outside the lock.
  absl::flat_hash_map<std::string, const Tensor*> sent;
  for (const auto& [name, tensor] : message.tensors) sent[name] = &tensor;
  for (auto& [name, tensor] : *into) {
    const Tensor& src = *sent.at(name);
    if (src.bytes() > 0) std::memcpy(tensor.raw_data(), src.raw_data(), src.bytes());
  }
  bytes_received_.fetch_add(message.bytes, std::memory_order_relaxed);
  return absl::OkStatus();
}

}  // namespace yolopipe
