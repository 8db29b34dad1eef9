// MPI transport: one MpiCommunicator per rank (process), the ranks of an MPI job (mpirun, srun).
// Only this file's .cc includes mpi.h (STYLE.md).
//
// Wire format, per TensorGroup sent to one peer (MPI guarantees order per source, tag and
// communicator, so a group's messages arrive in the order sent):
//   1. a header message (tag kHeaderTag): micro-batch id, end-of-stream flag, and for each tensor
//      its name, dtype, layout and shape;
//   2. one data message per tensor (tag kDataTag): its bytes, received straight into the
//      receiver's buffer (the one real copy). Tensors over 2 GiB are refused.
// Abort: a text message (tag kAbortTag) to every other rank. Every waiting call on every rank polls
// for it, so an Abort on one rank wakes the others with its reason ("rank 1: stage 1 failed on
// micro-batch 7: ..."), even while they wait on a third rank.
//
// Threads: every MPI call is made under one mutex and every wait is a polling loop (MPI_Test,
// MPI_Improbe), so the transport needs only MPI_THREAD_SERIALIZED, stage threads may send and
// receive concurrently, and deadlines and aborts are honoured. A rank that dies is noticed by its
// peers' deadlines (and by the launcher, which usually ends the job).
#ifndef YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/comm/communicator.h"

namespace yolopipe {

// The MPI library's lifetime in this process: MPI_Init_thread in Init, MPI_Finalize in the
// destructor. At most one per process.
class MpiRuntime {
 public:
  // Initialises MPI (asking for MPI_THREAD_MULTIPLE; at least MPI_THREAD_SERIALIZED is needed).
  // FailedPrecondition if MPI was already initialised or the thread level is too low.
  static absl::StatusOr<std::unique_ptr<MpiRuntime>> Init(int* argc, char*** argv);
  ~MpiRuntime();  // MPI_Finalize (skipped after an MPI_Abort)
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  // This rank's index among the ranks on its host (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, or
  // MPI_COMM_TYPE_SHARED), used to pick a GPU.
  int local_rank() const { return local_rank_; }

  // True when this process was started by mpirun/mpiexec or srun (their environment variables).
  static bool LaunchedByMpi();

  // Ends the whole job with `code` after printing `message` to stderr (MPI_Abort). Does not return.
  [[noreturn]] static void AbortJob(const std::string& message, int code);

 private:
  MpiRuntime() = default;
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
};

class MpiCommunicator final : public Communicator {
 public:
  static constexpr int kHeaderTag = 101;
  static constexpr int kDataTag = 102;
  static constexpr int kAbortTag = 103;

  // A communicator over all ranks of the job (a duplicate of MPI_COMM_WORLD, so its messages never
  // mix with anyone else's). `runtime` must outlive it.
  static absl::StatusOr<std::unique_ptr<MpiCommunicator>> Create(const MpiRuntime& runtime);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  absl::Status Send(const TensorGroup& group, int peer, absl::Duration timeout) override;
  absl::Status Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                    absl::Duration timeout) override;
  void Abort(const absl::Status& reason) override;
  int64_t bytes_sent() const override { return bytes_sent_.load(std::memory_order_relaxed); }
  int64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }

  // The reason this rank is aborted (OK while not): its own Abort, or one received from a peer.
  absl::Status abort_status() const;

 private:
  struct Header;
  MpiCommunicator() = default;
  absl::Status CheckPeer(int peer, const char* what) const;
  // Polls pending abort messages (requires mu_); true once aborted.
  bool PollAbortLocked();
  // Waits (polling) until every request completes, the deadline passes or an abort arrives.
  // Unfinished requests are cancelled on failure. `what` names the operation in errors.
  // `requests` is a std::vector<MPI_Request>*; `keep_alive` holds buffers that MPI may still read
  // or write if the wait fails (kept until the communicator is destroyed).
  absl::Status WaitAll(void* requests, absl::Time deadline, const std::string& what,
                       std::vector<Tensor> keep_alive);

  int rank_ = 0;
  int size_ = 1;
  void* comm_ = nullptr;  // MPI_Comm, heap-allocated to keep mpi.h out of this header

  mutable std::mutex mu_;            // every MPI call
  absl::Status abort_status_;        // guarded by mu_
  // Requests left behind (abort notices, operations that timed out or were aborted) and the
  // buffers they use; released in the destructor. Guarded by mu_.
  void* orphans_ = nullptr;  // std::vector<MPI_Request>*
  std::vector<std::shared_ptr<const std::string>> orphan_texts_;
  std::vector<Tensor> orphan_tensors_;
  // A header taken from the wire whose Recv failed validation: the next Recv from that peer uses it
  // (the message stays "queued", as Communicator requires). Guarded by mu_.
  std::map<int, std::shared_ptr<Header>> pending_headers_;
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_
