// Test helper (testonly) for kCpu kernels: run an op on kReference with plain inputs and on kCpu
// with some inputs converted to channels-last, and compare.
#ifndef YOLOPIPE_OPS_CPU_CPU_TEST_UTIL_H_
#define YOLOPIPE_OPS_CPU_CPU_TEST_UTIL_H_

#include <string>
#include <vector>

#include "base/attributes.h"
#include "base/tensor.h"
#include "gtest/gtest.h"
#include "ops/kernel.h"

namespace yolopipe::ops::testing {

struct CpuCase {
  std::string op_type;
  Attributes attrs;
  std::vector<Tensor> inputs;  // kPlain
  std::vector<int> constant_indices;
  // Layout each input is given to the kCpu kernel in (missing entries: kPlain).
  std::vector<Layout> cpu_layouts;
  int num_outputs = 1;
  int num_threads = 1;
};

// Checks that the kCpu kernel is really registered for `c.op_type` (no silent fallback), that
// its outputs have `expected_layout` and the reference's shapes and dtypes, and that every value
// is within abs_tol + rel_tol * |reference| of the reference (0 and 0: bitwise-equal values).
::testing::AssertionResult CpuMatchesReference(const CpuCase& c, Layout expected_layout,
                                               float abs_tol = 0.0f, float rel_tol = 0.0f);

// Status of creating the kCpu kernel with the inputs in `cpu_layouts` and calling Reshape.
absl::Status CpuCreateStatus(const CpuCase& c);

}  // namespace yolopipe::ops::testing

#endif  // YOLOPIPE_OPS_CPU_CPU_TEST_UTIL_H_
