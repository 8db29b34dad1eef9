#include "graph/fold.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "ops/registry.h"

namespace yolopipe {
namespace {

ops::KernelSpec MakeSpec(const Node& node, const std::vector<ops::TensorDesc>& inputs,
                         const std::vector<Tensor>& constant_inputs) {
  ops::KernelSpec spec;
  spec.node_name = node.name;
  spec.op_type = node.op_type;
  spec.attrs = node.attrs;
  spec.inputs = inputs;
  spec.constant_inputs = constant_inputs;
  spec.constant_inputs.resize(inputs.size());
  spec.num_outputs = static_cast<int>(node.outputs.size());
  return spec;
}

// Bytes of `desc`, or SIZE_MAX when the element count overflows (a corrupt or absurd shape must
// not wrap around into a small allocation).
size_t CheckedBytes(const ops::TensorDesc& desc) {
  uint64_t bytes = DTypeSize(desc.dtype);
  for (int64_t d : desc.shape) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes)) return SIZE_MAX;
  }
  return static_cast<size_t>(bytes);
}

absl::Status NodeError(const Node& node, const std::string& message) {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node.name, "' (", node.op_type, "): ", message));
}

}  // namespace

absl::StatusOr<std::vector<ops::TensorDesc>> InferNodeOutputs(
    const Node& node, const std::vector<ops::TensorDesc>& inputs,
    const std::vector<Tensor>& constant_inputs) {
  if (inputs.size() != node.inputs.size()) {
    return NodeError(node, absl::StrCat("expected ", node.inputs.size(),
                                        " input descriptions, got ", inputs.size()));
  }
  const ops::KernelSpec spec = MakeSpec(node, inputs, constant_inputs);
  YP_ASSIGN_OR_RETURN(std::unique_ptr<ops::Kernel> kernel,
                      ops::KernelRegistry::Global().Create(ops::Backend::kReference, spec));
  YP_ASSIGN_OR_RETURN(std::vector<ops::TensorDesc> outputs, kernel->Reshape(inputs));
  if (outputs.size() != node.outputs.size()) {
    return NodeError(node, absl::StrCat("the kernel describes ", outputs.size(),
                                        " outputs but the node has ", node.outputs.size()));
  }
  return outputs;
}

absl::StatusOr<std::vector<Tensor>> EvaluateNode(const Node& node,
                                                 const std::vector<Tensor>& inputs,
                                                 size_t max_output_bytes) {
  if (inputs.size() != node.inputs.size()) {
    return NodeError(node,
                     absl::StrCat("expected ", node.inputs.size(), " inputs, got ", inputs.size()));
  }
  std::vector<ops::TensorDesc> descs(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].defined()) {
      descs[i] = ops::TensorDesc{inputs[i].dtype(), inputs[i].shape(), inputs[i].layout()};
    }
  }
  const ops::KernelSpec spec = MakeSpec(node, descs, inputs);
  YP_ASSIGN_OR_RETURN(std::unique_ptr<ops::Kernel> kernel,
                      ops::KernelRegistry::Global().Create(ops::Backend::kReference, spec));
  YP_ASSIGN_OR_RETURN(std::vector<ops::TensorDesc> out_descs, kernel->Reshape(descs));
  if (out_descs.size() != node.outputs.size()) {
    return NodeError(node, absl::StrCat("the kernel describes ", out_descs.size(),
                                        " outputs but the node has ", node.outputs.size()));
  }
  size_t total_bytes = 0;
  for (size_t i = 0; i < out_descs.size(); ++i) {
    if (!IsFullyKnown(out_descs[i].shape) || out_descs[i].dtype == DType::kUndefined) {
      return absl::FailedPreconditionError(
          absl::StrCat("node '", node.name, "' (", node.op_type, "): output '", node.outputs[i],
                       "' has no concrete shape ", ShapeToString(out_descs[i].shape)));
    }
    const size_t bytes = CheckedBytes(out_descs[i]);
    total_bytes = bytes > max_output_bytes ? SIZE_MAX : total_bytes + bytes;
  }
  if (total_bytes > max_output_bytes) {
    return absl::FailedPreconditionError(absl::StrCat("node '", node.name, "' (", node.op_type,
                                                      "): outputs need more than the folding "
                                                      "limit of ",
                                                      max_output_bytes, " bytes"));
  }
  std::vector<Tensor> outputs;
  outputs.reserve(out_descs.size());
  for (const ops::TensorDesc& d : out_descs) outputs.emplace_back(d.dtype, d.shape, d.layout);
  std::unique_ptr<Buffer> workspace;
  ops::RunContext ctx;
  if (kernel->workspace_bytes() > 0) {
    workspace = std::make_unique<Buffer>(kernel->workspace_bytes());
    ctx.workspace = workspace->data();
  }
  YP_RETURN_IF_ERROR(kernel->Run(ctx, inputs, absl::MakeSpan(outputs)));
  return outputs;
}

