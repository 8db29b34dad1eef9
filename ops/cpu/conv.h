// Optimized 2-D convolution (Backend::kCpu) on oneDNN's forward-inference convolution.
//
// Semantics are those of the reference Conv (ops/reference/conv.h), including the yolopipe fusion
// extension: Y = act(conv(X, W) + B) + residual, with activation "silu" lowered to oneDNN's
// eltwise_swish post-op (alpha 1) and the residual (input 3) to a binary_add post-op that reads
// the residual tensor in place.
//
// Layouts: registered with KernelTraits{accepts_nhwc = true, nhwc_inputs = {0, 3}}. The primitive
// always computes channels-last (NHWC) activations, which is what oneDNN's brgconv wants; the
// output is kNHWC when X is kNHWC and kPlain otherwise. Plain X, residual or output are reordered
// through staging buffers in RunContext::workspace (workspace_bytes() says how much). W and B
// must be kPlain.
//
// Weights: when W is a constant (the normal case) it is reordered once into the primitive's
// preferred (blocked) format, at create time when the input shape is known, else at the first
// Reshape; a non-constant W is reordered at every Run. Groups (including depthwise) run in oneDNN.
//
// Threads: oneDNN here runs on OpenMP and sizes its parallel regions when a primitive is created,
// so primitives are cached per (input shape, layouts, thread count). Run calls
// omp_set_num_threads(ctx.num_threads) in the calling thread; the first Run with a new thread
// count (or a new shape) builds and caches another primitive, later Runs allocate nothing.
// oneDNN's scratchpad is library-managed (per thread, reused).
//
// Thread-safety: one Run at a time per kernel instance.
#ifndef YOLOPIPE_OPS_CPU_CONV_H_
#define YOLOPIPE_OPS_CPU_CONV_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuConv(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_CONV_H_
