// End to end against an independent reference: ONNX files exported by tools/torch_reference.py
// (a PyTorch implementation of YOLOv8 written from YOLOV8.md, exported with torch.onnx in both the
// default static style and the dynamic-axes style) run in yolopipe, compared with PyTorch's own
// output on the same input.
//
// Tolerance: both sides compute in float32 but sum in different orders (oneDNN's blocked
// convolutions vs PyTorch's), so each conv output differs by a few ulps and the differences grow
// through ~60 layers. Box coordinates are in input pixels (up to ~700): the DFL expectation times
// the stride amplifies logit differences up to 32x, so 0.01 px + 1e-4 relative (observed on these
// fixtures: at most ~1e-3 px). Class probabilities are sigmoid outputs: sigmoid' <= 0.25 keeps
// their error below the logits' one, so 5e-5 absolute (observed: ~2e-7).
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/session.h"
#include "tests/model_compare.h"

namespace yolopipe {
namespace {

constexpr double kBoxAtol = 0.01;
constexpr double kRtol = 1e-4;
constexpr double kProbAtol = 5e-5;

std::string Fixture(const std::string& name) { return "tests/fixtures/" + name; }

Tensor MustReadNpy(const std::string& path) {
  auto t = ReadNpyFile(path);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Tensor();
}

absl::StatusOr<Tensor> RunModel(const std::string& onnx, const Tensor& input,
                                ops::Backend backend) {
  auto model = LoadModel(onnx);
  if (!model.ok()) return model.status();
  SessionOptions options;
  options.device.num_threads = AvailableCores();
  options.backend = backend;
  auto session = Session::Create(*model, input.shape(), options);
  if (!session.ok()) return session.status();
  return (*session)->Run(input);
}

// (scale, style, batch)
class TorchReferenceTest
    : public ::testing::TestWithParam<std::tuple<std::string, std::string, int>> {};

TEST_P(TorchReferenceTest, MatchesPyTorch) {
  const auto& [scale, style, batch] = GetParam();
  const std::string stem = "yolov8" + scale;
  const Tensor input = MustReadNpy(Fixture(stem + "_input_b" + std::to_string(batch) + ".npy"));
  const Tensor want = MustReadNpy(Fixture(stem + "_torch_b" + std::to_string(batch) + ".npy"));
  ASSERT_TRUE(input.defined() && want.defined());
  auto got = RunModel(Fixture(stem + "_" + style + ".onnx"), input, ops::Backend::kCpu);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->shape(), want.shape());
  EXPECT_EQ(testing::CompareDetections(*got, want, kBoxAtol, kRtol, kProbAtol), "");
}

INSTANTIATE_TEST_SUITE_P(
    Exports, TorchReferenceTest,
    ::testing::Combine(::testing::Values("n", "s"), ::testing::Values("static", "dynamic"),
                       ::testing::Values(1, 2)),
    [](const auto& info) {
      return "yolov8" + std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_b" +
             std::to_string(std::get<2>(info.param));
    });

// Parameter counts of the PyTorch exports after import: the published figures (YOLOV8.md).
TEST(TorchReferenceImportTest, ParameterCountsMatchTheSpec) {
  const std::pair<const char*, int64_t> expected[] = {
      {"yolov8n_static.onnx", 3151904},  {"yolov8n_dynamic.onnx", 3151904},
      {"yolov8s_static.onnx", 11156544}, {"yolov8s_dynamic.onnx", 11156544}};
  for (const auto& [file, params] : expected) {
    auto model = LoadModel(Fixture(file));
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(model->graph.ParameterCount(), params) << file;
    EXPECT_EQ(model->metadata.class_names.size(), 80u) << file;
  }
}

// The naive reference kernels alone (no oneDNN) also reproduce PyTorch: the oracle is right.
TEST(TorchReferenceOracleTest, ReferenceKernelsMatchPyTorch) {
  const Tensor input = MustReadNpy(Fixture("yolov8n_input_b1.npy"));
  const Tensor want = MustReadNpy(Fixture("yolov8n_torch_b1.npy"));
  auto got = RunModel(Fixture("yolov8n_static.onnx"), input, ops::Backend::kReference);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(testing::CompareDetections(*got, want, kBoxAtol, kRtol, kProbAtol), "");
}

}  // namespace
}  // namespace yolopipe
