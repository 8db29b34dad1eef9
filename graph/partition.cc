#include "graph/partition.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace yolopipe {
namespace {

// Node index -> stage, checking that the lists cover every node exactly once.
absl::StatusOr<std::vector<int>> AssignStages(
    const Graph& prepared, const std::vector<std::vector<std::string>>& stage_nodes) {
  if (stage_nodes.empty()) {
    return absl::InvalidArgumentError("partition: no stages given");
  }
  std::map<std::string, int> index_of;
  for (size_t i = 0; i < prepared.nodes().size(); ++i) {
    index_of[prepared.nodes()[i].name] = static_cast<int>(i);
  }
  std::vector<int> stage_of(prepared.nodes().size(), -1);
  for (size_t s = 0; s < stage_nodes.size(); ++s) {
    if (stage_nodes[s].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("partition: stage ", s, " has no nodes"));
    }
    for (const std::string& name : stage_nodes[s]) {
      auto it = index_of.find(name);
      if (it == index_of.end()) {
        return absl::InvalidArgumentError(absl::StrCat("partition: stage ", s,
                                                       " lists unknown node '", name, "'"));
      }
      int& assigned = stage_of[it->second];
      if (assigned == static_cast<int>(s)) {
        return absl::InvalidArgumentError(
            absl::StrCat("partition: node '", name, "' is listed twice in stage ", s));
      }
      if (assigned >= 0) {
        return absl::InvalidArgumentError(absl::StrCat("partition: node '", name,
                                                       "' is in two stages: ", assigned,
                                                       " and ", s));
      }
      assigned = static_cast<int>(s);
    }
  }
  for (size_t i = 0; i < stage_of.size(); ++i) {
    if (stage_of[i] < 0) {
      const Node& node = prepared.nodes()[i];
      return absl::InvalidArgumentError(absl::StrCat("partition: node '", node.name, "' (",
                                                     node.op_type, ") is in no stage"));
    }
  }
  return stage_of;
}

absl::Status CopyValue(const Graph& prepared, const std::string& tensor, Graph& stage_graph) {
  const Value* value = prepared.FindValue(tensor);
  if (value == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partition: tensor '", tensor, "' has no Value (is the graph prepared?)"));
  }
  stage_graph.SetValue(*value);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<StageGraph>> PartitionGraph(
    const Graph& prepared, const std::vector<std::vector<std::string>>& stage_nodes) {
  YP_RETURN_IF_ERROR(prepared.Validate());
  YP_ASSIGN_OR_RETURN(std::vector<int> stage_of, AssignStages(prepared, stage_nodes));
  YP_ASSIGN_OR_RETURN(std::vector<int> topo, prepared.TopologicalOrder());
  const int num_stages = static_cast<int>(stage_nodes.size());

  // Each stage's nodes, in the graph's topological order.
  std::vector<std::vector<int>> members(num_stages);
  for (int i : topo) members[stage_of[i]].push_back(i);

  const std::map<std::string, int> producers = prepared.Producers();
  auto producer_stage = [&](const std::string& tensor) {
    auto it = producers.find(tensor);
    return it == producers.end() ? -1 : stage_of[it->second];
  };

  // Pass 1: who reads what, and the split must not read from a later stage.
  std::map<std::string, std::set<int>> reader_stages;  // produced tensors only
  for (int s = 0; s < num_stages; ++s) {
    for (int i : members[s]) {
      const Node& node = prepared.nodes()[i];
      for (const std::string& in : node.inputs) {
        if (in.empty()) continue;
        auto it = producers.find(in);
        if (it == producers.end()) continue;
        const int from = stage_of[it->second];
        if (from > s) {
          return absl::InvalidArgumentError(absl::StrCat(
              "partition: node '", node.name, "' in stage ", s, " reads tensor '", in,
              "' produced by node '", prepared.nodes()[it->second].name, "' in later stage ",
              from, " (the split is not in a topological order)"));
        }
        reader_stages[in].insert(s);
      }
    }
  }
  const std::set<std::string> model_outputs(prepared.outputs().begin(),
                                            prepared.outputs().end());

  std::vector<StageGraph> result(num_stages);
  for (int s = 0; s < num_stages; ++s) {
    StageGraph& stage = result[s];
    stage.stage = s;
    Graph& g = stage.graph;
    g.set_name(absl::StrCat(prepared.name(), ".stage", s));
    g.mutable_metadata() = prepared.metadata();

    std::set<std::string> seen_inputs;  // received or initializer, already handled
    for (int i : members[s]) {
      const Node& node = prepared.nodes()[i];
      for (const std::string& in : node.inputs) {
        if (in.empty() || !seen_inputs.insert(in).second) continue;
        const int from = producer_stage(in);
        if (producers.count(in)) {
          if (from == s) continue;  // produced inside the stage
          stage.receives.push_back({in, from});
        } else if (prepared.IsGraphInput(in)) {
          stage.receives.push_back({in, -1});
        } else if (const Tensor* init = prepared.FindInitializer(in)) {
          g.AddInitializer(in, *init);
          YP_RETURN_IF_ERROR(CopyValue(prepared, in, g));
        }
        // Validate() above guarantees every input is one of these.
      }
      for (const std::string& out : node.outputs) {
        if (out.empty()) continue;
        YP_RETURN_IF_ERROR(CopyValue(prepared, out, g));
        std::vector<int> to;
        auto readers = reader_stages.find(out);
        if (readers != reader_stages.end()) {
          for (int t : readers->second) {
            if (t > s) to.push_back(t);  // std::set: ascending
          }
        }
        if (model_outputs.count(out)) to.push_back(-1);
        if (!to.empty()) stage.sends.push_back({out, std::move(to)});
      }
      g.AddNode(node);
    }
    for (const StageGraph::Receive& receive : stage.receives) {
      const Value* value = prepared.FindValue(receive.tensor);
      if (value == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("partition: tensor '", receive.tensor,
                                                       "' has no Value (is the graph prepared?)"));
      }
      g.AddInput(*value);
    }
    for (const StageGraph::Send& send : stage.sends) g.AddOutput(send.tensor);

    absl::Status valid = g.Validate();
    if (!valid.ok()) {
      return absl::InternalError(
          absl::StrCat("partition: stage ", s, " subgraph is invalid: ", valid.message()));
    }
  }
  return result;
}

}  // namespace yolopipe
