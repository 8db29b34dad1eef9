#include "graph/bind.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "graph/fold.h"
#include "ops/kernel.h"

namespace yolopipe {
namespace {

// Bounds a dimension of the bound input; larger ones are typos, not images.
constexpr int64_t kMaxInputDim = int64_t{1} << 20;
// Keeps every intermediate element count far from int64 overflow.
constexpr int64_t kMaxInputElements = int64_t{1} << 31;
// No value the bound graph computes may be larger (8 GiB of float32): a model whose shapes only
// become known here (a Concat of constants feeding Expand, say) must not make the executor
// allocate terabytes. YOLOv8x at batch 64 and 1280x1280 stays below it.
constexpr int64_t kMaxValueElements = int64_t{1} << 31;

// What shape propagation knows about one value.
struct KnownValue {
  ops::TensorDesc desc;
  Tensor value;  // defined when computable without the image (constants, shape arithmetic)
};

struct Propagation {
  std::map<std::string, KnownValue> values;
  std::vector<bool> evaluated;  // per node index: its outputs are known values
};

bool IsShapeOnlyOp(const std::string& op) { return op == "Shape" || op == "Size"; }

absl::Status NodeError(const Node& node, const std::string& message) {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", node.name, "' (", node.op_type, "): ", message));
}

// Shape and Size read only their input's shape: a zero-byte buffer viewed with that shape saves
// materialising an activation just to ask for its dimensions.
Tensor ShapeOnlyTensor(const ops::TensorDesc& desc) {
  return Tensor(std::make_shared<Buffer>(0), 0, desc.dtype, desc.shape);
}

// Walks the graph in topological order with the input bound to `input_shape`, asking the
// reference kernels for every node's outputs, evaluating what needs no image data.
absl::StatusOr<Propagation> Propagate(const Graph& graph, const Shape& input_shape) {
  Propagation p;
  p.evaluated.assign(graph.nodes().size(), false);
  const std::string& input = graph.inputs()[0];
  const Value* input_value = graph.FindValue(input);
  p.values[input].desc =
      ops::TensorDesc{input_value != nullptr ? input_value->dtype : DType::kFloat32, input_shape};
  for (const auto& [name, tensor] : graph.initializers()) {
    if (name == input) continue;
    p.values[name] =
        KnownValue{ops::TensorDesc{tensor.dtype(), tensor.shape(), tensor.layout()}, tensor};
  }
  YP_ASSIGN_OR_RETURN(std::vector<int> order, graph.TopologicalOrder());
  for (int i : order) {
    const Node& node = graph.nodes()[i];
    std::vector<ops::TensorDesc> descs(node.inputs.size());
    std::vector<Tensor> values(node.inputs.size());
    bool all_known = true;
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      if (node.inputs[k].empty()) continue;
      auto it = p.values.find(node.inputs[k]);
      if (it == p.values.end()) {
        return NodeError(node, absl::StrCat("input '", node.inputs[k], "' is not defined"));
      }
      descs[k] = it->second.desc;
      values[k] = it->second.value;
      all_known &= values[k].defined();
    }
    const bool shape_only = IsShapeOnlyOp(node.op_type) && !node.inputs.empty() &&
                            descs[0].present() && IsFullyKnown(descs[0].shape);
    if (all_known || shape_only) {
      std::vector<Tensor> eval_inputs = values;
      if (shape_only && !eval_inputs[0].defined()) eval_inputs[0] = ShapeOnlyTensor(descs[0]);
      absl::StatusOr<std::vector<Tensor>> outs = EvaluateNode(node, eval_inputs);
      if (outs.ok()) {
        for (size_t k = 0; k < node.outputs.size(); ++k) {
          const Tensor& t = (*outs)[k];
          if (node.outputs[k].empty()) continue;
          p.values[node.outputs[k]] =
              KnownValue{ops::TensorDesc{t.dtype(), t.shape(), t.layout()}, t};
        }
        p.evaluated[i] = true;
        continue;
      }
      // Too large to fold: keep the node and only describe its outputs.
      if (!absl::IsFailedPrecondition(outs.status())) return outs.status();
    }
    YP_ASSIGN_OR_RETURN(std::vector<ops::TensorDesc> outs, InferNodeOutputs(node, descs, values));
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      if (node.outputs[k].empty()) continue;
      if (outs[k].dtype == DType::kUndefined || !IsFullyKnown(outs[k].shape)) {
        return NodeError(node,
                         absl::StrCat("output '", node.outputs[k], "' has no concrete shape (got ",
                                      ShapeToString(outs[k].shape), " ", DTypeName(outs[k].dtype),
                                      ") for input shape ", ShapeToString(input_shape)));
      }
      p.values[node.outputs[k]].desc = outs[k];
    }
  }
  return p;
}

