#include "ops/cpu/cpu_test_util.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/registry.h"

namespace yolopipe::ops::testing {
namespace {

std::vector<Tensor> CpuInputs(const CpuCase& c) {
  std::vector<Tensor> inputs = c.inputs;
  for (size_t i = 0; i < inputs.size() && i < c.cpu_layouts.size(); ++i) {
    if (inputs[i].defined() && c.cpu_layouts[i] != Layout::kPlain) {
      inputs[i] = *inputs[i].ToLayout(c.cpu_layouts[i]);
    }
  }
  return inputs;
}

}  // namespace

absl::Status CpuCreateStatus(const CpuCase& c) {
  std::vector<Tensor> inputs = CpuInputs(c);
  return CreateAndReshapeStatus(
      Backend::kCpu, MakeSpec(c.op_type, c.attrs, inputs, c.constant_indices, c.num_outputs));
}

::testing::AssertionResult CpuMatchesReference(const CpuCase& c, Layout expected_layout,
                                               float abs_tol, float rel_tol) {
  auto backend = KernelRegistry::Global().ResolveBackend(c.op_type, Backend::kCpu);
  if (!backend.ok() || *backend != Backend::kCpu) {
    return ::testing::AssertionFailure() << "no kCpu kernel registered for " << c.op_type;
  }
  auto ref = CreateAndRun(Backend::kReference,
                          MakeSpec(c.op_type, c.attrs, c.inputs, c.constant_indices,
                                   c.num_outputs),
                          c.inputs);
  if (!ref.ok()) return ::testing::AssertionFailure() << "reference: " << ref.status();
  std::vector<Tensor> inputs = CpuInputs(c);
  auto cpu = CreateAndRun(Backend::kCpu,
                          MakeSpec(c.op_type, c.attrs, inputs, c.constant_indices, c.num_outputs),
                          inputs, c.num_threads);
  if (!cpu.ok()) return ::testing::AssertionFailure() << "cpu: " << cpu.status();
  if (cpu->size() != ref->size()) {
    return ::testing::AssertionFailure() << cpu->size() << " outputs, reference has "
                                         << ref->size();
  }
  for (size_t o = 0; o < ref->size(); ++o) {
    const Tensor& r = (*ref)[o];
    const Tensor& y = (*cpu)[o];
    if (y.layout() != expected_layout) {
      return ::testing::AssertionFailure() << "output " << o << " is " << y.DebugString()
                                           << ", expected layout " << LayoutName(expected_layout);
    }
    if (y.shape() != r.shape() || y.dtype() != r.dtype()) {
      return ::testing::AssertionFailure() << "output " << o << " is " << y.DebugString()
                                           << ", reference " << r.DebugString();
    }
    Tensor plain = y.layout() == Layout::kPlain ? y : *y.ToLayout(Layout::kPlain);
    for (int64_t i = 0; i < r.num_elements(); ++i) {
      const double want = r.GetAsDouble(i);
      const double got = plain.GetAsDouble(i);
      const double tol = abs_tol + rel_tol * std::abs(want);
      const bool equal = tol == 0.0 ? got == want : std::abs(got - want) <= tol;
      if (!equal) {
        return ::testing::AssertionFailure() << "output " << o << " element " << i << ": cpu "
                                             << got << ", reference " << want;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace yolopipe::ops::testing
