#include "graph/onnx_import.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "graph/bind.h"
#include "graph/fuse.h"
#include "graph/model_metadata.h"
#include "graph/prepare.h"
#include "graph/testing/mini_detector.h"
#include "graph/testing/onnx_builder.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using testing::ExportStyle;
using ::testing::FloatEq;
using ::testing::HasSubstr;
using testing::OnnxModelBuilder;
using ::testing::Pointwise;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(static_cast<float>(t.GetAsDouble(i)));
  return v;
}
std::vector<int64_t> Ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(t.GetAsInt64(i));
  return v;
}

std::map<std::string, int> OpCounts(const Graph& g) {
  std::map<std::string, int> counts;
  for (const Node& n : g.nodes()) ++counts[n.op_type];
  return counts;
}

const Node& NodeNamed(const Graph& g, const std::string& name) {
  const int i = g.FindNode(name);
  EXPECT_GE(i, 0) << "no node named " << name;
  return g.nodes()[i < 0 ? 0 : i];
}

// A minimal valid model: images (1, 3, 4, 4) -> Sigmoid -> y.
OnnxModelBuilder Minimal(int64_t opset = 17) {
  OnnxModelBuilder b(opset);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("y", {1, 3, 4, 4});
  return b;
}

absl::StatusOr<Graph> Import(const OnnxModelBuilder& b, const OnnxImportOptions& options = {}) {
  return ImportOnnxBytes(b.Bytes(), "test.onnx", options);
}

// --- acceptance: both export styles ---

