// Add, Mul and Sigmoid (Backend::kCpu), layout-agnostic where the layout cannot matter.
//
// Contract (KernelTraits{accepts_nhwc = true}; Add/Mul: any non-constant input, Sigmoid: input 0):
//  - Sigmoid: any layout; float32 runs here (output in the input's layout), float64 runs the
//    reference kernel. float32 uses the reference's formula with the vectorised vmath::Exp
//    (ops/cpu/vector_math.h) in place of std::exp: outputs are within 1e-6 relative of the
//    reference's (observed at most 1.8e-7 over all floats), not bitwise equal.
//  - Add, Mul with kPlain inputs: reference semantics (numpy broadcasting, float32/float64/int64/
//    int32); float32 inputs of identical shape, or with a one-element operand, run a flat loop
//    here, the rest runs the reference broadcasting code.
//  - Add, Mul with a kNHWC input: float32 only, and both inputs must have the same shape (a kPlain
//    one is converted through RunContext::workspace) or the other input must have one element.
//    Other broadcasts are rejected at create / Reshape with InvalidArgument, so that the runtime
//    falls back to plain layout. The output is kNHWC.
// Loops run on up to RunContext::num_threads OpenMP threads. One Run at a time per instance.
#ifndef YOLOPIPE_OPS_CPU_ELEMENTWISE_H_
#define YOLOPIPE_OPS_CPU_ELEMENTWISE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuAddMul(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSigmoid(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_ELEMENTWISE_H_
