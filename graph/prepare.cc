#include "graph/prepare.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "graph/bind.h"
#include "graph/fold.h"
#include "graph/fuse.h"
#include "ops/kernel.h"

namespace yolopipe {
namespace {

absl::Status CheckConcrete(const Graph& graph, const std::string& name, const char* what) {
  const Value* v = graph.FindValue(name);
  if (v == nullptr || v->dtype == DType::kUndefined || !IsFullyKnown(v->shape)) {
    return absl::InternalError(absl::StrCat(
        "prepared graph: ", what, " '", name, "' has no concrete description",
        v == nullptr ? std::string()
                     : absl::StrCat(" (", DTypeName(v->dtype), ShapeToString(v->shape), ")")));
  }
  return absl::OkStatus();
}

// Every node's recorded outputs must be what its kernel computes from the recorded inputs.
absl::Status CheckAgainstKernels(const Graph& graph) {
  for (const Node& node : graph.nodes()) {
    std::vector<ops::TensorDesc> inputs(node.inputs.size());
    std::vector<Tensor> constants(node.inputs.size());
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (node.inputs[k].empty()) continue;
      YP_RETURN_IF_ERROR(CheckConcrete(graph, node.inputs[k], "tensor"));
      const Value* v = graph.FindValue(node.inputs[k]);
      inputs[k] = ops::TensorDesc{v->dtype, v->shape};
      if (const Tensor* t = graph.FindInitializer(node.inputs[k])) constants[k] = *t;
    }
    YP_ASSIGN_OR_RETURN(std::vector<ops::TensorDesc> outputs,
                        InferNodeOutputs(node, inputs, constants));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k].empty()) continue;
      YP_RETURN_IF_ERROR(CheckConcrete(graph, node.outputs[k], "tensor"));
      const Value* v = graph.FindValue(node.outputs[k]);
      if (v->dtype != outputs[k].dtype || v->shape != outputs[k].shape) {
        return absl::InternalError(
            absl::StrCat("prepared graph: node '", node.name, "' (", node.op_type, ") output '",
                         node.outputs[k], "' is recorded as ", DTypeName(v->dtype),
                         ShapeToString(v->shape), " but its kernel computes ",
                         DTypeName(outputs[k].dtype), ShapeToString(outputs[k].shape)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Graph> PrepareForExecution(const Graph& graph, const Shape& input_shape) {
  YP_ASSIGN_OR_RETURN(Graph prepared, BindInputShape(graph, input_shape));
  YP_RETURN_IF_ERROR(FoldConstants(&prepared));
  YP_RETURN_IF_ERROR(FuseConvActivations(&prepared));
  YP_RETURN_IF_ERROR(prepared.SortTopologically());
  prepared.RemoveDeadNodes();
  DropStaleValues(&prepared);
  YP_RETURN_IF_ERROR(prepared.Validate());
  for (const std::string& in : prepared.inputs()) {
    YP_RETURN_IF_ERROR(CheckConcrete(prepared, in, "graph input"));
  }
  for (const std::string& out : prepared.outputs()) {
    YP_RETURN_IF_ERROR(CheckConcrete(prepared, out, "graph output"));
  }
  YP_RETURN_IF_ERROR(CheckAgainstKernels(prepared));
  return prepared;
}

}  // namespace yolopipe
