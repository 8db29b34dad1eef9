// Graph IR: values (name, dtype, shape), nodes (op type, inputs, outputs, attributes),
// initializers (constant tensors), graph inputs/outputs and model metadata.
#ifndef YOLOPIPE_GRAPH_IR_H_
#define YOLOPIPE_GRAPH_IR_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/attributes.h"
#include "base/dtype.h"
#include "base/tensor.h"

namespace yolopipe {

// A named tensor flowing through the graph. Shape dimensions may be kUnknownDim until the input
// shape is bound.
struct Value {
  std::string name;
  DType dtype = DType::kFloat32;
  Shape shape;
};

// One operation. An empty input name is an absent optional input (ONNX convention).
struct Node {
  std::string name;
  std::string op_type;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  Attributes attrs;
};

// A model graph. Names are unique: every value is produced by exactly one node, or is a graph
// input, or an initializer. Not thread-safe for mutation; const access is safe concurrently.
class Graph {
 public:
  Graph() = default;

  // --- construction ---
  // Adds or replaces the description of a value.
  void SetValue(const Value& value) { values_[value.name] = value; }
  // Adds a constant; also records its Value (dtype and shape of the tensor).
  void AddInitializer(const std::string& name, Tensor tensor);
  void RemoveInitializer(const std::string& name);
  void AddNode(Node node) { nodes_.push_back(std::move(node)); }
  void AddInput(const Value& value);
  void AddOutput(const std::string& name) { outputs_.push_back(name); }
  void set_name(const std::string& name) { name_ = name; }
  std::map<std::string, std::string>& mutable_metadata() { return metadata_; }
  std::vector<Node>& mutable_nodes() { return nodes_; }
  std::vector<std::string>& mutable_outputs() { return outputs_; }
  std::vector<std::string>& mutable_inputs() { return inputs_; }

  // --- access ---
  const std::string& name() const { return name_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<std::string>& inputs() const { return inputs_; }
  const std::vector<std::string>& outputs() const { return outputs_; }
  const std::map<std::string, Tensor>& initializers() const { return initializers_; }
  const std::map<std::string, Value>& values() const { return values_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool IsInitializer(const std::string& name) const { return initializers_.count(name) > 0; }
  bool IsGraphInput(const std::string& name) const;
  // nullptr when unknown.
  const Value* FindValue(const std::string& name) const;
  Value* FindMutableValue(const std::string& name);
  const Tensor* FindInitializer(const std::string& name) const;
  // Index of the node named `name`, or -1.
  int FindNode(const std::string& name) const;

  // value name -> index of the producing node (graph inputs and initializers are absent).
  std::map<std::string, int> Producers() const;
  // value name -> indices of consuming nodes (in node order; a node consuming a value twice
  // appears once).
  std::map<std::string, std::vector<int>> Consumers() const;

  // Checks structure: unique node and value names, every input defined (graph input,
  // initializer or node output), every graph output produced, no cycles. Errors name the node
  // and tensor.
  absl::Status Validate() const;

  // Node indices in a topological order. Ties are broken by the original node order, so an
  // already sorted graph keeps its order. Fails naming a node on a cycle or undefined input.
  absl::StatusOr<std::vector<int>> TopologicalOrder() const;
  // Reorders nodes_ topologically (see TopologicalOrder).
  absl::Status SortTopologically();

  // Removes nodes whose outputs reach no graph output, and initializers nobody reads.
  void RemoveDeadNodes();
  // Rewrites every use of value `from` (node inputs and graph outputs) to `to`.
  void ReplaceAllUses(const std::string& from, const std::string& to);

  // Elements of the constant weights and biases of Conv nodes (the learned parameters).
  int64_t ParameterCount() const;

 private:
  std::string name_;
  std::vector<Node> nodes_;
  std::map<std::string, Value> values_;
  std::map<std::string, Tensor> initializers_;
  std::vector<std::string> inputs_;
  std::vector<std::string> outputs_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_IR_H_
