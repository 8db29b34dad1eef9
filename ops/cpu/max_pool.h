// 2-D MaxPool (Backend::kCpu) for plain and channels-last activations; semantics and validation
// are the reference's (ops/reference/max_pool.h), and so are the outputs, bit for bit.
// Registered with KernelTraits{accepts_nhwc}: a kNHWC input gives a kNHWC output (separable:
// per-row maxima vectorised over channels, then maxima across the window's rows), a kPlain input
// a kPlain output. Rows run on up to RunContext::num_threads OpenMP threads. One Run at a time
// per instance.
#ifndef YOLOPIPE_OPS_CPU_MAX_POOL_H_
#define YOLOPIPE_OPS_CPU_MAX_POOL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuMaxPool(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_MAX_POOL_H_
