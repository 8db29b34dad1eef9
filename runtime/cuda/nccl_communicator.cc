// NCCL transport. The first half (wire header, argument checks, fabric bookkeeping) is host code
// built everywhere; the transport itself is compiled only with YOLOPIPE_WITH_NCCL, which BUILD
// sets under --config=cuda (the default build adds nccl_communicator_stub.cc instead).
#include "runtime/cuda/nccl_communicator.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifdef YOLOPIPE_WITH_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "runtime/cuda/cuda_util.h"
#endif

namespace yolopipe {
namespace {

constexpr int64_t kHeaderMagic = 0x5950'4E43'434C;  // "YPNCCL"
constexpr int64_t kMaxTensors = 4096;
constexpr int64_t kMaxRank = 16;

void AppendInt(std::string& out, int64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }

// A bounds-checked reader over a received header.
class Reader {
 public:
  Reader(const char* bytes, size_t size) : bytes_(bytes), size_(size) {}
  bool Int(int64_t* v) {
    if (size_ - pos_ < 8) return false;
    std::memcpy(v, bytes_ + pos_, 8);
    pos_ += 8;
    return true;
  }
  bool Text(int64_t len, std::string* out) {
    if (len < 0 || static_cast<uint64_t>(len) > size_ - pos_) return false;
    out->assign(bytes_ + pos_, static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return true;
  }

 private:
  const char* bytes_;
  size_t size_;
  size_t pos_ = 0;
};

std::string Describe(const NcclTensorMeta& m) {
  std::string s = absl::StrCat(DTypeName(m.dtype), ShapeToString(m.shape));
  if (m.layout == Layout::kNHWC) s += " nhwc";
  return s;
}

absl::Status CheckMeta(const NcclTensorMeta& m, const std::string& where) {
  if (m.dtype == DType::kUndefined) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": tensor '", m.name, "' has an undefined dtype"));
  }
  if (static_cast<int64_t>(m.shape.size()) > kMaxRank) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", m.name, "' has rank ",
                                                   m.shape.size(), "; at most ", kMaxRank));
  }
  for (int64_t d : m.shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": tensor '", m.name, "' has shape ",
                                                     ShapeToString(m.shape),
                                                     " with an unbound dimension"));
    }
  }
  return absl::OkStatus();
}

// Sorts by name and rejects duplicates.
absl::Status SortAndCheckNames(std::vector<NcclTensorMeta>& metas, const std::string& where) {
  std::sort(metas.begin(), metas.end(),
            [](const NcclTensorMeta& a, const NcclTensorMeta& b) { return a.name < b.name; });
  for (size_t i = 1; i < metas.size(); ++i) {
    if (metas[i].name == metas[i - 1].name) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": duplicate tensor name '", metas[i].name, "'"));
    }
  }
  if (static_cast<int64_t>(metas.size()) > kMaxTensors) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", metas.size(), " tensors; at most ", kMaxTensors));
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Wire header

int64_t NcclGroupHeader::payload_bytes() const {
  int64_t total = 0;
  for (const NcclTensorMeta& m : tensors) total += static_cast<int64_t>(m.bytes());
  return total;
}

absl::StatusOr<std::string> EncodeNcclGroupHeader(const NcclGroupHeader& header,
                                                  const std::string& where) {
  std::string out;
  AppendInt(out, kHeaderMagic);
  AppendInt(out, header.microbatch);
  AppendInt(out, header.end_of_stream ? 1 : 0);
  AppendInt(out, static_cast<int64_t>(header.tensors.size()));
  for (const NcclTensorMeta& m : header.tensors) {
    AppendInt(out, static_cast<int64_t>(m.dtype));
    AppendInt(out, static_cast<int64_t>(m.layout));
    AppendInt(out, static_cast<int64_t>(m.shape.size()));
    for (int64_t d : m.shape) AppendInt(out, d);
    AppendInt(out, static_cast<int64_t>(m.name.size()));
    out += m.name;
  }
  if (out.size() > kNcclHeaderBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the descriptors of ", header.tensors.size(), " tensors take ",
                     out.size(), " bytes; the NCCL group header holds ", kNcclHeaderBytes));
  }
  out.resize(kNcclHeaderBytes, '\0');
  return out;
}

absl::StatusOr<NcclGroupHeader> DecodeNcclGroupHeader(const void* bytes, size_t size,
                                                      const std::string& where) {
  auto bad = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(where, ": malformed NCCL group header (", why, ")"));
  };
  if (bytes == nullptr) return bad("no bytes");
  Reader r(static_cast<const char*>(bytes), size);
  NcclGroupHeader h;
  int64_t magic = 0, end = 0, n = 0;
  if (!r.Int(&magic) || magic != kHeaderMagic) return bad("bad magic");
  if (!r.Int(&h.microbatch) || !r.Int(&end) || !r.Int(&n)) return bad("truncated");
  if (end != 0 && end != 1) return bad(absl::StrCat("end-of-stream flag ", end));
  h.end_of_stream = end == 1;
  if (n < 0 || n > kMaxTensors) return bad(absl::StrCat(n, " tensors"));
  if (h.end_of_stream && n != 0) return bad("an end-of-stream marker with tensors");
  for (int64_t i = 0; i < n; ++i) {
    NcclTensorMeta m;
    int64_t dtype = 0, layout = 0, rank = 0, len = 0;
    if (!r.Int(&dtype) || !r.Int(&layout) || !r.Int(&rank)) return bad("truncated tensor");
    if (dtype <= static_cast<int64_t>(DType::kUndefined) ||
        dtype > static_cast<int64_t>(DType::kFloat64)) {
      return bad(absl::StrCat("tensor ", i, ": dtype code ", dtype));
    }
    if (layout != static_cast<int64_t>(Layout::kPlain) &&
        layout != static_cast<int64_t>(Layout::kNHWC)) {
      return bad(absl::StrCat("tensor ", i, ": layout code ", layout));
    }
    if (rank < 0 || rank > kMaxRank) return bad(absl::StrCat("tensor ", i, ": rank ", rank));
    m.dtype = static_cast<DType>(dtype);
    m.layout = static_cast<Layout>(layout);
    for (int64_t k = 0; k < rank; ++k) {
      int64_t d = 0;
      if (!r.Int(&d)) return bad("truncated shape");
      if (d < 0) return bad(absl::StrCat("tensor ", i, ": dimension ", d));
      m.shape.push_back(d);
    }
    if (!r.Int(&len) || !r.Text(len, &m.name)) return bad("truncated name");
    h.tensors.push_back(std::move(m));
  }
  return h;
}

