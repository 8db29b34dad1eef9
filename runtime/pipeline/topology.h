// PipelineTopology: the rank / stage / device / micro-batch arithmetic of a run of R replicas of a
// K-stage pipeline, in one place (STYLE.md). Value type; cheap to copy; thread-compatible.
//
//   devices:       replica-major, device r*K + s runs replica r's stage s (R*K devices in all);
//   micro-batches: id j goes to replica j % R; replica r sees ids r, r+R, r+2R, ... in order;
//   fabric ranks:  within one replica's communicator, ranks 0..K-1 are the stages and rank K is the
//                  host (feeding inputs, collecting outputs).
// single = 1x1, data = Rx1, pipeline = 1xK, hybrid = RxK.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_TOPOLOGY_H_
#define YOLOPIPE_RUNTIME_PIPELINE_TOPOLOGY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace yolopipe {

class PipelineTopology {
 public:
  PipelineTopology() = default;  // one replica of one stage
  // InvalidArgument unless replicas >= 1 and stages >= 1.
  static absl::StatusOr<PipelineTopology> Create(int replicas, int stages);

  int replicas() const { return replicas_; }
  int stages() const { return stages_; }
  int num_devices() const { return replicas_ * stages_; }

  // Device index of (replica, stage), and back. Arguments must be in range.
  int DeviceIndex(int replica, int stage) const { return replica * stages_ + stage; }
  int ReplicaOfDevice(int device) const { return device / stages_; }
  int StageOfDevice(int device) const { return device % stages_; }

  // Micro-batch routing (ids >= 0).
  int ReplicaOf(int64_t microbatch) const { return static_cast<int>(microbatch % replicas_); }
  int64_t FirstMicrobatch(int replica) const { return replica; }
  int64_t NextMicrobatch(int64_t microbatch) const { return microbatch + replicas_; }
  // How many of the first `total` micro-batches (ids 0..total-1) replica `replica` gets.
  int64_t MicrobatchesOf(int replica, int64_t total) const;

  // Ranks within one replica's fabric: stage s is rank s; the host is rank K. A stage index < 0
  // (graph/partition.h's "the host": model inputs and outputs) maps to the host rank.
  int host_rank() const { return stages_; }
  int fabric_size() const { return stages_ + 1; }
  int RankOfStage(int stage) const { return stage < 0 ? host_rank() : stage; }

  // "replica 1 stage 0" (or "stage 0" when R = 1): how errors and traces name a stage.
  std::string Name(int replica, int stage) const;

 private:
  PipelineTopology(int replicas, int stages) : replicas_(replicas), stages_(stages) {}
  int replicas_ = 1;
  int stages_ = 1;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_TOPOLOGY_H_
