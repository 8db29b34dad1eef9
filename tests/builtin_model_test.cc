// The built-in YOLOv8 against (1) its own ONNX export, re-imported, and (2) the independent
// PyTorch implementation running the built-in model's exported weights.
#include <string>

#include "graph/onnx_export.h"
#include "graph/onnx_import.h"
#include "gtest/gtest.h"
#include "runtime/device.h"
#include "runtime/model.h"
#include "runtime/npy.h"
#include "runtime/session.h"
#include "tests/model_compare.h"

namespace yolopipe {
namespace {

absl::StatusOr<Tensor> RunOn(const Model& model, const Tensor& input) {
  SessionOptions options;
  options.device.num_threads = AvailableCores();
  auto session = Session::Create(model, input.shape(), options);
  if (!session.ok()) return session.status();
  return (*session)->Run(input);
}

TEST(BuiltinModelTest, MatchesItsOwnOnnxExportBitwise) {
  BuiltinModelOptions opts;
  opts.num_classes = 5;
  opts.seed = 11;
  opts.imgsz = 256;
  auto builtin = LoadModel("yolov8n", opts);
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  auto bytes = ExportOnnxBytes(builtin->graph);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  Model reimported;
  auto graph = ImportOnnxBytes(*bytes, "export");
  ASSERT_TRUE(graph.ok()) << graph.status();
  reimported.graph = *graph;
  reimported.source = "export";

  const Tensor input = SyntheticInput({2, 3, 256, 256}, 3);
  auto a = RunOn(*builtin, input);
  auto b = RunOn(reimported, input);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->shape(), (Shape{2, 9, 1344}));
  // Same graph after fusion, same kernels, same input: identical bits.
  EXPECT_TRUE(BitwiseEqual(*a, *b)) << "max diff " << testing::MaxAbsDiff(*a, *b);
}

// tests/BUILD exports built-in yolov8n (seed 0, 80 classes) with `yolopipe export`, then runs
// tools/torch_reference.py on those weights; the built-in model must agree with PyTorch.
TEST(BuiltinModelTest, MatchesPyTorchOnItsExportedWeights) {
  auto input = ReadNpyFile("tests/builtin_yolov8n_input.npy");
  auto want = ReadNpyFile("tests/builtin_yolov8n_torch.npy");
  ASSERT_TRUE(input.ok()) << input.status();
  ASSERT_TRUE(want.ok()) << want.status();
  auto builtin = LoadModel("yolov8n");
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  auto got = RunOn(*builtin, *input);
  ASSERT_TRUE(got.ok()) << got.status();
  // Same tolerances as tests/torch_reference_test.cc, for the same reasons.
  EXPECT_EQ(testing::CompareDetections(*got, *want, 0.01, 1e-4, 5e-5), "");
}

}  // namespace
}  // namespace yolopipe
