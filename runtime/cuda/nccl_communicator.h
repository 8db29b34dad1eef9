// NCCL transport: NcclFabric / NcclCommunicator implement Fabric / Communicator (runtime/comm/
// communicator.h) for GPU pipeline stages, one NCCL communicator per rank. Plain C++: including
// this needs no CUDA or NCCL headers (handles travel as void*).
//
// Two ways to build a fabric:
//   - NcclFabric::Create(bootstrap, device): one rank per process (mpirun / srun, or a script with
//     FileBootstrap). Rank 0 makes the ncclUniqueId and Bootstrap::Broadcast hands it to the others;
//     endpoint r is rank r.
//   - NcclFabric::CreateInProcess(devices): one process, endpoint i on GPU devices[i], each
//     endpoint driven by its own thread. NCCL refuses two ranks on one GPU inside one process
//     ("Duplicate GPU"), so the devices must be distinct (InvalidArgument otherwise).
// Communicators are created non-blocking (ncclConfig_t::blocking = 0) so that no NCCL call can
// block the host without a deadline: every wait polls ncclCommGetAsyncError / cudaEventQuery.
// (This is why CreateInProcess initialises the ranks with ncclCommInitRankConfig inside one
// ncclGroupStart/End rather than ncclCommInitAll, which has no config argument.)
//
// Device tensors (design choice): Communicator's Send/Recv take host Tensors (base/tensor.h, whose
// Buffer is host memory), which cannot name device memory. So the device path is an NCCL-specific
// API, SendDevice / RecvDevice, taking DeviceTensorRef {data, dtype, shape, layout} views of device
// memory with the same semantics as Send / Recv. The Communicator overrides Send / Recv stage the
// host tensors through a pinned host buffer and a device buffer (memcpy + cudaMemcpyAsync on the
// transfer stream), so host code (and tests) can use an NCCL fabric through the plain interface.
//
// Wire format, per group sent to one peer (ncclSend/ncclRecv pair by peer and count, in order):
//   1. one ncclGroupStart/End holding one transfer: a fixed-size header of kNcclHeaderBytes
//      (NcclGroupHeader: magic, micro-batch id, end-of-stream flag, and each tensor's name, dtype,
//      layout and shape). It travels alone because the receiver must read it before it can post
//      matching receives: an end-of-stream marker carries no data, and a mismatched ncclRecv would
//      hang or corrupt instead of failing.
//   2. unless end-of-stream: one ncclGroupStart/End holding every tensor's bytes, in wire order
//      (tensors sorted by name, so both sides derive the same order independently; 0-byte tensors
//      are skipped on both sides).
// The receiver validates the header against the tensors it expects before posting step 2; on a
// mismatch (FailedPrecondition) the header stays pending for the next Recv from that peer, as with
// the MPI transport. The sender's Send completes only when the receiver has taken the data, so a
// mismatch that no later Recv resolves ends in the sender's deadline.
//
// Streams and events: every endpoint has one dedicated transfer stream (non-blocking, on its
// device). SendDevice makes the transfer stream wait on the producer's `ready` event before the
// sends; RecvDevice records `received` on the transfer stream after the receives, so a consumer
// stream can order itself after them with CudaStream::WaitEvent. Both calls return only once the
// transfer has completed (polling with the deadline), so the Communicator contract holds: after
// Send returns the caller may overwrite its buffers; after Recv returns the data is in place.
//
// No hangs: every wait polls with the caller's deadline. On a deadline, an NCCL error or an
// Abort, the endpoint's NCCL communicator is aborted (ncclCommAbort) and the call returns a
// Status naming the ranks and the micro-batch; every local endpoint of the fabric is then aborted
// too (later calls return Aborted with that reason). Unlike the MPI transport, an NCCL fabric
// cannot deliver an abort notice to other processes: their pending transfers with this rank fail
// through NCCL's own error detection or their deadlines. A multi-process runner should also abort
// through its MPI control plane (MpiFabric::Abort or MpiRuntime::AbortJob).
//
// Thread-safety: all methods may be called from any thread. An NCCL communicator is not
// thread-safe, so each endpoint serialises its NCCL calls (a timed lock that honours deadlines),
// and all of an endpoint's transfers queue on its one stream in the order they were issued: a
// transfer issued while an earlier one waits for its peer starts only after it. Concurrent Sends
// (or concurrent Recvs) on one endpoint run one at a time.
//
// Without --config=cuda, Create / CreateInProcess return FailedPrecondition("... built without
// CUDA support") after validating their arguments, and no NcclCommunicator can exist.
#ifndef YOLOPIPE_RUNTIME_CUDA_NCCL_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_CUDA_NCCL_COMMUNICATOR_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/dtype.h"
#include "base/tensor.h"
#include "runtime/comm/bootstrap.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {

// A view of a dense tensor in device memory (not owned). `data` must stay valid until the call
// that uses it returns.
struct DeviceTensorRef {
  void* data = nullptr;
  DType dtype = DType::kUndefined;
  Shape shape;
  Layout layout = Layout::kPlain;