absl::Status MatchNcclGroup(const NcclGroupHeader& sent,
                            const std::vector<NcclTensorMeta>& expected, const std::string& where) {
  absl::flat_hash_map<std::string, const NcclTensorMeta*> wanted;
  for (const NcclTensorMeta& m : expected) wanted[m.name] = &m;
  absl::flat_hash_set<std::string> seen;
  for (const NcclTensorMeta& m : sent.tensors) {
    auto it = wanted.find(m.name);
    if (it == wanted.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", m.name, "' sent but not expected"));
    }
    const NcclTensorMeta& e = *it->second;
    if (e.dtype != m.dtype || e.shape != m.shape || e.layout != m.layout) {
      return absl::FailedPreconditionError(absl::StrCat(where, ": tensor '", m.name, "': expected ",
                                                        Describe(e), ", got ", Describe(m)));
    }
    seen.insert(m.name);
  }
  for (const NcclTensorMeta& e : expected) {
    if (!seen.contains(e.name)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": tensor '", e.name, "' expected but not sent"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NcclTensorMeta>> WireOrderOf(const NamedTensors& tensors,
                                                        const std::string& where) {
  std::vector<NcclTensorMeta> metas;
  for (const auto& [name, t] : tensors) {
    if (!t.defined()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tensor '", name, "' is undefined (not allocated)"));
    }
    NcclTensorMeta m{name, t.dtype(), t.layout(), t.shape()};
    if (absl::Status s = CheckMeta(m, where); !s.ok()) return s;
    metas.push_back(std::move(m));
  }
  if (absl::Status s = SortAndCheckNames(metas, where); !s.ok()) return s;
  return metas;
}

absl::StatusOr<std::vector<NcclTensorMeta>> WireOrderOf(const DeviceNamedTensors& tensors,
                                                        const std::string& where) {
  std::vector<NcclTensorMeta> metas;
  for (const auto& [name, t] : tensors) {
    NcclTensorMeta m{name, t.dtype, t.layout, t.shape};
    if (absl::Status s = CheckMeta(m, where); !s.ok()) return s;
    if (t.data == nullptr && m.bytes() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": device tensor '", name, "' (",
                                                     Describe(m), ") has no data pointer"));
    }
    metas.push_back(std::move(m));
  }
  if (absl::Status s = SortAndCheckNames(metas, where); !s.ok()) return s;
  return metas;
}

absl::StatusOr<std::vector<DeviceWireTransfer>> DeviceGroupTransfers(
    int rank, int size, const std::vector<DevicePeerTransfer>& transfers,
    const std::string& where) {
  std::vector<const DevicePeerTransfer*> by_peer;
  for (const DevicePeerTransfer& t : transfers) {
    if (t.peer < 0 || t.peer >= size || t.peer == rank) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": peer ", t.peer,
                                                     " is not another rank of 0..", size - 1,
                                                     " (this is rank ", rank, ")"));
    }
    by_peer.push_back(&t);
  }
  std::sort(
      by_peer.begin(), by_peer.end(),
      [](const DevicePeerTransfer* a, const DevicePeerTransfer* b) { return a->peer < b->peer; });
  std::vector<DeviceWireTransfer> out;
  for (size_t i = 0; i < by_peer.size(); ++i) {
    const DevicePeerTransfer& t = *by_peer[i];
    if (i > 0 && by_peer[i - 1]->peer == t.peer) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": peer ", t.peer, " is listed twice"));
    }
    absl::StatusOr<std::vector<NcclTensorMeta>> metas =
        WireOrderOf(t.tensors, absl::StrCat(where, ", peer ", t.peer));
    if (!metas.ok()) return metas.status();
    absl::flat_hash_map<std::string, void*> data;  // names are unique (WireOrderOf checked)
    for (const auto& [name, ref] : t.tensors) data[name] = ref.data;
    for (const NcclTensorMeta& m : *metas) {
      if (m.bytes() > 0) out.push_back({t.peer, m.name, data[m.name], m.bytes()});
    }
  }
  return out;
}

std::string DescribeDeviceGroup(int rank, bool is_send,
                                const std::vector<DevicePeerTransfer>& transfers,
                                MicroBatchId microbatch) {
  std::vector<int> peers;
  for (const DevicePeerTransfer& t : transfers) peers.push_back(t.peer);
  return absl::StrCat("NCCL grouped ", is_send ? "send from" : "receive on", " rank ", rank,
                      is_send ? " to" : " from", " rank(s) ", absl::StrJoin(peers, ","),
                      ", micro-batch ", microbatch);
}

absl::Status ValidateInProcessDevices(const std::vector<int>& devices) {
  if (devices.empty()) {
    return absl::InvalidArgumentError("an in-process NCCL fabric needs at least one device");
  }
  absl::flat_hash_set<int> seen;
  for (int d : devices) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat("negative CUDA device ", d));
    if (!seen.insert(d).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CUDA device ", d,
          " listed twice: NCCL refuses two ranks on one GPU in one process (one GPU per rank)"));
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping shared by both builds

int NcclCommunicator::size() const { return fabric_->size(); }

absl::Status NcclCommunicator::CheckPeer(int peer, const char* what) const {
  return CheckPeerRank(rank_, size(), peer, what);
}

void NcclCommunicator::Abort(const absl::Status& reason) { fabric_->Abort(reason); }

NcclFabric::~NcclFabric() = default;

NcclCommunicator* NcclFabric::endpoint(int rank) {
  if (rank < 0 || rank >= size_) return nullptr;
  return endpoints_[rank].get();
}

void NcclFabric::Abort(const absl::Status& reason) {
  for (auto& e : endpoints_) {
    if (e != nullptr) e->AbortLocal(reason);
  }
}

#ifdef YOLOPIPE_WITH_NCCL
// ---------------------------------------------------------------------------------------------
// The transport (--config=cuda)

namespace {

ncclComm_t AsComm(void* comm) { return static_cast<ncclComm_t>(comm); }
cudaStream_t AsStream(const CudaStream& s) { return static_cast<cudaStream_t>(s.handle()); }
cudaEvent_t AsEvent(const CudaEvent& e) { return static_cast<cudaEvent_t>(e.handle()); }

absl::Status NcclError(ncclResult_t result, const std::string& call, ncclComm_t comm) {
  std::string detail = ncclGetErrorString(result);
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && last[0] != '\0') detail = absl::StrCat(detail, ": ", last);
  }
  const std::string message = absl::StrCat(call, " failed: ", detail);
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::InvalidArgumentError(message);
    case ncclRemoteError:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// ncclSuccess and ncclInProgress (a non-blocking communicator still working) are not errors.
