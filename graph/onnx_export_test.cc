#include "graph/onnx_export.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "graph/fuse.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"
#include "graph/testing/mini_detector.h"
#include "graph/testing/onnx_builder.h"
#include "gtest/gtest.h"
#include "onnx/checker.h"

namespace yolopipe {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::ExportStyle;
using ::testing::HasSubstr;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

onnx::ModelProto Parse(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

bool AttributesEqual(const Attributes& a, const Attributes& b) {
  if (a.values().size() != b.values().size()) return false;
  for (const auto& [name, value] : a.values()) {
    auto it = b.values().find(name);
    if (it == b.values().end() || it->second.index() != value.index()) return false;
    const bool equal = std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          const T& y = std::get<T>(it->second);
          if constexpr (std::is_same_v<T, Tensor>) {
            return BitwiseEqual(x, y);
          } else {
            return x == y;
          }
        },
        value);
    if (!equal) return false;
  }
  return true;
}

// Same nodes (name, op, inputs, outputs, attributes), inputs, outputs and bitwise-equal
// initializers.
void ExpectEquivalent(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.nodes().size(), b.nodes().size());
  for (const Node& na : a.nodes()) {
    const int i = b.FindNode(na.name);
    ASSERT_GE(i, 0) << "missing node " << na.name;
    const Node& nb = b.nodes()[i];
    EXPECT_EQ(na.op_type, nb.op_type) << na.name;
    EXPECT_EQ(na.inputs, nb.inputs) << na.name;
    EXPECT_EQ(na.outputs, nb.outputs) << na.name;
    EXPECT_TRUE(AttributesEqual(na.attrs, nb.attrs)) << na.name;
  }
  EXPECT_EQ(a.inputs(), b.inputs());
  EXPECT_EQ(a.outputs(), b.outputs());
  ASSERT_EQ(a.initializers().size(), b.initializers().size());
  for (const auto& [name, tensor] : a.initializers()) {
    const Tensor* other = b.FindInitializer(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_TRUE(BitwiseEqual(tensor, *other)) << name;
  }
}

absl::StatusOr<Graph> ImportMini(ExportStyle style) {
  return ImportOnnxBytes(testing::MiniDetector(style).Bytes(), "mini.onnx");
}

TEST(OnnxExportTest, WritesStandardOnnxWithoutFusedNodes) {
  absl::StatusOr<Graph> g = ImportMini(ExportStyle::kStatic);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<std::string> bytes = ExportOnnxBytes(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto model = Parse(*bytes);
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  EXPECT_EQ(model.ir_version(), 8);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).domain(), "");
  EXPECT_EQ(model.opset_import(0).version(), 17);

  std::map<std::string, const onnx::NodeProto*> by_name;
  for (const onnx::NodeProto& n : model.graph().node()) {
    by_name[n.name()] = &n;
    for (const onnx::AttributeProto& a : n.attribute()) {
      EXPECT_NE(a.name(), kActivationAttr) << n.name();
    }
    if (n.op_type() == "Conv") {
      EXPECT_LE(n.input_size(), 3) << n.name();
    }
  }
  // conv1 (SiLU + residual) expands to Conv -> Sigmoid -> Mul -> Add writing "r0".
  ASSERT_TRUE(by_name.count("conv1/sigmoid") && by_name.count("conv1/silu") &&
              by_name.count("conv1/residual"));
  const onnx::NodeProto& conv1 = *by_name["conv1"];
  EXPECT_EQ(by_name["conv1/sigmoid"]->input(0), conv1.output(0));
  EXPECT_EQ(by_name["conv1/silu"]->input(0), conv1.output(0));
  EXPECT_EQ(by_name["conv1/silu"]->input(1), by_name["conv1/sigmoid"]->output(0));
  EXPECT_EQ(by_name["conv1/residual"]->input(0), by_name["conv1/silu"]->output(0));
  EXPECT_EQ(by_name["conv1/residual"]->input(1), "p0");
  EXPECT_EQ(by_name["conv1/residual"]->output(0), "r0");
  // conv0 (SiLU only): the Mul writes the fused output name.
  EXPECT_EQ(by_name["conv0/silu"]->output(0), "p0");

  for (const onnx::TensorProto& t : model.graph().initializer()) {
    EXPECT_TRUE(t.has_raw_data()) << t.name();
    EXPECT_EQ(t.float_data_size(), 0) << t.name();
  }
  std::map<std::string, std::string> props;
  for (const auto& p : model.metadata_props()) props[p.key()] = p.value();
  EXPECT_EQ(props.at("names"), "{0: 'person', 1: \"it's\"}");
  EXPECT_EQ(props.at("task"), "detect");
  EXPECT_EQ(props.count(kMetadataDeclaredInputShape), 0u);
  EXPECT_EQ(props.count(kMetadataOnnxOpset), 0u);

  const auto& in_dims = model.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(in_dims.size(), 4);
  EXPECT_EQ(in_dims[0].dim_value(), 1);
  EXPECT_EQ(in_dims[3].dim_value(), 16);
}

