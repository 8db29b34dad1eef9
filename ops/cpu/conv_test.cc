// Compares the oneDNN convolution (kCpu) with the reference kernel (kReference) on random shapes.
//
// Tolerance: |cpu - ref| <= 1e-5 + 1e-4 * |ref|. Both accumulate in fp32 but in different orders
// (oneDNN blocks channels and uses FMA). Weights are scaled by 1/sqrt(fan_in), like trained
// networks, so every output is O(1) and the accumulated rounding error over K <= 1296 products is
// about sqrt(K) * 2^-24 ~ 2e-6, well inside the bound; a wrong tap, pad or post-op is off by O(0.1).
#include "ops/cpu/conv.h"

#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "base/attributes.h"
#include "base/tensor.h"
#include "ops/kernel.h"
#include "ops/reference/kernel_test_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using ::testing::HasSubstr;
using testing::CreateAndRun;
using testing::MakeSpec;
using testing::RandomFloats;
using testing::RunKernel;
using testing::ToFloats;

struct ConvCase {
  int64_t n, c, h, w, m, k, stride, pad;
  int64_t group = 1;
  int64_t dilation = 1;
  bool bias = true;
  bool silu = false;
  bool residual = false;
  Layout layout = Layout::kNHWC;
  Layout residual_layout = Layout::kNHWC;

  std::string Name() const {
    return "n" + std::to_string(n) + " c" + std::to_string(c) + " " + std::to_string(h) + "x" +
           std::to_string(w) + " m" + std::to_string(m) + " k" + std::to_string(k) + " s" +
           std::to_string(stride) + " p" + std::to_string(pad) + " g" + std::to_string(group) +
           " d" + std::to_string(dilation) + (bias ? " bias" : "") + (silu ? " silu" : "") +
           (residual ? " residual" : "") + (layout == Layout::kNHWC ? " nhwc" : " plain");
  }
};

void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const float tol = 1e-5f + 1e-4f * std::abs(want[i]);
    if (!(std::abs(got[i] - want[i]) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << want[i];
      ++failures;
    }
  }
}

struct ConvInputs {
  Tensor x, w, b, r;
  Attributes attrs;
};

ConvInputs MakeInputs(const ConvCase& cs, std::mt19937& rng) {
  ConvInputs in;
  in.x = RandomFloats({cs.n, cs.c, cs.h, cs.w}, rng);
  const float scale = 1.0f / std::sqrt(static_cast<float>(cs.c / cs.group * cs.k * cs.k));
  in.w = RandomFloats({cs.m, cs.c / cs.group, cs.k, cs.k}, rng, -scale, scale);
  if (cs.bias) in.b = RandomFloats({cs.m}, rng);
  const int64_t extent = (cs.k - 1) * cs.dilation + 1;
  const int64_t oh = (cs.h + 2 * cs.pad - extent) / cs.stride + 1;
  const int64_t ow = (cs.w + 2 * cs.pad - extent) / cs.stride + 1;
  if (cs.residual) in.r = RandomFloats({cs.n, cs.m, oh, ow}, rng);
  in.attrs.Set("kernel_shape", std::vector<int64_t>{cs.k, cs.k});
  in.attrs.Set("strides", std::vector<int64_t>{cs.stride, cs.stride});
  in.attrs.Set("pads", std::vector<int64_t>{cs.pad, cs.pad, cs.pad, cs.pad});
  in.attrs.Set("dilations", std::vector<int64_t>{cs.dilation, cs.dilation});
  in.attrs.Set("group", cs.group);
  if (cs.silu) in.attrs.Set("activation", std::string("silu"));
  return in;
}

std::vector<Tensor> PlainInputs(const ConvInputs& in, const ConvCase& cs) {
  std::vector<Tensor> v = {in.x, in.w, in.b};
  if (cs.residual) v.push_back(in.r);
  return v;
}

std::vector<Tensor> CpuInputs(const ConvInputs& in, const ConvCase& cs) {
  std::vector<Tensor> v = {*in.x.ToLayout(cs.layout), in.w, in.b};
  if (cs.residual) v.push_back(*in.r.ToLayout(cs.residual_layout));
  return v;
}

void CheckCase(const ConvCase& cs, std::mt19937& rng, int threads = 1) {
  SCOPED_TRACE(cs.Name());
  ConvInputs in = MakeInputs(cs, rng);
  std::vector<Tensor> plain = PlainInputs(in, cs);
  auto ref = CreateAndRun(Backend::kReference, MakeSpec("Conv", in.attrs, plain, {1, 2}), plain);
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto cpu = CreateAndRun(Backend::kCpu, MakeSpec("Conv", in.attrs, cpu_in, {1, 2}), cpu_in,
                          threads);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ((*cpu)[0].layout(), cs.layout);
  EXPECT_EQ((*cpu)[0].shape(), (*ref)[0].shape());
  ExpectClose(ToFloats((*cpu)[0]), ToFloats((*ref)[0]), cs.Name());
}

