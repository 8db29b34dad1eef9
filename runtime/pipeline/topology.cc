#include "runtime/pipeline/topology.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {

absl::StatusOr<PipelineTopology> PipelineTopology::Create(int replicas, int stages) {
  if (replicas < 1 || stages < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a pipeline needs >= 1 replica and >= 1 stage, got ", replicas, " x ", stages));
  }
  return PipelineTopology(replicas, stages);
}

int64_t PipelineTopology::MicrobatchesOf(int replica, int64_t total) const {
  if (total <= replica) return 0;
  return (total - replica + replicas_ - 1) / replicas_;
}

std::string PipelineTopology::Name(int replica, int stage) const {
  return replicas_ > 1 ? absl::StrCat("replica ", replica, " stage ", stage)
                       : absl::StrCat("stage ", stage);
}

}  // namespace yolopipe