absl::Status NcclIssued(ncclResult_t result, const std::string& call, ncclComm_t comm) {
  if (result == ncclSuccess || result == ncclInProgress) return absl::OkStatus();
  return NcclError(result, call, comm);
}

// Polls with a growing sleep (10 us .. 1 ms) so that short waits stay short and long ones cost
// little CPU.
class Backoff {
 public:
  void Sleep() {
    std::this_thread::sleep_for(sleep_);
    sleep_ = std::min(sleep_ * 2, std::chrono::microseconds(1000));
  }

 private:
  std::chrono::microseconds sleep_{10};
};

ncclConfig_t NonBlockingConfig() {
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return config;
}

// Waits until a freshly created (or otherwise busy) communicator leaves ncclInProgress.
absl::Status WaitCommReady(ncclComm_t comm, absl::Time deadline, const std::string& what) {
  Backoff backoff;
  while (true) {
    ncclResult_t state = ncclSuccess;
    if (ncclResult_t r = ncclCommGetAsyncError(comm, &state); r != ncclSuccess) {
      return NcclError(r, absl::StrCat(what, ": ncclCommGetAsyncError"), comm);
    }
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return NcclError(state, what, comm);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": not completed in time"));
    }
    backoff.Sleep();
  }
}

template <typename Buffer>
absl::Status Grow(Buffer& buffer, size_t bytes, int device);
template <>
absl::Status Grow(DeviceBuffer& buffer, size_t bytes, int device) {
  if (buffer.size_bytes() >= bytes) return absl::OkStatus();
  buffer = DeviceBuffer();
  absl::StatusOr<DeviceBuffer> grown = DeviceBuffer::Allocate(bytes, device);
  if (!grown.ok()) return grown.status();
  buffer = *std::move(grown);
  return absl::OkStatus();
}
template <>
absl::Status Grow(PinnedHostBuffer& buffer, size_t bytes, int) {
  if (buffer.size_bytes() >= bytes) return absl::OkStatus();
  buffer = PinnedHostBuffer();
  absl::StatusOr<PinnedHostBuffer> grown = PinnedHostBuffer::Allocate(bytes);
  if (!grown.ok()) return grown.status();
  buffer = *std::move(grown);
  return absl::OkStatus();
}

// Byte offsets of tensors packed into one staging buffer (each aligned for any dtype).
std::vector<size_t> PackedOffsets(const std::vector<NcclTensorMeta>& metas, size_t* total) {
  std::vector<size_t> offsets;
  size_t at = 0;
  for (const NcclTensorMeta& m : metas) {
    offsets.push_back(at);
    at += AlignToArena(m.bytes());
  }
  *total = at;
  return offsets;
}

// The data pointers of `tensors` in wire order (by name; names are unique after WireOrderOf).
std::vector<void*> DataInWireOrder(const DeviceNamedTensors& tensors) {
  std::vector<std::pair<std::string, void*>> named;
  for (const auto& [name, t] : tensors) named.emplace_back(name, t.data);
  std::sort(named.begin(), named.end());
  std::vector<void*> data;
  for (auto& [name, ptr] : named) data.push_back(ptr);
  return data;
}

// One direction's (send or receive) reusable buffers; guarded by the direction's mutex.
struct DirectionState {
  std::timed_mutex mu;
  DeviceBuffer header_device;    // kNcclHeaderBytes
  PinnedHostBuffer header_host;  // kNcclHeaderBytes
  CudaEvent done;                // completion of this direction's last transfer
  DeviceBuffer staging_device;   // host Send/Recv only, grown on demand
  PinnedHostBuffer staging_host;
};

}  // namespace

struct NcclCommunicator::Impl {
  std::timed_mutex comm_mu;   // every NCCL call on `comm`
  ncclComm_t comm = nullptr;  // guarded by comm_mu; null once aborted
  CudaStream stream;          // the transfer stream
  DirectionState send;
  DirectionState recv;
  std::map<int, NcclGroupHeader> pending_headers;  // guarded by recv.mu: per peer
  std::mutex state_mu;
  absl::Status abort_status;  // guarded by state_mu
  std::atomic<bool> aborted{false};

  ~Impl() {
    // ncclCommAbort rather than Finalize/Destroy: it is local and cannot wait for a peer that is
    // gone; every transfer this endpoint started has completed or failed by now.
    std::lock_guard<std::timed_mutex> lock(comm_mu);
    if (comm != nullptr) ncclCommAbort(comm);
    comm = nullptr;
  }

  absl::Status AbortStatus() {
    std::lock_guard<std::mutex> lock(state_mu);
    return abort_status;
  }

