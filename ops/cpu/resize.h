// Nearest-neighbour Resize (Backend::kCpu) for plain and channels-last activations; semantics and
// validation are the reference's (ops/reference/resize.h). Registered with
// KernelTraits{accepts_nhwc, nhwc_inputs = {0}}: a kNHWC input gives a kNHWC output. 4-D float32
// tensors take the fast paths (whole pixels copied with memcpy in NHWC; an exact integer
// upsampling such as YOLOv8's x2 replicates pixels and then whole rows); anything else in plain
// layout runs the reference kernel. Rows run on up to RunContext::num_threads OpenMP threads.
// One Run at a time per instance.
#ifndef YOLOPIPE_OPS_CPU_RESIZE_H_
#define YOLOPIPE_OPS_CPU_RESIZE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuResize(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_RESIZE_H_
