// Softmax (Backend::kCpu): the reference semantics (ops/reference/softmax.h: ONNX opset 13, one
// axis, max subtracted before exponentiating), plain layout only, multi-threaded and vectorised.
//
//  - float32, axis not the last (YOLOv8's DFL: (B, 16, 4, A) over axis 1): each lane of an 8-wide
//    vector owns one contiguous inner position and walks the axis, so max, exponentials, the sum
//    (in axis order, as the reference sums) and the division are those of the reference, except
//    that e^x comes from vmath::Exp (within 1 ulp of std::exp; ops/cpu/vector_math.h).
//  - float32, last axis (contiguous rows): max and exponentials are vectorised along the row and
//    the row sum is accumulated in 8 partial sums, so it may round differently from the
//    reference's left-to-right sum.
//  Together these keep every output within 1e-6 relative (plus 1e-12 absolute for tiny
//  probabilities) of the reference's; softmax_test checks that bound. Results do not depend on
//  the thread count.
//  - float64 runs the reference kernel.
// Work is split over (outer index, block of inner positions) pairs, or rows, on up to
// RunContext::num_threads OpenMP threads. One Run at a time per instance.
#ifndef YOLOPIPE_OPS_CPU_SOFTMAX_H_
#define YOLOPIPE_OPS_CPU_SOFTMAX_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSoftmax(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_SOFTMAX_H_
