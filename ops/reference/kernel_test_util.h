// Test helpers for kernels (testonly): build a KernelSpec from example tensors, create a kernel
// through KernelRegistry::Global().Create, call Reshape, allocate the outputs (and workspace) with
// the returned descriptions, and run.
#ifndef YOLOPIPE_OPS_REFERENCE_KERNEL_TEST_UTIL_H_
#define YOLOPIPE_OPS_REFERENCE_KERNEL_TEST_UTIL_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/kernel.h"

namespace yolopipe::ops::testing {

// A spec whose inputs are described by `inputs` (an undefined Tensor is an absent optional
// input). Inputs whose index is in `constant_indices` are also given as constant_inputs.
KernelSpec MakeSpec(const std::string& op_type, const Attributes& attrs,
                    const std::vector<Tensor>& inputs, const std::vector<int>& constant_indices,
                    int num_outputs = 1, const std::string& node_name = "test_node");

// Reshape + allocate + Run on an existing kernel.
absl::StatusOr<std::vector<Tensor>> RunKernel(Kernel& kernel, const std::vector<Tensor>& inputs,
                                              int num_threads = 1);

// Creates the kernel of `backend` for `spec` and runs it on `inputs` (whose descs must match
// spec.inputs in dtype and shape; layouts are taken from the tensors).
absl::StatusOr<std::vector<Tensor>> CreateAndRun(Backend backend, const KernelSpec& spec,
                                                 const std::vector<Tensor>& inputs,
                                                 int num_threads = 1);

// MakeSpec + CreateAndRun with Backend::kReference; returns the first output.
absl::StatusOr<Tensor> RunReference(const std::string& op_type, const Attributes& attrs,
                                    const std::vector<Tensor>& inputs,
                                    const std::vector<int>& constant_indices = {});

// Status of creating the kernel and, if that succeeds, of Reshape on spec.inputs.
absl::Status CreateAndReshapeStatus(Backend backend, const KernelSpec& spec);

// Values in logical (plain) order, converting channels-last tensors.
std::vector<float> ToFloats(const Tensor& tensor);
std::vector<int64_t> ToInt64s(const Tensor& tensor);

// A kPlain float32 tensor with values uniform in [lo, hi).
Tensor RandomFloats(const Shape& shape, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f);

// Typed tensors from values.
Tensor Int32s(const Shape& shape, const std::vector<int32_t>& values);
Tensor Bools(const Shape& shape, const std::vector<bool>& values);
Tensor Float64s(const Shape& shape, const std::vector<double>& values);

}  // namespace yolopipe::ops::testing

#endif  // YOLOPIPE_OPS_REFERENCE_KERNEL_TEST_UTIL_H_