  size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype); }
};

// Named device tensors, in the order the caller lists them (the wire order is by name).
using DeviceNamedTensors = std::vector<std::pair<std::string, DeviceTensorRef>>;

// TensorGroup for device tensors (no `shared` hand-over: device memory is always copied).
struct DeviceTensorGroup {
  MicroBatchId microbatch = 0;
  DeviceNamedTensors tensors;  // names unique; data non-null unless the tensor has 0 bytes
  bool end_of_stream = false;  // then `tensors` must be empty
};

// One peer's share of a grouped, header-less device transfer (SendDeviceGroup / RecvDeviceGroup).
struct DevicePeerTransfer {
  int peer = -1;
  DeviceNamedTensors tensors;  // moved in wire order (sorted by name)
};

// ---- Wire header (pure host code, built and tested everywhere) ----

// Size of the header transfer that precedes every group, in bytes. The encoded descriptors of a
// group's tensors must fit (about 100 bytes per 4-D tensor with a 30-character name); larger
// groups are refused with InvalidArgument.
inline constexpr size_t kNcclHeaderBytes = 16384;

struct NcclTensorMeta {
  std::string name;
  DType dtype = DType::kUndefined;
  Layout layout = Layout::kPlain;
  Shape shape;

  size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * DTypeSize(dtype); }
};

struct NcclGroupHeader {
  MicroBatchId microbatch = 0;
  bool end_of_stream = false;
  std::vector<NcclTensorMeta> tensors;  // in wire order (sorted by name)

  int64_t payload_bytes() const;
};

// Exactly kNcclHeaderBytes bytes (zero-padded). InvalidArgument when the descriptors do not fit,
// naming `where`.
absl::StatusOr<std::string> EncodeNcclGroupHeader(const NcclGroupHeader& header,
                                                  const std::string& where);
// Parses a received header; DataLoss("<where>: malformed NCCL group header (...)") on a bad magic,
// truncation, an unknown dtype or layout, a negative dimension or too many tensors.
absl::StatusOr<NcclGroupHeader> DecodeNcclGroupHeader(const void* bytes, size_t size,
                                                      const std::string& where);

// OK when a group that arrived (`sent`) carries exactly the tensors `expected` (both in wire
// order) with equal dtypes, layouts and shapes; otherwise FailedPrecondition naming the first
// tensor that was sent but not expected, expected but not sent, or different (with both
// descriptions).
absl::Status MatchNcclGroup(const NcclGroupHeader& sent,
                            const std::vector<NcclTensorMeta>& expected, const std::string& where);

// The metadata of host / device tensors in wire order (sorted by name). InvalidArgument naming
// `where` for an undefined host tensor, a device tensor with null data and bytes > 0, an undefined
// dtype, a negative dimension or a duplicate name.
absl::StatusOr<std::vector<NcclTensorMeta>> WireOrderOf(const NamedTensors& tensors,
                                                        const std::string& where);
absl::StatusOr<std::vector<NcclTensorMeta>> WireOrderOf(const DeviceNamedTensors& tensors,
                                                        const std::string& where);

// One tensor of a grouped device transfer, as it is issued.
struct DeviceWireTransfer {
  int peer = -1;
  std::string name;
  void* data = nullptr;
  size_t bytes = 0;
};

// SendDeviceGroup / RecvDeviceGroup's argument check for rank `rank` of `size`: every peer in
// range, not `rank` and listed once; every tensor as WireOrderOf checks. Returns the transfers in
// the order they are issued: peers ascending, each peer's tensors in wire order, 0-byte tensors
// left out (on both sides, so they never need matching). InvalidArgument naming `where` otherwise.
// Every implementation of the grouped transfers (NCCL, the pipeline's test emulation) issues
// exactly this list.
absl::StatusOr<std::vector<DeviceWireTransfer>> DeviceGroupTransfers(
    int rank, int size, const std::vector<DevicePeerTransfer>& transfers, const std::string& where);

// How a grouped transfer is named in errors: "NCCL grouped send from rank 0 to rank(s) 1,2,
// micro-batch 7" (receives: "receive on rank 2 from rank(s) ...").
std::string DescribeDeviceGroup(int rank, bool is_send,
                                const std::vector<DevicePeerTransfer>& transfers,
                                MicroBatchId microbatch);

// CreateInProcess's argument check: at least one device, none negative, none listed twice.
absl::Status ValidateInProcessDevices(const std::vector<int>& devices);

// ---- Transport ----

struct NcclOptions {
  // Deadline for communicator creation (ncclCommInitRankConfig until it leaves ncclInProgress).
  absl::Duration init_timeout = absl::Seconds(120);
  // Connect every pair of ranks at creation (one byte each way, all in one group, within
  // init_timeout). NCCL otherwise connects a pair on its first transfer, and a rank waiting for
  // that holds its communicator until the peer joins; two ranks that each start by sending to
  // the other (host and stage of a one-stage pipeline) would then wait for each other until the
  // deadline.
  bool connect_all_pairs = true;
};

