#include "graph/onnx_import.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "graph/fold.h"
#include "graph/fuse.h"
#include "onnx/checker.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"
#include "ops/registry.h"

namespace yolopipe {
namespace {

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 19;
// Larger tensors than this cannot be real YOLO weights; refusing early also keeps a corrupt
// dims field from overflowing the byte count.
constexpr int64_t kMaxTensorElements = int64_t{1} << 40;

bool IsDefaultDomain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string OnnxTypeName(int data_type) {
  if (onnx::TensorProto_DataType_IsValid(data_type)) {
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(data_type));
  }
  return "invalid";
}

// Prefixes a status message with the model's source, keeping the code.
absl::Status InSource(const std::string& source, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat("ONNX model '", source, "': ", status.message()));
}

absl::Status SourceError(const std::string& source, const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("ONNX model '", source, "': ", message));
}

std::string NodeDesc(const onnx::NodeProto& node, int index) {
  return node.name().empty() ? absl::StrCat("node #", index, " (", node.op_type(), ")")
                             : absl::StrCat("node '", node.name(), "' (", node.op_type(), ")");
}

template <typename Field, typename T>
void CopyNarrowed(const Field& field, T* dst) {
  for (int i = 0; i < field.size(); ++i) dst[i] = static_cast<T>(field.Get(i));
}

// --- attributes ---

absl::StatusOr<AttributeValue> AttributeFromOnnx(const onnx::AttributeProto& a,
                                                 const std::string& node_desc) {
  const std::string where = absl::StrCat(node_desc, ", attribute '", a.name(), "'");
  if (!a.ref_attr_name().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": function attribute references are not supported"));
  }
  onnx::AttributeProto::AttributeType type = a.type();
  if (type == onnx::AttributeProto::UNDEFINED) {
    // IR version 1 files may leave the type out; it is implied by the field that is set.
    if (a.has_f()) {
      type = onnx::AttributeProto::FLOAT;
    } else if (a.has_i()) {
      type = onnx::AttributeProto::INT;
    } else if (a.has_s()) {
      type = onnx::AttributeProto::STRING;
    } else if (a.has_t()) {
      type = onnx::AttributeProto::TENSOR;
    } else if (a.floats_size() > 0) {
      type = onnx::AttributeProto::FLOATS;
    } else if (a.ints_size() > 0) {
      type = onnx::AttributeProto::INTS;
    } else if (a.strings_size() > 0) {
      type = onnx::AttributeProto::STRINGS;
    }
  }
  switch (type) {
    case onnx::AttributeProto::FLOAT:
      return AttributeValue(a.f());
    case onnx::AttributeProto::INT:
      return AttributeValue(static_cast<int64_t>(a.i()));
    case onnx::AttributeProto::STRING:
      return AttributeValue(a.s());
    case onnx::AttributeProto::FLOATS:
      return AttributeValue(std::vector<float>(a.floats().begin(), a.floats().end()));
    case onnx::AttributeProto::INTS:
      return AttributeValue(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
    case onnx::AttributeProto::STRINGS:
      return AttributeValue(std::vector<std::string>(a.strings().begin(), a.strings().end()));
    case onnx::AttributeProto::TENSOR: {
      absl::StatusOr<Tensor> t = TensorFromOnnx(a.t());
      if (!t.ok())
        return absl::Status(t.status().code(), absl::StrCat(where, ": ", t.status().message()));
      return AttributeValue(*std::move(t));
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": attribute kind ",
                       onnx::AttributeProto_AttributeType_IsValid(type)
                           ? onnx::AttributeProto_AttributeType_Name(type)
                           : std::string("UNDEFINED"),
                       " is not supported"));
  }
}