TEST(OnnxImportTest, StaticExportImportsFoldedAndFused) {
  absl::StatusOr<Graph> g = Import(testing::MiniDetector(ExportStyle::kStatic));
  ASSERT_TRUE(g.ok()) << g.status();
  const std::map<std::string, int> ops = OpCounts(*g);
  EXPECT_EQ(ops.count("Constant"), 0u);
  EXPECT_EQ(ops.count("Identity"), 0u);
  EXPECT_EQ(ops.at("Conv"), 3);
  // Two SiLUs fused away; the one on the class scores stays.
  EXPECT_EQ(ops.at("Sigmoid"), 1);
  // The Bottleneck's Add is fused (shapes are static), the dist2bbox ones stay.
  EXPECT_EQ(ops.at("Add"), 2);

  const Node& conv0 = NodeNamed(*g, "conv0");
  EXPECT_EQ(*conv0.attrs.GetString(kActivationAttr, ""), "silu");
  EXPECT_THAT(conv0.outputs, ElementsAre("p0"));
  const Node& conv1 = NodeNamed(*g, "conv1");
  EXPECT_EQ(*conv1.attrs.GetString(kActivationAttr, ""), "silu");
  EXPECT_THAT(conv1.inputs, ElementsAre("p0", "conv1.weight", "conv1.bias", "p0"));
  EXPECT_THAT(conv1.outputs, ElementsAre("r0"));
  EXPECT_FALSE(NodeNamed(*g, "head").attrs.Has(kActivationAttr));

  // Constant nodes became initializers with their values; Identity's consumers read its input.
  ASSERT_NE(g->FindInitializer("anchors"), nullptr);
  EXPECT_THAT(Floats(*g->FindInitializer("anchors")),
              ElementsAreArray(testing::ExpectedAnchors(8, 8)));
  EXPECT_THAT(NodeNamed(*g, "split").inputs[0], "flat");
  // Inferred shapes were recorded.
  EXPECT_THAT(g->FindValue("flat")->shape, ElementsAre(1, 6, 64));
  EXPECT_THAT(g->FindValue("output0")->shape, ElementsAre(1, 6, 64));
  // Metadata verbatim, plus the declared input shape.
  EXPECT_EQ(g->metadata().at("names"), "{0: 'person', 1: \"it's\"}");
  EXPECT_EQ(g->metadata().at("stride"), "2");
  EXPECT_EQ(g->metadata().at(kMetadataDeclaredInputShape), "1,3,16,16");
  EXPECT_EQ(g->metadata().at(kMetadataOnnxOpset), "17");
  ASSERT_EQ(g->inputs().size(), 1u);
  EXPECT_EQ(g->inputs()[0], "images");
  EXPECT_THAT(g->outputs(), ElementsAre("output0"));
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(*g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_THAT(meta->class_names, ElementsAre("person", "it's"));
  EXPECT_THAT(meta->strides, ElementsAre(2));
  EXPECT_EQ(meta->task, "detect");
  EXPECT_FALSE(meta->dynamic_batch);
  EXPECT_FALSE(meta->dynamic_hw);
}

TEST(OnnxImportTest, DynamicExportKeepsAnchorSubgraphUntilBound) {
  absl::StatusOr<Graph> g = Import(testing::MiniDetector(ExportStyle::kDynamic));
  ASSERT_TRUE(g.ok()) << g.status();
  const std::map<std::string, int> ops = OpCounts(*g);
  EXPECT_EQ(ops.at("Shape"), 2);
  EXPECT_EQ(ops.at("Range"), 2);
  EXPECT_EQ(ops.at("ConstantOfShape"), 1);
  EXPECT_THAT(g->FindValue("images")->shape, ElementsAre(kUnknownDim, 3, kUnknownDim, kUnknownDim));
  EXPECT_EQ(g->metadata().at(kMetadataDeclaredInputShape), "-1,3,-1,-1");
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(*g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_TRUE(meta->dynamic_batch);
  EXPECT_TRUE(meta->dynamic_hw);
  // The residual Add cannot be checked for broadcasting yet: it stays until prepare.
  EXPECT_EQ(NodeNamed(*g, "conv1").inputs.size(), 3u);
  EXPECT_GE(g->FindNode("bottleneck/add"), 0);
}

TEST(OnnxImportTest, DynamicAnchorsFoldToTheGridConstants) {
  absl::StatusOr<Graph> g = Import(testing::MiniDetector(ExportStyle::kDynamic));
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<Graph> prepared = PrepareForExecution(*g, {2, 3, 16, 32});
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const std::map<std::string, int> ops = OpCounts(*prepared);
  for (const char* gone : {"Shape", "Gather", "Range", "Expand", "ConstantOfShape", "Cast",
                           "Unsqueeze", "Transpose"}) {
    EXPECT_EQ(ops.count(gone), 0u) << gone;
  }
  // 16x32 input, stride 2 -> an 8x16 grid.
  const Tensor* anchors = prepared->FindInitializer("anchors");
  ASSERT_NE(anchors, nullptr);
  EXPECT_THAT(anchors->shape(), ElementsAre(1, 2, 128));
  EXPECT_THAT(Floats(*anchors), ElementsAreArray(testing::ExpectedAnchors(8, 16)));
  const Tensor* strides = prepared->FindInitializer("strides");
  ASSERT_NE(strides, nullptr);
  EXPECT_THAT(strides->shape(), ElementsAre(1, 128));
  EXPECT_THAT(Floats(*strides), ::testing::Each(2.0f));
  EXPECT_THAT(prepared->FindValue("output0")->shape, ElementsAre(2, 6, 128));
  // Now the shapes are known, the Bottleneck's Add is fused.
  EXPECT_EQ(prepared->FindNode("bottleneck/add"), -1);
  EXPECT_EQ(NodeNamed(*prepared, "conv1").inputs.size(), 4u);
}

TEST(OnnxImportTest, BothStylesComputeTheSameDetections) {
  absl::StatusOr<Graph> fixed = Import(testing::MiniDetector(ExportStyle::kStatic));
  absl::StatusOr<Graph> dynamic = Import(testing::MiniDetector(ExportStyle::kDynamic));
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  ASSERT_TRUE(dynamic.ok()) << dynamic.status();
  for (int64_t batch : {1, 3}) {
    const Shape shape = {batch, 3, 16, 16};
    absl::StatusOr<Graph> a = PrepareForExecution(*fixed, shape);
    absl::StatusOr<Graph> b = PrepareForExecution(*dynamic, shape);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    const Tensor image = testing::TestImage(shape);
    absl::StatusOr<Tensor> ya = testing::RunWithReferenceKernels(*a, image);
    absl::StatusOr<Tensor> yb = testing::RunWithReferenceKernels(*b, image);
    ASSERT_TRUE(ya.ok()) << ya.status();
    ASSERT_TRUE(yb.ok()) << yb.status();
    EXPECT_THAT(ya->shape(), ElementsAre(batch, 6, 64));
    EXPECT_TRUE(BitwiseEqual(*ya, *yb)) << "batch " << batch;
    // The batch-rebound static model treats each image independently: image 0 of the batch
    // equals running it alone.
    if (batch == 3) {
      Tensor batch_first(DType::kFloat32, {1, 3, 16, 16});
      std::copy(image.data<float>(), image.data<float>() + batch_first.num_elements(),
                batch_first.data<float>());
      absl::StatusOr<Graph> single = PrepareForExecution(*fixed, {1, 3, 16, 16});
      ASSERT_TRUE(single.ok()) << single.status();
      absl::StatusOr<Tensor> y1 = testing::RunWithReferenceKernels(*single, batch_first);
      ASSERT_TRUE(y1.ok()) << y1.status();
      EXPECT_THAT(std::vector<float>(y1->data<float>(), y1->data<float>() + y1->num_elements()),
                  Pointwise(FloatEq(), std::vector<float>(ya->data<float>(),
                                                          ya->data<float>() + y1->num_elements())));
    }
  }
}

TEST(OnnxImportTest, Opset11FormsAreNormalised) {
  absl::StatusOr<Graph> legacy = Import(testing::MiniDetector(ExportStyle::kDynamic, 11));
  absl::StatusOr<Graph> modern = Import(testing::MiniDetector(ExportStyle::kDynamic, 17));
  ASSERT_TRUE(legacy.ok()) << legacy.status();
  ASSERT_TRUE(modern.ok()) << modern.status();
  const Node& split = NodeNamed(*legacy, "split");
  EXPECT_FALSE(split.attrs.Has("split"));
  ASSERT_EQ(split.inputs.size(), 2u);
  EXPECT_THAT(Ints(*legacy->FindInitializer(split.inputs[1])), ElementsAre(4, 2));
  EXPECT_EQ(legacy->metadata().at(kMetadataOnnxOpset), "11");
  const Shape shape = {1, 3, 16, 16};
  absl::StatusOr<Graph> a = PrepareForExecution(*legacy, shape);
  absl::StatusOr<Graph> b = PrepareForExecution(*modern, shape);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  const Tensor image = testing::TestImage(shape);
  absl::StatusOr<Tensor> ya = testing::RunWithReferenceKernels(*a, image);
  absl::StatusOr<Tensor> yb = testing::RunWithReferenceKernels(*b, image);
  ASSERT_TRUE(ya.ok() && yb.ok());
  EXPECT_TRUE(BitwiseEqual(*ya, *yb));
}

// Opset 11 Softmax(axis=1) on a (1, 2, 3) tensor normalises over all 6 elements.
TEST(OnnxImportTest, Opset11SoftmaxKeepsItsFlatteningMeaning) {
  OnnxModelBuilder b(11);
  b.AddInput("images", {1, 3, 4, 4});
  const std::vector<float> x = {0.1f, -1.0f, 2.0f, 0.5f, 0.0f, 1.5f};
  b.AddFloatInitializer("logits", {1, 2, 3}, x);
  OnnxModelBuilder::AttrInt(b.AddNode("Softmax", {"logits"}, {"p"}, "softmax"), "axis", 1);
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("p", {1, 2, 3});
  b.AddOutput("y", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status();
  const Tensor* p = g->FindInitializer("p");
  ASSERT_NE(p, nullptr);
  EXPECT_THAT(p->shape(), ElementsAre(1, 2, 3));
  double sum = 0;
  for (float v : x) sum += std::exp(v);
  std::vector<float> expected;
  for (float v : x) expected.push_back(static_cast<float>(std::exp(v) / sum));
  EXPECT_THAT(Floats(*p), Pointwise(::testing::FloatNear(1e-6f), expected));
}

TEST(OnnxImportTest, Opset18And19AttributesAreAccepted) {
  for (int64_t opset : {18, 19}) {
    OnnxModelBuilder b(opset);
    if (opset == 19) b.proto().set_ir_version(9);
    b.AddInput("images", {1, 4, 4, 4});
    onnx::NodeProto& split = b.AddNode("Split", {"images"}, {"a", "b"}, "split");
    OnnxModelBuilder::AttrInt(split, "axis", 1);
    OnnxModelBuilder::AttrInt(split, "num_outputs", 2);
    b.AddFloatInitializer("scales", {4}, {1, 1, 2, 2});
    onnx::NodeProto& up = b.AddNode("Resize", {"a", "", "scales"}, {"y"}, "up");
    OnnxModelBuilder::AttrString(up, "mode", "nearest");
    OnnxModelBuilder::AttrInt(up, "antialias", 0);
    b.AddNode("Sigmoid", {"b"}, {"z"}, "act");
    b.AddOutput("y", {1, 2, 8, 8});
    b.AddOutput("z", {1, 2, 4, 4});
    absl::StatusOr<Graph> g = Import(b);
    ASSERT_TRUE(g.ok()) << "opset " << opset << ": " << g.status();
    EXPECT_FALSE(NodeNamed(*g, "split").attrs.Has("num_outputs"));
    absl::StatusOr<Graph> prepared = PrepareForExecution(*g, {2, 4, 4, 4});
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    EXPECT_THAT(prepared->FindValue("y")->shape, ElementsAre(2, 2, 8, 8));
  }
}

TEST(OnnxImportTest, Opset18RefusesNonDefaultNewAttributes) {
  OnnxModelBuilder b(18);
  b.AddInput("images", {1, 4, 4, 4});
  b.AddFloatInitializer("scales", {4}, {1, 1, 2, 2});
  onnx::NodeProto& up = b.AddNode("Resize", {"images", "", "scales"}, {"y"}, "up");
  OnnxModelBuilder::AttrInt(up, "antialias", 1);
  b.AddOutput("y", {1, 4, 8, 8});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'up'"), HasSubstr("antialias")));
}

// --- conversion details ---

TEST(OnnxImportTest, ConstantAttributeFormsBecomeInitializers) {
  OnnxModelBuilder c = Minimal();
  OnnxModelBuilder::AttrFloat(c.AddNode("Constant", {}, {"f"}, "cf"), "value_float", 2.5f);
  OnnxModelBuilder::AttrFloats(c.AddNode("Constant", {}, {"fs"}, "cfs"), "value_floats", {1, 2});
  OnnxModelBuilder::AttrInt(c.AddNode("Constant", {}, {"i"}, "ci"), "value_int", 7);
  OnnxModelBuilder::AttrInts(c.AddNode("Constant", {}, {"is"}, "cis"), "value_ints", {3, 4, 5});
  c.AddOutput("f", {});
  c.AddOutput("fs", {2});
  c.AddOutput("i", {}, DType::kInt64);
  c.AddOutput("is", {3}, DType::kInt64);
  absl::StatusOr<Graph> g = Import(c);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes().size(), 1u);
  EXPECT_EQ(g->FindInitializer("f")->dtype(), DType::kFloat32);
  EXPECT_TRUE(g->FindInitializer("f")->shape().empty());
  EXPECT_THAT(Floats(*g->FindInitializer("f")), ElementsAre(2.5f));
  EXPECT_THAT(Floats(*g->FindInitializer("fs")), ElementsAre(1.0f, 2.0f));
  EXPECT_EQ(g->FindInitializer("i")->dtype(), DType::kInt64);
  EXPECT_THAT(Ints(*g->FindInitializer("i")), ElementsAre(7));
  EXPECT_THAT(Ints(*g->FindInitializer("is")), ElementsAre(3, 4, 5));
}

TEST(OnnxImportTest, TypedInitializerFieldsAreRead) {
  onnx::TensorProto f;
  f.set_name("w");
  f.set_data_type(onnx::TensorProto::FLOAT);
  f.add_dims(2);
  f.add_dims(2);
  for (float v : {1.5f, -2.0f, 0.25f, 8.0f}) f.add_float_data(v);
  absl::StatusOr<Tensor> t = TensorFromOnnx(f);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->shape(), ElementsAre(2, 2));
  EXPECT_THAT(Floats(*t), ElementsAre(1.5f, -2.0f, 0.25f, 8.0f));

  onnx::TensorProto i64;
  i64.set_name("shape");
  i64.set_data_type(onnx::TensorProto::INT64);
  i64.add_dims(3);
  for (int64_t v : {int64_t{1}, int64_t{-1}, int64_t{1} << 40}) i64.add_int64_data(v);
  t = TensorFromOnnx(i64);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kInt64);
  EXPECT_THAT(Ints(*t), ElementsAre(1, -1, int64_t{1} << 40));

  onnx::TensorProto i32;
  i32.set_name("i32");
  i32.set_data_type(onnx::TensorProto::INT32);
  i32.add_dims(2);
  i32.add_int32_data(-5);
  i32.add_int32_data(70000);
  t = TensorFromOnnx(i32);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kInt32);
  EXPECT_THAT(Ints(*t), ElementsAre(-5, 70000));

  onnx::TensorProto u8;
  u8.set_name("u8");
  u8.set_data_type(onnx::TensorProto::UINT8);
  u8.add_dims(2);
  u8.add_int32_data(200);
  u8.add_int32_data(3);
  t = TensorFromOnnx(u8);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Ints(*t), ElementsAre(200, 3));

  onnx::TensorProto b;
  b.set_name("mask");
  b.set_data_type(onnx::TensorProto::BOOL);
  b.add_dims(3);
  for (int v : {1, 0, 5}) b.add_int32_data(v);
  t = TensorFromOnnx(b);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Ints(*t), ElementsAre(1, 0, 1));

  onnx::TensorProto d;
  d.set_name("d");
  d.set_data_type(onnx::TensorProto::DOUBLE);
  d.add_double_data(0.125);
  t = TensorFromOnnx(d);  // no dims: a scalar
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->shape().empty());
  EXPECT_EQ(t->GetAsDouble(0), 0.125);

  onnx::TensorProto empty;
  empty.set_name("empty");
  empty.set_data_type(onnx::TensorProto::FLOAT);
  empty.add_dims(0);
  t = TensorFromOnnx(empty);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_elements(), 0);
}

