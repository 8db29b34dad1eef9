#include "graph/onnx_export.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "graph/fuse.h"
#include "graph/model_metadata.h"
#include "onnx/checker.h"
#include "onnx/shape_inference/implementation.h"

namespace yolopipe {
namespace {

class NameAllocator {
 public:
  explicit NameAllocator(std::set<std::string> taken) : taken_(std::move(taken)) {}
  std::string Make(const std::string& base) {
    std::string name = base;
    for (int k = 1; taken_.count(name); ++k) name = absl::StrCat(base, "__", k);
    taken_.insert(name);
    return name;
  }

 private:
  std::set<std::string> taken_;
};

absl::Status SetAttribute(const std::string& name, const AttributeValue& value,
                          onnx::AttributeProto* a) {
  a->set_name(name);
  if (const int64_t* v = std::get_if<int64_t>(&value)) {
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(*v);
  } else if (const float* v = std::get_if<float>(&value)) {
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(*v);
  } else if (const std::string* v = std::get_if<std::string>(&value)) {
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(*v);
  } else if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) {
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : *v) a->add_ints(x);
  } else if (const auto* v = std::get_if<std::vector<float>>(&value)) {
    a->set_type(onnx::AttributeProto::FLOATS);
    for (float x : *v) a->add_floats(x);
  } else if (const auto* v = std::get_if<std::vector<std::string>>(&value)) {
    a->set_type(onnx::AttributeProto::STRINGS);
    for (const std::string& x : *v) a->add_strings(x);
  } else if (const Tensor* v = std::get_if<Tensor>(&value)) {
    a->set_type(onnx::AttributeProto::TENSOR);
    YP_ASSIGN_OR_RETURN(*a->mutable_t(), TensorToOnnx("", *v));
  }
  return absl::OkStatus();
}

absl::Status AddNode(const Node& node, onnx::GraphProto* graph) {
  onnx::NodeProto* np = graph->add_node();
  np->set_name(node.name);
  np->set_op_type(node.op_type);
  // Trailing absent optional inputs are dropped, as exporters do.
  size_t num_inputs = node.inputs.size();
  while (num_inputs > 0 && node.inputs[num_inputs - 1].empty()) --num_inputs;
  for (size_t i = 0; i < num_inputs; ++i) np->add_input(node.inputs[i]);
  for (const std::string& out : node.outputs) np->add_output(out);
  for (const auto& [name, value] : node.attrs.values()) {
    absl::Status status = SetAttribute(name, value, np->add_attribute());
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("node '", node.name, "' attribute '", name, "': ", status.message()));
    }
  }
  return absl::OkStatus();
}

// Writes `node`, expanding a fused Conv into standard ONNX nodes.
absl::Status AddUnfused(const Node& node, NameAllocator* values, NameAllocator* node_names,
                        onnx::GraphProto* graph) {
  const bool has_residual =
      node.inputs.size() > kConvResidualInput && !node.inputs[kConvResidualInput].empty();
  const bool has_activation = node.attrs.Has(kActivationAttr);
  if (node.op_type != "Conv" || (!has_residual && !has_activation)) return AddNode(node, graph);

  if (has_activation) {
    absl::StatusOr<std::string> act = node.attrs.GetString(kActivationAttr, "");
    if (!act.ok() || *act != kActivationSilu) {
      return absl::InvalidArgumentError(
          absl::StrCat("node '", node.name, "' (Conv): fused activation '", act.ok() ? *act : "?",
                       "' has no ONNX export; only 'silu' is supported"));
    }
  }
  if (node.outputs.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", node.name, "' (Conv): a fused Conv must have one output"));
  }
  const std::string& final_output = node.outputs[0];
  Node conv = node;
  conv.attrs.Erase(kActivationAttr);
  if (has_residual) conv.inputs.resize(kConvResidualInput);
  const bool conv_is_last = !has_activation && !has_residual;
  conv.outputs = {conv_is_last ? final_output : values->Make(node.name + "/conv_output")};
  YP_RETURN_IF_ERROR(AddNode(conv, graph));
  std::string current = conv.outputs[0];

  if (has_activation) {
    Node sigmoid;
    sigmoid.name = node_names->Make(node.name + "/sigmoid");
    sigmoid.op_type = "Sigmoid";
    sigmoid.inputs = {current};
    sigmoid.outputs = {values->Make(node.name + "/sigmoid_output")};
    YP_RETURN_IF_ERROR(AddNode(sigmoid, graph));
    Node mul;
    mul.name = node_names->Make(node.name + "/silu");
    mul.op_type = "Mul";
    mul.inputs = {current, sigmoid.outputs[0]};
    mul.outputs = {has_residual ? values->Make(node.name + "/silu_output") : final_output};
    YP_RETURN_IF_ERROR(AddNode(mul, graph));
    current = mul.outputs[0];
  }
  if (has_residual) {
    Node add;
    add.name = node_names->Make(node.name + "/residual");
    add.op_type = "Add";
    add.inputs = {current, node.inputs[kConvResidualInput]};
    add.outputs = {final_output};
    YP_RETURN_IF_ERROR(AddNode(add, graph));
  }
  return absl::OkStatus();
}