// The tensor a Constant node defines.
absl::StatusOr<Tensor> ConstantValue(const onnx::NodeProto& node, const std::string& node_desc) {
  if (node.output_size() != 1 || node.attribute_size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(node_desc, ": a Constant needs exactly one output and one value attribute"));
  }
  const onnx::AttributeProto& a = node.attribute(0);
  const std::string& kind = a.name();
  if (kind == "value") {
    absl::StatusOr<Tensor> t = TensorFromOnnx(a.t());
    if (!t.ok()) {
      return absl::Status(t.status().code(), absl::StrCat(node_desc, ": ", t.status().message()));
    }
    return t;
  }
  if (kind == "value_float") return Tensor::ScalarFloat(a.f());
  if (kind == "value_int") return Tensor::ScalarInt64(a.i());
  if (kind == "value_floats") {
    return Tensor::FromFloats({a.floats_size()},
                              std::vector<float>(a.floats().begin(), a.floats().end()));
  }
  if (kind == "value_ints") {
    return Tensor::FromInt64s({a.ints_size()},
                              std::vector<int64_t>(a.ints().begin(), a.ints().end()));
  }
  return absl::UnimplementedError(
      absl::StrCat(node_desc, ": Constant attribute '", kind, "' is not supported"));
}

// --- value infos ---

struct ParsedValueInfo {
  Value value;
  bool is_tensor = false;
  bool has_shape = false;
};

ParsedValueInfo ValueFromValueInfo(const onnx::ValueInfoProto& vi) {
  ParsedValueInfo parsed;
  parsed.value.name = vi.name();
  parsed.value.dtype = DType::kUndefined;
  if (!vi.type().has_tensor_type()) return parsed;
  parsed.is_tensor = true;
  const onnx::TypeProto_Tensor& tt = vi.type().tensor_type();
  if (tt.has_elem_type()) {
    absl::StatusOr<DType> dtype = DTypeFromOnnx(tt.elem_type());
    if (dtype.ok()) parsed.value.dtype = *dtype;
  }
  if (tt.has_shape()) {
    parsed.has_shape = true;
    for (const onnx::TensorShapeProto_Dimension& d : tt.shape().dim()) {
      parsed.value.shape.push_back(d.has_dim_value() && d.dim_value() >= 0 ? d.dim_value()
                                                                           : kUnknownDim);
    }
  }
  return parsed;
}

// --- model-level checks on the proto ---

absl::StatusOr<int64_t> DefaultOpset(const onnx::ModelProto& model) {
  int64_t opset = -1;
  for (const onnx::OperatorSetIdProto& imp : model.opset_import()) {
    if (IsDefaultDomain(imp.domain())) opset = imp.version();
  }
  if (opset < 0) {
    return absl::InvalidArgumentError("it declares no opset for the default ONNX domain");
  }
  if (opset < kMinOpset || opset > kMaxOpset) {
    return absl::InvalidArgumentError(absl::StrCat(
        "it uses opset ", opset, " of the default ONNX domain; yolopipe supports opsets ",
        kMinOpset, " to ", kMaxOpset, " (re-export with opset_version=17)"));
  }
  return opset;
}

