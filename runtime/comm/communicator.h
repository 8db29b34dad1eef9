// Communicator: the transport-neutral interface that pipeline stage workers use to move the
// tensors crossing a cut. The in-process implementation is LocalCommunicator
// (local_communicator.h); MPI and NCCL implementations come later behind the same interface.
#ifndef YOLOPIPE_RUNTIME_COMM_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_COMM_COMMUNICATOR_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/tensor.h"

namespace yolopipe {

using MicroBatchId = int64_t;

// Named tensors, in the order the sender lists them.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// One message: every tensor that one stage sends to one peer for one micro-batch. The group is the
// unit of transfer, of matching (by micro-batch id) and of backpressure: a receiver never sees part
// of a micro-batch's tensors (DESIGN.md "Cuts": all tensors one stage sends for one micro-batch go
// in one group; with NCCL a group maps onto one ncclGroupStart/End).
struct TensorGroup {
  MicroBatchId microbatch = 0;
  NamedTensors tensors;  // names unique within the group; every tensor defined
  // End-of-stream marker: no tensors follow from this sender to this peer. It carries no tensors
  // (`tensors` must be empty) and its `microbatch` is informational (the id after the last one).
  bool end_of_stream = false;
  // Shared hand-over, for host input and output in one process (not for stage-to-stage traffic):
  // the sender promises never to modify these tensors again, so a transport in the same address
  // space may hand the receiver references instead of copies (Recv then replaces the tensors in
  // `into` with them). Transports that cannot share copy as usual.
  bool shared = false;
};

// One endpoint (a rank: one pipeline stage) of a set of `size()` endpoints.
//
// Matching: per ordered pair (sender, receiver) messages arrive in the order they were sent
// (FIFO). Senders send micro-batches to a peer in increasing id order; Recv names the micro-batch
// it expects, and receiving a different id than the next one queued from that peer is an error (a
// scheduling bug), not a reordering.
//
// Errors: once any endpoint calls Abort (or the transport fails), every blocked and every later
// Send/Recv on every endpoint returns an Aborted status that carries the abort reason.
//
// Thread-safety: all methods may be called concurrently from any thread. A stage normally has one
// thread receiving and one sending; concurrent Recvs from the same peer are allowed but then which
// caller gets which message is unspecified.
class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;  // this endpoint's index in [0, size())
  virtual int size() const = 0;

  // Sends `group` to endpoint `peer` (!= rank()). Ownership: the communicator never keeps a
  // reference to the caller's tensors beyond the call; when Send returns (OK or not) the caller may
  // overwrite or free them, and the receiver gets its own copy. Blocks while the transport cannot
  // accept the message (in-process: the pair's channel is full — backpressure) until there is room,
  // `timeout` passes (DeadlineExceeded naming the peer and micro-batch; nothing was sent), or the
  // communicator is aborted (Aborted with the reason; nothing was sent).
  // InvalidArgument for a bad peer, an undefined tensor, a duplicate name, or an end-of-stream
  // marker that carries tensors.
  virtual absl::Status Send(const TensorGroup& group, int peer, absl::Duration timeout) = 0;

  // Receives the group for `microbatch` from endpoint `peer` (!= rank()) into the caller's tensors:
  // `into` lists the expected names with allocated tensors whose dtype, shape and layout must match
  // what was sent (in any order; the set of names must be the same). The data is copied into the
  // caller's buffers; no buffer is shared with the sender. Blocks until the message arrives,
  // `timeout` passes (DeadlineExceeded naming peer and micro-batch), or the communicator is aborted
  // (Aborted with the reason).
  // Errors that leave the message queued: InvalidArgument for a bad peer or an undefined tensor in
  // `into`; FailedPrecondition when the next message from `peer` is for another micro-batch, or
  // when names, dtypes, shapes or layouts do not match (naming the tensor, what was expected and
  // what arrived). On error no tensor in `into` has been written.
  // A shared group (TensorGroup::shared) may instead replace the tensors in `into` with the
  // sender's (same names, dtypes, shapes and layouts; no bytes copied).
  // End of stream: when the next message from `peer` is an end-of-stream marker, Recv takes it and
  // returns OutOfRange("end of stream from rank p ..."), whatever `microbatch` names.
  virtual absl::Status Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                            absl::Duration timeout) = 0;

  // Wakes every blocked Send/Recv on every endpoint with an Aborted error carrying `reason` (e.g.
  // "stage 2 failed on micro-batch 7: ..."); later calls fail the same way immediately. The first
  // reason wins; later Aborts are no-ops. An OK `reason` is replaced by a generic one.
  virtual void Abort(const absl::Status& reason) = 0;

  // Payload bytes (sum of Tensor::bytes()) this endpoint has sent / received successfully.
  virtual int64_t bytes_sent() const = 0;
  virtual int64_t bytes_received() const = 0;
};

// Argument checks every transport shares (the same messages whatever the transport).
// InvalidArgument unless 0 <= peer < size and peer != rank; `what` is "Send" or "Recv".
absl::Status CheckPeerRank(int rank, int size, int peer, const char* what);
// InvalidArgument for an undefined tensor or a duplicate name, prefixed with `where`.
absl::Status CheckNamedTensors(const NamedTensors& tensors, const std::string& where);

// A set of `size()` endpoints connected to each other: one pipeline replica's stages and its host.
// In one process every endpoint is local (LocalFabric); across processes (MpiFabric) each process
// holds only its own endpoints. Thread-safe.
class Fabric {
 public:
  virtual ~Fabric() = default;
  virtual int size() const = 0;
  // Endpoint `rank` in [0, size()), owned by the fabric; nullptr when it lives in another process.
  virtual Communicator* endpoint(int rank) = 0;
  // Communicator::Abort for the whole fabric (every process's endpoints).
  virtual void Abort(const absl::Status& reason) = 0;
  // The most payload bytes the transport buffered towards endpoint `dst` at once (0 when it
  // buffers nothing, or for endpoints of other processes).
  virtual int64_t peak_queued_bytes(int dst) const = 0;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_COMMUNICATOR_H_