TEST(OnnxImportTest, TypedInitializerInAModel) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 2, 3, 3});
  onnx::TensorProto* w = b.proto().mutable_graph()->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {1, 2, 1, 1}) w->add_dims(d);
  w->add_float_data(0.5f);
  w->add_float_data(-1.0f);
  b.AddNode("Conv", {"images", "w"}, {"y"}, "conv");
  b.AddOutput("y", {1, 1, 3, 3});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Floats(*g->FindInitializer("w")), ElementsAre(0.5f, -1.0f));
  EXPECT_THAT(g->FindInitializer("w")->shape(), ElementsAre(1, 2, 1, 1));
}

TEST(OnnxImportTest, IdentityNodesAreRemovedAndOutputNamesKept) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddNode("Sigmoid", {"images"}, {"s"}, "act");
  b.AddNode("Identity", {"s"}, {"s_id"}, "id_inner");
  b.AddNode("Sigmoid", {"s_id"}, {"t"}, "act2");
  b.AddNode("Identity", {"t"}, {"output0"}, "id_output");
  b.AddFloatInitializer("c", {2}, {1, 2});
  b.AddNode("Identity", {"c"}, {"const_out"}, "id_const");
  b.AddOutput("output0", {1, 3, 4, 4});
  b.AddOutput("const_out", {2});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(OpCounts(*g).count("Identity"), 0u);
  EXPECT_THAT(g->outputs(), ElementsAre("output0", "const_out"));
  EXPECT_THAT(NodeNamed(*g, "act2").inputs, ElementsAre("s"));
  EXPECT_THAT(NodeNamed(*g, "act2").outputs, ElementsAre("output0"));
  EXPECT_THAT(Floats(*g->FindInitializer("const_out")), ElementsAre(1.0f, 2.0f));
  EXPECT_TRUE(g->Validate().ok());
}