// External data would make the importer open files named by the model; refuse it everywhere a
// tensor can appear.
absl::Status CheckNoExternalData(const onnx::GraphProto& graph) {
  auto check = [](const onnx::TensorProto& t, const std::string& where) -> absl::Status {
    if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
      return absl::UnimplementedError(absl::StrCat(
          where, " tensor '", t.name(),
          "' keeps its data in a separate file: external data not supported (export the model "
          "as a single .onnx file)"));
    }
    return absl::OkStatus();
  };
  for (const onnx::TensorProto& t : graph.initializer()) {
    YP_RETURN_IF_ERROR(check(t, "initializer"));
  }
  if (graph.sparse_initializer_size() > 0) {
    return absl::UnimplementedError(absl::StrCat(
        "sparse initializer '", graph.sparse_initializer(0).values().name(), "' is not supported"));
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    const onnx::NodeProto& node = graph.node(i);
    for (const onnx::AttributeProto& a : node.attribute()) {
      const std::string where = absl::StrCat(NodeDesc(node, i), " attribute '", a.name(), "':");
      if (a.has_t()) YP_RETURN_IF_ERROR(check(a.t(), where));
      for (const onnx::TensorProto& t : a.tensors()) YP_RETURN_IF_ERROR(check(t, where));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckDomainsAndOps(const onnx::ModelProto& model) {
  const ops::KernelRegistry& registry = ops::KernelRegistry::Global();
  for (int i = 0; i < model.graph().node_size(); ++i) {
    const onnx::NodeProto& node = model.graph().node(i);
    if (!IsDefaultDomain(node.domain())) {
      return absl::InvalidArgumentError(
          absl::StrCat(NodeDesc(node, i), " is in operator domain '", node.domain(),
                       "'; only the default ONNX domain (ai.onnx) is supported"));
    }
    if (node.op_type() == "Constant") continue;
    if (!registry.Has(node.op_type(), ops::Backend::kReference)) {
      return absl::UnimplementedError(absl::StrCat(
          NodeDesc(node, i), ": op type '", node.op_type(), "' is not supported (supported: ",
          absl::StrJoin(registry.ReferenceOpTypes(), ", "), ", Constant)"));
    }
  }
  return absl::OkStatus();
}

// libonnx 1.12 knows the default domain up to opset 17 and IR version 8. Opsets 18 and 19 only
// added attributes that are no-ops at their defaults for the ops yolopipe supports; drop those
// (refusing non-default values) and check the model as opset 17. Changes the model in place.
absl::Status LowerToKnownOpset(onnx::ModelProto* model, int64_t opset) {
  if (model->ir_version() > onnx::IR_VERSION) model->set_ir_version(onnx::IR_VERSION);
  const auto& ranges = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
  auto range = ranges.find(onnx::ONNX_DOMAIN);
  const int64_t max_known = range == ranges.end() ? 17 : range->second.second;
  if (opset <= max_known) return absl::OkStatus();
  for (int i = 0; i < model->graph().node_size(); ++i) {
    onnx::NodeProto* node = model->mutable_graph()->mutable_node(i);
    auto* attrs = node->mutable_attribute();
    for (int k = attrs->size() - 1; k >= 0; --k) {
      const onnx::AttributeProto& a = attrs->Get(k);
      bool drop = false;
      std::string refuse;
      if (node->op_type() == "Split" && a.name() == "num_outputs") {
        if (a.i() != node->output_size()) refuse = "num_outputs differs from the output count";
        drop = true;
      } else if (node->op_type() == "Resize") {
        if (a.name() == "antialias") {
          if (a.i() != 0) refuse = "antialias=1 is not supported";
          drop = true;
        } else if (a.name() == "keep_aspect_ratio_policy") {
          if (a.s() != "stretch") refuse = "keep_aspect_ratio_policy other than 'stretch'";
          drop = true;
        } else if (a.name() == "axes") {
          refuse = "the axes attribute is not supported";
        } else if (a.name() == "coordinate_transformation_mode" &&
                   a.s() == "half_pixel_symmetric") {
          refuse = "coordinate_transformation_mode 'half_pixel_symmetric' is not supported";
        }
      } else if (node->op_type() == "Cast" && a.name() == "saturate") {
        drop = true;  // only affects float8 targets, which yolopipe refuses anyway
      }
      if (!refuse.empty()) {
        return absl::UnimplementedError(absl::StrCat(NodeDesc(*node, i), ": ", refuse));
      }
      if (drop) attrs->DeleteSubrange(k, 1);
    }
  }
  for (onnx::OperatorSetIdProto& imp : *model->mutable_opset_import()) {
    if (IsDefaultDomain(imp.domain())) imp.set_version(max_known);
  }
  return absl::OkStatus();
}

// --- graph-level normalisation after conversion ---

std::string UniqueName(const std::set<std::string>& taken, const std::string& base) {
  if (!taken.count(base)) return base;
  for (int k = 1;; ++k) {
    std::string candidate = absl::StrCat(base, "__", k);
    if (!taken.count(candidate)) return candidate;
  }
}

std::set<std::string> AllValueNames(const Graph& graph) {
  std::set<std::string> names(graph.inputs().begin(), graph.inputs().end());
  for (const auto& [name, t] : graph.initializers()) names.insert(name);
  for (const auto& [name, v] : graph.values()) names.insert(name);
  for (const Node& node : graph.nodes()) {
    names.insert(node.inputs.begin(), node.inputs.end());
    names.insert(node.outputs.begin(), node.outputs.end());
  }
  return names;
}

// Identity nodes are removed by reading their input directly. Graph output names are kept: an
// Identity that names a graph output makes its input's producer (or a copy of its constant)
// produce that name; one that forwards the graph input stays.
void RemoveIdentityNodes(Graph* graph) {
  const std::set<std::string> outputs(graph->outputs().begin(), graph->outputs().end());
  std::vector<bool> removed(graph->nodes().size(), false);
  for (size_t i = 0; i < graph->nodes().size(); ++i) {
    const Node node = graph->nodes()[i];
    if (node.op_type != "Identity" || node.inputs.size() != 1 || node.outputs.size() != 1 ||
        node.inputs[0].empty()) {
      continue;
    }
    const std::string& in = node.inputs[0];
    const std::string& out = node.outputs[0];
    if (!outputs.count(out)) {
      graph->ReplaceAllUses(out, in);
    } else if (graph->IsGraphInput(in) || outputs.count(in)) {
      continue;
    } else if (const Tensor* t = graph->FindInitializer(in)) {
      const Tensor copy = *t;
      graph->AddInitializer(out, copy);
    } else {
      for (Node& other : graph->mutable_nodes()) {
        for (std::string& o : other.outputs) {
          if (o == in) o = out;
        }
        for (std::string& x : other.inputs) {
          if (x == in) x = out;
        }
      }
    }
    removed[i] = true;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < graph->nodes().size(); ++i) {
    if (!removed[i]) kept.push_back(std::move(graph->mutable_nodes()[i]));
  }
  graph->mutable_nodes() = std::move(kept);
}

// Moves an opset < 13 ints attribute (Split's split, Squeeze/Unsqueeze's axes) into the input
// the opset-13 form expects, so kernels and the exporter see one form only.
void AttributeToInput(Graph* graph, Node* node, const std::string& attr, size_t input_index,
                      std::set<std::string>* taken) {
  absl::StatusOr<std::vector<int64_t>> values = node->attrs.GetInts(attr);
  if (!values.ok()) return;
  const std::string name = UniqueName(*taken, absl::StrCat(node->name, "/", attr));
  taken->insert(name);
  graph->AddInitializer(name, Tensor::FromInt64s({static_cast<int64_t>(values->size())}, *values));
  node->attrs.Erase(attr);
  if (node->inputs.size() < input_index) node->inputs.resize(input_index);
  node->inputs.insert(node->inputs.begin() + input_index, name);
}

absl::Status NormalizeLegacyForms(Graph* graph, int64_t opset) {
  if (opset >= 13) return absl::OkStatus();
  std::set<std::string> taken = AllValueNames(*graph);
  std::set<std::string> node_names;
  for (const Node& node : graph->nodes()) node_names.insert(node.name);
  std::vector<Node> rewritten;
  for (Node& node : graph->mutable_nodes()) {
    if (node.op_type == "Split") {
      AttributeToInput(graph, &node, "split", 1, &taken);
    } else if (node.op_type == "Squeeze" || node.op_type == "Unsqueeze") {
      AttributeToInput(graph, &node, "axes", 1, &taken);
    } else if (node.op_type == "Softmax" && node.inputs.size() == 1 && node.outputs.size() == 1) {
      // Before opset 13 Softmax flattened its input to 2-D at `axis` (default 1) and normalised
      // over the second dimension. That is the opset-13 meaning when `axis` is the last axis;
      // otherwise (or when the rank is not known yet) spell it out as
      // Flatten(axis) -> Softmax(-1) -> Reshape(Shape(x)), which holds for every rank.
      YP_ASSIGN_OR_RETURN(int64_t axis, node.attrs.GetInt("axis", 1));
      const Value* in = graph->FindValue(node.inputs[0]);
      const int64_t rank = in != nullptr && in->dtype != DType::kUndefined
                               ? static_cast<int64_t>(in->shape.size())
                               : -1;
      const bool last = axis == -1 || (rank > 0 && (axis < 0 ? axis + rank : axis) == rank - 1);
      node.attrs.Set("axis", int64_t{-1});
      if (last) {
        rewritten.push_back(std::move(node));
        continue;
      }
      auto unique_value = [&](const std::string& suffix) {
        std::string name = UniqueName(taken, node.name + suffix);
        taken.insert(name);
        return name;
      };
      auto unique_node = [&](const std::string& suffix) {
        std::string name = UniqueName(node_names, node.name + suffix);
        node_names.insert(name);
        return name;
      };
      const std::string x = node.inputs[0];
      const std::string y = node.outputs[0];
      Node flatten{unique_node("/flatten"), "Flatten", {x}, {unique_value("/flattened")}, {}};
      flatten.attrs.Set("axis", axis);
      Node shape{unique_node("/shape"), "Shape", {x}, {unique_value("/input_shape")}, {}};
      Node reshape{unique_node("/reshape"),
                   "Reshape",
                   {unique_value("/softmax_2d"), shape.outputs[0]},
                   {y},
                   {}};
      node.inputs = {flatten.outputs[0]};
      node.outputs = {reshape.inputs[0]};
      for (const std::string& v : {flatten.outputs[0], shape.outputs[0], node.outputs[0]}) {
        graph->SetValue(Value{v, DType::kUndefined, {}});
      }
      rewritten.push_back(std::move(flatten));
      rewritten.push_back(std::move(node));
      rewritten.push_back(std::move(shape));
      rewritten.push_back(std::move(reshape));
      continue;
    }
    rewritten.push_back(std::move(node));
  }
  graph->mutable_nodes() = std::move(rewritten);
  return absl::OkStatus();
}

absl::StatusOr<Graph> ConvertGraph(const onnx::ModelProto& model, int64_t opset) {
  const onnx::GraphProto& gp = model.graph();
  Graph graph;
  graph.set_name(gp.name());
  for (const onnx::StringStringEntryProto& prop : model.metadata_props()) {
    graph.mutable_metadata()[prop.key()] = prop.value();
  }
  graph.mutable_metadata()[kMetadataOnnxOpset] = absl::StrCat(opset);

  for (const onnx::TensorProto& t : gp.initializer()) {
    if (t.name().empty()) return absl::InvalidArgumentError("an initializer has no name");
    if (graph.IsInitializer(t.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", t.name(), "' is defined twice"));
    }
    absl::StatusOr<Tensor> tensor = TensorFromOnnx(t);
    if (!tensor.ok()) {
      return absl::Status(tensor.status().code(),
                          absl::StrCat("initializer ", tensor.status().message()));
    }
    graph.AddInitializer(t.name(), *std::move(tensor));
  }

  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const onnx::ValueInfoProto& vi : gp.input()) {
    if (!graph.IsInitializer(vi.name())) inputs.push_back(&vi);
  }
  if (inputs.empty()) {
    return absl::InvalidArgumentError("the graph has no input; yolopipe needs one image input");
  }
  if (inputs.size() > 1) {
    std::vector<std::string> names;
    for (const onnx::ValueInfoProto* vi : inputs) names.push_back("'" + vi->name() + "'");
    return absl::InvalidArgumentError(
        absl::StrCat("the graph has ", inputs.size(), " inputs (", absl::StrJoin(names, ", "),
                     "); yolopipe models take exactly one image input"));
  }
  const ParsedValueInfo input = ValueFromValueInfo(*inputs[0]);
  if (!input.is_tensor || input.value.dtype != DType::kFloat32 || !input.has_shape ||
      input.value.shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", input.value.name,
        "' must be a float32 image tensor of rank 4 (B, C, H, W), got ",
        !input.is_tensor ? std::string("a non-tensor type")
                         : absl::StrCat(DTypeName(input.value.dtype),
                                        input.has_shape ? ShapeToString(input.value.shape)
                                                        : std::string(" of unknown rank"))));
  }
  graph.AddInput(input.value);
  graph.mutable_metadata()[kMetadataDeclaredInputShape] = absl::StrJoin(input.value.shape, ",");

  // Node outputs start as "unknown"; inferred value_info and graph outputs fill in what ONNX
  // shape inference knows.
  for (const onnx::NodeProto& node : gp.node()) {
    for (const std::string& out : node.output()) {
      if (!out.empty()) graph.SetValue(Value{out, DType::kUndefined, {}});
    }
  }
  auto record = [&graph](const onnx::ValueInfoProto& vi) {
    ParsedValueInfo parsed = ValueFromValueInfo(vi);
    if (!parsed.is_tensor || graph.IsInitializer(vi.name()) || graph.IsGraphInput(vi.name())) {
      return;
    }
    graph.SetValue(parsed.value);
  };
  for (const onnx::ValueInfoProto& vi : gp.value_info()) record(vi);
  for (const onnx::ValueInfoProto& vi : gp.output()) {
    if (!vi.type().has_tensor_type()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", vi.name(), "' is not a tensor"));
    }
    record(vi);
  }

  std::set<std::string> node_names;
  for (int i = 0; i < gp.node_size(); ++i) {
    const onnx::NodeProto& np = gp.node(i);
    const std::string desc = NodeDesc(np, i);
    if (np.op_type() == "Constant") {
      YP_ASSIGN_OR_RETURN(Tensor value, ConstantValue(np, desc));
      const std::string& out = np.output(0);
      if (graph.IsInitializer(out) || graph.IsGraphInput(out)) {
        return absl::InvalidArgumentError(
            absl::StrCat(desc, ": output '", out, "' is already defined"));
      }
      graph.AddInitializer(out, std::move(value));
      continue;
    }
    Node node;
    node.name =
        UniqueName(node_names, np.name().empty() ? absl::StrCat(np.op_type(), "_", i) : np.name());
    node_names.insert(node.name);
    node.op_type = np.op_type();
    node.inputs.assign(np.input().begin(), np.input().end());
    node.outputs.assign(np.output().begin(), np.output().end());
    for (const onnx::AttributeProto& a : np.attribute()) {
      YP_ASSIGN_OR_RETURN(AttributeValue value, AttributeFromOnnx(a, desc));
      node.attrs.Set(a.name(), std::move(value));
    }
    graph.AddNode(std::move(node));
  }
  for (const onnx::ValueInfoProto& vi : gp.output()) graph.AddOutput(vi.name());
  if (graph.outputs().empty()) return absl::InvalidArgumentError("the graph has no outputs");

  RemoveIdentityNodes(&graph);
  YP_RETURN_IF_ERROR(NormalizeLegacyForms(&graph, opset));
  YP_RETURN_IF_ERROR(graph.SortTopologically());
  YP_RETURN_IF_ERROR(graph.Validate());
  return graph;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const std::string message =
        absl::StrCat("cannot open ONNX model '", path, "': ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(message) : absl::InvalidArgumentError(message);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open ONNX model '", path, "': not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot open ONNX model '", path, "': ", std::strerror(errno)));
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.gcount() != static_cast<std::streamsize>(bytes.size())) {
    return absl::InvalidArgumentError(absl::StrCat("error reading ONNX model '", path, "': read ",
                                                   in.gcount(), " of ", bytes.size(), " bytes"));
  }
  return bytes;
}

}  // namespace