absl::Status FoldConstants(Graph* graph) {
  YP_RETURN_IF_ERROR(graph->SortTopologically());
  std::vector<Node>& nodes = graph->mutable_nodes();
  std::vector<bool> folded(nodes.size(), false);
  std::set<std::string> read_by_folded;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& node = nodes[i];
    std::vector<Tensor> inputs(node.inputs.size());
    bool all_constant = true;
    for (size_t k = 0; k < node.inputs.size() && all_constant; ++k) {
      if (node.inputs[k].empty()) continue;
      // A graph input that also has an initializer is an overridable default, not a constant.
      const Tensor* t =
          graph->IsGraphInput(node.inputs[k]) ? nullptr : graph->FindInitializer(node.inputs[k]);
      if (t == nullptr) {
        all_constant = false;
      } else {
        inputs[k] = *t;
      }
    }
    if (!all_constant) continue;
    absl::StatusOr<std::vector<Tensor>> outputs = EvaluateNode(node, inputs);
    if (absl::IsFailedPrecondition(outputs.status())) continue;  // too big or not concrete
    if (!outputs.ok()) {
      return absl::Status(outputs.status().code(),
                          absl::StrCat("constant folding: ", outputs.status().message()));
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (!node.outputs[k].empty()) graph->AddInitializer(node.outputs[k], (*outputs)[k]);
    }
    for (const std::string& in : node.inputs) {
      if (!in.empty()) read_by_folded.insert(in);
    }
    folded[i] = true;
  }
  std::vector<Node> kept;
  kept.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!folded[i]) kept.push_back(std::move(nodes[i]));
  }
  nodes = std::move(kept);

  std::set<std::string> still_read(graph->outputs().begin(), graph->outputs().end());
  for (const Node& node : graph->nodes()) still_read.insert(node.inputs.begin(), node.inputs.end());
  for (const std::string& name : read_by_folded) {
    if (!still_read.count(name) && graph->IsInitializer(name) && !graph->IsGraphInput(name)) {
      graph->RemoveInitializer(name);
    }
  }
  return absl::OkStatus();
}

void DropStaleValues(Graph* graph) {
  std::set<std::string> used(graph->inputs().begin(), graph->inputs().end());
  used.insert(graph->outputs().begin(), graph->outputs().end());
  for (const Node& node : graph->nodes()) {
    used.insert(node.inputs.begin(), node.inputs.end());
    used.insert(node.outputs.begin(), node.outputs.end());
  }
  bool stale = false;
  for (const auto& [name, value] : graph->values()) {
    if (!used.count(name) && !graph->IsInitializer(name)) stale = true;
  }
  if (!stale) return;
  Graph compact;
  compact.set_name(graph->name());
  compact.mutable_metadata() = graph->metadata();
  for (const std::string& in : graph->inputs()) {
    const Value* v = graph->FindValue(in);
    compact.AddInput(v != nullptr ? *v : Value{in, DType::kFloat32, {}});
  }
  for (const auto& [name, tensor] : graph->initializers()) compact.AddInitializer(name, tensor);
  for (const Node& node : graph->nodes()) {
    for (const std::string& out : node.outputs) {
      if (out.empty()) continue;
      if (const Value* v = graph->FindValue(out)) compact.SetValue(*v);
    }
    compact.AddNode(node);
  }
  for (const std::string& out : graph->outputs()) compact.AddOutput(out);
  *graph = std::move(compact);
}

}  // namespace yolopipe
