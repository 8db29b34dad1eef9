// Host emulations of the pipeline's device path (runtime/pipeline/device_path.h), for tests on
// machines without a GPU: EmulatedStageRunner stands in for a CudaExecutor with I/O sets, and
// EmulatedLinkFabric for an in-process NCCL fabric. "Device" memory is plain host memory.
//
// The fabric exists to catch deadlocks and ordering bugs in the pipeline's protocol, so it is as
// strict as NCCL, not more forgiving: a rank's groups run one after another in issue order, a
// transfer moves only when the groups on both sides are running, and what NCCL would corrupt or
// hang on (matched transfers of different sizes) is refused loudly instead.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_TESTING_EMULATED_DEVICE_PATH_H_
#define YOLOPIPE_RUNTIME_PIPELINE_TESTING_EMULATED_DEVICE_PATH_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "runtime/cuda/nccl_communicator.h"
#include "runtime/executor.h"
#include "runtime/pipeline/device_path.h"

namespace yolopipe {
namespace testing {

// A DeviceStageRunner over a CPU Executor. Every I/O set holds one float32 plain host Tensor per
// graph input and per graph output (the graph's shapes, in graph order), allocated once; the
// buffer addresses stay valid while the runner lives.
//
// RunSet follows CudaExecutor::RunSet: a defined host input (float32, exactly the input's shape,
// plain or NHWC layout) is copied into the set's input buffer, an undefined one means the buffer
// already holds the input; the graph runs on the set's input buffers; every output is copied into
// the set's output buffer (plain layout) and returned as a new host tensor when download[o].
// Unlike the CUDA executor, every input is validated before any is copied, so a refused call
// leaves the set's buffers as they were.
//
// Thread-safe: RunSet calls are serialised (one executor). The buffers are not guarded: as with
// device memory, the caller must not write a set's buffers while a RunSet on that set runs.
class EmulatedStageRunner final : public DeviceStageRunner {
 public:
  // `stage_graph`: prepared (graph/prepare.h), every graph input and output float32 with a
  // concrete shape (InvalidArgument naming the tensor otherwise). `io_sets` >= 1. The executor
  // uses the kCpu backend with `num_threads` threads; Executor::Create's errors pass through.
  static absl::StatusOr<std::unique_ptr<DeviceStageRunner>> Create(const Graph& stage_graph,
                                                                   int io_sets,
                                                                   int num_threads = 1);

  int io_sets() const override { return static_cast<int>(sets_.size()); }
  // Host address of input / output `i` of set `set`; nullptr when out of range.
  void* input_buffer(int set, int i) const override;
  void* output_buffer(int set, int i) const override;
  // InvalidArgument for a bad set, a `host_inputs` / `download` entry count that does not match
  // the graph (download may be empty: nothing returned), or a defined input with the wrong dtype
  // or shape; the executor's errors pass through.
  absl::StatusOr<std::vector<Tensor>> RunSet(int set, absl::Span<const Tensor> host_inputs,
                                             const std::vector<bool>& download) override;
  // Executor weights + arena + workspace + every set's input and output buffers, in bytes.
  int64_t held_bytes() const override;

 private:
  struct IoSet {
    std::vector<Tensor> inputs;   // one per graph input, graph order
    std::vector<Tensor> outputs;  // one per graph output, graph order
  };

  EmulatedStageRunner() = default;

