#include "runtime/planner/cut_model.h"

#include <algorithm>
#include <map>
#include <queue>
#include <set>

#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

// The profile's dataflow graph by node index (not yet ordered).
struct ProfileGraph {
  struct Tensor {
    std::string name;
    int producer = -1;           // node index; -1: graph input
    std::vector<int> consumers;  // node indices, distinct, ascending
    uint64_t bytes = 0;
    bool graph_output = false;
  };
  std::vector<Tensor> tensors;
  std::vector<std::vector<int>> inputs;   // per node: distinct tensor ids
  std::vector<std::vector<int>> outputs;  // per node: tensor ids
};

absl::StatusOr<ProfileGraph> BuildProfileGraph(const proto::Profile& profile) {
  const int n = profile.nodes_size();
  if (n == 0) return absl::InvalidArgumentError("the profile has no nodes");
  ProfileGraph g;
  std::map<std::string, int> tensor_id;
  for (const proto::TensorProfile& t : profile.tensors()) {
    if (t.name().empty())
      return absl::InvalidArgumentError("the profile lists a tensor without name");
    if (!tensor_id.emplace(t.name(), static_cast<int>(g.tensors.size())).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the profile lists tensor '", t.name(), "' twice"));
    }
    ProfileGraph::Tensor pt;
    pt.name = t.name();
    pt.bytes = t.bytes_per_image();
    pt.graph_output = t.graph_output();
    g.tensors.push_back(pt);
  }
  for (const std::string& out : profile.output_tensors()) {
    auto it = tensor_id.find(out);
    if (it == tensor_id.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the profile's output tensor '", out, "' is not among its tensors"));
    }
    g.tensors[it->second].graph_output = true;
  }
  std::map<std::string, int> node_id;
  for (int i = 0; i < n; ++i) {
    const std::string& name = profile.nodes(i).name();
    if (name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("profile node #", i, " has no name"));
    }
    if (!node_id.emplace(name, i).second) {
      return absl::InvalidArgumentError(absl::StrCat("the profile lists node '", name, "' twice"));
    }
  }
  g.inputs.resize(n);
  g.outputs.resize(n);
  for (int i = 0; i < n; ++i) {
    const proto::NodeProfile& node = profile.nodes(i);
    for (const std::string& out : node.outputs()) {
      auto it = tensor_id.find(out);
      if (it == tensor_id.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("output '", out, "' of node '", node.name(),
                         "' is not among the profile's tensors (its size is unknown)"));
      }
      ProfileGraph::Tensor& t = g.tensors[it->second];
      if (t.producer >= 0) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", out, "' is produced by both '",
                                                       profile.nodes(t.producer).name(), "' and '",
                                                       node.name(), "'"));
      }
      t.producer = i;
      g.outputs[i].push_back(it->second);
    }
  }
  for (int i = 0; i < n; ++i) {
    const proto::NodeProfile& node = profile.nodes(i);
    std::set<int> seen;
    for (const std::string& in : node.inputs()) {
      auto it = tensor_id.find(in);
      if (it == tensor_id.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("node '", node.name(), "' reads '", in,
                         "', which no node produces and the profile does not list as a tensor"));
      }
      if (!seen.insert(it->second).second) continue;
      g.inputs[i].push_back(it->second);
      g.tensors[it->second].consumers.push_back(i);
    }
  }
  for (int id = 0; id < static_cast<int>(g.tensors.size()); ++id) {
    const proto::TensorProfile& t = profile.tensors(id);
    const int producer = g.tensors[id].producer;
    if (!t.producer().empty() && (producer < 0 || profile.nodes(producer).name() != t.producer())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.name(), "' names producer '", t.producer(), "', but ",
          producer < 0 ? std::string("no node produces it")
                       : absl::StrCat("it is produced by '", profile.nodes(producer).name(), "'")));
    }
    std::sort(g.tensors[id].consumers.begin(), g.tensors[id].consumers.end());
  }
  return g;
}

// Node indices -> predecessor counts over node-produced inputs.
std::vector<int> InDegrees(const ProfileGraph& g) {
  std::vector<int> indegree(g.inputs.size(), 0);
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    for (int t : g.inputs[i]) indegree[i] += g.tensors[t].producer >= 0 ? 1 : 0;
  }
  return indegree;
}