TEST(OnnxImportTest, NamesAreKeptAndOnlyMissingOnesInvented) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddNode("Sigmoid", {"images"}, {"/model.0/act/Sigmoid_output_0"}, "/model.0/act/Sigmoid");
  onnx::NodeProto& unnamed = b.AddNode("Sigmoid", {"/model.0/act/Sigmoid_output_0"}, {"a"});
  unnamed.clear_name();
  b.AddNode("Sigmoid", {"a"}, {"b"}, "dup");
  b.AddNode("Sigmoid", {"b"}, {"c"}, "dup");
  b.AddOutput("c", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b, {.fuse = false});
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes().size(), 4u);
  EXPECT_EQ(g->nodes()[0].name, "/model.0/act/Sigmoid");
  EXPECT_THAT(g->nodes()[0].outputs, ElementsAre("/model.0/act/Sigmoid_output_0"));
  EXPECT_EQ(g->nodes()[1].name, "Sigmoid_1");
  EXPECT_EQ(g->nodes()[2].name, "dup");
  EXPECT_EQ(g->nodes()[3].name, "dup__1");
}

TEST(OnnxImportTest, FuseOptionOff) {
  absl::StatusOr<Graph> g = Import(testing::MiniDetector(ExportStyle::kStatic), {.fuse = false});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(OpCounts(*g).at("Sigmoid"), 3);
  EXPECT_FALSE(NodeNamed(*g, "conv0").attrs.Has(kActivationAttr));
}