TEST(OnnxExportTest, RoundTripGivesTheSameGraph) {
  for (ExportStyle style : {ExportStyle::kStatic, ExportStyle::kDynamic}) {
    absl::StatusOr<Graph> g = ImportMini(style);
    ASSERT_TRUE(g.ok()) << g.status();
    absl::StatusOr<std::string> bytes = ExportOnnxBytes(*g);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    absl::StatusOr<Graph> back = ImportOnnxBytes(*bytes, "exported.onnx");
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectEquivalent(*g, *back);
    EXPECT_EQ(g->metadata(), back->metadata());
  }
}

TEST(OnnxExportTest, SymbolicDimensionsGetNames) {
  absl::StatusOr<Graph> g = ImportMini(ExportStyle::kDynamic);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<std::string> bytes = ExportOnnxBytes(*g);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto model = Parse(*bytes);
  const auto& in = model.graph().input(0).type().tensor_type().shape().dim();
  ASSERT_EQ(in.size(), 4);
  EXPECT_EQ(in[0].dim_param(), "batch");
  EXPECT_EQ(in[1].dim_value(), 3);
  EXPECT_EQ(in[2].dim_param(), "height");
  EXPECT_EQ(in[3].dim_param(), "width");
  const auto& out = model.graph().output(0).type().tensor_type().shape().dim();
  ASSERT_EQ(out.size(), 3);
  EXPECT_EQ(out[0].dim_param(), "batch");
  EXPECT_EQ(out[1].dim_value(), 6);
  EXPECT_EQ(out[2].dim_param(), "output0_dim2");
}