TEST(CpuConvTest, RegisteredAsCpuKernelWithNhwcTraits) {
  auto backend = KernelRegistry::Global().ResolveBackend("Conv", Backend::kCpu);
  ASSERT_TRUE(backend.ok());
  EXPECT_EQ(*backend, Backend::kCpu);
  KernelTraits traits = KernelRegistry::Global().Traits("Conv", Backend::kCpu);
  EXPECT_TRUE(traits.accepts_nhwc);
  EXPECT_EQ(traits.nhwc_inputs, (std::vector<int>{0, 3}));
}

TEST(CpuConvTest, MatchesReferenceOnYoloLikeShapes) {
  std::mt19937 rng(20240601);
  const std::vector<ConvCase> cases = {
      // Stem: 3 input channels, k3 s2.
      {1, 3, 17, 19, 16, 3, 2, 1, 1, 1, true, true, false},
      // Bottleneck with residual, odd channels, batch 3.
      {3, 17, 9, 8, 17, 3, 1, 1, 1, 1, true, true, true},
      // C2f-style 1x1 convs with 144 channels.
      {1, 144, 6, 7, 64, 1, 1, 0, 1, 1, true, true, false},
      {3, 32, 5, 5, 144, 1, 1, 0, 1, 1, false, false, false},
      // Downsampling k3 s2 to 144 channels, no bias, no activation.
      {1, 64, 10, 10, 144, 3, 2, 1, 1, 1, false, false, false},
      // 1x1 stride 2.
      {3, 17, 9, 9, 32, 1, 2, 0, 1, 1, true, false, true},
  };
  for (const ConvCase& cs : cases) CheckCase(cs, rng);
}

TEST(CpuConvTest, PlainLayoutInputsAreStagedThroughTheWorkspace) {
  std::mt19937 rng(7);
  ConvCase cs{3, 17, 8, 9, 32, 3, 1, 1, 1, 1, true, true, true, Layout::kPlain, Layout::kPlain};
  CheckCase(cs, rng);
  ConvInputs in = MakeInputs(cs, rng);
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto kernel = KernelRegistry::Global().Create(Backend::kCpu,
                                                MakeSpec("Conv", in.attrs, cpu_in, {1, 2}));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  // src + dst + residual, each 3 * C * 8 * 9 floats (64-byte aligned).
  EXPECT_GE((*kernel)->workspace_bytes(), (3 * 17 * 72 + 2 * 3 * 32 * 72) * sizeof(float));
}

TEST(CpuConvTest, MixedLayoutsAndNoWorkspaceForNhwc) {
  std::mt19937 rng(8);
  // NHWC input with a plain residual, and plain input with an NHWC residual.
  CheckCase({1, 16, 7, 7, 16, 3, 1, 1, 1, 1, true, true, true, Layout::kNHWC, Layout::kPlain},
            rng);
  CheckCase({1, 16, 7, 7, 16, 3, 1, 1, 1, 1, true, true, true, Layout::kPlain, Layout::kNHWC},
            rng);
  ConvCase cs{1, 16, 7, 7, 16, 3, 1, 1};
  ConvInputs in = MakeInputs(cs, rng);
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto kernel = KernelRegistry::Global().Create(Backend::kCpu,
                                                MakeSpec("Conv", in.attrs, cpu_in, {1, 2}));
  ASSERT_TRUE(kernel.ok());
  EXPECT_EQ((*kernel)->workspace_bytes(), 0u);
}

TEST(CpuConvTest, GroupsDepthwiseDilationAndAsymmetricPads) {
  std::mt19937 rng(9);
  CheckCase({1, 16, 9, 9, 32, 3, 1, 1, 4, 1}, rng);               // group 4
  CheckCase({3, 17, 9, 9, 17, 3, 2, 1, 17, 1, true, true}, rng);  // depthwise
  CheckCase({1, 8, 11, 11, 8, 3, 1, 2, 1, 2, true, false}, rng);  // dilation 2
  // Asymmetric pads through auto_pad SAME_UPPER with stride 2 on an even size.
  ConvCase cs{1, 8, 10, 10, 8, 3, 2, 0};
  ConvInputs in = MakeInputs(cs, rng);
  in.attrs.Erase("pads");
  in.attrs.Set("auto_pad", std::string("SAME_UPPER"));
  std::vector<Tensor> plain = PlainInputs(in, cs);
  auto ref = CreateAndRun(Backend::kReference, MakeSpec("Conv", in.attrs, plain, {1, 2}), plain);
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto cpu = CreateAndRun(Backend::kCpu, MakeSpec("Conv", in.attrs, cpu_in, {1, 2}), cpu_in);
  ASSERT_TRUE(ref.ok() && cpu.ok());
  EXPECT_EQ((*cpu)[0].shape(), (Shape{1, 8, 5, 5}));
  ExpectClose(ToFloats((*cpu)[0]), ToFloats((*ref)[0]), "SAME_UPPER");
}