// Writes a propagation back: evaluated nodes become initializers, every other node's outputs get
// their concrete descriptions.
void Materialize(const Propagation& p, const Shape& input_shape, Graph* graph) {
  Value* input = graph->FindMutableValue(graph->inputs()[0]);
  input->shape = input_shape;
  std::vector<Node> kept;
  std::vector<Node>& nodes = graph->mutable_nodes();
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& out : nodes[i].outputs) {
      if (out.empty()) continue;
      const KnownValue& known = p.values.at(out);
      if (p.evaluated[i]) {
        graph->AddInitializer(out, known.value);
      } else {
        graph->SetValue(Value{out, known.desc.dtype, known.desc.shape});
      }
    }
    if (!p.evaluated[i]) kept.push_back(std::move(nodes[i]));
  }
  nodes = std::move(kept);
}

int64_t NormalizeAxis(int64_t axis, size_t rank) {
  return axis < 0 ? axis + static_cast<int64_t>(rank) : axis;
}

int64_t Product(const Shape& shape, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < shape.size(); ++i) n *= shape[i];
  return n;
}

std::vector<int64_t> ToInts(const Tensor& t) {
  std::vector<int64_t> v(t.num_elements());
  for (int64_t i = 0; i < t.num_elements(); ++i) v[i] = t.GetAsInt64(i);
  return v;
}

const std::set<std::string>& ElementwiseOps() {
  static const std::set<std::string> ops = {
      "Add",       "Sub",      "Mul",   "Div",  "Pow", "Equal",      "Greater",   "Less",
      "Where",     "And",      "Or",    "Max",  "Min", "Mod",        "Sigmoid",   "Identity",
      "Cast",      "Relu",     "Tanh",  "Exp",  "Log", "Sqrt",       "Neg",       "Abs",
      "Floor",     "Ceil",     "Round", "Not",  "Erf", "Reciprocal", "LeakyRelu", "HardSigmoid",
      "HardSwish", "Softplus", "Clip",  "Mish", "Elu", "Selu"};
  return ops;
}

const std::set<std::string>& BatchFirstSpatialOps() {
  static const std::set<std::string> ops = {"Conv",          "MaxPool",
                                            "AveragePool",   "GlobalAveragePool",
                                            "GlobalMaxPool", "BatchNormalization",
                                            "ConvTranspose", "Resize",
                                            "Upsample"};
  return ops;
}

// Tracks which values carry the batch on axis 0 at the declared batch `from`, refuses nodes
// that could mix it with other axes, and rewrites constant shape inputs from `from` to `to`.
class BatchRebinder {
 public:
  BatchRebinder(Graph* graph, const Propagation& declared, int64_t from, int64_t to)
      : graph_(graph), p_(declared), from_(from), to_(to) {}

