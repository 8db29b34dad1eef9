// The cut model (DESIGN.md, "Cuts"): a topological order of a profiled graph's nodes, and for
// every cut between two positions of that order, the tensors that cross it.
//
// A split of the order into contiguous stages is a set of cuts. A tensor produced before a cut
// and consumed after it crosses the cut; in a pipeline it travels straight from its producing
// stage to each stage that consumes it (once per distinct consuming stage), never relayed.
// Graph inputs are fed by the host to every stage that reads them and graph outputs are
// collected by the host from the stage that produces them; neither crosses a cut.
//
// Which topological order: the cuts can only fall between consecutive positions, so the order
// decides what each cut costs. An order that keeps few tensors alive at every position gives
// small cut sets. Two candidates are built and the one with the smaller cut sets is kept (see
// NodeOrder::kBest): the profile's own execution order, and a greedy order that always runs,
// among the nodes whose inputs are ready, the one that changes the number of live tensors the
// least (it prefers a node that releases tensors, then one that continues a chain, and starts a
// new branch only when nothing else is ready; ties go to the lower profile index, so the greedy
// order equals the profile order whenever the latter is already greedy-optimal).
#ifndef YOLOPIPE_RUNTIME_PLANNER_CUT_MODEL_H_
#define YOLOPIPE_RUNTIME_PLANNER_CUT_MODEL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

// A tensor as the cut model sees it. Positions refer to CutModel::order().
struct CutTensor {
  std::string name;
  int producer = -1;           // position of the producing node; -1 for a graph input
  std::vector<int> consumers;  // positions of the consuming nodes, ascending, distinct
  uint64_t bytes_per_image = 0;
  bool graph_output = false;
};

// Cut-set sizes over the interior cuts 1 .. N-1 (all zero when N == 1).
struct CutSetStats {
  int max_tensors = 0;
  double mean_tensors = 0;
  uint64_t max_bytes = 0;  // per image
  double mean_bytes = 0;   // per image
};

enum class NodeOrder {
  kBest,     // whichever of the two below has the smaller (max, mean) cut-set size in tensors
  kProfile,  // the profile's node order (made topological, ties by profile index, if it is not)
  kMinLive,  // greedy: the ready node that changes the live-tensor count least (see above)
};
const char* NodeOrderName(NodeOrder order);  // "best", "profile", "min-live"

// Immutable after Build; safe to share between threads.
class CutModel {
 public:
  // Validates the profile's graph: at least one node; unique node and tensor names; every node
  // output listed in `tensors` (its bytes) and produced once; every node input produced by a
  // node or listed as a tensor without producer (a graph input); TensorProfile.producer, when
  // set, naming the node that produces the tensor; no cycle. Errors name the node and tensor.
  static absl::StatusOr<CutModel> Build(const proto::Profile& profile,
                                        NodeOrder order = NodeOrder::kBest);

  int num_nodes() const { return static_cast<int>(order_.size()); }
  // order()[position] = index into profile.nodes().
  const std::vector<int>& order() const { return order_; }
  int position_of(int node_index) const { return position_of_[node_index]; }
  // The order actually used (kProfile or kMinLive, never kBest).
  NodeOrder order_kind() const { return order_kind_; }

  const std::vector<CutTensor>& tensors() const { return tensors_; }
  // Tensor ids (indices into tensors()) produced / consumed (distinct) by the node at `position`.
  const std::vector<int>& produced(int position) const { return produced_[position]; }
  const std::vector<int>& consumed(int position) const { return consumed_[position]; }

  // Cut c lies between positions c-1 and c (0 <= c <= num_nodes(); cuts 0 and N are empty).
  // The tensors crossing it: produced by a node at a position < c and consumed at a position
  // >= c. Ascending tensor id.
  const std::vector<int>& crossing(int cut) const { return crossing_[cut]; }
  uint64_t crossing_bytes_per_image(int cut) const { return crossing_bytes_[cut]; }

  CutSetStats stats() const { return stats_; }
  // The statistics of both candidate orders, whichever was kept.
  const CutSetStats& profile_order_stats() const { return profile_stats_; }
  const CutSetStats& min_live_order_stats() const { return min_live_stats_; }

 private:
  CutModel() = default;

  std::vector<int> order_;
  std::vector<int> position_of_;
  NodeOrder order_kind_ = NodeOrder::kProfile;
  std::vector<CutTensor> tensors_;
  std::vector<std::vector<int>> produced_, consumed_;
  std::vector<std::vector<int>> crossing_;
  std::vector<uint64_t> crossing_bytes_;
  CutSetStats stats_, profile_stats_, min_live_stats_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PLANNER_CUT_MODEL_H_