TEST(CpuConvTest, ThreadCountsAndReshapeToANewBatch) {
  std::mt19937 rng(10);
  ConvCase cs{1, 32, 12, 12, 32, 3, 1, 1, 1, 1, true, true, true};
  ConvInputs in = MakeInputs(cs, rng);
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto kernel = KernelRegistry::Global().Create(Backend::kCpu,
                                                MakeSpec("Conv", in.attrs, cpu_in, {1, 2}));
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  std::vector<Tensor> plain = PlainInputs(in, cs);
  auto ref = CreateAndRun(Backend::kReference, MakeSpec("Conv", in.attrs, plain, {1, 2}), plain);
  ASSERT_TRUE(ref.ok());
  for (int threads : {1, 2, 1}) {
    auto out = RunKernel(**kernel, cpu_in, threads);
    ASSERT_TRUE(out.ok()) << out.status();
    // Run sets the calling thread's OpenMP thread count, which oneDNN's parallel regions use.
    EXPECT_EQ(omp_get_max_threads(), threads);
    ExpectClose(ToFloats((*out)[0]), ToFloats((*ref)[0]), "threads " + std::to_string(threads));
  }
  // Same kernel, batch 3 and a new spatial size: a second cached primitive.
  ConvCase big = cs;
  big.n = 3;
  big.h = 8;
  std::mt19937 rng2(11);
  ConvInputs in2 = MakeInputs(big, rng2);
  in2.w = in.w;
  in2.b = in.b;
  std::vector<Tensor> plain2 = PlainInputs(in2, big);
  auto ref2 = CreateAndRun(Backend::kReference, MakeSpec("Conv", in.attrs, plain2, {1, 2}),
                           plain2);
  auto out2 = RunKernel(**kernel, CpuInputs(in2, big), 2);
  ASSERT_TRUE(ref2.ok() && out2.ok()) << out2.status();
  EXPECT_EQ((*out2)[0].shape(), (Shape{3, 32, 8, 12}));
  ExpectClose(ToFloats((*out2)[0]), ToFloats((*ref2)[0]), "batch 3");
}

TEST(CpuConvTest, NonConstantWeightsAndBias) {
  std::mt19937 rng(12);
  ConvCase cs{1, 17, 7, 7, 16, 3, 1, 1, 1, 1, true, true, false};
  ConvInputs in = MakeInputs(cs, rng);
  std::vector<Tensor> plain = PlainInputs(in, cs);
  auto ref = CreateAndRun(Backend::kReference, MakeSpec("Conv", in.attrs, plain, {}), plain);
  std::vector<Tensor> cpu_in = CpuInputs(in, cs);
  auto cpu = CreateAndRun(Backend::kCpu, MakeSpec("Conv", in.attrs, cpu_in, {}), cpu_in);
  ASSERT_TRUE(ref.ok() && cpu.ok()) << cpu.status();
  ExpectClose(ToFloats((*cpu)[0]), ToFloats((*ref)[0]), "runtime weights");
}

TEST(CpuConvTest, RejectsLikeTheReference) {
  auto status = [](const Attributes& a, std::vector<Tensor> in) {
    return testing::CreateAndReshapeStatus(Backend::kCpu, MakeSpec("Conv", a, in, {1}));
  };
  Tensor x(DType::kFloat32, {1, 3, 8, 8}, Layout::kNHWC);
  absl::Status mismatch = status(Attributes(), {x, Tensor(DType::kFloat32, {4, 2, 3, 3})});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.message(), HasSubstr("test_node"));
  EXPECT_THAT(mismatch.message(), HasSubstr("channel mismatch"));
  Attributes act;
  act.Set("activation", std::string("tanh"));
  EXPECT_THAT(status(act, {x, Tensor(DType::kFloat32, {4, 3, 3, 3})}).message(),
              HasSubstr("unsupported activation 'tanh'"));
  EXPECT_THAT(status(Attributes(), {Tensor(DType::kFloat32, {1, 3, 8}),
                                    Tensor(DType::kFloat32, {4, 3, 3})})
                  .message(),
              HasSubstr("only 2-D convolution"));
  // Weights must be plain.
  KernelSpec spec = MakeSpec("Conv", Attributes(),
                             {x, Tensor(DType::kFloat32, {4, 3, 3, 3})}, {});
  spec.inputs[1].layout = Layout::kNHWC;
  EXPECT_THAT(testing::CreateAndReshapeStatus(Backend::kCpu, spec).message(),
              HasSubstr("must be in plain layout"));
}

}  // namespace
}  // namespace yolopipe::ops