  absl::Status Run() {
    batch_.insert(graph_->inputs()[0]);
    YP_ASSIGN_OR_RETURN(std::vector<int> order, graph_->TopologicalOrder());
    for (int i : order) {
      if (p_.evaluated[i]) continue;  // Shape/Size of a batch tensor: recomputed at `to`
      const Node& node = graph_->nodes()[i];
      std::vector<int> batch_inputs;
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        if (!node.inputs[k].empty() && batch_.count(node.inputs[k])) {
          batch_inputs.push_back(static_cast<int>(k));
        }
      }
      if (batch_inputs.empty()) continue;
      YP_RETURN_IF_ERROR(CheckNode(i, node, batch_inputs));
      for (const std::string& out : node.outputs) {
        if (!out.empty()) batch_.insert(out);
      }
    }
    std::set<std::string> taken;
    for (const auto& [name, v] : graph_->values()) taken.insert(name);
    for (const auto& [name, t] : graph_->initializers()) taken.insert(name);
    for (const Rewrite& r : rewrites_) {
      std::string name = absl::StrCat(r.original, "/batch", to_);
      for (int k = 1; taken.count(name); ++k)
        name = absl::StrCat(r.original, "/batch", to_, "_", k);
      taken.insert(name);
      graph_->AddInitializer(name, r.value);
      graph_->mutable_nodes()[r.node].inputs[r.input] = name;
    }
    return absl::OkStatus();
  }

  const std::set<std::string>& batch_values() const { return batch_; }

 private:
  struct Rewrite {
    int node;
    size_t input;
    std::string original;
    Tensor value;
  };

  absl::Status Refuse(const Node& node, const std::string& why) const {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot run the model at batch ", to_, ": it was exported with a fixed batch of ", from_,
        ", and node '", node.name, "' (", node.op_type, ") ", why,
        "; re-export the model with a dynamic batch axis"));
  }

  const ops::TensorDesc& Desc(const std::string& name) const { return p_.values.at(name).desc; }
  const Tensor* KnownInput(const Node& node, size_t k) const {
    if (k >= node.inputs.size() || node.inputs[k].empty()) return nullptr;
    const Tensor& t = p_.values.at(node.inputs[k]).value;
    return t.defined() ? &t : nullptr;
  }
  // Records a new value for constant input k when it is an initializer; values computed from
  // shapes in the graph are recomputed at the new batch and need no rewrite.
  void RewriteIfConstant(int node_index, const Node& node, size_t k,
                         const std::vector<int64_t>& values) {
    if (!graph_->IsInitializer(node.inputs[k])) return;
    const Tensor& old = *graph_->FindInitializer(node.inputs[k]);
    if (old.dtype() != DType::kInt64) return;  // shape tensors are int64 in ONNX
    rewrites_.push_back(
        Rewrite{node_index, k, node.inputs[k], Tensor::FromInt64s(old.shape(), values)});
  }

  absl::StatusOr<int64_t> Axis(const Node& node, const char* name, int64_t default_value,
                               size_t rank) const {
    absl::StatusOr<int64_t> axis = node.attrs.GetInt(name, default_value);
    if (!axis.ok()) return NodeError(node, std::string(axis.status().message()));
    return NormalizeAxis(*axis, rank);
  }

  bool OnlyInput0(const std::vector<int>& batch_inputs) const {
    return batch_inputs.size() == 1 && batch_inputs[0] == 0;
  }

  absl::Status CheckNode(int index, const Node& node, const std::vector<int>& batch_inputs) {
    const std::string& op = node.op_type;
    const std::string& out0 = node.outputs.empty() ? std::string() : node.outputs[0];
    const size_t out_rank = out0.empty() ? 0 : Desc(out0).shape.size();
    const Shape in0 =
        node.inputs.empty() || node.inputs[0].empty() ? Shape{} : Desc(node.inputs[0]).shape;
    if (ElementwiseOps().count(op)) {
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        if (node.inputs[k].empty()) continue;
        const Shape& s = Desc(node.inputs[k]).shape;
        const bool is_batch = batch_.count(node.inputs[k]) > 0;
        if (is_batch && s.size() != out_rank) {
          return Refuse(node, absl::StrCat("broadcasts input '", node.inputs[k], "' of shape ",
                                           ShapeToString(s), " to a higher rank"));
        }
        if (!is_batch && s.size() == out_rank && out_rank > 0 && s[0] != 1) {
          return Refuse(node,
                        absl::StrCat("combines the batch with '", node.inputs[k], "' of shape ",
                                     ShapeToString(s), ", whose first dimension is not 1"));
        }
      }
      return absl::OkStatus();
    }
    if (BatchFirstSpatialOps().count(op)) {
      // A fused Conv's residual (input 3) is added to the output: it carries the batch too.
      const bool residual_only_extra =
          op == "Conv" && batch_inputs.size() == 2 && batch_inputs[0] == 0 && batch_inputs[1] == 3;
      if (!OnlyInput0(batch_inputs) && !residual_only_extra) {
        return Refuse(node, "reads a batch tensor as a parameter");
      }
      if (op == "Resize") {
        if (const Tensor* scales = KnownInput(node, 2); scales && scales->num_elements() > 0) {
          if (scales->GetAsDouble(0) != 1.0) return Refuse(node, "scales the batch axis");
        }
        if (const Tensor* sizes = KnownInput(node, 3); sizes && sizes->num_elements() > 0) {
          std::vector<int64_t> v = ToInts(*sizes);
          if (v[0] != from_) return Refuse(node, "resizes the batch axis");
          v[0] = to_;
          RewriteIfConstant(index, node, 3, v);
        }
      }
      return absl::OkStatus();
    }
    if (op == "Concat") {
      YP_ASSIGN_OR_RETURN(int64_t axis, Axis(node, "axis", 0, out_rank));
      if (axis == 0) return Refuse(node, "concatenates on the batch axis 0");
      for (const std::string& in : node.inputs) {
        if (!in.empty() && !batch_.count(in)) {
          return Refuse(node, absl::StrCat("concatenates the batch with constant '", in,
                                           "' of shape ", ShapeToString(Desc(in).shape)));
        }
      }
      return absl::OkStatus();
    }
    if (!OnlyInput0(batch_inputs)) {
      return Refuse(node, "reads a batch tensor in a position other than its data input");
    }
    if (op == "Split") {
      YP_ASSIGN_OR_RETURN(int64_t axis, Axis(node, "axis", 0, in0.size()));
      if (axis == 0) return Refuse(node, "splits the batch axis 0");
      return absl::OkStatus();
    }
    if (op == "Softmax" || op == "LogSoftmax") {
      YP_ASSIGN_OR_RETURN(int64_t axis, Axis(node, "axis", -1, in0.size()));
      if (axis == 0) return Refuse(node, "normalises over the batch axis 0");
      return absl::OkStatus();
    }
    if (op == "Gather") {
      YP_ASSIGN_OR_RETURN(int64_t axis, Axis(node, "axis", 0, in0.size()));
      if (axis == 0) return Refuse(node, "gathers on the batch axis 0");
      return absl::OkStatus();
    }
    if (op == "Transpose") {
      std::vector<int64_t> reversed;
      for (int64_t k = static_cast<int64_t>(in0.size()) - 1; k >= 0; --k) reversed.push_back(k);
      absl::StatusOr<std::vector<int64_t>> perm = node.attrs.GetInts("perm", reversed);
      if (!perm.ok()) return NodeError(node, std::string(perm.status().message()));
      if (perm->empty() || (*perm)[0] != 0) return Refuse(node, "moves the batch axis 0");
      return absl::OkStatus();
    }
    if (op == "Flatten") {
      YP_ASSIGN_OR_RETURN(int64_t axis, Axis(node, "axis", 1, in0.size()));
      if (axis != 1) return Refuse(node, "merges the batch axis with other axes");
      return absl::OkStatus();
    }
    if (op == "Unsqueeze" || op == "Squeeze") {
      const Tensor* axes_tensor = KnownInput(node, 1);
      if (axes_tensor == nullptr) {
        return Refuse(node, op == "Squeeze" ? "squeezes without explicit axes (the batch axis "
                                              "may be among them)"
                                            : "has axes that are not constant");
      }
      const size_t rank = op == "Unsqueeze" ? out_rank : in0.size();
      for (int64_t a : ToInts(*axes_tensor)) {
        if (NormalizeAxis(a, rank) == 0) {
          return Refuse(node, op == "Squeeze" ? "squeezes the batch axis 0"
                                              : "inserts an axis before the batch axis");
        }
      }
      return absl::OkStatus();
    }
    if (op == "Slice") {
      const Tensor* starts = KnownInput(node, 1);
      const Tensor* ends = KnownInput(node, 2);
      const Tensor* axes = KnownInput(node, 3);
      const Tensor* steps = KnownInput(node, 4);
      if (starts == nullptr || ends == nullptr) return Refuse(node, "has non-constant bounds");
      const std::vector<int64_t> s = ToInts(*starts);
      const std::vector<int64_t> e = ToInts(*ends);
      std::vector<int64_t> ax;
      if (axes != nullptr) {
        ax = ToInts(*axes);
      } else {
        for (size_t k = 0; k < s.size(); ++k) ax.push_back(static_cast<int64_t>(k));
      }
      const std::vector<int64_t> st =
          steps != nullptr ? ToInts(*steps) : std::vector<int64_t>(s.size(), 1);
      for (size_t k = 0; k < ax.size() && k < s.size() && k < e.size(); ++k) {
        if (NormalizeAxis(ax[k], in0.size()) != 0) continue;
        // Only an open-ended slice (torch writes INT64_MAX) is batch-independent; [0:1] of a
        // batch of 1 selects the first image at any batch.
        const bool full =
            s[k] == 0 && e[k] >= std::numeric_limits<int32_t>::max() && k < st.size() && st[k] == 1;
        if (!full) return Refuse(node, "slices the batch axis 0");
      }
      return absl::OkStatus();
    }
    if (op == "Reshape") {
      const Shape& out = Desc(out0).shape;
      if (out.empty() || out[0] != from_ || Product(out, 1) != Product(in0, 1)) {
        return Refuse(node,
                      absl::StrCat("reshapes ", ShapeToString(in0), " to ", ShapeToString(out),
                                   ", which does not keep the batch "
                                   "as its own axis 0"));
      }
      if (const Tensor* shape = KnownInput(node, 1)) {
        std::vector<int64_t> v = ToInts(*shape);
        if (!v.empty() && v[0] == from_ && from_ != to_) {
          v[0] = to_;
          RewriteIfConstant(index, node, 1, v);
        }
      }
      return absl::OkStatus();
    }
    if (op == "Expand") {
      const Tensor* shape = KnownInput(node, 1);
      if (shape == nullptr || out_rank != in0.size()) {
        return Refuse(node, "expands to a higher rank or to a non-constant shape");
      }
      std::vector<int64_t> v = ToInts(*shape);
      if (!v.empty() && v[0] != 1) {
        if (v[0] != from_) return Refuse(node, "expands the batch axis");
        v[0] = 1;  // broadcasting keeps whatever batch the input has
        RewriteIfConstant(index, node, 1, v);
      }
      return absl::OkStatus();
    }
    return Refuse(node, "is not known to keep the batch on axis 0");
  }

  Graph* graph_;
  const Propagation& p_;
  const int64_t from_;
  const int64_t to_;
  std::set<std::string> batch_;
  std::vector<Rewrite> rewrites_;
};