  std::unique_ptr<Executor> executor_;
  std::vector<std::string> input_names_;
  std::vector<IoSet> sets_;
  std::mutex mu_;  // serialises RunSet
};

// A DeviceLinkFabric whose `size` ranks all live in this process, with NCCL's grouped-transfer
// semantics (NcclCommunicator::SendDeviceGroup / RecvDeviceGroup):
//   - A call validates its arguments with DeviceGroupTransfers (InvalidArgument, nothing issued);
//     a group without bytes to move returns OK at once. Otherwise it issues one group.
//   - As in NcclCommunicator, a rank's sends are issued one at a time (a send call waits until
//     the rank's previous send call has returned; likewise receives). Waiting past the deadline
//     for that gives DeadlineExceeded without poisoning anything (nothing was issued).
//   - Each rank runs its issued groups strictly in issue order, sends and receives alike: a group
//     is active once every group issued before it on that rank has completed (NCCL serialises a
//     communicator's work on its stream).
//   - Per ordered pair (A, B), the k-th transfer A sends to B matches the k-th transfer B
//     receives from A, transfers taken in DeviceGroupTransfers' order (peers ascending, each
//     peer's tensors by name, 0-byte tensors skipped on both sides). A matched transfer is copied
//     (memcpy, sender's pointer to receiver's) once both groups holding it are active; a group
//     completes when all its transfers have.
//   - Matched transfers of different sizes: DataLoss for both calls, naming the ranks, the
//     micro-batches and both sizes (NCCL would corrupt memory or hang).
//   - A call returns once its group completed (OK), failed, the fabric was aborted (Aborted with
//     the reason), or its deadline passed (DeadlineExceeded naming the ranks and micro-batch).
//   - A DataLoss or deadline poisons the fabric like an NCCL communicator error does in
//     NcclCommunicator: every endpoint is aborted with that error as the reason, so the other
//     blocked calls wake with Aborted instead of waiting for their own deadlines.
//   - Abort(reason) aborts every endpoint (the first reason wins): blocked calls return Aborted
//     containing the reason, abort_status() reports it, and later calls fail at once.
//   - bytes_received(): payload bytes of the endpoint's completed receive groups.
// Thread-safety: every method may be called from any thread; one mutex guards the whole fabric
// (copies run under it). Callers' buffers must stay valid until their call returns. The fabric
// must outlive every call on its endpoints.
class EmulatedLinkFabric final : public DeviceLinkFabric {
 public:
  // `size` >= 1 ranks (InvalidArgument otherwise).
  static absl::StatusOr<std::unique_ptr<DeviceLinkFabric>> Create(int size);
  ~EmulatedLinkFabric() override;
  EmulatedLinkFabric(const EmulatedLinkFabric&) = delete;
  EmulatedLinkFabric& operator=(const EmulatedLinkFabric&) = delete;

  int size() const override { return size_; }
  // nullptr when out of range.
  DeviceLink* endpoint(int rank) override;
  void Abort(const absl::Status& reason) override;

  // For tests: groups issued on `rank` that have not completed (0 after an abort; -1 when out of
  // range). Lets a test wait until a call has issued its group before it issues the next one.
  int groups_in_flight(int rank) const;

 private:
  class Endpoint;
  struct Transfer;
  struct Group;
  struct RankState {
    std::deque<Group*> groups;  // issued, not completed, in issue order; front() is active
    bool send_in_progress = false;
    bool receive_in_progress = false;
    int64_t bytes_received = 0;
  };

  explicit EmulatedLinkFabric(int size);

  // SendDeviceGroup / RecvDeviceGroup of `rank`.
  absl::Status RunGroup(int rank, bool is_send, const std::vector<DevicePeerTransfer>& transfers,
                        MicroBatchId microbatch, absl::Duration timeout);
  int64_t BytesReceived(int rank) const;
  absl::Status AbortStatus() const;

  // Queues `group` on its rank and its transfers on their pairs.
  void IssueLocked(Group& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies every matched transfer whose groups are both active, repeatedly (a completed group
  // activates the next one on its rank), until nothing more can move; then wakes the waiters.
  void ProgressLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IsActiveLocked(const Group& group) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishTransferLocked(Group& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the reason (first one wins), drops every queued group and transfer, wakes everyone.
  void AbortLocked(const absl::Status& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits for a state change or `deadline`.
  void WaitLocked(std::unique_lock<std::mutex>& lock, absl::Time deadline);
  // Index of the ordered pair (src, dst) in pending_sends_ / pending_receives_.
  int PairIndex(int src, int dst) const { return src * size_ + dst; }

  const int size_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<RankState> ranks_ ABSL_GUARDED_BY(mu_);
  // Per ordered pair (src, dst): src's issued sends to dst and dst's issued receives from src
  // that have not executed, in issue order.
  std::vector<std::deque<Transfer*>> pending_sends_ ABSL_GUARDED_BY(mu_);
  std::vector<std::deque<Transfer*>> pending_receives_ ABSL_GUARDED_BY(mu_);
  absl::Status abort_status_ ABSL_GUARDED_BY(mu_);
};

// Both factories, for PipelineOptions::device_path_for_testing: EmulatedStageRunner::Create with
// `num_threads` and EmulatedLinkFabric::Create.
DevicePathForTesting EmulatedDevicePath(int num_threads = 1);

}  // namespace testing
}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_TESTING_EMULATED_DEVICE_PATH_H_
