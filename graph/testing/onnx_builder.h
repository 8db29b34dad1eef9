// Test helper: assembles small onnx::ModelProto graphs in code, so importer tests need no files.
#ifndef YOLOPIPE_GRAPH_TESTING_ONNX_BUILDER_H_
#define YOLOPIPE_GRAPH_TESTING_ONNX_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/tensor.h"
#include "onnx/onnx_pb.h"

namespace yolopipe::testing {

// Builds an ONNX model (IR version 8, default domain at `opset`). Not thread-safe.
class OnnxModelBuilder {
 public:
  explicit OnnxModelBuilder(int64_t opset = 17);

  // Graph input / output value infos. A dimension of -1 becomes a symbolic dimension named
  // dim_params[i] (or "d<i>" when no name is given).
  void AddInput(const std::string& name, const Shape& dims, DType dtype = DType::kFloat32,
                const std::vector<std::string>& dim_params = {});
  void AddOutput(const std::string& name, const Shape& dims, DType dtype = DType::kFloat32,
                 const std::vector<std::string>& dim_params = {});

  // Initializers, stored as raw_data.
  void AddInitializer(const std::string& name, const Tensor& tensor);
  void AddFloatInitializer(const std::string& name, const Shape& shape,
                           const std::vector<float>& values);
  void AddInt64Initializer(const std::string& name, const std::vector<int64_t>& values);

  // Appends a node. An empty name gives "<op_type>_<n>". The reference stays valid until the
  // next AddNode call.
  onnx::NodeProto& AddNode(const std::string& op_type, const std::vector<std::string>& inputs,
                           const std::vector<std::string>& outputs, const std::string& name = "");
  // A Constant node whose `value` attribute is `tensor`; returns the output name `name`.
  std::string AddConstant(const std::string& name, const Tensor& tensor);

  static void AttrInt(onnx::NodeProto& node, const std::string& name, int64_t value);
  static void AttrFloat(onnx::NodeProto& node, const std::string& name, float value);
  static void AttrString(onnx::NodeProto& node, const std::string& name, const std::string& value);
  static void AttrInts(onnx::NodeProto& node, const std::string& name,
                       const std::vector<int64_t>& values);
  static void AttrFloats(onnx::NodeProto& node, const std::string& name,
                         const std::vector<float>& values);
  static void AttrTensor(onnx::NodeProto& node, const std::string& name, const Tensor& tensor);

  void AddMetadata(const std::string& key, const std::string& value);

  // Raw-data TensorProto of `tensor`.
  static onnx::TensorProto ToTensorProto(const std::string& name, const Tensor& tensor);

  onnx::ModelProto& proto() { return model_; }
  const onnx::ModelProto& proto() const { return model_; }
  std::string Bytes() const;

 private:
  onnx::ModelProto model_;
  int node_count_ = 0;
};

// Appends to `b` the convolution node `name`: out = Conv(x, "<name>.weight", "<name>.bias") with a
// k x k kernel, padding k/2 and stride `stride`; weights and bias are initializers filled
// deterministically from `seed`.
void AddConv(OnnxModelBuilder& b, const std::string& name, const std::string& x,
             const std::string& out, int64_t c_in, int64_t c_out, int64_t k, int64_t stride,
             int seed);

// Deterministic pseudo-random floats in [-0.5, 0.5).
std::vector<float> SeededFloats(int64_t n, int seed);

}  // namespace yolopipe::testing

#endif  // YOLOPIPE_GRAPH_TESTING_ONNX_BUILDER_H_