absl::Status CheckInputShape(const std::string& name, const Shape& declared, const Shape& given) {
  if (given.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", name, "' expects a 4-D shape (batch, channels, height, width), got ",
        ShapeToString(given), " of rank ", given.size()));
  }
  if (declared.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat("input '", name, "' is declared with shape ",
                                                   ShapeToString(declared),
                                                   "; only rank-4 image inputs can be bound"));
  }
  int64_t elements = 1;
  for (int64_t d : given) {
    if (d <= 0 || d > kMaxInputDim) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name,
                                                     "': every dimension must be between 1 and ",
                                                     kMaxInputDim, ", got ", ShapeToString(given)));
    }
    elements *= d;  // cannot overflow: each factor is at most 2^20 and we stop at 2^31
    if (elements > kMaxInputElements) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "': shape ",
                                                     ShapeToString(given), " has more than ",
                                                     kMaxInputElements, " elements"));
    }
  }
  if (declared[1] >= 0 && declared[1] != given[1]) {
    return absl::InvalidArgumentError(
        absl::StrCat("input '", name, "' expects ", declared[1], " channels, got ", given[1]));
  }
  static const char* const kAxisNames[] = {"batch", "channels", "height", "width"};
  for (int axis : {2, 3}) {
    if (declared[axis] >= 0 && declared[axis] != given[axis]) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", name, "' has a fixed ", kAxisNames[axis], " of ", declared[axis],
                       " (the model declares ", ShapeToString(declared), "), got ", given[axis],
                       " in ", ShapeToString(given),
                       "; only a model exported with dynamic height/width runs at "
                       "other image sizes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Graph> BindInputShape(const Graph& graph, const Shape& input_shape) {
  if (graph.inputs().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot bind the input shape: the graph has ",
                                                   graph.inputs().size(),
                                                   " inputs, expected exactly one"));
  }
  const std::string& input = graph.inputs()[0];
  const Value* input_value = graph.FindValue(input);
  if (input_value == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("graph input '", input, "' has no description"));
  }
  const Shape declared = input_value->shape;
  YP_RETURN_IF_ERROR(CheckInputShape(input, declared, input_shape));

  Graph bound = graph;
  YP_RETURN_IF_ERROR(bound.Validate());
  YP_RETURN_IF_ERROR(FoldConstants(&bound));

  std::set<std::string> batch_values;
  const bool rebatch = declared[0] >= 0 && declared[0] != input_shape[0];
  if (rebatch) {
    Shape at_declared_batch = input_shape;
    at_declared_batch[0] = declared[0];
    absl::StatusOr<Propagation> declared_propagation = Propagate(bound, at_declared_batch);
    if (!declared_propagation.ok()) {
      return absl::Status(declared_propagation.status().code(),
                          absl::StrCat("shape propagation at the declared batch ", declared[0],
                                       ": ", declared_propagation.status().message()));
    }
    BatchRebinder rebinder(&bound, *declared_propagation, declared[0], input_shape[0]);
    YP_RETURN_IF_ERROR(rebinder.Run());
    batch_values = rebinder.batch_values();
  }

  YP_ASSIGN_OR_RETURN(Propagation propagation, Propagate(bound, input_shape));
  for (const auto& [name, known] : propagation.values) {
    int64_t elements = 1;
    for (int64_t d : known.desc.shape) {
      if (d < 0) continue;  // not known: nothing is allocated from it here
      if (d > 0 && elements > kMaxValueElements / d) {
        elements = kMaxValueElements + 1;
        break;
      }
      elements *= d;
    }
    if (elements > kMaxValueElements) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "at input shape ", ShapeToString(input_shape), " tensor '", name, "' would have shape ",
          ShapeToString(known.desc.shape), ", more than ", kMaxValueElements,
          " elements: refused (a model file must not make yolopipe allocate that much)"));
    }
  }
  for (const std::string& name : batch_values) {
    const Shape& s = propagation.values.at(name).desc.shape;
    if (s.empty() || s[0] != input_shape[0]) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot run the model at batch ", input_shape[0], ": tensor '", name,
                       "' should carry the batch on axis 0 but has shape ", ShapeToString(s),
                       "; re-export the model with a dynamic batch axis"));
    }
  }
  Materialize(propagation, input_shape, &bound);
  YP_RETURN_IF_ERROR(bound.SortTopologically());
  bound.RemoveDeadNodes();
  DropStaleValues(&bound);
  YP_RETURN_IF_ERROR(bound.Validate());
  return bound;
}

}  // namespace yolopipe
