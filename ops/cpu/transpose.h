// Transpose (Backend::kCpu): the reference semantics (ops/reference/transpose.h: any permutation,
// default reversed axes; plain layout) for any dtype, moving elements by their size in bytes.
// Pure data movement: the output is bitwise the reference's.
//
// Reshape simplifies the permutation first (drops size-1 axes, merges input axes that stay
// adjacent in the output). Then Run
//  - copies the whole tensor when nothing moves;
//  - copies contiguous rows when the innermost axis stays innermost (YOLOv8's DFL perm
//    (0, 2, 1, 3) copies rows of A floats);
//  - otherwise transposes 2-D tiles between the input's and the output's innermost axes
//    (ops/cpu/matrix_transpose.h).
// Work is split over rows or tiles on up to RunContext::num_threads OpenMP threads. One Run at a
// time per instance.
#ifndef YOLOPIPE_OPS_CPU_TRANSPOSE_H_
#define YOLOPIPE_OPS_CPU_TRANSPOSE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuTranspose(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_TRANSPOSE_H_