TEST(OnnxImportTest, ImportsFromAFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/mini.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    out << testing::MiniDetector(ExportStyle::kStatic).Bytes();
  }
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes().size(), Import(testing::MiniDetector(ExportStyle::kStatic))->nodes().size());
}

// --- rejections ---

TEST(OnnxImportRejectsTest, MissingFileNamesThePath) {
  absl::StatusOr<Graph> g = ImportOnnxFile("/nonexistent/dir/yolov8n.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsNotFound(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), HasSubstr("/nonexistent/dir/yolov8n.onnx"));
}

TEST(OnnxImportRejectsTest, DirectoryIsNotAModel) {
  absl::StatusOr<Graph> g = ImportOnnxFile(std::getenv("TEST_TMPDIR"));
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("not a regular file"));
}

TEST(OnnxImportRejectsTest, TruncatedBytes) {
  const std::string bytes = testing::MiniDetector(ExportStyle::kStatic).Bytes();
  for (size_t keep : {bytes.size() / 2, bytes.size() - 3, size_t{7}}) {
    absl::StatusOr<Graph> g = ImportOnnxBytes(bytes.substr(0, keep), "cut.onnx");
    ASSERT_FALSE(g.ok()) << keep;
    EXPECT_THAT(Message(g.status()), HasSubstr("'cut.onnx'")) << keep;
  }
}