absl::StatusOr<Tensor> TensorFromOnnx(const onnx::TensorProto& proto) {
  const std::string what = absl::StrCat("tensor '", proto.name(), "'");
  if (proto.data_location() == onnx::TensorProto::EXTERNAL || proto.external_data_size() > 0) {
    return absl::UnimplementedError(
        absl::StrCat(what,
                     " keeps its data in a separate file: external data not supported (export the "
                     "model as a single .onnx file)"));
  }
  if (proto.has_segment()) {
    return absl::UnimplementedError(absl::StrCat(what, ": segmented tensors are not supported"));
  }
  absl::StatusOr<DType> dtype_or = DTypeFromOnnx(proto.data_type());
  if (!dtype_or.ok()) {
    return absl::UnimplementedError(absl::StrCat(what, " has unsupported data type ",
                                                 OnnxTypeName(proto.data_type()), " (",
                                                 proto.data_type(), ")"));
  }
  const DType dtype = *dtype_or;
  Shape shape;
  int64_t count = 1;
  for (int64_t d : proto.dims()) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a negative dimension ", d));
    }
    if (d > 0 && count > kMaxTensorElements / d) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is implausibly large (dims ",
                                                     absl::StrJoin(proto.dims(), "x"), ")"));
    }
    count *= d;
    shape.push_back(d);
  }
  const size_t bytes = static_cast<size_t>(count) * DTypeSize(dtype);
  const std::string declared =
      absl::StrCat("declared dims ", ShapeToString(shape), " of ", DTypeName(dtype), " need ",
                   count, " elements (", bytes, " bytes)");
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != bytes) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", declared, " but raw_data holds ",
                                                     proto.raw_data().size(), " bytes"));
    }
    Tensor t(dtype, shape);
    if (bytes > 0) std::memcpy(t.raw_data(), proto.raw_data().data(), bytes);
    return t;
  }

  int64_t have = 0;
  const char* field = "";
  switch (dtype) {
    case DType::kFloat32:
      have = proto.float_data_size();
      field = "float_data";
      break;
    case DType::kFloat64:
      have = proto.double_data_size();
      field = "double_data";
      break;
    case DType::kInt64:
      have = proto.int64_data_size();
      field = "int64_data";
      break;
    default:
      have = proto.int32_data_size();
      field = "int32_data";
      break;
  }
  if (have != count) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", declared, " but ", field, " holds ", have, " elements"));
  }
  Tensor t(dtype, shape);
  switch (dtype) {
    case DType::kFloat32:
      CopyNarrowed(proto.float_data(), t.data<float>());
      break;
    case DType::kFloat64:
      CopyNarrowed(proto.double_data(), t.data<double>());
      break;
    case DType::kInt64:
      CopyNarrowed(proto.int64_data(), t.data<int64_t>());
      break;
    case DType::kInt32:
      CopyNarrowed(proto.int32_data(), t.data<int32_t>());
      break;
    case DType::kInt8:
      CopyNarrowed(proto.int32_data(), t.data<int8_t>());
      break;
    case DType::kUInt8:
      CopyNarrowed(proto.int32_data(), t.data<uint8_t>());
      break;
    case DType::kBool:
      for (int i = 0; i < proto.int32_data_size(); ++i) {
        t.data<uint8_t>()[i] = proto.int32_data(i) != 0 ? 1 : 0;
      }
      break;
    case DType::kFloat16:  // the low 16 bits of each int32 hold the half-precision bits
      CopyNarrowed(proto.int32_data(), t.data<uint16_t>());
      break;
    case DType::kUndefined:
      break;
  }
  return t;
}