absl::Status CycleError(const proto::Profile& profile, const std::vector<int>& indegree) {
  for (size_t i = 0; i < indegree.size(); ++i) {
    if (indegree[i] > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the profile's graph has a cycle through node '", profile.nodes(i).name(), "'"));
    }
  }
  return absl::InternalError("topological order incomplete");
}

// Kahn's algorithm, ready nodes by lowest profile index: the profile order when it is
// topological already.
absl::StatusOr<std::vector<int>> ProfileOrder(const proto::Profile& profile,
                                              const ProfileGraph& g) {
  std::vector<int> indegree = InDegrees(g);
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t i = 0; i < indegree.size(); ++i) {
    if (indegree[i] == 0) ready.push(static_cast<int>(i));
  }
  std::vector<int> order;
  while (!ready.empty()) {
    const int v = ready.top();
    ready.pop();
    order.push_back(v);
    for (int t : g.outputs[v]) {
      for (int c : g.tensors[t].consumers) {
        if (--indegree[c] == 0) ready.push(c);
      }
    }
  }
  if (order.size() != indegree.size()) return CycleError(profile, indegree);
  return order;
}

// Greedy: among ready nodes, the one whose execution changes the number of live tensors least
// (then the live bytes least, then the lowest profile index). A tensor is live from its
// production until its last consumer runs; tensors without consumers never count.
absl::StatusOr<std::vector<int>> MinLiveOrder(const proto::Profile& profile,
                                              const ProfileGraph& g) {
  const int n = static_cast<int>(g.inputs.size());
  std::vector<int> indegree = InDegrees(g);
  std::vector<int> remaining(g.tensors.size());
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    remaining[t] = static_cast<int>(g.tensors[t].consumers.size());
  }
  std::vector<char> is_ready(n, 0);
  for (int i = 0; i < n; ++i) is_ready[i] = indegree[i] == 0;
  std::vector<int> order;
  for (int step = 0; step < n; ++step) {
    int best = -1;
    int64_t best_count = 0, best_bytes = 0;
    for (int v = 0; v < n; ++v) {
      if (!is_ready[v]) continue;
      int64_t count = 0, bytes = 0;
      for (int t : g.outputs[v]) {
        if (g.tensors[t].consumers.empty()) continue;
        ++count;
        bytes += static_cast<int64_t>(g.tensors[t].bytes);
      }
      for (int t : g.inputs[v]) {
        if (g.tensors[t].producer < 0 || remaining[t] != 1) continue;
        --count;
        bytes -= static_cast<int64_t>(g.tensors[t].bytes);
      }
      if (best < 0 || count < best_count || (count == best_count && bytes < best_bytes)) {
        best = v;
        best_count = count;
        best_bytes = bytes;
      }
    }
    if (best < 0) return CycleError(profile, indegree);
    is_ready[best] = 0;
    indegree[best] = -1;  // done
    order.push_back(best);
    for (int t : g.inputs[best]) --remaining[t];
    for (int t : g.outputs[best]) {
      for (int c : g.tensors[t].consumers) {
        if (--indegree[c] == 0) is_ready[c] = 1;
      }
    }
  }
  return order;
}

}  // namespace

const char* NodeOrderName(NodeOrder order) {
  switch (order) {
    case NodeOrder::kBest:
      return "best";
    case NodeOrder::kProfile:
      return "profile";
    case NodeOrder::kMinLive:
      return "min-live";
  }
  return "?";
}