  // Requires comm_mu. Waits until the communicator has enqueued what was issued.
  absl::Status WaitIssuedLocked(absl::Time deadline, const std::string& what) {
    Backoff backoff;
    while (true) {
      if (aborted.load()) return AbortStatus();
      ncclResult_t state = ncclSuccess;
      if (ncclResult_t r = ncclCommGetAsyncError(comm, &state); r != ncclSuccess) {
        return NcclError(r, absl::StrCat(what, ": ncclCommGetAsyncError"), comm);
      }
      if (state == ncclSuccess) return absl::OkStatus();
      if (state != ncclInProgress) return NcclError(state, what, comm);
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(what, ": NCCL did not accept the transfer in time"));
      }
      backoff.Sleep();
    }
  }

  // Waits (without comm_mu, so the other direction can proceed) until `event` completes, polling
  // the communicator's asynchronous error too.
  absl::Status WaitDone(const CudaEvent& event, absl::Time deadline, const std::string& what,
                        const std::string& late) {
    Backoff backoff;
    while (true) {
      if (aborted.load()) return AbortStatus();
      const cudaError_t q = cudaEventQuery(AsEvent(event));
      if (q == cudaSuccess) return absl::OkStatus();
      if (q != cudaErrorNotReady)
        return CudaErrorToStatus(q, absl::StrCat(what, ": cudaEventQuery"));
      if (comm_mu.try_lock()) {
        std::lock_guard<std::timed_mutex> lock(comm_mu, std::adopt_lock);
        ncclResult_t state = ncclSuccess;
        if (comm != nullptr && ncclCommGetAsyncError(comm, &state) == ncclSuccess &&
            state != ncclSuccess && state != ncclInProgress) {
          return NcclError(state, what, comm);
        }
      }
      if (absl::Now() >= deadline) return absl::DeadlineExceededError(absl::StrCat(what, late));
      backoff.Sleep();
    }
  }

  // Takes comm_mu by the deadline; DeadlineExceeded (nothing issued) otherwise.
  absl::Status LockComm(absl::Time deadline, const std::string& what) {
    if (!comm_mu.try_lock_until(absl::ToChronoTime(deadline))) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": the communicator stayed busy until the deadline"));
    }
    if (aborted.load() || comm == nullptr) {
      comm_mu.unlock();
      absl::Status s = AbortStatus();
      return s.ok() ? absl::AbortedError(absl::StrCat(what, ": communicator closed")) : s;
    }
    return absl::OkStatus();
  }

  // The two transfer primitives. Both require the direction's mutex and the endpoint's device to
  // be current; `data` lists device pointers in wire order (header.tensors' order).

  // Header group, then (unless end of stream) data group; returns once the transfer completed.
  absl::Status SendLocked(const NcclGroupHeader& header, const std::vector<void*>& data, int peer,
                          absl::Time deadline, const CudaEvent* ready, const std::string& where) {
    absl::StatusOr<std::string> encoded = EncodeNcclGroupHeader(header, where);
    if (!encoded.ok()) return encoded.status();
    std::memcpy(send.header_host.data(), encoded->data(), kNcclHeaderBytes);
    absl::Status status = [&]() -> absl::Status {
      if (absl::Status s = LockComm(deadline, where); !s.ok()) return s;
      std::lock_guard<std::timed_mutex> comm_lock(comm_mu, std::adopt_lock);
      const cudaStream_t s = AsStream(stream);
      if (ready != nullptr) YP_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(s, AsEvent(*ready), 0));
      YP_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(send.header_device.data(), send.header_host.data(),
                                              kNcclHeaderBytes, cudaMemcpyHostToDevice, s));
      // 1. The header, alone: the receiver reads it before it posts the data receives.
      std::vector<std::pair<void*, size_t>> header_transfer = {
          {send.header_device.data(), kNcclHeaderBytes}};
      if (absl::Status st = GroupLocked(/*send=*/true, header_transfer, peer, deadline, where);
          !st.ok()) {
        return st;
      }
      // 2. Every tensor of the micro-batch in one group, in wire order.
      if (!header.end_of_stream) {
        if (absl::Status st =
                GroupLocked(/*send=*/true, Transfers(header.tensors, data), peer, deadline, where);
            !st.ok()) {
          return st;
        }
      }
      YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(send.done), s));
      return absl::OkStatus();
    }();
    if (!status.ok()) return status;
    return WaitDone(send.done, deadline, where, ": the receiver did not take it in time");
  }

  // The next header from `peer` (a pending one first).
  absl::StatusOr<NcclGroupHeader> RecvHeaderLocked(int peer, absl::Time deadline,
                                                   absl::Duration timeout,
                                                   const std::string& where) {
    if (auto it = pending_headers.find(peer); it != pending_headers.end()) {
      NcclGroupHeader header = std::move(it->second);
      pending_headers.erase(it);
      return header;
    }
    absl::Status status = [&]() -> absl::Status {
      if (absl::Status s = LockComm(deadline, where); !s.ok()) return s;
      std::lock_guard<std::timed_mutex> comm_lock(comm_mu, std::adopt_lock);
      std::vector<std::pair<void*, size_t>> header_transfer = {
          {recv.header_device.data(), kNcclHeaderBytes}};
      if (absl::Status st = GroupLocked(/*send=*/false, header_transfer, peer, deadline, where);
          !st.ok()) {
        return st;
      }
      const cudaStream_t s = AsStream(stream);
      YP_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(recv.header_host.data(), recv.header_device.data(),
                                              kNcclHeaderBytes, cudaMemcpyDeviceToHost, s));
      YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(recv.done), s));
      return absl::OkStatus();
    }();
    if (status.ok()) {
      status = WaitDone(recv.done, deadline, where,
                        absl::StrCat(": nothing arrived within ", absl::FormatDuration(timeout)));
    }
    if (!status.ok()) return status;
    return DecodeNcclGroupHeader(recv.header_host.data(), kNcclHeaderBytes, where);
  }

  // The data group of a validated header; returns once it arrived.
  absl::Status RecvDataLocked(const NcclGroupHeader& header, const std::vector<void*>& data,
                              int peer, absl::Time deadline, CudaEvent* received,
                              const std::string& where) {
    absl::Status status = [&]() -> absl::Status {
      if (absl::Status s = LockComm(deadline, where); !s.ok()) return s;
      std::lock_guard<std::timed_mutex> comm_lock(comm_mu, std::adopt_lock);
      if (absl::Status st =
              GroupLocked(/*send=*/false, Transfers(header.tensors, data), peer, deadline, where);
          !st.ok()) {
        return st;
      }
      const cudaStream_t s = AsStream(stream);
      if (received != nullptr) YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(*received), s));
      YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(recv.done), s));
      return absl::OkStatus();
    }();
    if (!status.ok()) return status;
    return WaitDone(recv.done, deadline, where, ": the data did not arrive in time");
  }

  // (pointer, bytes) per tensor in wire order, 0-byte tensors left out (on both sides).
  static std::vector<std::pair<void*, size_t>> Transfers(const std::vector<NcclTensorMeta>& metas,
                                                         const std::vector<void*>& data) {
    std::vector<std::pair<void*, size_t>> transfers;
    for (size_t i = 0; i < metas.size(); ++i) {
      if (metas[i].bytes() > 0) transfers.emplace_back(data[i], metas[i].bytes());
    }
    return transfers;
  }

  // Requires comm_mu. One ncclGroupStart/End with a send or receive per transfer (bytes as
  // ncclUint8), then waits until NCCL has enqueued them on the transfer stream.
  absl::Status GroupLocked(bool is_send, const std::vector<std::pair<void*, size_t>>& transfers,
                           int peer, absl::Time deadline, const std::string& where) {
    std::vector<PeerTransfer> with_peer;
    for (const auto& [ptr, bytes] : transfers) with_peer.push_back({ptr, bytes, peer});
    return GroupManyLocked(is_send, with_peer, deadline, where);
  }

  struct PeerTransfer {
    void* ptr;
    size_t bytes;
    int peer;
  };

  // GroupLocked with a peer per transfer.
  absl::Status GroupManyLocked(bool is_send, const std::vector<PeerTransfer>& transfers,
                               absl::Time deadline, const std::string& where) {
    if (transfers.empty()) return absl::OkStatus();
    const cudaStream_t s = AsStream(stream);
    absl::Status issued =
        NcclIssued(ncclGroupStart(), absl::StrCat(where, ": ncclGroupStart"), comm);
    for (size_t i = 0; issued.ok() && i < transfers.size(); ++i) {
      const PeerTransfer& t = transfers[i];
      issued = is_send ? NcclIssued(ncclSend(t.ptr, t.bytes, ncclUint8, t.peer, comm, s),
                                    absl::StrCat(where, ": ncclSend"), comm)
                       : NcclIssued(ncclRecv(t.ptr, t.bytes, ncclUint8, t.peer, comm, s),
                                    absl::StrCat(where, ": ncclRecv"), comm);
    }
    // The group is closed even after a failed call, so the communicator is left consistent.
    absl::Status ended = NcclIssued(ncclGroupEnd(), absl::StrCat(where, ": ncclGroupEnd"), comm);
    if (!issued.ok()) return issued;
    if (!ended.ok()) return ended;
    return WaitIssuedLocked(deadline, where);
  }

  // A header-less data group (SendDeviceGroup / RecvDeviceGroup); requires the direction's mutex
  // and the device. Returns once it completed.
  absl::Status DataGroupLocked(bool is_send, const std::vector<PeerTransfer>& transfers,
                               absl::Time deadline, const std::string& where) {
    DirectionState& dir = is_send ? send : recv;
    absl::Status status = [&]() -> absl::Status {
      if (absl::Status s = LockComm(deadline, where); !s.ok()) return s;
      std::lock_guard<std::timed_mutex> comm_lock(comm_mu, std::adopt_lock);
      if (absl::Status st = GroupManyLocked(is_send, transfers, deadline, where); !st.ok()) {
        return st;
      }
      YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(dir.done), AsStream(stream)));
      return absl::OkStatus();
    }();
    if (!status.ok()) return status;
    return WaitDone(
        dir.done, deadline, where,
        is_send ? ": the receivers did not take it in time" : ": the data did not arrive in time");
  }
};