absl::Status SetValueInfo(const Graph& graph, const std::string& name, bool is_input,
                          onnx::ValueInfoProto* vi) {
  const Value* v = graph.FindValue(name);
  if (v == nullptr || v->dtype == DType::kUndefined) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph ", is_input ? "input" : "output", " '", name, "' has no known dtype"));
  }
  vi->set_name(name);
  onnx::TypeProto_Tensor* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(DTypeToOnnx(v->dtype));
  onnx::TensorShapeProto* shape = tt->mutable_shape();
  for (size_t i = 0; i < v->shape.size(); ++i) {
    onnx::TensorShapeProto_Dimension* d = shape->add_dim();
    if (v->shape[i] >= 0) {
      d->set_dim_value(v->shape[i]);
    } else if (i == 0) {
      d->set_dim_param("batch");
    } else if (is_input && i == 2) {
      d->set_dim_param("height");
    } else if (is_input && i == 3) {
      d->set_dim_param("width");
    } else {
      d->set_dim_param(absl::StrCat(name, "_dim", i));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<onnx::ModelProto> BuildModel(const Graph& graph) {
  YP_RETURN_IF_ERROR(graph.Validate());
  onnx::ModelProto model;
  model.set_ir_version(kExportIrVersion);
  model.set_producer_name("yolopipe");
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kExportOpset);
  for (const auto& [key, value] : graph.metadata()) {
    if (absl::StartsWith(key, kMetadataInternalPrefix)) continue;
    onnx::StringStringEntryProto* prop = model.add_metadata_props();
    prop->set_key(key);
    prop->set_value(value);
  }

  onnx::GraphProto* gp = model.mutable_graph();
  gp->set_name(graph.name().empty() ? "yolopipe" : graph.name());
  for (const std::string& in : graph.inputs()) {
    YP_RETURN_IF_ERROR(SetValueInfo(graph, in, /*is_input=*/true, gp->add_input()));
  }
  for (const auto& [name, tensor] : graph.initializers()) {
    absl::StatusOr<onnx::TensorProto> proto = TensorToOnnx(name, tensor);
    if (!proto.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", name, "': ", proto.status().message()));
    }
    *gp->add_initializer() = *std::move(proto);
  }

  std::set<std::string> value_names(graph.inputs().begin(), graph.inputs().end());
  std::set<std::string> node_names;
  for (const auto& [name, v] : graph.values()) value_names.insert(name);
  for (const auto& [name, t] : graph.initializers()) value_names.insert(name);
  for (const Node& node : graph.nodes()) {
    node_names.insert(node.name);
    value_names.insert(node.outputs.begin(), node.outputs.end());
    value_names.insert(node.inputs.begin(), node.inputs.end());
  }
  NameAllocator values(std::move(value_names));
  NameAllocator nodes(std::move(node_names));
  YP_ASSIGN_OR_RETURN(std::vector<int> order, graph.TopologicalOrder());
  for (int i : order) YP_RETURN_IF_ERROR(AddUnfused(graph.nodes()[i], &values, &nodes, gp));

  for (const std::string& out : graph.outputs()) {
    YP_RETURN_IF_ERROR(SetValueInfo(graph, out, /*is_input=*/false, gp->add_output()));
  }
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true,
                                                                   /*strict_mode=*/1));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("the exported model does not pass the ONNX checker: ", e.what()));
  } catch (...) {
    return absl::InternalError("the exported model does not pass the ONNX checker");
  }
  return model;
}

}  // namespace

absl::StatusOr<onnx::TensorProto> TensorToOnnx(const std::string& name, const Tensor& tensor) {
  if (!tensor.defined() || tensor.dtype() == DType::kUndefined) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' is undefined"));
  }
  YP_ASSIGN_OR_RETURN(Tensor plain, tensor.ToLayout(Layout::kPlain));
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(DTypeToOnnx(plain.dtype()));
  for (int64_t d : plain.shape()) proto.add_dims(d);
  proto.set_raw_data(std::string(static_cast<const char*>(plain.raw_data()), plain.bytes()));
  return proto;
}

absl::StatusOr<std::string> ExportOnnxBytes(const Graph& graph) {
  absl::StatusOr<onnx::ModelProto> model = BuildModel(graph);
  if (!model.ok()) {
    return absl::Status(model.status().code(),
                        absl::StrCat("ONNX export: ", model.status().message()));
  }
  std::string bytes;
  if (!model->SerializeToString(&bytes)) {
    return absl::InternalError("ONNX export: the model could not be serialized (over 2 GiB?)");
  }
  return bytes;
}

absl::Status ExportOnnxFile(const Graph& graph, const std::string& path) {
  YP_ASSIGN_OR_RETURN(std::string bytes, ExportOnnxBytes(graph));
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ONNX file '", path, "': ", std::strerror(errno)));
    }
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      const int err = errno;
      std::remove(tmp.c_str());
      return absl::InvalidArgumentError(
          absl::StrCat("error writing ONNX file '", path, "': ", std::strerror(err)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InvalidArgumentError(
        absl::StrCat("cannot move the exported model into '", path, "': ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace yolopipe
