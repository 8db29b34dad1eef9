// Concat and Split (Backend::kCpu) that also work on channels-last activations.
//
// Contract (KernelTraits{accepts_nhwc = true}; Concat: any non-constant input, Split: input 0):
//  - kPlain inputs: exactly the reference semantics (ops/reference/concat_split.h), any dtype,
//    any axis; outputs kPlain.
//  - kNHWC inputs (4-D float32): only the channel axis (1 or -3) is supported, which is the only
//    axis for which the runtime hands over channels-last tensors; any other axis makes create /
//    Reshape fail with InvalidArgument so that the runtime falls back to plain layout. Outputs
//    are kNHWC. A Concat may mix kNHWC and kPlain 4-D inputs (a plain one is gathered
//    channel by channel).
// Copies run on up to RunContext::num_threads OpenMP threads. One Run at a time per instance.
#ifndef YOLOPIPE_OPS_CPU_CONCAT_SPLIT_H_
#define YOLOPIPE_OPS_CPU_CONCAT_SPLIT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuConcat(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSplit(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_CONCAT_SPLIT_H_
