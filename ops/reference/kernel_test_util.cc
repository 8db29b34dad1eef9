#include "ops/reference/kernel_test_util.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "ops/registry.h"

namespace yolopipe::ops::testing {

KernelSpec MakeSpec(const std::string& op_type, const Attributes& attrs,
                    const std::vector<Tensor>& inputs, const std::vector<int>& constant_indices,
                    int num_outputs, const std::string& node_name) {
  KernelSpec spec;
  spec.node_name = node_name;
  spec.op_type = op_type;
  spec.attrs = attrs;
  spec.num_outputs = num_outputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& t = inputs[i];
    if (t.defined()) {
      spec.inputs.push_back(TensorDesc{t.dtype(), t.shape(), t.layout()});
    } else {
      spec.inputs.push_back(TensorDesc{});
    }
    const bool is_constant = std::find(constant_indices.begin(), constant_indices.end(),
                                       static_cast<int>(i)) != constant_indices.end();
    spec.constant_inputs.push_back(is_constant ? t : Tensor());
  }
  return spec;
}

absl::StatusOr<std::vector<Tensor>> RunKernel(Kernel& kernel, const std::vector<Tensor>& inputs,
                                              int num_threads) {
  std::vector<TensorDesc> descs;
  for (const Tensor& t : inputs) {
    descs.push_back(t.defined() ? TensorDesc{t.dtype(), t.shape(), t.layout()} : TensorDesc{});
  }
  YP_ASSIGN_OR_RETURN(std::vector<TensorDesc> out_descs, kernel.Reshape(descs));
  std::vector<Tensor> outputs;
  for (const TensorDesc& d : out_descs) outputs.emplace_back(d.dtype, d.shape, d.layout);
  std::unique_ptr<Buffer> workspace;
  RunContext ctx;
  ctx.num_threads = num_threads;
  if (kernel.workspace_bytes() > 0) {
    workspace = std::make_unique<Buffer>(kernel.workspace_bytes());
    ctx.workspace = workspace->data();
  }
  YP_RETURN_IF_ERROR(kernel.Run(ctx, inputs, absl::MakeSpan(outputs)));
  return outputs;
}

absl::StatusOr<std::vector<Tensor>> CreateAndRun(Backend backend, const KernelSpec& spec,
                                                 const std::vector<Tensor>& inputs,
                                                 int num_threads) {
  YP_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel,
                      KernelRegistry::Global().Create(backend, spec));
  return RunKernel(*kernel, inputs, num_threads);
}

absl::StatusOr<Tensor> RunReference(const std::string& op_type, const Attributes& attrs,
                                    const std::vector<Tensor>& inputs,
                                    const std::vector<int>& constant_indices) {
  KernelSpec spec = MakeSpec(op_type, attrs, inputs, constant_indices);
  YP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                      CreateAndRun(Backend::kReference, spec, inputs));
  if (outputs.empty()) return absl::InternalError("kernel produced no outputs");
  return outputs[0];
}

absl::Status CreateAndReshapeStatus(Backend backend, const KernelSpec& spec) {
  YP_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel,
                      KernelRegistry::Global().Create(backend, spec));
  return kernel->Reshape(spec.inputs).status();
}

std::vector<float> ToFloats(const Tensor& tensor) {
  Tensor plain = tensor;
  if (tensor.layout() != Layout::kPlain) plain = *tensor.ToLayout(Layout::kPlain);
  std::vector<float> values(plain.num_elements());
  for (int64_t i = 0; i < plain.num_elements(); ++i) {
    values[i] = static_cast<float>(plain.GetAsDouble(i));
  }
  return values;
}

std::vector<int64_t> ToInt64s(const Tensor& tensor) {
  std::vector<int64_t> values(tensor.num_elements());
  for (int64_t i = 0; i < tensor.num_elements(); ++i) values[i] = tensor.GetAsInt64(i);
  return values;
}

Tensor RandomFloats(const Shape& shape, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::kFloat32, shape);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.num_elements(); ++i) p[i] = dist(rng);
  return t;
}

Tensor Int32s(const Shape& shape, const std::vector<int32_t>& values) {
  Tensor t(DType::kInt32, shape);
  std::memcpy(t.raw_data(), values.data(), std::min(t.bytes(), values.size() * sizeof(int32_t)));
  return t;
}

Tensor Bools(const Shape& shape, const std::vector<bool>& values) {
  Tensor t(DType::kBool, shape);
  uint8_t* p = t.data<uint8_t>();
  for (int64_t i = 0; i < t.num_elements() && i < static_cast<int64_t>(values.size()); ++i) {
    p[i] = values[i] ? 1 : 0;
  }
  return t;
}

Tensor Float64s(const Shape& shape, const std::vector<double>& values) {
  Tensor t(DType::kFloat64, shape);
  std::memcpy(t.raw_data(), values.data(), std::min(t.bytes(), values.size() * sizeof(double)));
  return t;
}

}  // namespace yolopipe::ops::testing
