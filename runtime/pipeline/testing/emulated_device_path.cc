#include "runtime/pipeline/testing/emulated_device_path.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/dtype.h"

namespace yolopipe {
namespace testing {

// ---- EmulatedStageRunner ----------------------------------------------------------------------

namespace {

// The shape of graph input or output `name`: InvalidArgument unless it is float32 and concrete.
absl::StatusOr<Shape> BoundaryShape(const Graph& graph, const std::string& name, const char* what) {
  const Value* value = graph.FindValue(name);
  if (value == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("emulated stage runner: graph ", what, " '", name, "' has no description"));
  }
  if (value->dtype != DType::kFloat32 || !IsFullyKnown(value->shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat("emulated stage runner: graph ", what, " '", name,
                     "' must be float32 with a concrete shape, got ", DTypeName(value->dtype),
                     ShapeToString(value->shape)));
  }
  return value->shape;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceStageRunner>> EmulatedStageRunner::Create(
    const Graph& stage_graph, int io_sets, int num_threads) {
  if (io_sets < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("emulated stage runner: io_sets must be >= 1, got ", io_sets));
  }
  std::vector<Shape> input_shapes, output_shapes;
  for (const std::string& name : stage_graph.inputs()) {
    absl::StatusOr<Shape> shape = BoundaryShape(stage_graph, name, "input");
    if (!shape.ok()) return shape.status();
    input_shapes.push_back(*std::move(shape));
  }
  for (const std::string& name : stage_graph.outputs()) {
    absl::StatusOr<Shape> shape = BoundaryShape(stage_graph, name, "output");
    if (!shape.ok()) return shape.status();
    output_shapes.push_back(*std::move(shape));
  }

  ExecutorOptions options;
  options.backend = ops::Backend::kCpu;
  options.num_threads = num_threads;
  absl::StatusOr<std::unique_ptr<Executor>> executor = Executor::Create(stage_graph, options);
  if (!executor.ok()) return executor.status();

  std::unique_ptr<EmulatedStageRunner> runner(new EmulatedStageRunner());
  runner->executor_ = *std::move(executor);
  runner->input_names_ = stage_graph.inputs();
  for (int s = 0; s < io_sets; ++s) {
    IoSet set;
    for (const Shape& shape : input_shapes) set.inputs.emplace_back(DType::kFloat32, shape);
    for (const Shape& shape : output_shapes) set.outputs.emplace_back(DType::kFloat32, shape);
    runner->sets_.push_back(std::move(set));
  }
  return std::unique_ptr<DeviceStageRunner>(std::move(runner));
}

void* EmulatedStageRunner::input_buffer(int set, int i) const {
  if (set < 0 || set >= io_sets()) return nullptr;
  const std::vector<Tensor>& inputs = sets_[set].inputs;
  if (i < 0 || i >= static_cast<int>(inputs.size())) return nullptr;
  // The tensors are const only to the runner's interface; the caller writes "device" memory.
  return const_cast<void*>(inputs[i].raw_data());
}

void* EmulatedStageRunner::output_buffer(int set, int i) const {
  if (set < 0 || set >= io_sets()) return nullptr;
  const std::vector<Tensor>& outputs = sets_[set].outputs;
  if (i < 0 || i >= static_cast<int>(outputs.size())) return nullptr;
  return const_cast<void*>(outputs[i].raw_data());
}

absl::StatusOr<std::vector<Tensor>> EmulatedStageRunner::RunSet(
    int set, absl::Span<const Tensor> host_inputs, const std::vector<bool>& download) {
  if (set < 0 || set >= io_sets()) {
    return absl::InvalidArgumentError(
        absl::StrCat("emulated stage runner: I/O set ", set, " out of range [0, ", io_sets(), ")"));
  }
  IoSet& io = sets_[set];
  if (!download.empty() && download.size() != io.outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("emulated stage runner: download lists ",
                                                   download.size(), " outputs, the graph has ",
                                                   io.outputs.size()));
  }
  if (host_inputs.size() != io.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "emulated stage runner: expected ", io.inputs.size(), " inputs, got ", host_inputs.size()));
  }
  // Validate and convert every given input before copying any.
  std::vector<Tensor> plain_inputs(host_inputs.size());
  for (size_t i = 0; i < host_inputs.size(); ++i) {
    const Tensor& given = host_inputs[i];
    if (!given.defined()) continue;  // resident: already in the set's buffer
    if (given.dtype() != DType::kFloat32 || given.shape() != io.inputs[i].shape()) {
      return absl::InvalidArgumentError(
          absl::StrCat("emulated stage runner: input '", input_names_[i], "' must be float32",
                       ShapeToString(io.inputs[i].shape()), ", got ", given.DebugString()));
    }
    absl::StatusOr<Tensor> plain = given.ToLayout(Layout::kPlain);
    if (!plain.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "emulated stage runner: input '", input_names_[i], "': ", plain.status().message()));
    }
    plain_inputs[i] = *std::move(plain);
  }

  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < plain_inputs.size(); ++i) {
    if (!plain_inputs[i].defined()) continue;
    std::memcpy(io.inputs[i].raw_data(), plain_inputs[i].raw_data(), io.inputs[i].bytes());
  }
  absl::StatusOr<std::vector<Tensor>> outputs = executor_->Run(io.inputs);
  if (!outputs.ok()) return outputs.status();
  if (outputs->size() != io.outputs.size()) {
    return absl::InternalError(absl::StrCat("emulated stage runner: the executor returned ",
                                            outputs->size(), " outputs, the graph has ",
                                            io.outputs.size()));
  }
  std::vector<Tensor> results(io.outputs.size());
  for (size_t o = 0; o < io.outputs.size(); ++o) {
    // Copy bytes, whatever the executor's tensor is (a view, an alias, another layout).
    absl::StatusOr<Tensor> plain = (*outputs)[o].ToLayout(Layout::kPlain);
    if (!plain.ok()) return plain.status();
    if (plain->dtype() != DType::kFloat32 || plain->shape() != io.outputs[o].shape()) {
      return absl::InternalError(absl::StrCat("emulated stage runner: output ", o, " is ",
                                              plain->DebugString(), ", expected float32",
                                              ShapeToString(io.outputs[o].shape())));
    }
    std::memcpy(io.outputs[o].raw_data(), plain->raw_data(), io.outputs[o].bytes());
    if (!download.empty() && download[o]) results[o] = io.outputs[o].Clone();
  }
  return results;
}