TEST(OnnxImportRejectsTest, GarbageAndEmptyBytes) {
  for (const std::string& bytes :
       {std::string("this is not an onnx file at all"), std::string("\x08\x07\x12\x03", 4),
        std::string(1000, '\xff'), std::string()}) {
    absl::StatusOr<Graph> g = ImportOnnxBytes(bytes, "junk.onnx");
    ASSERT_FALSE(g.ok());
    EXPECT_THAT(Message(g.status()), HasSubstr("'junk.onnx'"));
  }
}

TEST(OnnxImportRejectsTest, TruncatedFile) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/cut.onnx";
  const std::string bytes = testing::MiniDetector(ExportStyle::kStatic).Bytes();
  {
    std::ofstream out(path, std::ios::binary);
    out << bytes.substr(0, bytes.size() / 3);
  }
  absl::StatusOr<Graph> g = ImportOnnxFile(path);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr(path));
}

TEST(OnnxImportRejectsTest, UnsupportedOpNamesNodeAndType) {
  OnnxModelBuilder b = Minimal();
  b.AddNode("LSTM", {"y"}, {"z"}, "the_rnn");
  b.AddOutput("z", {1});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'the_rnn'"), HasSubstr("'LSTM'"),
                                         HasSubstr("not supported"), HasSubstr("Conv")));
}