class NcclFabric;

// One endpoint (NCCL rank) of an NcclFabric. See the file comment for semantics.
class NcclCommunicator final : public Communicator {
 public:
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override;
  int device() const { return device_; }

  // Communicator (host tensors, staged through pinned host and device buffers). A shared group is
  // copied like any other.
  absl::Status Send(const TensorGroup& group, int peer, absl::Duration timeout) override;
  absl::Status Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                    absl::Duration timeout) override;

  // Device tensors on this endpoint's device. `ready` (optional, same device): the sends start
  // after the work it captured. Returns once the data has been handed to NCCL and the transfer
  // completed. Errors as for Send, plus InvalidArgument for null data with bytes > 0.
  absl::Status SendDevice(const DeviceTensorGroup& group, int peer, absl::Duration timeout,
                          const CudaEvent* ready = nullptr);
  // Receives into caller-allocated device memory (`into`: expected names, dtypes, shapes and
  // layouts, any order). `received` (optional, same device) is recorded on the transfer stream
  // after the receives. Errors, end of stream and pending-header rules as for Recv.
  absl::Status RecvDevice(int peer, MicroBatchId microbatch, DeviceNamedTensors* into,
                          absl::Duration timeout, CudaEvent* received = nullptr);

  // Data only, for callers that agree on what moves by other means (the pipeline announces each
  // micro-batch, with its byte counts, on its host control fabric first, so that no receive is
  // ever posted before its sender is ready to send). Every peer's tensors go in ONE
  // ncclGroupStart/End, peers ascending and each peer's tensors in wire order; no header travels,
  // so the receiver must post exactly the tensors the sender sends (NCCL cannot detect a
  // mismatch). `microbatch` only names the transfer in errors. Returns once all of it has
  // completed. Errors (DeviceGroupTransfers', timeouts, aborts, poisoning) as for SendDevice /
  // RecvDevice; an empty list is a no-op.
  absl::Status SendDeviceGroup(const std::vector<DevicePeerTransfer>& sends,
                               MicroBatchId microbatch, absl::Duration timeout);
  absl::Status RecvDeviceGroup(const std::vector<DevicePeerTransfer>& receives,
                               MicroBatchId microbatch, absl::Duration timeout);

  void Abort(const absl::Status& reason) override;
  int64_t bytes_sent() const override { return bytes_sent_.load(std::memory_order_relaxed); }
  int64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }
  // OK while usable; otherwise why it was aborted.
  absl::Status abort_status() const;

 private:
  friend class NcclFabric;
  struct Impl;
  NcclCommunicator(NcclFabric* fabric, int rank, int device);
  // Takes ownership of `comm` (an initialised ncclComm_t; aborted if this fails) and creates the
  // transfer stream, events and header buffers.
  absl::Status InitResources(void* comm);
  absl::Status CheckPeer(int peer, const char* what) const;
  // SendDeviceGroup / RecvDeviceGroup.
  absl::Status DeviceGroup(bool is_send, const std::vector<DevicePeerTransfer>& transfers,
                           MicroBatchId microbatch, absl::Duration timeout);
  // Aborts this endpoint's NCCL communicator (once) and records `reason` (the first one wins).
  void AbortLocal(const absl::Status& reason);

  NcclFabric* fabric_;
  int rank_;
  int device_;
  std::unique_ptr<Impl> impl_;  // NCCL handle, stream, staging buffers (CUDA build only)
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
};

class NcclFabric final : public Fabric {
 public:
  // Collective over the job's ranks (MpiRuntime under mpirun, or FileBootstrap for ranks started
  // without MPI): rank r becomes endpoint r, using GPU `device` (normally its local rank modulo
  // the visible devices). Every rank learns whether all ranks succeeded (an error on one rank is
  // an error on all).
  static absl::StatusOr<std::unique_ptr<NcclFabric>> Create(const Bootstrap& mpi, int device,
                                                            const NcclOptions& options = {});
  // One process: endpoint i on devices[i] (distinct). Needs devices.size() GPUs.
  static absl::StatusOr<std::unique_ptr<NcclFabric>> CreateInProcess(
      const std::vector<int>& devices, const NcclOptions& options = {});

  ~NcclFabric() override;
  NcclFabric(const NcclFabric&) = delete;
  NcclFabric& operator=(const NcclFabric&) = delete;

  int size() const override { return size_; }
  // This process's endpoints; nullptr for the others' and out of range.
  NcclCommunicator* endpoint(int rank) override;
  // Aborts every endpoint of this process (see the file comment for other processes).
  void Abort(const absl::Status& reason) override;
  int64_t peak_queued_bytes(int dst) const override { return 0; }  // NCCL buffers internally

 private:
  NcclFabric() = default;
  // NcclOptions::connect_all_pairs for this process's endpoints (all of them in one group).
  absl::Status ConnectAllPairs(absl::Time deadline);

  int size_ = 0;
  std::vector<std::unique_ptr<NcclCommunicator>> endpoints_;  // nullptr for other processes'
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_NCCL_COMMUNICATOR_H_
