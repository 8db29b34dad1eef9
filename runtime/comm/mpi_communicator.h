// MPI transport: one MpiCommunicator per rank (process), the ranks of an MPI job (mpirun, srun).
// Only this file's .cc includes mpi.h (STYLE.md).
//
// Wire format, per TensorGroup sent to one peer (MPI guarantees order per source, tag and
// communicator, so a group's messages arrive in the order sent):
//   1. a header message: micro-batch id, end-of-stream flag, and for each tensor its name, dtype,
//      layout and shape;
//   2. one data message per tensor: its bytes, received straight into the
//      receiver's buffer (the one real copy). Tensors over 2 GiB are refused.
// Abort: a text notice to every other rank of the fabric. Every waiting call on every rank polls
// for it, so an Abort on one rank wakes the others with its reason ("rank 1: stage 1 failed on
// micro-batch 7: ..."), even while they wait on a third rank.
//
// Threads: every MPI call in the process is made under one mutex and every wait is a polling loop
// (MPI_Testall, MPI_Improbe with short sleeps), so the transport needs only
// MPI_THREAD_SERIALIZED, stage threads may send and receive concurrently, and deadlines and aborts
// are honoured. A rank that dies is noticed by its
// peers' deadlines (and by the launcher, which usually ends the job).
#ifndef YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_
#define YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/comm/bootstrap.h"
#include "runtime/comm/communicator.h"

namespace yolopipe {

// The MPI library's lifetime in this process: MPI_Init_thread in Init, MPI_Finalize in the
// destructor. At most one per process.
class MpiRuntime final : public Bootstrap {
 public:
  // Initialises MPI (asking for MPI_THREAD_MULTIPLE; at least MPI_THREAD_SERIALIZED is needed).
  // FailedPrecondition if MPI was already initialised or the thread level is too low.
  static absl::StatusOr<std::unique_ptr<MpiRuntime>> Init(int* argc, char*** argv);
  ~MpiRuntime() override;  // MPI_Finalize (skipped after an MPI_Abort)
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  // This rank's index among the ranks on its host (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, or
  // MPI_COMM_TYPE_SHARED), used to pick a GPU.
  int local_rank() const { return local_rank_; }

  // Collective: `bytes` on every rank becomes `root`'s.
  absl::Status Broadcast(std::string* bytes, int root) const override;
  // Collective: the largest of every rank's `value`.
  absl::StatusOr<int> MaxOverRanks(int value) const override;

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

class MpiFabric;

// One endpoint of an MpiFabric (or, from Create, rank r of a fabric spanning the job's ranks).
class MpiCommunicator final : public Communicator {
 public:
  // A fabric over all ranks (endpoint r on world rank r), owned by the returned communicator:
  // this rank's endpoint. Collective.
  static absl::StatusOr<std::unique_ptr<MpiCommunicator>> Create(const MpiRuntime& runtime);
  ~MpiCommunicator() override;

  int rank() const override { return endpoint_; }
  int size() const override;
  absl::Status Send(const TensorGroup& group, int peer, absl::Duration timeout) override;
  absl::Status Recv(int peer, MicroBatchId microbatch, NamedTensors* into,
                    absl::Duration timeout) override;
  void Abort(const absl::Status& reason) override;
  int64_t bytes_sent() const override { return bytes_sent_.load(std::memory_order_relaxed); }
  int64_t bytes_received() const override {
    return bytes_received_.load(std::memory_order_relaxed);
  }
  absl::Status abort_status() const;

 private:
  friend class MpiFabric;
  MpiCommunicator(MpiFabric* fabric, int endpoint) : fabric_(fabric), endpoint_(endpoint) {}
  absl::Status CheckPeer(int peer, const char* what) const;

  MpiFabric* fabric_;
  int endpoint_;
  std::unique_ptr<MpiFabric> owned_fabric_;  // Create's own fabric
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
};


// Endpoints spread over the ranks of an MPI job: endpoint e lives on world rank
// endpoint_to_world[e] (several endpoints may share a rank, e.g. a pipeline's host and its first
// stage on rank 0). Each fabric has its own duplicate of MPI_COMM_WORLD, and every (sender,
// receiver) endpoint pair its own tags, so fabrics and pairs never mix messages.
class MpiFabric final : public Fabric {
 public:
  // Collective: every rank of the job calls it, in the same order, with the same map.
  // InvalidArgument for an empty map, a world rank out of range, or more endpoints than MPI's tag
  // space allows.
  static absl::StatusOr<std::unique_ptr<MpiFabric>> Create(const MpiRuntime& runtime,
                                                           std::vector<int> endpoint_to_world);
  ~MpiFabric() override;
  MpiFabric(const MpiFabric&) = delete;
  MpiFabric& operator=(const MpiFabric&) = delete;

  int size() const override { return static_cast<int>(endpoint_to_world_.size()); }
  // This process's endpoints; nullptr for the others'.
  MpiCommunicator* endpoint(int rank) override;
  void Abort(const absl::Status& reason) override;
  int64_t peak_queued_bytes(int dst) const override { return 0; }  // nothing is buffered
  // The reason this fabric is aborted (OK while not): a local Abort, or a notice from a peer.
  absl::Status abort_status() const;
  int world_rank_of(int endpoint) const { return endpoint_to_world_[endpoint]; }

 private:
  friend class MpiCommunicator;
  struct Header;
  MpiFabric() = default;
  // Requires the process-wide MPI lock. Polls for abort notices; true once aborted.
  bool PollAbortLocked();
  // Waits (polling) until every request completes, the deadline passes or an abort arrives.
  // `requests` is a std::vector<MPI_Request>*; `keep_alive` holds buffers MPI may still use if the
  // wait fails (kept until the fabric is destroyed).
  absl::Status WaitAll(void* requests, absl::Time deadline, const std::string& what,
                       std::vector<Tensor> keep_alive);
  int HeaderTag(int src, int dst) const;
  int DataTag(int src, int dst) const { return HeaderTag(src, dst) + 1; }

  int world_rank_ = 0;
  std::vector<int> endpoint_to_world_;
  void* comm_ = nullptr;  // MPI_Comm*
  std::vector<std::unique_ptr<MpiCommunicator>> endpoints_;  // nullptr for other ranks'
  // Guarded by the process-wide MPI lock:
  absl::Status abort_status_;
  void* orphans_ = nullptr;  // std::vector<MPI_Request>*: abandoned requests, freed at the end
  std::vector<std::shared_ptr<const std::string>> orphan_texts_;
  std::vector<Tensor> orphan_tensors_;
  // A header whose Recv failed validation, per (src, dst) endpoint pair: the next Recv uses it.
  std::map<std::pair<int, int>, std::shared_ptr<Header>> pending_headers_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_COMM_MPI_COMMUNICATOR_H_