NcclCommunicator::NcclCommunicator(NcclFabric* fabric, int rank, int device)
    : fabric_(fabric), rank_(rank), device_(device) {}

NcclCommunicator::~NcclCommunicator() = default;

absl::Status NcclCommunicator::abort_status() const {
  if (impl_ == nullptr) return absl::OkStatus();
  return impl_->AbortStatus();
}

void NcclCommunicator::AbortLocal(const absl::Status& reason) {
  if (impl_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(impl_->state_mu);
    if (!impl_->abort_status.ok()) return;  // the first reason wins
    impl_->abort_status = absl::AbortedError(absl::StrCat(
        "communicator aborted: ", reason.ok()
                                      ? absl::StrCat("rank ", rank_, " aborted without a reason")
                                      : reason.ToString()));
    impl_->aborted.store(true);
  }
  // Threads holding comm_mu notice `aborted` within one poll and let go.
  ScopedCudaDevice scope(device_);
  std::lock_guard<std::timed_mutex> lock(impl_->comm_mu);
  if (impl_->comm != nullptr) ncclCommAbort(impl_->comm);
  impl_->comm = nullptr;
}

namespace {

// Transport failures poison the NCCL communicator (a half-finished transfer cannot be taken
// back), so they abort the fabric's local endpoints; argument and matching errors do not.
bool PoisonsCommunicator(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kAborted:
      return false;
    default:
      return true;
  }
}

}  // namespace

namespace {

// Send / SendDevice's checks and header: an end-of-stream marker carries no tensors, the tensors
// are well formed and their descriptors fit in the header.
template <typename NamedTensorList>
absl::StatusOr<NcclGroupHeader> SendHeader(MicroBatchId microbatch, bool end_of_stream,
                                           const NamedTensorList& tensors,
                                           const std::string& where) {
  if (end_of_stream && !tensors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": an end-of-stream marker carries no tensors, got ", tensors.size()));
  }
  absl::StatusOr<std::vector<NcclTensorMeta>> metas = WireOrderOf(tensors, where);
  if (!metas.ok()) return metas.status();
  NcclGroupHeader header{microbatch, end_of_stream, *std::move(metas)};
  if (absl::Status s = EncodeNcclGroupHeader(header, where).status(); !s.ok()) return s;
  return header;
}