TEST(OnnxImportRejectsTest, NonDefaultDomain) {
  OnnxModelBuilder b = Minimal();
  onnx::OperatorSetIdProto* ms = b.proto().add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  b.AddNode("FusedConv", {"y"}, {"z"}, "ms_conv").set_domain("com.microsoft");
  b.AddOutput("z", {1});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'ms_conv'"), HasSubstr("com.microsoft")));
}

TEST(OnnxImportRejectsTest, OpsetsOutsideElevenToNineteen) {
  for (int64_t opset : {7, 10, 20}) {
    absl::StatusOr<Graph> g = Import(Minimal(opset));
    ASSERT_FALSE(g.ok()) << opset;
    EXPECT_THAT(Message(g.status()),
                AllOf(HasSubstr("opset " + std::to_string(opset)), HasSubstr("11 to 19")));
  }
  OnnxModelBuilder none = Minimal();
  none.proto().clear_opset_import();
  absl::StatusOr<Graph> g = Import(none);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("no opset"));
}

TEST(OnnxImportRejectsTest, WrongInputRankOrType) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 48});
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("y", {1, 48});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("input 'images'"), HasSubstr("rank 4"), HasSubstr("(1, 48)")));

  OnnxModelBuilder i(17);
  i.AddInput("images", {1, 3, 4, 4}, DType::kInt64);
  i.AddNode("Identity", {"images"}, {"y"}, "id");
  i.AddOutput("y", {1, 3, 4, 4}, DType::kInt64);
  g = Import(i);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("float32"), HasSubstr("int64")));
}

TEST(OnnxImportRejectsTest, TwoInputs) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddInput("mask", {1, 3, 4, 4});
  b.AddNode("Mul", {"images", "mask"}, {"y"}, "mul");
  b.AddOutput("y", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("2 inputs"), HasSubstr("'images'"), HasSubstr("'mask'")));
}

TEST(OnnxImportRejectsTest, InitializerListedAsInputIsNotAnInput) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddInput("bias", {1});
  b.AddFloatInitializer("bias", {1}, {0.5f});
  b.AddNode("Add", {"images", "bias"}, {"y"}, "add");
  b.AddOutput("y", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->inputs(), ElementsAre("images"));
}

TEST(OnnxImportRejectsTest, EmptyGraph) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddOutput("images", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("empty"));
}