namespace {

// Cut sets of `order` without building a whole CutModel.
struct OrderedCuts {
  std::vector<std::vector<int>> crossing;
  std::vector<uint64_t> bytes;
  CutSetStats stats;
};

OrderedCuts CutsOf(const ProfileGraph& g, const std::vector<int>& order) {
  const int n = static_cast<int>(order.size());
  std::vector<int> position(n);
  for (int p = 0; p < n; ++p) position[order[p]] = p;
  OrderedCuts cuts;
  cuts.crossing.assign(n + 1, {});
  cuts.bytes.assign(n + 1, 0);
  for (int t = 0; t < static_cast<int>(g.tensors.size()); ++t) {
    const ProfileGraph::Tensor& tensor = g.tensors[t];
    if (tensor.producer < 0 || tensor.consumers.empty()) continue;
    int last = 0;
    for (int c : tensor.consumers) last = std::max(last, position[c]);
    for (int cut = position[tensor.producer] + 1; cut <= last; ++cut) {
      cuts.crossing[cut].push_back(t);
      cuts.bytes[cut] += tensor.bytes;
    }
  }
  if (n > 1) {
    double sum_tensors = 0, sum_bytes = 0;
    for (int cut = 1; cut < n; ++cut) {
      const int size = static_cast<int>(cuts.crossing[cut].size());
      cuts.stats.max_tensors = std::max(cuts.stats.max_tensors, size);
      cuts.stats.max_bytes = std::max(cuts.stats.max_bytes, cuts.bytes[cut]);
      sum_tensors += size;
      sum_bytes += static_cast<double>(cuts.bytes[cut]);
    }
    cuts.stats.mean_tensors = sum_tensors / (n - 1);
    cuts.stats.mean_bytes = sum_bytes / (n - 1);
  }
  return cuts;
}

bool Smaller(const CutSetStats& a, const CutSetStats& b) {
  if (a.max_tensors != b.max_tensors) return a.max_tensors < b.max_tensors;
  if (a.mean_tensors != b.mean_tensors) return a.mean_tensors < b.mean_tensors;
  return a.mean_bytes < b.mean_bytes;
}

}  // namespace

absl::StatusOr<CutModel> CutModel::Build(const proto::Profile& profile, NodeOrder order) {
  absl::StatusOr<ProfileGraph> graph = BuildProfileGraph(profile);
  if (!graph.ok()) return graph.status();
  const ProfileGraph& g = *graph;
  absl::StatusOr<std::vector<int>> profile_order = ProfileOrder(profile, g);
  if (!profile_order.ok()) return profile_order.status();
  absl::StatusOr<std::vector<int>> min_live_order = MinLiveOrder(profile, g);
  if (!min_live_order.ok()) return min_live_order.status();
  OrderedCuts profile_cuts = CutsOf(g, *profile_order);
  OrderedCuts min_live_cuts = CutsOf(g, *min_live_order);

  CutModel model;
  model.profile_stats_ = profile_cuts.stats;
  model.min_live_stats_ = min_live_cuts.stats;
  bool use_min_live = order == NodeOrder::kMinLive;
  if (order == NodeOrder::kBest) use_min_live = Smaller(min_live_cuts.stats, profile_cuts.stats);
  model.order_kind_ = use_min_live ? NodeOrder::kMinLive : NodeOrder::kProfile;
  model.order_ = use_min_live ? *min_live_order : *profile_order;
  OrderedCuts& cuts = use_min_live ? min_live_cuts : profile_cuts;
  model.crossing_ = std::move(cuts.crossing);
  model.crossing_bytes_ = std::move(cuts.bytes);
  model.stats_ = cuts.stats;

  const int n = static_cast<int>(model.order_.size());
  model.position_of_.assign(n, 0);
  for (int p = 0; p < n; ++p) model.position_of_[model.order_[p]] = p;
  model.tensors_.resize(g.tensors.size());
  for (size_t t = 0; t < g.tensors.size(); ++t) {
    const ProfileGraph::Tensor& src = g.tensors[t];
    CutTensor& dst = model.tensors_[t];
    dst.name = src.name;
    dst.producer = src.producer < 0 ? -1 : model.position_of_[src.producer];
    for (int c : src.consumers) dst.consumers.push_back(model.position_of_[c]);
    std::sort(dst.consumers.begin(), dst.consumers.end());
    dst.bytes_per_image = src.bytes;
    dst.graph_output = src.graph_output;
  }
  model.produced_.assign(n, {});
  model.consumed_.assign(n, {});
  for (int p = 0; p < n; ++p) {
    model.produced_[p] = g.outputs[model.order_[p]];
    model.consumed_[p] = g.inputs[model.order_[p]];
  }
  return model;
}

}  // namespace yolopipe