// Takes a direction's mutex by the deadline; the caller adopts it. DeadlineExceeded naming the
// earlier `what` ("send" / "receive") that holds it otherwise.
absl::Status LockDirection(DirectionState& direction, absl::Time deadline, const std::string& where,
                           const char* what) {
  if (!direction.mu.try_lock_until(absl::ToChronoTime(deadline))) {
    return absl::DeadlineExceededError(
        absl::StrCat(where, ": an earlier ", what, " on this rank did not finish in time"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status NcclCommunicator::SendDevice(const DeviceTensorGroup& group, int peer,
                                          absl::Duration timeout, const CudaEvent* ready) {
  if (absl::Status s = CheckPeer(peer, "SendDevice"); !s.ok()) return s;
  const std::string where = absl::StrCat("NCCL send from rank ", rank_, " to rank ", peer,
                                         ", micro-batch ", group.microbatch);
  if (ready != nullptr && (!ready->valid() || ready->device() != device_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the ready event is empty or on device ", ready->device(),
                     ", not this endpoint's device ", device_));
  }
  absl::StatusOr<NcclGroupHeader> header =
      SendHeader(group.microbatch, group.end_of_stream, group.tensors, where);
  if (!header.ok()) return header.status();

  const absl::Time deadline = absl::Now() + timeout;
  Impl& im = *impl_;
  if (absl::Status s = LockDirection(im.send, deadline, where, "send"); !s.ok()) return s;
  std::lock_guard<std::timed_mutex> send_lock(im.send.mu, std::adopt_lock);
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  absl::Status status =
      im.SendLocked(*header, DataInWireOrder(group.tensors), peer, deadline, ready, where);
  if (!status.ok()) {
    if (PoisonsCommunicator(status)) fabric_->Abort(status);
    return status;
  }
  bytes_sent_.fetch_add(header->payload_bytes(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status NcclCommunicator::SendDeviceGroup(const std::vector<DevicePeerTransfer>& sends,
                                               MicroBatchId microbatch, absl::Duration timeout) {
  return DeviceGroup(/*is_send=*/true, sends, microbatch, timeout);
}

absl::Status NcclCommunicator::RecvDeviceGroup(const std::vector<DevicePeerTransfer>& receives,
                                               MicroBatchId microbatch, absl::Duration timeout) {
  return DeviceGroup(/*is_send=*/false, receives, microbatch, timeout);
}

absl::Status NcclCommunicator::DeviceGroup(bool is_send,
                                           const std::vector<DevicePeerTransfer>& transfers,
                                           MicroBatchId microbatch, absl::Duration timeout) {
  const std::string where = DescribeDeviceGroup(rank_, is_send, transfers, microbatch);
  absl::StatusOr<std::vector<DeviceWireTransfer>> wire =
      DeviceGroupTransfers(rank_, size(), transfers, where);
  if (!wire.ok()) return wire.status();
  std::vector<Impl::PeerTransfer> issue;
  int64_t payload = 0;
  for (const DeviceWireTransfer& t : *wire) {
    issue.push_back({t.data, t.bytes, t.peer});
    payload += static_cast<int64_t>(t.bytes);
  }
  if (issue.empty()) return absl::OkStatus();

  const absl::Time deadline = absl::Now() + timeout;
  Impl& im = *impl_;
  DirectionState& dir = is_send ? im.send : im.recv;
  if (absl::Status s = LockDirection(dir, deadline, where, is_send ? "send" : "receive"); !s.ok()) {
    return s;
  }
  std::lock_guard<std::timed_mutex> lock(dir.mu, std::adopt_lock);
  if (im.aborted.load()) return im.AbortStatus();
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  absl::Status status = im.DataGroupLocked(is_send, issue, deadline, where);
  if (!status.ok()) {
    if (PoisonsCommunicator(status)) fabric_->Abort(status);
    return status;
  }
  (is_send ? bytes_sent_ : bytes_received_).fetch_add(payload, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Send(const TensorGroup& group, int peer, absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Send"); !s.ok()) return s;
  const std::string where = absl::StrCat("NCCL send from rank ", rank_, " to rank ", peer,
                                         ", micro-batch ", group.microbatch);
  absl::StatusOr<NcclGroupHeader> sent =
      SendHeader(group.microbatch, group.end_of_stream, group.tensors, where);
  if (!sent.ok()) return sent.status();
  const NcclGroupHeader& header = *sent;

  const absl::Time deadline = absl::Now() + timeout;
  Impl& im = *impl_;
  if (absl::Status s = LockDirection(im.send, deadline, where, "send"); !s.ok()) return s;
  std::lock_guard<std::timed_mutex> send_lock(im.send.mu, std::adopt_lock);
  if (im.aborted.load()) return im.AbortStatus();
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  auto fail = [&](absl::Status s) {
    if (PoisonsCommunicator(s)) fabric_->Abort(s);
    return s;
  };
  // Stage: host tensors -> pinned buffer (memcpy) -> device buffer (async copy on the transfer
  // stream, so it precedes the sends in stream order).
  size_t total = 0;
  const std::vector<size_t> offsets = PackedOffsets(header.tensors, &total);
  std::vector<void*> data(header.tensors.size(), nullptr);
  if (total > 0) {
    if (absl::Status s = Grow(im.send.staging_host, total, device_); !s.ok()) return s;
    if (absl::Status s = Grow(im.send.staging_device, total, device_); !s.ok()) return s;
    absl::flat_hash_map<std::string, const Tensor*> by_name;
    for (const auto& [name, t] : group.tensors) by_name[name] = &t;
    char* host = static_cast<char*>(im.send.staging_host.data());
    char* dev = static_cast<char*>(im.send.staging_device.data());
    for (size_t i = 0; i < header.tensors.size(); ++i) {
      const NcclTensorMeta& m = header.tensors[i];
      std::memcpy(host + offsets[i], by_name[m.name]->raw_data(), m.bytes());
      data[i] = dev + offsets[i];
    }
    if (absl::Status s = CopyHostToDeviceAsync(im.send.staging_device.data(),
                                               im.send.staging_host.data(), total, im.stream);
        !s.ok()) {
      return fail(s);
    }
  }
  absl::Status status = im.SendLocked(header, data, peer, deadline, nullptr, where);
  if (!status.ok()) return fail(status);
  bytes_sent_.fetch_add(header.payload_bytes(), std::memory_order_relaxed);
  return absl::OkStatus();
}

namespace {

// Recv's checks of an arrived header against the expected tensors: end of stream, micro-batch,
// tensor list.
absl::Status CheckArrived(const NcclGroupHeader& header, int peer, int rank,
                          MicroBatchId microbatch, const std::vector<NcclTensorMeta>& expected,
                          const std::string& where) {
  if (header.end_of_stream) {
    return absl::OutOfRangeError(absl::StrCat("end of stream from rank ", peer, " on rank ", rank,
                                              " (after micro-batch ", header.microbatch - 1, ")"));
  }
  if (header.microbatch != microbatch) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": the next message from rank ", peer, " is for micro-batch ",
                     header.microbatch, " (messages from one peer arrive in send order)"));
  }
  return MatchNcclGroup(header, expected, where);
}

}  // namespace

absl::Status NcclCommunicator::RecvDevice(int peer, MicroBatchId microbatch,
                                          DeviceNamedTensors* into, absl::Duration timeout,
                                          CudaEvent* received) {
  if (absl::Status s = CheckPeer(peer, "RecvDevice"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("NCCL recv on rank ", rank_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  if (received != nullptr && (!received->valid() || received->device() != device_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": the received event is empty or on device ", received->device(),
                     ", not this endpoint's device ", device_));
  }
  absl::StatusOr<std::vector<NcclTensorMeta>> expected = WireOrderOf(*into, where);
  if (!expected.ok()) return expected.status();

  const absl::Time deadline = absl::Now() + timeout;
  Impl& im = *impl_;
  if (absl::Status s = LockDirection(im.recv, deadline, where, "receive"); !s.ok()) return s;
  std::lock_guard<std::timed_mutex> recv_lock(im.recv.mu, std::adopt_lock);
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  auto fail = [&](absl::Status s) {
    // A garbled header (DataLoss) also poisons: the pair's stream is out of step.
    if (PoisonsCommunicator(s)) fabric_->Abort(s);
    return s;
  };
  absl::StatusOr<NcclGroupHeader> header = im.RecvHeaderLocked(peer, deadline, timeout, where);
  if (!header.ok()) return fail(header.status());
  if (absl::Status s = CheckArrived(*header, peer, rank_, microbatch, *expected, where); !s.ok()) {
    // Validation failed before any data receive was posted: the message stays queued.
    if (!header->end_of_stream) im.pending_headers[peer] = *std::move(header);
    return s;
  }
  absl::Status status =
      im.RecvDataLocked(*header, DataInWireOrder(*into), peer, deadline, received, where);
  if (!status.ok()) return fail(status);
  bytes_received_.fetch_add(header->payload_bytes(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                                    absl::Duration timeout) {
  if (absl::Status s = CheckPeer(peer, "Recv"); !s.ok()) return s;
  const std::string where =
      absl::StrCat("NCCL recv on rank ", rank_, " from rank ", peer, ", micro-batch ", microbatch);
  if (into == nullptr) return absl::InvalidArgumentError(absl::StrCat(where, ": `into` is null"));
  absl::StatusOr<std::vector<NcclTensorMeta>> expected = WireOrderOf(*into, where);
  if (!expected.ok()) return expected.status();

  const absl::Time deadline = absl::Now() + timeout;
  Impl& im = *impl_;
  if (absl::Status s = LockDirection(im.recv, deadline, where, "receive"); !s.ok()) return s;
  std::lock_guard<std::timed_mutex> recv_lock(im.recv.mu, std::adopt_lock);
  if (im.aborted.load()) return im.AbortStatus();
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  auto fail = [&](absl::Status s) {
    if (PoisonsCommunicator(s)) fabric_->Abort(s);
    return s;
  };
  size_t total = 0;
  const std::vector<size_t> offsets = PackedOffsets(*expected, &total);
  if (total > 0) {
    if (absl::Status s = Grow(im.recv.staging_host, total, device_); !s.ok()) return s;
    if (absl::Status s = Grow(im.recv.staging_device, total, device_); !s.ok()) return s;
  }
  std::vector<void*> data(expected->size(), nullptr);
  for (size_t i = 0; i < expected->size(); ++i) {
    data[i] = static_cast<char*>(im.recv.staging_device.data()) + offsets[i];
  }
  absl::StatusOr<NcclGroupHeader> header = im.RecvHeaderLocked(peer, deadline, timeout, where);
  if (!header.ok()) return fail(header.status());
  if (absl::Status s = CheckArrived(*header, peer, rank_, microbatch, *expected, where); !s.ok()) {
    if (!header->end_of_stream) im.pending_headers[peer] = *std::move(header);
    return s;
  }
  if (absl::Status s = im.RecvDataLocked(*header, data, peer, deadline, nullptr, where); !s.ok()) {
    return fail(s);
  }
  // Unstage: device buffer -> pinned buffer (on the transfer stream) -> the caller's tensors.
  if (total > 0) {
    absl::Status status = CopyDeviceToHostAsync(im.recv.staging_host.data(),
                                                im.recv.staging_device.data(), total, im.stream);
    if (status.ok()) status = im.recv.done.Record(im.stream);
    if (status.ok()) {
      status = im.WaitDone(im.recv.done, deadline, where, ": the copy to the host did not finish");
    }
    if (!status.ok()) return fail(status);
    absl::flat_hash_map<std::string, Tensor*> by_name;
    for (auto& [name, t] : *into) by_name[name] = &t;
    const char* host = static_cast<const char*>(im.recv.staging_host.data());
    for (size_t i = 0; i < expected->size(); ++i) {
      const NcclTensorMeta& m = (*expected)[i];
      std::memcpy(by_name[m.name]->raw_data(), host + offsets[i], m.bytes());
    }
  }
  bytes_received_.fetch_add(header->payload_bytes(), std::memory_order_relaxed);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Creation

namespace {

// Waits for a freshly created communicator; aborts it on failure.
absl::Status FinishInit(ncclComm_t comm, int device, absl::Time deadline, const std::string& what) {
  ScopedCudaDevice scope(device);
  if (!scope.status().ok()) return scope.status();
  return WaitCommReady(comm, deadline, what);
}

}  // namespace

absl::Status NcclCommunicator::InitResources(void* comm) {
  auto impl = std::make_unique<Impl>();
  impl->comm = AsComm(comm);  // owned from here on: ~Impl aborts it
  ScopedCudaDevice scope(device_);
  if (!scope.status().ok()) return scope.status();
  absl::StatusOr<CudaStream> stream = CudaStream::Create(device_);
  if (!stream.ok()) return stream.status();
  impl->stream = *std::move(stream);
  for (DirectionState* d : {&impl->send, &impl->recv}) {
    absl::StatusOr<CudaEvent> done = CudaEvent::Create(device_);
    if (!done.ok()) return done.status();
    d->done = *std::move(done);
    if (absl::Status s = Grow(d->header_device, kNcclHeaderBytes, device_); !s.ok()) return s;
    if (absl::Status s = Grow(d->header_host, kNcclHeaderBytes, device_); !s.ok()) return s;
  }
  impl_ = std::move(impl);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<NcclFabric>> NcclFabric::Create(const Bootstrap& mpi, int device,
                                                               const NcclOptions& options) {
  const int rank = mpi.rank();
  const int size = mpi.size();
  const std::string where = absl::StrCat("NCCL fabric on rank ", rank, " of ", size);
  const absl::Time deadline = absl::Now() + options.init_timeout;
  // Every rank takes part in every collective below, even after a local failure, so that no
  // rank waits for one that gave up.
  absl::Status local;
  if (device < 0) {
    local = absl::InvalidArgumentError(absl::StrCat(where, ": negative CUDA device ", device));
  }
  std::string id_bytes;
  if (rank == 0) {
    ncclUniqueId id;
    if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
      local.Update(NcclError(r, absl::StrCat(where, ": ncclGetUniqueId"), nullptr));
    } else {
      id_bytes.assign(id.internal, NCCL_UNIQUE_ID_BYTES);
    }
  }
  if (absl::Status s = mpi.Broadcast(&id_bytes, 0); !s.ok()) return s;
  if (local.ok() && id_bytes.size() != NCCL_UNIQUE_ID_BYTES) {
    local = absl::FailedPreconditionError(
        absl::StrCat(where, ": rank 0 could not create an NCCL unique id"));
  }
  ncclComm_t comm = nullptr;
  if (local.ok()) {
    ScopedCudaDevice scope(device);
    local = scope.status();
    if (local.ok()) {
      ncclUniqueId id;
      std::memcpy(id.internal, id_bytes.data(), NCCL_UNIQUE_ID_BYTES);
      ncclConfig_t config = NonBlockingConfig();
      local = NcclIssued(ncclCommInitRankConfig(&comm, size, id, rank, &config),
                         absl::StrCat(where, ": ncclCommInitRankConfig on device ", device), comm);
    }
    if (local.ok()) local = FinishInit(comm, device, deadline, where);
  }
  auto fabric = std::unique_ptr<NcclFabric>(new NcclFabric());
  fabric->size_ = size;
  fabric->endpoints_.resize(static_cast<size_t>(size));
  if (local.ok()) {
    auto mine = std::unique_ptr<NcclCommunicator>(new NcclCommunicator(fabric.get(), rank, device));
    local = mine->InitResources(comm);
    comm = nullptr;  // owned (and on failure aborted) by the endpoint
    fabric->endpoints_[rank] = std::move(mine);
  }
  if (comm != nullptr) {
    ScopedCudaDevice scope(device);
    ncclCommAbort(comm);
  }
  // Agree before connecting (which needs every rank), and again after.
  auto agree = [&](const char* step) -> absl::Status {
    absl::StatusOr<int> failed = mpi.MaxOverRanks(local.ok() ? 0 : 1);
    if (!failed.ok()) return failed.status();
    if (!local.ok()) return local;
    if (*failed != 0) {
      return absl::UnavailableError(absl::StrCat(where, ": ", step, " failed on another rank"));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = agree("NCCL communicator creation"); !s.ok()) return s;
  if (options.connect_all_pairs) {
    local = fabric->ConnectAllPairs(deadline);
    if (absl::Status s = agree("connecting the NCCL ranks"); !s.ok()) return s;
  }
  return fabric;
}

absl::StatusOr<std::unique_ptr<NcclFabric>> NcclFabric::CreateInProcess(
    const std::vector<int>& devices, const NcclOptions& options) {
  if (absl::Status s = ValidateInProcessDevices(devices); !s.ok()) return s;
  absl::StatusOr<int> count = CudaDeviceCount();
  if (!count.ok()) return count.status();
  for (int d : devices) {
    if (d >= *count) {
      return absl::InvalidArgumentError(
          absl::StrCat("CUDA device ", d, " requested, but ", *count, " are visible"));
    }
  }
  const int n = static_cast<int>(devices.size());
  const absl::Time deadline = absl::Now() + options.init_timeout;
  ncclUniqueId id;
  if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess) {
    return NcclError(r, "ncclGetUniqueId", nullptr);
  }
  // ncclCommInitAll cannot make non-blocking communicators; this is its documented equivalent.
  std::vector<ncclComm_t> comms(static_cast<size_t>(n), nullptr);
  absl::Status status;
  {
    // The loop below switches devices; the caller's current device is restored afterwards.
    absl::StatusOr<int> previous = CurrentCudaDevice();
    if (!previous.ok()) return previous.status();
    ncclConfig_t config = NonBlockingConfig();
    status = NcclIssued(ncclGroupStart(), "ncclGroupStart", nullptr);
    for (int i = 0; status.ok() && i < n; ++i) {
      if (cudaError_t e = cudaSetDevice(devices[i]); e != cudaSuccess) {
        status = CudaErrorToStatus(e, absl::StrCat("cudaSetDevice(", devices[i], ")"));
        break;
      }
      status = NcclIssued(
          ncclCommInitRankConfig(&comms[i], n, id, i, &config),
          absl::StrCat("ncclCommInitRankConfig(rank ", i, ", device ", devices[i], ")"), comms[i]);
    }
    status.Update(NcclIssued(ncclGroupEnd(), "ncclGroupEnd (communicator creation)", nullptr));
    cudaSetDevice(*previous);
  }
  for (int i = 0; status.ok() && i < n; ++i) {
    status = FinishInit(comms[i], devices[i], deadline,
                        absl::StrCat("NCCL rank ", i, " on device ", devices[i]));
  }
  auto fabric = std::unique_ptr<NcclFabric>(new NcclFabric());
  fabric->size_ = n;
  fabric->endpoints_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (status.ok()) {
      auto endpoint =
          std::unique_ptr<NcclCommunicator>(new NcclCommunicator(fabric.get(), i, devices[i]));
      status = endpoint->InitResources(comms[i]);
      comms[i] = nullptr;
      fabric->endpoints_[i] = std::move(endpoint);
    } else if (comms[i] != nullptr) {
      ScopedCudaDevice scope(devices[i]);
      ncclCommAbort(comms[i]);
      comms[i] = nullptr;
    }
  }
  if (status.ok() && options.connect_all_pairs) status = fabric->ConnectAllPairs(deadline);
  if (!status.ok()) return status;
  return fabric;
}

absl::Status NcclFabric::ConnectAllPairs(absl::Time deadline) {
  std::vector<NcclCommunicator*> local;
  for (auto& e : endpoints_) {
    if (e != nullptr) local.push_back(e.get());
  }
  if (size_ < 2 || local.empty()) return absl::OkStatus();
  // The fabric is not handed out yet: no other thread uses these communicators. One byte from
  // the send header buffer to every peer; the byte from peer p lands at offset p of the receive
  // header buffer (size_ <= kNcclHeaderBytes is checked below).
  if (static_cast<size_t>(size_) > kNcclHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("connect_all_pairs supports at most ",
                                                   kNcclHeaderBytes, " ranks, got ", size_));
  }
  absl::StatusOr<int> previous = CurrentCudaDevice();
  if (!previous.ok()) return previous.status();
  absl::Status status = NcclIssued(ncclGroupStart(), "ncclGroupStart (connect)", nullptr);
  for (NcclCommunicator* e : local) {
    NcclCommunicator::Impl& im = *e->impl_;
    if (status.ok()) {
      if (cudaError_t err = cudaSetDevice(e->device_); err != cudaSuccess) {
        status = CudaErrorToStatus(err, absl::StrCat("cudaSetDevice(", e->device_, ")"));
      }
    }
    for (int p = 0; status.ok() && p < size_; ++p) {
      if (p == e->rank_) continue;
      const cudaStream_t s = AsStream(im.stream);
      status = NcclIssued(ncclSend(im.send.header_device.data(), 1, ncclUint8, p, im.comm, s),
                          absl::StrCat("connecting rank ", e->rank_, " to rank ", p), im.comm);
      if (status.ok()) {
        status = NcclIssued(ncclRecv(static_cast<char*>(im.recv.header_device.data()) + p, 1,
                                     ncclUint8, p, im.comm, s),
                            absl::StrCat("connecting rank ", e->rank_, " from rank ", p), im.comm);
      }
    }
  }
  status.Update(NcclIssued(ncclGroupEnd(), "ncclGroupEnd (connect)", nullptr));
  cudaSetDevice(*previous);
  for (NcclCommunicator* e : local) {
    if (!status.ok()) break;
    NcclCommunicator::Impl& im = *e->impl_;
    ScopedCudaDevice scope(e->device_);
    const std::string what = absl::StrCat("connecting NCCL rank ", e->rank_, " to its peers");
    status = im.WaitIssuedLocked(deadline, what);
    if (status.ok()) {
      YP_CUDA_RETURN_IF_ERROR(cudaEventRecord(AsEvent(im.send.done), AsStream(im.stream)));
      status = im.WaitDone(im.send.done, deadline, what, ": a peer did not connect in time");
    }
  }
  return status;
}

#endif  // YOLOPIPE_WITH_NCCL

}  // namespace yolopipe