TEST(OnnxImportRejectsTest, InitializerSizeMismatchNamesTheTensor) {
  OnnxModelBuilder raw = Minimal();
  onnx::TensorProto* t = raw.proto().mutable_graph()->add_initializer();
  *t = OnnxModelBuilder::ToTensorProto("model.0.conv.weight", Tensor(DType::kFloat32, {4, 3}));
  t->mutable_raw_data()->resize(40);  // 12 floats need 48 bytes
  absl::StatusOr<Graph> g = Import(raw);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'model.0.conv.weight'"), HasSubstr("48 bytes"),
                                         HasSubstr("40 bytes")));

  OnnxModelBuilder typed = Minimal();
  onnx::TensorProto* f = typed.proto().mutable_graph()->add_initializer();
  f->set_name("typed");
  f->set_data_type(onnx::TensorProto::FLOAT);
  f->add_dims(3);
  f->add_float_data(1.0f);
  g = Import(typed);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'typed'"), HasSubstr("float_data")));

  onnx::TensorProto negative;
  negative.set_name("neg");
  negative.set_data_type(onnx::TensorProto::FLOAT);
  negative.add_dims(-2);
  EXPECT_THAT(Message(TensorFromOnnx(negative).status()), HasSubstr("'neg'"));

  onnx::TensorProto strings;
  strings.set_name("labels");
  strings.set_data_type(onnx::TensorProto::STRING);
  strings.add_string_data("a");
  EXPECT_THAT(Message(TensorFromOnnx(strings).status()),
              AllOf(HasSubstr("'labels'"), HasSubstr("STRING")));
}

TEST(OnnxImportRejectsTest, ExternalData) {
  OnnxModelBuilder b = Minimal();
  onnx::TensorProto* t = b.proto().mutable_graph()->add_initializer();
  t->set_name("big_weight");
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(4);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  onnx::StringStringEntryProto* loc = t->add_external_data();
  loc->set_key("location");
  loc->set_value("/etc/passwd");
  // Bytes have no folder to read external data from (graph/onnx_hostile_test.cc covers files).
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("'big_weight'"), HasSubstr("'/etc/passwd'"), HasSubstr("no folder")));
}

TEST(OnnxImportRejectsTest, UnsupportedConstantForm) {
  OnnxModelBuilder b = Minimal();
  OnnxModelBuilder::AttrString(b.AddNode("Constant", {}, {"s"}, "label"), "value_string", "x");
  b.AddOutput("s", {});
  b.proto()
      .mutable_graph()
      ->mutable_output(1)
      ->mutable_type()
      ->mutable_tensor_type()
      ->set_elem_type(onnx::TensorProto::STRING);
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("'label'"));
}

TEST(OnnxImportRejectsTest, CheckerFailuresBecomeErrors) {
  OnnxModelBuilder b = Minimal();
  b.AddNode("Conv", {"y"}, {"z"}, "conv_without_weights");
  b.AddOutput("z", {1});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'test.onnx'"), HasSubstr("checker")));
}

// Corrupt files must give errors (or, where the damage happens to keep the model valid, a
// graph), never a crash: flip bytes at pseudo-random places and import and prepare each result.
TEST(OnnxImportRejectsTest, CorruptedBytesNeverCrash) {
  for (ExportStyle style : {ExportStyle::kStatic, ExportStyle::kDynamic}) {
    const std::string original = testing::MiniDetector(style).Bytes();
    uint32_t state = 12345;
    auto next = [&state] {
      state = state * 1664525u + 1013904223u;
      return state >> 8;
    };
    int rejected = 0;
    for (int trial = 0; trial < 300; ++trial) {
      std::string bytes = original;
      const int flips = 1 + next() % 4;
      for (int f = 0; f < flips; ++f) {
        bytes[next() % bytes.size()] = static_cast<char>(next() & 0xff);
      }
      absl::StatusOr<Graph> g = ImportOnnxBytes(bytes, "corrupt.onnx");
      if (!g.ok()) {
        ++rejected;
        EXPECT_THAT(Message(g.status()), HasSubstr("'corrupt.onnx'"));
        continue;
      }
      // Whatever imported must prepare or fail cleanly.
      absl::StatusOr<Graph> prepared = PrepareForExecution(*g, {1, 3, 16, 16});
      (void)prepared;
    }
    EXPECT_GT(rejected, 0);
  }
}

TEST(OnnxImportRejectsTest, UndefinedTensorIsAnError) {
  OnnxModelBuilder b = Minimal();
  b.AddNode("Add", {"y", "nowhere"}, {"z"}, "add");
  b.AddOutput("z", {1, 3, 4, 4});
  absl::StatusOr<Graph> g = Import(b);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("nowhere"));
}

}  // namespace
}  // namespace yolopipe
