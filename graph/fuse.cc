#include "graph/fuse.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "graph/fold.h"

namespace yolopipe {
namespace {

bool HasResidual(const Node& conv) {
  return conv.inputs.size() > kConvResidualInput && !conv.inputs[kConvResidualInput].empty();
}

std::string ActivationOf(const Node& conv) {
  auto it = conv.attrs.values().find(kActivationAttr);
  if (it == conv.attrs.values().end()) return "";
  const std::string* s = std::get_if<std::string>(&it->second);
  return s == nullptr ? "?" : *s;
}

bool ReadOnlyBy(const std::map<std::string, std::vector<int>>& consumers, const std::string& value,
                const std::set<int>& readers) {
  auto it = consumers.find(value);
  if (it == consumers.end()) return false;
  return std::set<int>(it->second.begin(), it->second.end()) == readers;
}

void RemoveMarked(Graph* graph, const std::vector<bool>& removed) {
  std::vector<Node>& nodes = graph->mutable_nodes();
  std::vector<Node> kept;
  kept.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(nodes[i]));
  }
  nodes = std::move(kept);
}

}  // namespace

absl::Status FuseConvSilu(Graph* graph, int* fused) {
  int count = 0;
  const std::map<std::string, int> producers = graph->Producers();
  const std::map<std::string, std::vector<int>> consumers = graph->Consumers();
  const std::set<std::string> graph_outputs(graph->outputs().begin(), graph->outputs().end());
  std::vector<Node>& nodes = graph->mutable_nodes();
  std::vector<bool> removed(nodes.size(), false);
  for (size_t s = 0; s < nodes.size(); ++s) {
    const Node& sigmoid = nodes[s];
    if (sigmoid.op_type != "Sigmoid" || sigmoid.inputs.size() != 1 || sigmoid.outputs.size() != 1) {
      continue;
    }
    const std::string& x = sigmoid.inputs[0];
    const std::string& sig_out = sigmoid.outputs[0];
    auto p = producers.find(x);
    if (p == producers.end()) continue;
    Node& conv = nodes[p->second];
    if (conv.op_type != "Conv" || conv.outputs.size() != 1 || conv.attrs.Has(kActivationAttr) ||
        HasResidual(conv)) {
      continue;
    }
    auto sig_readers = consumers.find(sig_out);
    if (sig_readers == consumers.end() || sig_readers->second.size() != 1) continue;
    const int m = sig_readers->second[0];
    const Node& mul = nodes[m];
    if (mul.op_type != "Mul" || mul.inputs.size() != 2 || mul.outputs.size() != 1) continue;
    const bool operands_match = (mul.inputs[0] == x && mul.inputs[1] == sig_out) ||
                                (mul.inputs[0] == sig_out && mul.inputs[1] == x);
    if (!operands_match) continue;
    if (!ReadOnlyBy(consumers, x, {static_cast<int>(s), m})) continue;
    if (graph_outputs.count(x) || graph_outputs.count(sig_out)) continue;

    conv.attrs.Set(kActivationAttr, std::string(kActivationSilu));
    conv.outputs[0] = mul.outputs[0];
    removed[s] = true;
    removed[m] = true;
    ++count;
  }
  RemoveMarked(graph, removed);
  if (fused != nullptr) *fused = count;
  return absl::OkStatus();
}

absl::Status FuseConvResidual(Graph* graph, int* fused) {
  int count = 0;
  std::map<std::string, int> producers = graph->Producers();
  const std::map<std::string, std::vector<int>> consumers = graph->Consumers();
  const std::set<std::string> graph_outputs(graph->outputs().begin(), graph->outputs().end());
  std::vector<Node>& nodes = graph->mutable_nodes();
  std::vector<bool> removed(nodes.size(), false);

  // Index of the fused Conv whose output `y` can absorb the Add `a` with `r`, or -1.
  auto conv_for = [&](int a, const std::string& y, const std::string& r) -> int {
    if (y == r) return -1;
    auto p = producers.find(y);
    if (p == producers.end() || removed[p->second]) return -1;
    const Node& conv = nodes[p->second];
    if (conv.op_type != "Conv" || conv.outputs.size() != 1 || conv.outputs[0] != y ||
        ActivationOf(conv) != kActivationSilu || HasResidual(conv)) {
      return -1;
    }
    if (graph_outputs.count(y) || !ReadOnlyBy(consumers, y, {a})) return -1;
    const Value* vy = graph->FindValue(y);
    const Value* vr = graph->FindValue(r);
    if (vy == nullptr || vr == nullptr) return -1;
    if (vy->dtype != vr->dtype || vy->dtype == DType::kUndefined) return -1;
    // An empty shape is a scalar or an unknown rank; neither can be a Conv output.
    if (vy->shape.empty() || !IsFullyKnown(vy->shape) || vy->shape != vr->shape) return -1;
    return p->second;
  };

  for (size_t a = 0; a < nodes.size(); ++a) {
    const Node& add = nodes[a];
    if (add.op_type != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    const int c0 = conv_for(static_cast<int>(a), add.inputs[0], add.inputs[1]);
    const int c1 = conv_for(static_cast<int>(a), add.inputs[1], add.inputs[0]);
    if (c0 < 0 && c1 < 0) continue;
    // The later Conv takes the residual: the earlier one's output is then ready before it runs
    // without reordering.
    const bool use_first = c1 < 0 || (c0 >= 0 && c0 > c1);
    const int c = use_first ? c0 : c1;
    const std::string residual = use_first ? add.inputs[1] : add.inputs[0];
    Node& conv = nodes[c];
    if (conv.inputs.size() < kConvResidualInput) conv.inputs.resize(kConvResidualInput);
    conv.inputs.resize(kConvResidualInput + 1);
    conv.inputs[kConvResidualInput] = residual;
    conv.outputs[0] = add.outputs[0];
    producers[add.outputs[0]] = c;
    removed[a] = true;
    ++count;
  }
  RemoveMarked(graph, removed);
  if (fused != nullptr) *fused = count;
  if (count > 0) YP_RETURN_IF_ERROR(graph->SortTopologically());
  return absl::OkStatus();
}

absl::Status FuseConvActivations(Graph* graph) {
  YP_RETURN_IF_ERROR(graph->SortTopologically());
  int silu = 0;
  int residual = 0;
  YP_RETURN_IF_ERROR(FuseConvSilu(graph, &silu));
  YP_RETURN_IF_ERROR(FuseConvResidual(graph, &residual));
  if (silu + residual > 0) DropStaleValues(graph);
  return absl::OkStatus();
}

}  // namespace yolopipe
