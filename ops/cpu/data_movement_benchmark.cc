// Data-movement and light elementwise kernels on YOLOv8's shapes (batch 8, 640x640): the kCpu
// kernels against the reference kernels.
//   bazel run //ops/cpu:data_movement_benchmark -- --benchmark_counters_tabular=true
// The argument is the thread count passed in RunContext::num_threads (reference kernels are
// single-threaded whatever it says). "GB/s" counts the bytes read plus the bytes written once
// each, so it compares directly with memcpy's bandwidth on the machine. Not a test: nothing is
// asserted.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/cpu/parallel.h"
#include "ops/kernel.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

Tensor Random(const Shape& shape, Layout layout, std::mt19937& rng, float lo = -4.0f,
              float hi = 4.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = dist(rng);
  return layout == Layout::kPlain ? t : *t.ToLayout(layout);
}

// Creates `op_type` on `backend` for `inputs` and times Run.
void RunOp(benchmark::State& state, Backend backend, const std::string& op_type,
           const Attributes& attrs, const std::vector<Tensor>& inputs, int num_outputs = 1) {
  KernelSpec spec;
  spec.node_name = "bench";
  spec.op_type = op_type;
  spec.attrs = attrs;
  spec.num_outputs = num_outputs;
  for (const Tensor& t : inputs) {
    spec.inputs.push_back(TensorDesc{t.dtype(), t.shape(), t.layout()});
    spec.constant_inputs.emplace_back();
  }
  auto resolved = KernelRegistry::Global().ResolveBackend(op_type, backend);
  if (!resolved.ok() || *resolved != backend) {
    state.SkipWithError(("no " + BackendName(backend) + " kernel for " + op_type).c_str());
    return;
  }
  auto kernel = KernelRegistry::Global().Create(backend, spec);
  if (!kernel.ok()) {
    state.SkipWithError(std::string(kernel.status().message()).c_str());
    return;
  }
  auto descs = (*kernel)->Reshape(spec.inputs);
  if (!descs.ok()) {
    state.SkipWithError(std::string(descs.status().message()).c_str());
    return;
  }
  std::vector<Tensor> outputs;
  int64_t bytes = 0;
  for (const TensorDesc& d : *descs) {
    outputs.emplace_back(d.dtype, d.shape, d.layout);
    bytes += static_cast<int64_t>(outputs.back().bytes());
  }
  for (const Tensor& t : inputs) bytes += static_cast<int64_t>(t.bytes());
  auto workspace = std::make_unique<Buffer>((*kernel)->workspace_bytes());
  RunContext ctx;
  ctx.num_threads = static_cast<int>(state.range(0));
  ctx.workspace = workspace->data();
  absl::Status status = (*kernel)->Run(ctx, inputs, absl::MakeSpan(outputs));  // warm-up
  for (auto _ : state) {
    status = (*kernel)->Run(ctx, inputs, absl::MakeSpan(outputs));
    benchmark::DoNotOptimize(outputs[0].raw_data());
    benchmark::ClobberMemory();
  }
  if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

Attributes To(const std::string& layout) {
  Attributes a;
  a.Set("to", layout);
  return a;
}

// The floor: one memcpy of the (8, 144, 80, 80) activation on the same threads.
void BM_Memcpy_8x144x80x80(benchmark::State& state) {
  std::mt19937 rng(1);
  const Tensor x = Random({8, 144, 80, 80}, Layout::kPlain, rng);
  Tensor y(DType::kFloat32, x.shape());
  for (auto _ : state) {
    ParallelMemcpy(static_cast<int>(state.range(0)), y.raw_data(), x.raw_data(), x.bytes());
    benchmark::DoNotOptimize(y.raw_data());
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(2.0 * x.bytes() / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The detect head's concatenation (64 box + 80 class channels at stride 8) back to plain.
void LayoutToPlain_8x144x80x80(benchmark::State& state, Backend backend) {
  std::mt19937 rng(1);
  RunOp(state, backend, "LayoutConversion", To("plain"),
        {Random({8, 144, 80, 80}, Layout::kNHWC, rng)});
}
void LayoutToNhwc_8x144x80x80(benchmark::State& state, Backend backend) {
  std::mt19937 rng(1);
  RunOp(state, backend, "LayoutConversion", To("nhwc"),
        {Random({8, 144, 80, 80}, Layout::kPlain, rng)});
}
// The input images.
void LayoutToNhwc_8x3x640x640(benchmark::State& state, Backend backend) {
  std::mt19937 rng(1);
  RunOp(state, backend, "LayoutConversion", To("nhwc"),
        {Random({8, 3, 640, 640}, Layout::kPlain, rng)});
}
// The DFL softmax output feeding the DFL 1x1 convolution.
void LayoutToNhwc_8x16x4x8400(benchmark::State& state, Backend backend) {
  std::mt19937 rng(1);
  RunOp(state, backend, "LayoutConversion", To("nhwc"),
        {Random({8, 16, 4, 8400}, Layout::kPlain, rng)});
}

// DFL: softmax over the 16 bins of (B, 16, 4, A).
void Softmax_8x16x4x8400_Axis1(benchmark::State& state, Backend backend) {
  std::mt19937 rng(2);
  Attributes a;
  a.Set("axis", int64_t{1});
  RunOp(state, backend, "Softmax", a, {Random({8, 16, 4, 8400}, Layout::kPlain, rng)});
}
void Softmax_8x8400x80_AxisLast(benchmark::State& state, Backend backend) {
  std::mt19937 rng(2);
  Attributes a;
  a.Set("axis", int64_t{-1});
  RunOp(state, backend, "Softmax", a, {Random({8, 8400, 80}, Layout::kPlain, rng)});
}

// DFL: (B, 4, 16, A) -> (B, 16, 4, A).
void Transpose_8x4x16x8400_0213(benchmark::State& state, Backend backend) {
  std::mt19937 rng(3);
  Attributes a;
  a.Set("perm", std::vector<int64_t>{0, 2, 1, 3});
  RunOp(state, backend, "Transpose", a, {Random({8, 4, 16, 8400}, Layout::kPlain, rng)});
}
// An innermost-axis move: (B, 84, A) -> (B, A, 84), the usual post-processing transpose.
void Transpose_8x84x8400_021(benchmark::State& state, Backend backend) {
  std::mt19937 rng(3);
  Attributes a;
  a.Set("perm", std::vector<int64_t>{0, 2, 1});
  RunOp(state, backend, "Transpose", a, {Random({8, 84, 8400}, Layout::kPlain, rng)});
}

// C2f at stride 4: [a, b, m1] of 16 channels each, channels-last.
void ConcatNhwc_8x16x160x160_x3(benchmark::State& state, Backend backend) {
  std::mt19937 rng(4);
  Attributes a;
  a.Set("axis", int64_t{1});
  RunOp(state, backend, "Concat", a,
        {Random({8, 16, 160, 160}, Layout::kNHWC, rng),
         Random({8, 16, 160, 160}, Layout::kNHWC, rng),
         Random({8, 16, 160, 160}, Layout::kNHWC, rng)});
}
// Neck at stride 8: 128 + 64 channels.
void ConcatNhwc_8x128x80x80_8x64x80x80(benchmark::State& state, Backend backend) {
  std::mt19937 rng(4);
  Attributes a;
  a.Set("axis", int64_t{1});
  RunOp(state, backend, "Concat", a,
        {Random({8, 128, 80, 80}, Layout::kNHWC, rng),
         Random({8, 64, 80, 80}, Layout::kNHWC, rng)});
}
// C2f's split of a 32-channel channels-last activation into halves.
void SplitNhwc_8x32x160x160_Halves(benchmark::State& state, Backend backend) {
  std::mt19937 rng(5);
  Attributes a;
  a.Set("axis", int64_t{1});
  a.Set("num_outputs", int64_t{2});
  RunOp(state, backend, "Split", a, {Random({8, 32, 160, 160}, Layout::kNHWC, rng)}, 2);
}

// SPPF's 5x5 stride-1 max pool at stride 32, channels-last.
void MaxPoolNhwc_8x128x20x20_K5(benchmark::State& state, Backend backend) {
  std::mt19937 rng(7);
  Attributes a;
  a.Set("kernel_shape", std::vector<int64_t>{5, 5});
  a.Set("pads", std::vector<int64_t>{2, 2, 2, 2});
  RunOp(state, backend, "MaxPool", a,
        {Random({8, 128, 20, 20}, backend == Backend::kCpu ? Layout::kNHWC : Layout::kPlain,
                rng)});
}

// The class scores.
void Sigmoid_8x80x8400(benchmark::State& state, Backend backend) {
  std::mt19937 rng(6);
  RunOp(state, backend, "Sigmoid", Attributes(),
        {Random({8, 80, 8400}, Layout::kPlain, rng, -12.0f, 6.0f)});
}

BENCHMARK(BM_Memcpy_8x144x80x80)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

#define YP_BENCH_CPU(fn) \
  BENCHMARK_CAPTURE(fn, cpu, Backend::kCpu)          \
      ->Arg(1)                                         \
      ->Arg(2)                                         \
      ->UseRealTime()                                  \
      ->Unit(benchmark::kMillisecond)
#define YP_BENCH_REF(fn) \
  BENCHMARK_CAPTURE(fn, reference, Backend::kReference) \
      ->Arg(1)                                            \
      ->UseRealTime()                                     \
      ->Unit(benchmark::kMillisecond)

YP_BENCH_CPU(LayoutToPlain_8x144x80x80);
YP_BENCH_REF(LayoutToPlain_8x144x80x80);
YP_BENCH_CPU(LayoutToNhwc_8x144x80x80);
YP_BENCH_REF(LayoutToNhwc_8x144x80x80);
YP_BENCH_CPU(LayoutToNhwc_8x3x640x640);
YP_BENCH_REF(LayoutToNhwc_8x3x640x640);
YP_BENCH_CPU(LayoutToNhwc_8x16x4x8400);
YP_BENCH_REF(LayoutToNhwc_8x16x4x8400);
YP_BENCH_CPU(Softmax_8x16x4x8400_Axis1);
YP_BENCH_REF(Softmax_8x16x4x8400_Axis1);
YP_BENCH_CPU(Softmax_8x8400x80_AxisLast);
YP_BENCH_REF(Softmax_8x8400x80_AxisLast);
YP_BENCH_CPU(Transpose_8x4x16x8400_0213);
YP_BENCH_REF(Transpose_8x4x16x8400_0213);
YP_BENCH_CPU(Transpose_8x84x8400_021);
YP_BENCH_REF(Transpose_8x84x8400_021);
YP_BENCH_CPU(ConcatNhwc_8x16x160x160_x3);
YP_BENCH_CPU(ConcatNhwc_8x128x80x80_8x64x80x80);
YP_BENCH_CPU(SplitNhwc_8x32x160x160_Halves);
YP_BENCH_CPU(MaxPoolNhwc_8x128x20x20_K5);
YP_BENCH_REF(MaxPoolNhwc_8x128x20x20_K5);
YP_BENCH_CPU(Sigmoid_8x80x8400);
YP_BENCH_REF(Sigmoid_8x80x8400);

}  // namespace
}  // namespace yolopipe::ops