int64_t EmulatedStageRunner::held_bytes() const {
  int64_t bytes = static_cast<int64_t>(executor_->weight_bytes() + executor_->arena_bytes() +
                                       executor_->workspace_bytes());
  for (const IoSet& set : sets_) {
    for (const Tensor& t : set.inputs) bytes += static_cast<int64_t>(t.bytes());
    for (const Tensor& t : set.outputs) bytes += static_cast<int64_t>(t.bytes());
  }
  return bytes;
}

// ---- EmulatedLinkFabric -----------------------------------------------------------------------

// One tensor of a group, on one side.
struct EmulatedLinkFabric::Transfer {
  Group* group = nullptr;
  int peer = -1;
  std::string tensor;
  void* data = nullptr;
  size_t bytes = 0;
};

// One SendDeviceGroup / RecvDeviceGroup call. Lives on the caller's stack; the fabric's queues
// point into it only while it is issued and neither completed nor dropped by an abort, which is
// always before the call returns.
struct EmulatedLinkFabric::Group {
  int rank = -1;
  bool is_send = false;
  MicroBatchId microbatch = 0;
  std::string where;                // names the call in errors
  std::vector<Transfer> transfers;  // issue order; not resized once issued
  int64_t payload_bytes = 0;
  size_t transfers_left = 0;
  bool completed = false;
  absl::Status failure;  // why a transfer of this group could not run (DataLoss)
};

class EmulatedLinkFabric::Endpoint final : public DeviceLink {
 public:
  Endpoint(EmulatedLinkFabric* fabric, int rank) : fabric_(fabric), rank_(rank) {}
  absl::Status SendDeviceGroup(const std::vector<DevicePeerTransfer>& sends,
                               MicroBatchId microbatch, absl::Duration timeout) override {
    return fabric_->RunGroup(rank_, /*is_send=*/true, sends, microbatch, timeout);
  }
  absl::Status RecvDeviceGroup(const std::vector<DevicePeerTransfer>& receives,
                               MicroBatchId microbatch, absl::Duration timeout) override {
    return fabric_->RunGroup(rank_, /*is_send=*/false, receives, microbatch, timeout);
  }
  int64_t bytes_received() const override { return fabric_->BytesReceived(rank_); }
  absl::Status abort_status() const override { return fabric_->AbortStatus(); }

