#include "graph/ir.h"

#include <algorithm>
#include <queue>
#include <set>

#include "absl/strings/str_cat.h"

namespace yolopipe {

void Graph::AddInitializer(const std::string& name, Tensor tensor) {
  values_[name] = Value{name, tensor.dtype(), tensor.shape()};
  initializers_[name] = std::move(tensor);
}

void Graph::RemoveInitializer(const std::string& name) {
  initializers_.erase(name);
  values_.erase(name);
}

void Graph::AddInput(const Value& value) {
  inputs_.push_back(value.name);
  values_[value.name] = value;
}

bool Graph::IsGraphInput(const std::string& name) const {
  return std::find(inputs_.begin(), inputs_.end(), name) != inputs_.end();
}

const Value* Graph::FindValue(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

Value* Graph::FindMutableValue(const std::string& name) {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

const Tensor* Graph::FindInitializer(const std::string& name) const {
  auto it = initializers_.find(name);
  return it == initializers_.end() ? nullptr : &it->second;
}

int Graph::FindNode(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::map<std::string, int> Graph::Producers() const {
  std::map<std::string, int> producers;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (const std::string& out : nodes_[i].outputs) {
      if (!out.empty()) producers[out] = static_cast<int>(i);
    }
  }
  return producers;
}

std::map<std::string, std::vector<int>> Graph::Consumers() const {
  std::map<std::string, std::vector<int>> consumers;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    std::set<std::string> seen;
    for (const std::string& in : nodes_[i].inputs) {
      if (in.empty() || !seen.insert(in).second) continue;
      consumers[in].push_back(static_cast<int>(i));
    }
  }
  return consumers;
}

absl::Status Graph::Validate() const {
  std::set<std::string> node_names;
  std::map<std::string, std::string> defined;  // value -> what defines it
  for (const std::string& in : inputs_) defined[in] = "graph input";
  for (const auto& [name, tensor] : initializers_) {
    if (defined.count(name) && defined[name] == "graph input") continue;  // input with default
    defined[name] = "initializer";
  }
  for (const Node& node : nodes_) {
    if (node.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("a node of type '", node.op_type, "' has no name"));
    }
    if (!node_names.insert(node.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate node name '", node.name, "'"));
    }
    for (const std::string& out : node.outputs) {
      if (out.empty()) continue;
      auto [it, inserted] = defined.emplace(out, "node '" + node.name + "'");
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat("node '", node.name, "': output tensor '",
                                                       out, "' is already defined by ",
                                                       it->second));
      }
    }
  }
  for (const Node& node : nodes_) {
    for (const std::string& in : node.inputs) {
      if (!in.empty() && !defined.count(in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "node '", node.name, "' (", node.op_type, "): input tensor '", in,
            "' is not defined by any node, graph input or initializer"));
      }
    }
  }
  for (const std::string& out : outputs_) {
    if (!defined.count(out)) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", out, "' is not produced by any node"));
    }
  }
  return TopologicalOrder().status();
}

absl::StatusOr<std::vector<int>> Graph::TopologicalOrder() const {
  const std::map<std::string, int> producers = Producers();
  const int n = static_cast<int>(nodes_.size());
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    std::set<int> deps;
    for (const std::string& in : nodes_[i].inputs) {
      auto it = producers.find(in);
      if (it != producers.end()) deps.insert(it->second);
    }
    pending[i] = static_cast<int>(deps.size());
    for (int d : deps) users[d].push_back(i);
  }
  // Smallest original index first keeps an already sorted graph unchanged.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push(i);
  }
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int u : users[i]) {
      if (--pending[u] == 0) ready.push(u);
    }
  }
  if (static_cast<int>(order.size()) != n) {
    for (int i = 0; i < n; ++i) {
      if (pending[i] > 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("graph has a cycle through node '", nodes_[i].name, "'"));
      }
    }
  }
  return order;
}

absl::Status Graph::SortTopologically() {
  auto order = TopologicalOrder();
  if (!order.ok()) return order.status();
  std::vector<Node> sorted;
  sorted.reserve(nodes_.size());
  for (int i : *order) sorted.push_back(std::move(nodes_[i]));
  nodes_ = std::move(sorted);
  return absl::OkStatus();
}

void Graph::RemoveDeadNodes() {
  std::set<std::string> live(outputs_.begin(), outputs_.end());
  std::vector<bool> keep(nodes_.size(), false);
  for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
    bool used = false;
    for (const std::string& out : nodes_[i].outputs) used |= live.count(out) > 0;
    if (!used) continue;
    keep[i] = true;
    for (const std::string& in : nodes_[i].inputs) live.insert(in);
  }
  // Nodes are assumed topologically sorted; a live node before its consumer was kept above.
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (keep[i]) {
      kept.push_back(std::move(nodes_[i]));
    } else {
      for (const std::string& out : nodes_[i].outputs) values_.erase(out);
    }
  }
  nodes_ = std::move(kept);
  for (auto it = initializers_.begin(); it != initializers_.end();) {
    if (!live.count(it->first) && !IsGraphInput(it->first)) {
      values_.erase(it->first);
      it = initializers_.erase(it);
    } else {
      ++it;
    }
  }
}

void Graph::ReplaceAllUses(const std::string& from, const std::string& to) {
  for (Node& node : nodes_) {
    for (std::string& in : node.inputs) {
      if (in == from) in = to;
    }
  }
  for (std::string& out : outputs_) {
    if (out == from) out = to;
  }
}

int64_t Graph::ParameterCount() const {
  // Parameters are the weights and biases of convolutions; other constants (anchor grids,
  // strides, shape tensors) are not learned and are not counted. Each convolution counts its own,
  // even where an exporter shared one initializer between convolutions with equal values (torch
  // deduplicates YOLOv8's identical box biases), so counts match the model's definition.
  int64_t count = 0;
  for (const Node& node : nodes_) {
    if (node.op_type != "Conv") continue;
    for (size_t i = 1; i < node.inputs.size() && i < 3; ++i) {
      const Tensor* t = FindInitializer(node.inputs[i]);
      if (t != nullptr) count += t->num_elements();
    }
  }
  return count;
}

}  // namespace yolopipe