Node MakeNode(const std::string& name, const std::string& op, std::vector<std::string> inputs,
              std::vector<std::string> outputs) {
  Node n;
  n.name = name;
  n.op_type = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

// A graph built directly (as the built-in model is): a bias-less fused Conv with a residual,
// and a value that already uses the name the exporter would pick for the Conv's output.
Graph BuiltInStyleGraph() {
  Graph g;
  g.set_name("builtin");
  g.AddInput(Value{"images", DType::kFloat32, {kUnknownDim, 4, kUnknownDim, kUnknownDim}});
  g.AddInitializer("w0", Tensor::FromFloats({4, 4, 1, 1}, testing::SeededFloats(16, 5)));
  g.AddInitializer("w1", Tensor::FromFloats({4, 4, 1, 1}, testing::SeededFloats(16, 6)));
  Node first = MakeNode("block", "Conv", {"images", "w0"}, {"block/conv_output"});
  first.attrs.Set("kernel_shape", std::vector<int64_t>{1, 1});
  g.AddNode(first);
  Node fused = MakeNode("block/cv", "Conv", {"block/conv_output", "w1", "", "images"}, {"out"});
  fused.attrs.Set("kernel_shape", std::vector<int64_t>{1, 1});
  fused.attrs.Set(kActivationAttr, std::string(kActivationSilu));
  g.AddNode(fused);
  g.SetValue(
      Value{"block/conv_output", DType::kFloat32, {kUnknownDim, 4, kUnknownDim, kUnknownDim}});
  g.SetValue(Value{"out", DType::kFloat32, {kUnknownDim, 4, kUnknownDim, kUnknownDim}});
  g.AddOutput("out");
  g.mutable_metadata()["task"] = "detect";
  return g;
}

TEST(OnnxExportTest, BiasLessResidualConvRoundTrips) {
  const Graph g = BuiltInStyleGraph();
  absl::StatusOr<std::string> bytes = ExportOnnxBytes(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const onnx::ModelProto model = Parse(*bytes);
  std::vector<std::string> ops;
  for (const onnx::NodeProto& n : model.graph().node()) ops.push_back(n.op_type());
  EXPECT_THAT(ops, ElementsAre("Conv", "Conv", "Sigmoid", "Mul", "Add"));
  EXPECT_EQ(model.graph().node(1).input_size(), 2);  // no bias, residual moved to the Add
  EXPECT_EQ(model.graph().node(1).output(0), "block/cv/conv_output");

  absl::StatusOr<Graph> back = ImportOnnxBytes(*bytes, "builtin.onnx");
  ASSERT_TRUE(back.ok()) << back.status();
  // With symbolic dimensions the importer leaves the residual Add for PrepareForExecution.
  ASSERT_EQ(back->nodes().size(), 3u);
  const Node& cv = back->nodes()[back->FindNode("block/cv")];
  EXPECT_THAT(cv.inputs, ElementsAre("block/conv_output", "w1"));
  EXPECT_EQ(*cv.attrs.GetString(kActivationAttr, ""), "silu");
  const Node& add = back->nodes()[back->FindNode("block/cv/residual")];
  EXPECT_THAT(add.inputs, ElementsAre(cv.outputs[0], "images"));
  EXPECT_THAT(add.outputs, ElementsAre("out"));
  EXPECT_TRUE(BitwiseEqual(*back->FindInitializer("w1"), *g.FindInitializer("w1")));

  // Once bound, both fuse to the same graph.
  absl::StatusOr<Graph> prepared_original = PrepareForExecution(g, {2, 4, 5, 5});
  absl::StatusOr<Graph> prepared_back = PrepareForExecution(*back, {2, 4, 5, 5});
  ASSERT_TRUE(prepared_original.ok()) << prepared_original.status();
  ASSERT_TRUE(prepared_back.ok()) << prepared_back.status();
  ExpectEquivalent(*prepared_original, *prepared_back);
  EXPECT_THAT(prepared_back->nodes()[1].inputs,
              ElementsAre("block/conv_output", "w1", "", "images"));
}

TEST(OnnxExportTest, RefusesActivationsWithoutAnOnnxForm) {
  Graph g = BuiltInStyleGraph();
  g.mutable_nodes()[1].attrs.Set(kActivationAttr, std::string("gelu"));
  absl::StatusOr<std::string> bytes = ExportOnnxBytes(g);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(Message(bytes.status()), AllOf(HasSubstr("'block/cv'"), HasSubstr("gelu")));
}

TEST(OnnxExportTest, InvalidGraphIsRefused) {
  Graph g = BuiltInStyleGraph();
  g.mutable_nodes()[1].inputs[1] = "missing_weight";
  absl::StatusOr<std::string> bytes = ExportOnnxBytes(g);
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(Message(bytes.status()), HasSubstr("missing_weight"));
}

std::vector<std::string> DirectoryEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  return names;
}

TEST(OnnxExportFileTest, WritesAtomicallyAndReimports) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/export_ok";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  const std::string path = dir + "/model.onnx";
  absl::StatusOr<Graph> g = ImportMini(ExportStyle::kStatic);
  ASSERT_TRUE(g.ok()) << g.status();
  // An existing file is replaced.
  { std::ofstream(path) << "old contents"; }
  ASSERT_TRUE(ExportOnnxFile(*g, path).ok());
  EXPECT_THAT(DirectoryEntries(dir), ElementsAre("model.onnx"));  // no temporary left behind
  absl::StatusOr<Graph> back = ImportOnnxFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectEquivalent(*g, *back);
}

TEST(OnnxExportFileTest, UnwritablePathIsAnErrorNamingIt) {
  absl::StatusOr<Graph> g = ImportMini(ExportStyle::kStatic);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::Status status = ExportOnnxFile(*g, "/nonexistent/dir/model.onnx");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(Message(status), HasSubstr("/nonexistent/dir/model.onnx"));
}

TEST(OnnxExportFileTest, FailedExportLeavesTheOldFile) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/export_fail";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  const std::string path = dir + "/model.onnx";
  { std::ofstream(path) << "old contents"; }
  Graph g = BuiltInStyleGraph();
  g.mutable_nodes()[1].attrs.Set(kActivationAttr, std::string("gelu"));
  EXPECT_FALSE(ExportOnnxFile(g, path).ok());
  std::ifstream in(path);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(contents, "old contents");
  EXPECT_THAT(DirectoryEntries(dir), ElementsAre("model.onnx"));
}

TEST(TensorToOnnxTest, RawDataRoundTrip) {
  const Tensor t = Tensor::FromInt64s({2, 2}, {1, -2, 3, int64_t{1} << 50});
  absl::StatusOr<onnx::TensorProto> proto = TensorToOnnx("t", t);
  ASSERT_TRUE(proto.ok()) << proto.status();
  EXPECT_EQ(proto->data_type(), onnx::TensorProto::INT64);
  EXPECT_EQ(proto->raw_data().size(), 32u);
  absl::StatusOr<Tensor> back = TensorFromOnnx(*proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(BitwiseEqual(t, *back));
  EXPECT_FALSE(TensorToOnnx("undefined", Tensor()).ok());
}

}  // namespace
}  // namespace yolopipe