 private:
  EmulatedLinkFabric* fabric_;
  int rank_;
};

absl::StatusOr<std::unique_ptr<DeviceLinkFabric>> EmulatedLinkFabric::Create(int size) {
  if (size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("emulated device link fabric: size must be >= 1, got ", size));
  }
  return std::unique_ptr<DeviceLinkFabric>(new EmulatedLinkFabric(size));
}

EmulatedLinkFabric::EmulatedLinkFabric(int size)
    : size_(size),
      ranks_(size),
      pending_sends_(static_cast<size_t>(size) * size),
      pending_receives_(static_cast<size_t>(size) * size) {
  for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<Endpoint>(this, r));
}

EmulatedLinkFabric::~EmulatedLinkFabric() = default;

DeviceLink* EmulatedLinkFabric::endpoint(int rank) {
  if (rank < 0 || rank >= size_) return nullptr;
  return endpoints_[rank].get();
}

void EmulatedLinkFabric::Abort(const absl::Status& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  AbortLocked(reason);
}

int EmulatedLinkFabric::groups_in_flight(int rank) const {
  if (rank < 0 || rank >= size_) return -1;
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(ranks_[rank].groups.size());
}

int64_t EmulatedLinkFabric::BytesReceived(int rank) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ranks_[rank].bytes_received;
}

absl::Status EmulatedLinkFabric::AbortStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abort_status_;
}

absl::Status EmulatedLinkFabric::RunGroup(int rank, bool is_send,
                                          const std::vector<DevicePeerTransfer>& transfers,
                                          MicroBatchId microbatch, absl::Duration timeout) {
  // Argument checks and error wording as NcclCommunicator's.
  Group group;
  group.rank = rank;
  group.is_send = is_send;
  group.microbatch = microbatch;
  group.where =
      absl::StrCat(DescribeDeviceGroup(rank, is_send, transfers, microbatch), " (emulated)");
  absl::StatusOr<std::vector<DeviceWireTransfer>> wire =
      DeviceGroupTransfers(rank, size_, transfers, group.where);
  if (!wire.ok()) return wire.status();
  for (const DeviceWireTransfer& t : *wire) {
    group.transfers.push_back({&group, t.peer, t.name, t.data, t.bytes});
    group.payload_bytes += static_cast<int64_t>(t.bytes);
  }
  if (group.transfers.empty()) return absl::OkStatus();
  group.transfers_left = group.transfers.size();

  const absl::Time deadline = absl::Now() + timeout;
  std::unique_lock<std::mutex> lock(mu_);
  RankState& state = ranks_[rank];
  // NcclCommunicator holds a per-direction lock from issuing a group until it completes.
  bool& in_progress = is_send ? state.send_in_progress : state.receive_in_progress;
  while (in_progress && abort_status_.ok() && absl::Now() < deadline) WaitLocked(lock, deadline);
  if (!abort_status_.ok()) return abort_status_;
  if (in_progress) {
    return absl::DeadlineExceededError(absl::StrCat(group.where, ": an earlier ",
                                                    is_send ? "send" : "receive",
                                                    " on this rank did not finish in time"));
  }
  in_progress = true;
  IssueLocked(group);
  ProgressLocked();
  while (!group.completed && group.failure.ok() && abort_status_.ok() && absl::Now() < deadline) {
    WaitLocked(lock, deadline);
  }
  in_progress = false;
  changed_.notify_all();  // a call waiting for this direction may go ahead

  if (group.completed) return absl::OkStatus();
  if (!group.failure.ok()) return group.failure;
  if (!abort_status_.ok()) return abort_status_;
  // A group that timed out may have moved part of its data: the communicator cannot be trusted
  // any more (NcclCommunicator aborts its fabric's endpoints).
  const absl::Status timed_out = absl::DeadlineExceededError(
      absl::StrCat(group.where, is_send ? ": the receivers did not take it in time"
                                        : ": the data did not arrive in time"));
  AbortLocked(timed_out);
  return timed_out;
}