absl::StatusOr<Graph> ImportOnnxFile(const std::string& path, const OnnxImportOptions& options) {
  YP_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return ImportOnnxBytes(bytes, path, options);
}

absl::StatusOr<Graph> ImportOnnxBytes(const std::string& bytes, const std::string& source_name,
                                      const OnnxImportOptions& options) {
  const std::string& source = source_name;
  if (bytes.empty()) return SourceError(source, "the file is empty (0 bytes)");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes)) {
    return SourceError(source, absl::StrCat("not a valid ONNX protobuf (", bytes.size(),
                                            " bytes could not be parsed; the file is truncated "
                                            "or not an ONNX model)"));
  }
  if (!model.has_graph() || model.ir_version() <= 0) {
    return SourceError(
        source, absl::StrCat("not an ONNX model (", bytes.size(), " bytes parsed, but there is no ",
                             model.has_graph() ? "ir_version" : "graph", ")"));
  }
  if (model.graph().node_size() == 0) {
    return SourceError(source,
                       absl::StrCat("graph '", model.graph().name(), "' is empty (no nodes)"));
  }
  absl::StatusOr<int64_t> opset = DefaultOpset(model);
  if (!opset.ok()) return InSource(source, opset.status());
  if (model.functions_size() > 0) {
    return SourceError(source, "model-local functions are not supported");
  }
  absl::Status status = CheckDomainsAndOps(model);
  if (status.ok()) status = CheckNoExternalData(model.graph());
  if (status.ok()) status = LowerToKnownOpset(&model, *opset);
  if (!status.ok()) return InSource(source, status);

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return SourceError(source, absl::StrCat("rejected by the ONNX checker: ", e.what()));
  } catch (...) {
    return SourceError(source, "rejected by the ONNX checker (unknown exception)");
  }
  try {
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& e) {
    return SourceError(source, absl::StrCat("ONNX shape inference failed: ", e.what()));
  } catch (...) {
    return SourceError(source, "ONNX shape inference failed (unknown exception)");
  }

  absl::StatusOr<Graph> graph = ConvertGraph(model, *opset);
  if (!graph.ok()) return InSource(source, graph.status());
  status = FoldConstants(&*graph);
  if (status.ok() && options.fuse) status = FuseConvActivations(&*graph);
  if (status.ok()) status = graph->Validate();
  if (!status.ok()) return InSource(source, status);
  DropStaleValues(&*graph);
  return graph;
}

}  // namespace yolopipe
