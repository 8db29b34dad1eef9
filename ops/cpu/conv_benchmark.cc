// Convolution throughput: the oneDNN kCpu kernel against the reference kernel.
//   bazel run -c opt //ops/cpu:conv_benchmark -- --benchmark_counters_tabular=true
// The headline case is YOLOv8's 3x3 convolution 8x32x160x160 -> 32 with bias + SiLU fused
// (BASELINES.md: oneDNN brgconv reaches ~180 GFLOP/s on the 2-core AVX-512 machine). The
// reference kernel runs a smaller shape so that it finishes in reasonable time. The GFLOP counter
// is a rate (printed as GFLOP=.../s). The argument is the thread count passed in
// RunContext::num_threads. Not a test: nothing is asserted.
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/kernel.h"
#include "ops/reference/conv.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

Tensor Random(const Shape& shape, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  Tensor t(DType::kFloat32, shape);
  for (int64_t i = 0; i < t.num_elements(); ++i) t.data<float>()[i] = dist(rng);
  return t;
}

// k x k (pad k / 2), bias + SiLU: N x C x S x S -> N x M x S/stride x S/stride.
void RunConv(benchmark::State& state, Backend backend, int64_t n, int64_t c, int64_t size,
             Layout layout, int64_t k = 3, int64_t stride = 1, int64_t m = 0) {
  if (m == 0) m = c;
  const int threads = static_cast<int>(state.range(0));
  std::mt19937 rng(1);
  Tensor x = *Random({n, c, size, size}, 1.0f, rng).ToLayout(layout);
  Tensor w = Random({m, c, k, k}, 0.06f, rng);
  Tensor b = Random({m}, 0.1f, rng);
  KernelSpec spec;
  spec.node_name = "bench";
  spec.op_type = "Conv";
  spec.attrs.Set("kernel_shape", std::vector<int64_t>{k, k});
  spec.attrs.Set("strides", std::vector<int64_t>{stride, stride});
  spec.attrs.Set("pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2});
  spec.attrs.Set("activation", std::string("silu"));
  spec.inputs = {TensorDesc{x.dtype(), x.shape(), x.layout()},
                 TensorDesc{w.dtype(), w.shape(), w.layout()},
                 TensorDesc{b.dtype(), b.shape(), b.layout()}};
  spec.constant_inputs = {Tensor(), w, b};
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
  std::vector<Tensor> outputs = {Tensor((*descs)[0].dtype, (*descs)[0].shape, (*descs)[0].layout)};
  auto workspace = std::make_unique<Buffer>((*kernel)->workspace_bytes());
  RunContext ctx;
  ctx.num_threads = threads;
  ctx.workspace = workspace->data();
  const std::vector<Tensor> inputs = {x, w, b};
  // One untimed run builds the primitive for this thread count.
  absl::Status status = (*kernel)->Run(ctx, inputs, absl::MakeSpan(outputs));
  if (!status.ok()) {
    state.SkipWithError(std::string(status.message()).c_str());
    return;
  }
  for (auto _ : state) {
    status = (*kernel)->Run(ctx, inputs, absl::MakeSpan(outputs));
    benchmark::DoNotOptimize(outputs[0].raw_data());
  }
  if (!status.ok()) state.SkipWithError(std::string(status.message()).c_str());
  const TensorDesc& out = (*descs)[0];
  const double flops = 2.0 * NumElements(out.shape) * c * k * k;
  state.counters["GFLOP"] =
      benchmark::Counter(flops / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_CpuConv3x3_8x32x160_Nhwc(benchmark::State& state) {
  RunConv(state, Backend::kCpu, 8, 32, 160, Layout::kNHWC);
}
void BM_CpuConv3x3_8x32x160_Plain(benchmark::State& state) {
  RunConv(state, Backend::kCpu, 8, 32, 160, Layout::kPlain);
}
void BM_CpuConv3x3_1x32x40_Nhwc(benchmark::State& state) {
  RunConv(state, Backend::kCpu, 1, 32, 40, Layout::kNHWC);
}
// YOLOv8n-like: a C2f 1x1 convolution and a stride-2 downsampling convolution.
void BM_CpuConv1x1_1x128x40_Nhwc(benchmark::State& state) {
  RunConv(state, Backend::kCpu, 1, 128, 40, Layout::kNHWC, 1, 1, 128);
}
void BM_CpuConv3x3s2_1x64x80_Nhwc(benchmark::State& state) {
  RunConv(state, Backend::kCpu, 1, 64, 80, Layout::kNHWC, 3, 2, 128);
}
void BM_ReferenceConv3x3_1x32x40(benchmark::State& state) {
  RunConv(state, Backend::kReference, 1, 32, 40, Layout::kPlain);
}

BENCHMARK(BM_CpuConv3x3_8x32x160_Nhwc)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuConv3x3_8x32x160_Plain)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuConv3x3_1x32x40_Nhwc)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuConv1x1_1x128x40_Nhwc)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuConv3x3s2_1x64x80_Nhwc)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReferenceConv3x3_1x32x40)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace yolopipe::ops