void EmulatedLinkFabric::IssueLocked(Group& group) {
  ranks_[group.rank].groups.push_back(&group);
  for (Transfer& t : group.transfers) {
    if (group.is_send) {
      pending_sends_[PairIndex(group.rank, t.peer)].push_back(&t);
    } else {
      pending_receives_[PairIndex(t.peer, group.rank)].push_back(&t);
    }
  }
}

bool EmulatedLinkFabric::IsActiveLocked(const Group& group) const {
  const std::deque<Group*>& groups = ranks_[group.rank].groups;
  return !groups.empty() && groups.front() == &group;
}

void EmulatedLinkFabric::FinishTransferLocked(Group& group) {
  if (--group.transfers_left > 0) return;
  // Only an active group moves data, so the completed group is its rank's front.
  group.completed = true;
  RankState& state = ranks_[group.rank];
  state.groups.pop_front();
  if (!group.is_send) state.bytes_received += group.payload_bytes;
}

void EmulatedLinkFabric::ProgressLocked() {
  bool moved = true;
  while (moved && abort_status_.ok()) {
    moved = false;
    for (int src = 0; src < size_; ++src) {
      for (int dst = 0; dst < size_; ++dst) {
        std::deque<Transfer*>& sends = pending_sends_[PairIndex(src, dst)];
        std::deque<Transfer*>& receives = pending_receives_[PairIndex(src, dst)];
        // Only the fronts can be runnable: a pair's later transfers belong to the same or later
        // groups on both ranks.
        while (!sends.empty() && !receives.empty()) {
          Transfer& send = *sends.front();
          Transfer& receive = *receives.front();
          if (!IsActiveLocked(*send.group) || !IsActiveLocked(*receive.group)) break;
          if (send.bytes != receive.bytes) {
            const std::string detail = absl::StrCat(
                "rank ", src, " sends ", send.bytes, " bytes ('", send.tensor, "', micro-batch ",
                send.group->microbatch, ") where rank ", dst, " receives ", receive.bytes,
                " bytes ('", receive.tensor, "', micro-batch ", receive.group->microbatch,
                "); NCCL would corrupt memory or hang");
            send.group->failure =
                absl::DataLossError(absl::StrCat(send.group->where, ": ", detail));
            receive.group->failure =
                absl::DataLossError(absl::StrCat(receive.group->where, ": ", detail));
            AbortLocked(send.group->failure);
            return;
          }
          std::memcpy(receive.data, send.data, send.bytes);
          sends.pop_front();
          receives.pop_front();
          FinishTransferLocked(*send.group);
          FinishTransferLocked(*receive.group);
          moved = true;
        }
      }
    }
  }
  changed_.notify_all();
}

void EmulatedLinkFabric::AbortLocked(const absl::Status& reason) {
  if (!abort_status_.ok()) return;  // the first reason wins
  abort_status_ = absl::AbortedError(absl::StrCat(
      "communicator aborted: ",
      reason.ok() ? std::string("the fabric was aborted without a reason") : reason.ToString()));
  // Nothing moves any more; every blocked call returns, so no queue may keep pointing into it.
  for (RankState& state : ranks_) state.groups.clear();
  for (std::deque<Transfer*>& q : pending_sends_) q.clear();
  for (std::deque<Transfer*>& q : pending_receives_) q.clear();
  changed_.notify_all();
}

void EmulatedLinkFabric::WaitLocked(std::unique_lock<std::mutex>& lock, absl::Time deadline) {
  // Bounded, so that far-away and infinite deadlines never overflow the clock arithmetic; the
  // callers wait in a loop anyway.
  const absl::Time until = std::min(deadline, absl::Now() + absl::Hours(1));
  changed_.wait_until(lock, absl::ToChronoTime(until));
}

// ---- Factories --------------------------------------------------------------------------------

DevicePathForTesting EmulatedDevicePath(int num_threads) {
  DevicePathForTesting path;
  path.make_runner = [num_threads](const Graph& stage_graph, int io_sets) {
    return EmulatedStageRunner::Create(stage_graph, io_sets, num_threads);
  };
  path.make_fabric = [](int size) { return EmulatedLinkFabric::Create(size); };
  return path;
}

}  // namespace testing
}  // namespace yolopipe
