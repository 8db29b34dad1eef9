#include "graph/testing/onnx_builder.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace yolopipe::testing {
namespace {

void FillValueInfo(onnx::ValueInfoProto* vi, const std::string& name, const Shape& dims,
                   DType dtype, const std::vector<std::string>& dim_params) {
  vi->set_name(name);
  onnx::TypeProto_Tensor* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(DTypeToOnnx(dtype));
  onnx::TensorShapeProto* shape = tt->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    onnx::TensorShapeProto_Dimension* d = shape->add_dim();
    if (dims[i] >= 0) {
      d->set_dim_value(dims[i]);
    } else {
      d->set_dim_param(i < dim_params.size() ? dim_params[i] : absl::StrCat("d", i));
    }
  }
}

}  // namespace

OnnxModelBuilder::OnnxModelBuilder(int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("yolopipe-test");
  onnx::OperatorSetIdProto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test_graph");
}

void OnnxModelBuilder::AddInput(const std::string& name, const Shape& dims, DType dtype,
                                const std::vector<std::string>& dim_params) {
  FillValueInfo(model_.mutable_graph()->add_input(), name, dims, dtype, dim_params);
}

void OnnxModelBuilder::AddOutput(const std::string& name, const Shape& dims, DType dtype,
                                 const std::vector<std::string>& dim_params) {
  FillValueInfo(model_.mutable_graph()->add_output(), name, dims, dtype, dim_params);
}

onnx::TensorProto OnnxModelBuilder::ToTensorProto(const std::string& name, const Tensor& tensor) {
  onnx::TensorProto proto;
  proto.set_name(name);
  proto.set_data_type(DTypeToOnnx(tensor.dtype()));
  for (int64_t d : tensor.shape()) proto.add_dims(d);
  proto.set_raw_data(std::string(static_cast<const char*>(tensor.raw_data()), tensor.bytes()));
  return proto;
}

void OnnxModelBuilder::AddInitializer(const std::string& name, const Tensor& tensor) {
  *model_.mutable_graph()->add_initializer() = ToTensorProto(name, tensor);
}

void OnnxModelBuilder::AddFloatInitializer(const std::string& name, const Shape& shape,
                                           const std::vector<float>& values) {
  AddInitializer(name, Tensor::FromFloats(shape, values));
}

void OnnxModelBuilder::AddInt64Initializer(const std::string& name,
                                           const std::vector<int64_t>& values) {
  AddInitializer(name, Tensor::FromInt64s({static_cast<int64_t>(values.size())}, values));
}

onnx::NodeProto& OnnxModelBuilder::AddNode(const std::string& op_type,
                                           const std::vector<std::string>& inputs,
                                           const std::vector<std::string>& outputs,
                                           const std::string& name) {
  onnx::NodeProto* node = model_.mutable_graph()->add_node();
  node->set_op_type(op_type);
  node->set_name(name.empty() ? absl::StrCat(op_type, "_", node_count_) : name);
  ++node_count_;
  for (const std::string& in : inputs) node->add_input(in);
  for (const std::string& out : outputs) node->add_output(out);
  return *node;
}

std::string OnnxModelBuilder::AddConstant(const std::string& name, const Tensor& tensor) {
  onnx::NodeProto& node = AddNode("Constant", {}, {name}, name + "_node");
  AttrTensor(node, "value", tensor);
  return name;
}

void OnnxModelBuilder::AttrInt(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

void OnnxModelBuilder::AttrFloat(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
}

void OnnxModelBuilder::AttrString(onnx::NodeProto& node, const std::string& name,
                                  const std::string& value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

void OnnxModelBuilder::AttrInts(onnx::NodeProto& node, const std::string& name,
                                const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

void OnnxModelBuilder::AttrFloats(onnx::NodeProto& node, const std::string& name,
                                  const std::vector<float>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (float v : values) a->add_floats(v);
}

void OnnxModelBuilder::AttrTensor(onnx::NodeProto& node, const std::string& name,
                                  const Tensor& tensor) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = ToTensorProto("", tensor);
}

void OnnxModelBuilder::AddMetadata(const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto* p = model_.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

std::string OnnxModelBuilder::Bytes() const {
  std::string bytes;
  model_.SerializeToString(&bytes);
  return bytes;
}

std::vector<float> SeededFloats(int64_t n, int seed) {
  // A small LCG: deterministic across platforms, no <random> distribution differences.
  std::vector<float> values(n);
  uint32_t state = 2166136261u ^ static_cast<uint32_t>(seed) * 16777619u;
  for (int64_t i = 0; i < n; ++i) {
    state = state * 1664525u + 1013904223u;
    values[i] = static_cast<float>(state >> 8) / static_cast<float>(1u << 24) - 0.5f;
  }
  return values;
}

void AddConv(OnnxModelBuilder& b, const std::string& name, const std::string& x,
             const std::string& out, int64_t c_in, int64_t c_out, int64_t k, int64_t stride,
             int seed) {
  const std::string w = name + ".weight";
  const std::string bias = name + ".bias";
  b.AddFloatInitializer(w, {c_out, c_in, k, k}, SeededFloats(c_out * c_in * k * k, seed));
  b.AddFloatInitializer(bias, {c_out}, SeededFloats(c_out, seed + 1000));
  onnx::NodeProto& conv = b.AddNode("Conv", {x, w, bias}, {out}, name);
  OnnxModelBuilder::AttrInts(conv, "kernel_shape", {k, k});
  OnnxModelBuilder::AttrInts(conv, "strides", {stride, stride});
  OnnxModelBuilder::AttrInts(conv, "pads", {k / 2, k / 2, k / 2, k / 2});
  OnnxModelBuilder::AttrInts(conv, "dilations", {1, 1});
  OnnxModelBuilder::AttrInt(conv, "group", 1);
}

}  // namespace yolopipe::testing
