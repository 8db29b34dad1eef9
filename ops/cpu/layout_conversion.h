// LayoutConversion (Backend::kCpu): the runtime's plain <-> channels-last conversion of a 4-D
// float32 activation, as a cache-blocked, multi-threaded transpose of each image's
// (C, H*W) matrix. Same contract and checks as the reference kernel
// (ops/reference/layout_conversion.h), and bitwise the same output (pure data movement).
//
// Work is split over (image, block of pixels) pairs on up to RunContext::num_threads OpenMP
// threads. One Run at a time per instance.
#ifndef YOLOPIPE_OPS_CPU_LAYOUT_CONVERSION_H_
#define YOLOPIPE_OPS_CPU_LAYOUT_CONVERSION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuLayoutConversion(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_LAYOUT_CONVERSION_H_
