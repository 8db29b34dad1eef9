// A host emulator of the CUDA lowering plan (cuda_executor.h): runs a CudaLoweringPlan on the CPU
// with naive loops, so the plan can be checked against the CPU executor without a GPU.
//
// The emulator is deliberately faithful to the device half (cuda_executor_cuda.cc) rather than
// to the graph: it allocates one arena of plan.arena_bytes, places every activation at its plan
// offset, addresses tensors exactly as EnqueueSteps does (dense pointers for kernel inputs,
// channel slices for convolution outputs and residuals, the Concat copy skipped where
// written_in_place says so), runs the steps in plan order and reads the packed weights and biases
// from the plan's weight blob. Any mistake in the layout (overlapping live activations, a wrong
// channel offset, a slice that is never written, weights at the wrong offset, steps in the wrong
// order) therefore changes the result just as it would on the GPU, and shows up when the result is
// compared with the CPU executor's.
//
// Numerics follow the CUDA kernels (ops/cuda/kernels.cu) and the default convolution path
// (ops/cuda/conv.h, kLegacyPlusEpilogue): arithmetic in float32; with a float16 plan every value
// stored into the arena is rounded to binary16 (round to nearest even), weights are read as fp16,
// and a convolution's raw sum is rounded to fp16 once before its epilogue (bias, SiLU, residual),
// as cuDNN stores it in fp16 before the epilogue kernel reads it back. Biases are float32 in both
// precisions. Summation order differs from cuDNN's, so results agree with the GPU to rounding,
// not bit for bit.
//
// The arena starts filled with NaN, and before a step runs, the elements it writes are set to NaN
// again: a read of bytes no step has written, or an input that overlaps the step's own output,
// propagates NaN into the result instead of silently reading stale data.
#ifndef YOLOPIPE_RUNTIME_CUDA_LOWERING_EMULATOR_H_
#define YOLOPIPE_RUNTIME_CUDA_LOWERING_EMULATOR_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/tensor.h"
#include "runtime/cuda/cuda_executor.h"

namespace yolopipe {

struct CudaEmulatorOptions {
  // Track which activation last wrote every arena element, and fail with Internal (naming the
  // step, the activation it reads, the element and the activation or step that wrote it last)
  // when a step reads elements that another activation has overwritten, that nothing has written,
  // or that overlap what the same step writes. Off, the emulator behaves like the GPU: a layout
  // bug only corrupts the numbers.
  bool check_layout = false;
};

// Runs `plan` on the host. `inputs`: the graph inputs in plan order (plan.inputs[i]), float32 with
// exactly the shape plan.inputs[i].shape, plain (NCHW) or NHWC layout. Returns the graph outputs
// in plan order as new plain float32 tensors with the shapes plan.outputs[o].shape (the Detect
// output is (B, 4 + nc, anchors)).
//
// InvalidArgument for a wrong input count, dtype or shape; for a plan whose precision is neither
// float16 nor float32; or, naming the step, for the argument checks the CUDA kernels would reject
// (a channel slice that does not fit its tensor, bad convolution or pooling parameters). Internal,
// naming the step and activation, for a plan the device code could not run safely: an activation
// or slice outside the arena, weights or biases outside the blob, an activation id out of range,
// a step with the wrong number of inputs or outputs; and, with check_layout, the layout faults
// listed above. Pure function of its arguments; thread-safe.
absl::StatusOr<std::vector<Tensor>> EmulateCudaPlan(const CudaLoweringPlan& plan,
                                                    absl::Span<const Tensor> inputs,
                                                    const CudaEmulatorOptions& options = {});

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_LOWERING_EMULATOR_H_
