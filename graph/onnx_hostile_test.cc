// Hostile ONNX files: external data that tries to leave the model's folder, sizes that disagree
// with the data, absurd shapes and allocation sizes, and graph / nesting bombs. Every refusal is
// checked for the names and numbers its error must carry; the accepted forms of external data are
// checked against the embedded model tensor by tensor.
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "graph/model_metadata.h"
#include "graph/onnx_import.h"
#include "graph/testing/mini_detector.h"
#include "graph/testing/onnx_builder.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::OnnxModelBuilder;

using Entries = std::vector<std::pair<std::string, std::string>>;

std::string Message(const absl::Status& s) { return std::string(s.message()); }

std::vector<float> Floats(const Tensor& t) {
  std::vector<float> v;
  for (int64_t i = 0; i < t.num_elements(); ++i) v.push_back(static_cast<float>(t.GetAsDouble(i)));
  return v;
}

// A new, empty directory under TEST_TMPDIR.
std::string FreshDir(const std::string& name) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string Bytes(const std::vector<float>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// images (1, 2, 3, 3) -> Conv(weight "w" (1, 2, 1, 1)) -> y (1, 1, 3, 3).
const std::vector<float> kWeight = {0.5f, -1.0f};

OnnxModelBuilder ConvModel() {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 2, 3, 3});
  b.AddFloatInitializer("w", {1, 2, 1, 1}, kWeight);
  b.AddNode("Conv", {"images", "w"}, {"y"}, "conv");
  b.AddOutput("y", {1, 1, 3, 3});
  return b;
}

onnx::TensorProto* FindInitializer(OnnxModelBuilder& b, const std::string& name) {
  for (onnx::TensorProto& t : *b.proto().mutable_graph()->mutable_initializer()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

// Moves a tensor's data out of the model: data_location EXTERNAL with `entries`.
void MakeExternal(onnx::TensorProto* t, const Entries& entries) {
  t->clear_raw_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  for (const auto& [key, value] : entries) {
    onnx::StringStringEntryProto* e = t->add_external_data();
    e->set_key(key);
    e->set_value(value);
  }
}

// ConvModel with "w" external, described by `entries`.
OnnxModelBuilder ExternalConvModel(const Entries& entries) {
  OnnxModelBuilder b = ConvModel();
  MakeExternal(FindInitializer(b, "w"), entries);
  return b;
}

// Writes the model as <dir>/model.onnx and imports that file.
absl::StatusOr<Graph> ImportFromDir(const OnnxModelBuilder& b, const std::string& dir,
                                    const OnnxImportOptions& options = {}) {
  const std::string path = dir + "/model.onnx";
  WriteFile(path, b.Bytes());
  return ImportOnnxFile(path, options);
}

// --- external data that is accepted ---

// Moves every raw_data tensor of the model (initializers and Constant values) into external
// files: one shared file at 64-byte aligned offsets when `shared_file` is set, else one file per
// tensor under "weights/" with no offset or length (the data runs to the end of its file).
void ExternalizeAll(onnx::ModelProto* model, const std::string& dir, bool shared_file) {
  std::string shared;
  int index = 0;
  auto move_out = [&](onnx::TensorProto* t) {
    if (!t->has_raw_data()) return;
    const std::string data = t->raw_data();
    if (shared_file) {
      shared.resize((shared.size() + 63) / 64 * 64, '\0');
      const size_t offset = shared.size();
      shared += data;
      MakeExternal(t, {{"location", "weights.bin"},
                       {"offset", std::to_string(offset)},
                       {"length", std::to_string(data.size())}});
    } else {
      const std::string location = "weights/t" + std::to_string(index++) + ".bin";
      WriteFile(dir + "/" + location, data);
      MakeExternal(t, {{"location", location}, {"checksum", "not-verified"}});
    }
  };
  for (onnx::TensorProto& t : *model->mutable_graph()->mutable_initializer()) move_out(&t);
  for (onnx::NodeProto& node : *model->mutable_graph()->mutable_node()) {
    for (onnx::AttributeProto& a : *node.mutable_attribute()) {
      if (a.has_t()) move_out(a.mutable_t());
    }
  }
  if (shared_file) WriteFile(dir + "/weights.bin", shared + std::string(5, 'x'));
}

void ExpectSameTensors(const Graph& embedded, const Graph& external) {
  ASSERT_EQ(embedded.initializers().size(), external.initializers().size());
  for (const auto& [name, t] : embedded.initializers()) {
    const Tensor* other = external.FindInitializer(name);
    ASSERT_NE(other, nullptr) << name;
    EXPECT_TRUE(BitwiseEqual(t, *other)) << name;
  }
  EXPECT_EQ(embedded.nodes().size(), external.nodes().size());
}

TEST(OnnxExternalDataTest, SharedFileInTheModelFolderGivesTheEmbeddedTensors) {
  const testing::OnnxModelBuilder mini = testing::MiniDetector(testing::ExportStyle::kStatic);
  absl::StatusOr<Graph> embedded = ImportOnnxBytes(mini.Bytes(), "mini.onnx");
  ASSERT_TRUE(embedded.ok()) << embedded.status();

  const std::string dir = FreshDir("external_shared");
  testing::OnnxModelBuilder moved = mini;
  ExternalizeAll(&moved.proto(), dir, /*shared_file=*/true);
  ASSERT_GT(moved.proto().graph().initializer_size(), 0);
  EXPECT_EQ(moved.proto().graph().initializer(0).data_location(), onnx::TensorProto::EXTERNAL);
  absl::StatusOr<Graph> external = ImportFromDir(moved, dir);
  ASSERT_TRUE(external.ok()) << external.status();
  ExpectSameTensors(*embedded, *external);
  // The anchors came from a Constant node's attribute tensor.
  ASSERT_NE(external->FindInitializer("anchors"), nullptr);
  EXPECT_THAT(Floats(*external->FindInitializer("anchors")),
              ::testing::ElementsAreArray(testing::ExpectedAnchors(8, 8)));
}

TEST(OnnxExternalDataTest, OneFilePerTensorInASubfolder) {
  const testing::OnnxModelBuilder mini = testing::MiniDetector(testing::ExportStyle::kDynamic);
  absl::StatusOr<Graph> embedded = ImportOnnxBytes(mini.Bytes(), "mini.onnx");
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  const std::string dir = FreshDir("external_subfolder");
  std::filesystem::create_directories(dir + "/weights");
  testing::OnnxModelBuilder moved = mini;
  ExternalizeAll(&moved.proto(), dir, /*shared_file=*/false);
  absl::StatusOr<Graph> external = ImportFromDir(moved, dir);
  ASSERT_TRUE(external.ok()) << external.status();
  ExpectSameTensors(*embedded, *external);
}

TEST(OnnxExternalDataTest, OffsetAndLengthSelectTheBytes) {
  const std::string dir = FreshDir("external_offset");
  WriteFile(dir + "/w.bin", "0123456789abcd" + Bytes(kWeight) + "tail");
  absl::StatusOr<Graph> g = ImportFromDir(
      ExternalConvModel({{"location", "./w.bin"}, {"offset", "14"}, {"length", "8"}}), dir);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Floats(*g->FindInitializer("w")), ElementsAre(0.5f, -1.0f));
}

// --- external data that is refused ---

struct Refusal {
  const char* label;
  Entries entries;
  std::vector<std::string> message_has;
};

// Each case's model (weight 'w' stored externally with the case's entries) is refused as
// InvalidArgument, naming the tensor and saying each of the case's phrases.
void ExpectRefused(const std::vector<Refusal>& cases, const std::string& dir) {
  for (const Refusal& c : cases) {
    absl::StatusOr<Graph> g = ImportFromDir(ExternalConvModel(c.entries), dir);
    ASSERT_FALSE(g.ok()) << c.label;
    EXPECT_TRUE(absl::IsInvalidArgument(g.status())) << c.label << ": " << g.status();
    EXPECT_THAT(Message(g.status()), HasSubstr("'w'")) << c.label;
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(Message(g.status()), HasSubstr(part)) << c.label;
    }
  }
}

TEST(OnnxExternalDataRejectsTest, LocationsOutsideOrMalformed) {
  const std::string root = FreshDir("external_escape");
  const std::string dir = root + "/model";
  std::filesystem::create_directories(dir + "/sub");
  WriteFile(root + "/outside.bin", Bytes(kWeight));
  WriteFile(dir + "/w.bin", Bytes(kWeight));
  const std::vector<Refusal> cases = {
      {"absolute", {{"location", root + "/outside.bin"}}, {"absolute path"}},
      {"dotdot", {{"location", "../outside.bin"}}, {"'..'"}},
      {"dotdot inside", {{"location", "sub/../../outside.bin"}}, {"'..'"}},
      {"dotdot back in", {{"location", "sub/../w.bin"}}, {"'..'"}},
      {"empty", {{"location", ""}}, {"location is empty"}},
      {"folder itself", {{"location", "./"}}, {"names the model's folder itself"}},
      {"folder", {{"location", "sub"}}, {"'sub'", "is a folder"}},
      {"nul", {{"location", std::string("w.bin\0x", 7)}}, {"NUL"}},
      {"no location", {{"offset", "0"}}, {"no external_data 'location'"}},
      {"unknown key",
       {{"location", "w.bin"}, {"basepath", "/"}},
       {"unknown external_data key 'basepath'"}},
      {"duplicate key",
       {{"location", "w.bin"}, {"location", "../outside.bin"}},
       {"'location' is given twice"}},
  };
  ExpectRefused(cases, dir);
}

TEST(OnnxExternalDataRejectsTest, SymbolicLinksAnywhereBelowTheFolder) {
  const std::string root = FreshDir("external_links");
  const std::string dir = root + "/model";
  std::filesystem::create_directories(dir + "/real");
  std::filesystem::create_directories(root + "/elsewhere");
  WriteFile(root + "/outside.bin", Bytes(kWeight));
  WriteFile(root + "/elsewhere/w.bin", Bytes(kWeight));
  WriteFile(dir + "/real/w.bin", Bytes(kWeight));
  ASSERT_EQ(::symlink((root + "/outside.bin").c_str(), (dir + "/to_outside.bin").c_str()), 0);
  ASSERT_EQ(::symlink("real/w.bin", (dir + "/to_inside.bin").c_str()), 0);
  ASSERT_EQ(::symlink((root + "/elsewhere").c_str(), (dir + "/linked_dir").c_str()), 0);
  ASSERT_EQ(::symlink("real", (dir + "/linked_real").c_str()), 0);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"to_outside.bin", "'to_outside.bin' is a symbolic link"},
      // Even a link that stays inside the folder is refused: no link is ever followed.
      {"to_inside.bin", "'to_inside.bin' is a symbolic link"},
      {"linked_dir/w.bin", "'linked_dir' is a symbolic link"},
      {"linked_real/w.bin", "'linked_real' is a symbolic link"},
  };
  for (const auto& [location, expected] : cases) {
    absl::StatusOr<Graph> g = ImportFromDir(ExternalConvModel({{"location", location}}), dir);
    ASSERT_FALSE(g.ok()) << location;
    EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'w'"), HasSubstr(expected))) << location;
  }
  // The same file through its real path is accepted, so the refusals above are about the links.
  absl::StatusOr<Graph> g = ImportFromDir(ExternalConvModel({{"location", "real/w.bin"}}), dir);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Floats(*g->FindInitializer("w")), ElementsAre(0.5f, -1.0f));
}

TEST(OnnxExternalDataRejectsTest, NonRegularAndMissingFiles) {
  const std::string dir = FreshDir("external_special");
  ASSERT_EQ(::mkfifo((dir + "/pipe").c_str(), 0600), 0);
  // A FIFO with no writer would block a plain open(); it must be refused, not waited on.
  absl::StatusOr<Graph> g = ImportFromDir(ExternalConvModel({{"location", "pipe"}}), dir);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'pipe'"), HasSubstr("not a regular file")));

  g = ImportFromDir(ExternalConvModel({{"location", "missing.bin"}}), dir);
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsNotFound(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'w'"), HasSubstr("'missing.bin'")));

  g = ImportFromDir(ExternalConvModel({{"location", "nodir/w.bin"}}), dir);
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsNotFound(g.status())) << g.status();
}

TEST(OnnxExternalDataRejectsTest, OffsetsAndLengths) {
  const std::string dir = FreshDir("external_ranges");
  WriteFile(dir + "/w.bin", Bytes(kWeight));                // 8 bytes
  WriteFile(dir + "/w12.bin", Bytes({0.5f, -1.0f, 3.0f}));  // 12 bytes
  const std::vector<Refusal> cases = {
      {"negative offset", {{"location", "w.bin"}, {"offset", "-8"}}, {"offset '-8'"}},
      {"signed offset", {{"location", "w.bin"}, {"offset", "+0"}}, {"offset '+0'"}},
      {"hex offset", {{"location", "w.bin"}, {"offset", "0x0"}}, {"offset '0x0'"}},
      {"spaced offset", {{"location", "w.bin"}, {"offset", " 0"}}, {"offset ' 0'"}},
      {"empty length", {{"location", "w.bin"}, {"length", ""}}, {"length ''"}},
      {"non-numeric length", {{"location", "w.bin"}, {"length", "8 bytes"}}, {"length '8 bytes'"}},
      {"overflowing offset",
       {{"location", "w.bin"}, {"offset", "99999999999999999999"}},
       {"offset '99999999999999999999'"}},
      {"overflowing length",
       {{"location", "w.bin"}, {"length", "9223372036854775808"}},
       {"length '9223372036854775808'"}},
      {"offset past end",
       {{"location", "w.bin"}, {"offset", "9223372036854775807"}},
       {"offset 9223372036854775807 is past the end of the file (8 bytes)"}},
      {"length past end",
       {{"location", "w.bin"}, {"offset", "4"}, {"length", "8"}},
       {"offset 4 + length 8 runs past the end of the file (8 bytes)"}},
      {"huge length",
       {{"location", "w.bin"}, {"length", "9223372036854775807"}},
       {"runs past the end"}},
      {"short length",
       {{"location", "w.bin"}, {"length", "4"}},
       {"need 2 elements (8 bytes)", "holds 4 bytes at offset 0"}},
      {"file too long",
       {{"location", "w12.bin"}},
       {"need 2 elements (8 bytes)", "holds 12 bytes", "to the end of the file"}},
      {"offset leaves too little",
       {{"location", "w.bin"}, {"offset", "2"}},
       {"need 2 elements (8 bytes)", "holds 6 bytes at offset 2"}},
  };
  ExpectRefused(cases, dir);
}

TEST(OnnxExternalDataRejectsTest, InconsistentMarking) {
  const std::string dir = FreshDir("external_marking");
  WriteFile(dir + "/w.bin", Bytes(kWeight));
  OnnxModelBuilder both = ExternalConvModel({{"location", "w.bin"}});
  FindInitializer(both, "w")->set_raw_data(Bytes(kWeight));
  absl::StatusOr<Graph> g = ImportFromDir(both, dir);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("'w'"), HasSubstr("marked EXTERNAL but also holds data")));

  OnnxModelBuilder unmarked = ConvModel();
  onnx::StringStringEntryProto* e = FindInitializer(unmarked, "w")->add_external_data();
  e->set_key("location");
  e->set_value("w.bin");
  g = ImportFromDir(unmarked, dir);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("'w'"), HasSubstr("data_location is not EXTERNAL")));
}

TEST(OnnxExternalDataRejectsTest, ModelGivenAsBytesHasNoFolder) {
  OnnxModelBuilder b = ExternalConvModel({{"location", "w.bin"}});
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "download.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'download.onnx'"), HasSubstr("'w'"),
                                         HasSubstr("'w.bin'"), HasSubstr("no folder")));

  absl::StatusOr<Tensor> t = TensorFromOnnx(*FindInitializer(b, "w"));
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(Message(t.status()), AllOf(HasSubstr("'w'"), HasSubstr("'w.bin'")));
}

TEST(OnnxExternalDataRejectsTest, ConstantAttributeTensorGoesThroughTheSameChecks) {
  const std::string dir = FreshDir("external_constant");
  WriteFile(dir + "/c.bin", Bytes({1.0f, 2.0f}));
  OnnxModelBuilder b = ConvModel();
  const std::string out = b.AddConstant("c", Tensor::FromFloats({2}, {0.0f, 0.0f}));
  b.AddOutput(out, {2});
  onnx::TensorProto* value =
      b.proto().mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_t();
  MakeExternal(value, {{"location", "c.bin"}});
  absl::StatusOr<Graph> g = ImportFromDir(b, dir);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Floats(*g->FindInitializer("c")), ElementsAre(1.0f, 2.0f));

  value->mutable_external_data(0)->set_value("../c.bin");
  g = ImportFromDir(b, dir);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("Constant"), HasSubstr("'..'")));
}

// --- declared sizes that disagree with the data ---

onnx::TensorProto FloatProto(const std::string& name, const std::vector<int64_t>& dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  return t;
}

TEST(OnnxTensorRejectsTest, DataThatDisagreesWithTheDims) {
  onnx::TensorProto both = FloatProto("both", {2});
  both.set_raw_data(Bytes({1.0f, 2.0f}));
  both.add_float_data(1.0f);
  both.add_float_data(2.0f);
  EXPECT_THAT(Message(TensorFromOnnx(both).status()),
              AllOf(HasSubstr("'both'"), HasSubstr("both raw_data and 2 elements in float_data")));

  onnx::TensorProto wrong_field = FloatProto("wrong_field", {2});
  wrong_field.add_int64_data(1);
  wrong_field.add_int64_data(2);
  EXPECT_THAT(Message(TensorFromOnnx(wrong_field).status()),
              AllOf(HasSubstr("'wrong_field'"), HasSubstr("2 elements in int64_data"),
                    HasSubstr("belongs in float_data")));

  onnx::TensorProto extra = FloatProto("extra", {1});
  extra.add_float_data(1.0f);
  extra.add_double_data(1.0);
  EXPECT_THAT(Message(TensorFromOnnx(extra).status()),
              AllOf(HasSubstr("'extra'"), HasSubstr("double_data")));

  onnx::TensorProto typed_short = FloatProto("typed_short", {2, 3});
  typed_short.add_float_data(1.0f);
  EXPECT_THAT(Message(TensorFromOnnx(typed_short).status()),
              AllOf(HasSubstr("'typed_short'"), HasSubstr("6 elements (24 bytes)"),
                    HasSubstr("float_data holds 1 elements")));

  onnx::TensorProto raw_long = FloatProto("raw_long", {2});
  raw_long.set_raw_data(std::string(12, '\0'));
  EXPECT_THAT(Message(TensorFromOnnx(raw_long).status()),
              AllOf(HasSubstr("'raw_long'"), HasSubstr("(8 bytes)"), HasSubstr("holds 12 bytes")));

  onnx::TensorProto int8 = FloatProto("int8", {2});
  int8.set_data_type(onnx::TensorProto::INT8);
  int8.add_int32_data(-128);
  int8.add_int32_data(300);
  EXPECT_THAT(Message(TensorFromOnnx(int8).status()),
              AllOf(HasSubstr("'int8'"), HasSubstr("int32_data[1] = 300"), HasSubstr("int8")));
  int8.set_int32_data(1, 127);
  absl::StatusOr<Tensor> ok = TensorFromOnnx(int8);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->GetAsInt64(0), -128);
  EXPECT_EQ(ok->GetAsInt64(1), 127);

  onnx::TensorProto uint8 = FloatProto("uint8", {1});
  uint8.set_data_type(onnx::TensorProto::UINT8);
  uint8.add_int32_data(-1);
  EXPECT_THAT(Message(TensorFromOnnx(uint8).status()), HasSubstr("int32_data[0] = -1"));
}

TEST(OnnxTensorRejectsTest, AbsurdDims) {
  onnx::TensorProto negative = FloatProto("negative", {4, -1});
  EXPECT_THAT(Message(TensorFromOnnx(negative).status()),
              AllOf(HasSubstr("'negative'"), HasSubstr("negative dimension -1")));

  // The product of these overflows int64; the check must not.
  const int64_t big = int64_t{1} << 62;
  onnx::TensorProto overflow = FloatProto("overflow", {big, big, 4});
  absl::Status s = TensorFromOnnx(overflow).status();
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_THAT(Message(s), AllOf(HasSubstr("'overflow'"), HasSubstr("2147483648 elements"),
                                HasSubstr("max_tensor_elements")));

  // Just over the default cap of 2^31 elements, without any data.
  onnx::TensorProto over_by_one = FloatProto("over_by_one", {(int64_t{1} << 31) + 1});
  EXPECT_THAT(Message(TensorFromOnnx(over_by_one).status()),
              AllOf(HasSubstr("'over_by_one'"), HasSubstr("max_tensor_elements")));
  // Exactly at the cap, the header passes and the data check speaks (nothing was allocated).
  onnx::TensorProto at_cap = FloatProto("at_cap", {int64_t{1} << 31});
  EXPECT_THAT(Message(TensorFromOnnx(at_cap).status()),
              AllOf(HasSubstr("'at_cap'"), HasSubstr("8589934592 bytes"),
                    HasSubstr("float_data holds 0 elements")));

  onnx::TensorProto deep = FloatProto("deep", std::vector<int64_t>(17, 1));
  EXPECT_THAT(Message(TensorFromOnnx(deep).status()),
              AllOf(HasSubstr("'deep'"), HasSubstr("rank 17"), HasSubstr("max_rank")));
  onnx::TensorProto rank16 = FloatProto("rank16", std::vector<int64_t>(16, 1));
  rank16.add_float_data(3.0f);
  EXPECT_TRUE(TensorFromOnnx(rank16).ok());
}

TEST(OnnxTensorRejectsTest, LoweredLimitsApplyExactly) {
  OnnxImportLimits limits;
  limits.max_tensor_elements = 6;
  onnx::TensorProto six = FloatProto("six", {2, 3});
  for (int i = 0; i < 6; ++i) six.add_float_data(static_cast<float>(i));
  EXPECT_TRUE(TensorFromOnnx(six, limits).ok());
  onnx::TensorProto seven = FloatProto("seven", {7});
  for (int i = 0; i < 7; ++i) seven.add_float_data(static_cast<float>(i));
  EXPECT_THAT(Message(TensorFromOnnx(seven, limits).status()),
              AllOf(HasSubstr("'seven'"), HasSubstr("limit of 6 elements")));
}

TEST(OnnxTensorRejectsTest, ModelTensorsGoThroughTheChecks) {
  // A Constant node's value tensor with too little data names the node and the tensor.
  OnnxModelBuilder b = ConvModel();
  b.AddConstant("c", Tensor::FromFloats({2}, {1.0f, 2.0f}));
  b.AddOutput("c", {2});
  b.proto().mutable_graph()->mutable_node(1)->mutable_attribute(0)->mutable_t()->add_dims(3);
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("node 'c_node' (Constant) attribute 'value'"),
                    HasSubstr("(24 bytes)"), HasSubstr("raw_data holds 8 bytes")));

  // All tensors together are capped.
  OnnxImportOptions options;
  options.limits.max_total_tensor_bytes = 12;  // "w" takes 8
  OnnxModelBuilder two = ConvModel();
  two.AddFloatInitializer("extra", {2}, {1.0f, 2.0f});
  g = ImportOnnxBytes(two.Bytes(), "m.onnx", options);
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'extra'"), HasSubstr("limit of 12 bytes"),
                                         HasSubstr("max_total_tensor_bytes")));
  options.limits.max_total_tensor_bytes = 16;
  EXPECT_TRUE(ImportOnnxBytes(two.Bytes(), "m.onnx", options).ok());
}

TEST(OnnxTensorRejectsTest, ExternalDataCountsTowardsTheTotal) {
  // Two tensors reading the same external bytes still count twice (a sparse file could
  // otherwise be read many times over).
  const std::string dir = FreshDir("external_total");
  WriteFile(dir + "/w.bin", Bytes(kWeight));
  OnnxModelBuilder b = ExternalConvModel({{"location", "w.bin"}});
  onnx::TensorProto* copy = b.proto().mutable_graph()->add_initializer();
  *copy = *FindInitializer(b, "w");
  copy->set_name("w2");
  b.AddNode("Conv", {"images", "w2"}, {"y2"}, "conv2");
  b.AddOutput("y2", {1, 1, 3, 3});
  OnnxImportOptions options;
  options.limits.max_total_tensor_bytes = 15;
  absl::StatusOr<Graph> g = ImportFromDir(b, dir, options);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'w2'"), HasSubstr("max_total_tensor_bytes")));
  options.limits.max_total_tensor_bytes = 16;
  g = ImportFromDir(b, dir, options);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(Floats(*g->FindInitializer("w2")), ElementsAre(0.5f, -1.0f));
}

// --- absurd value and input shapes ---

TEST(OnnxShapeRejectsTest, ImageInputDimensionsAreCapped) {
  struct Case {
    Shape dims;
    std::vector<std::string> message_has;
  };
  const std::vector<Case> cases = {
      {{1, 3, 8193, 640}, {"dimension 2 must be between 1 and 8192", "max_input_dim"}},
      {{1, 65, 640, 640}, {"dimension 1 must be between 1 and 64", "max_input_channels"}},
      {{100000, 3, -1, -1}, {"dimension 0 must be between 1 and 8192"}},
      {{1, 3, 640, 0}, {"dimension 3 must be between 1 and 8192"}},
      // Every dimension within its cap, the product (2^33) over the element cap.
      {{8, 64, 4096, 4096}, {"more than 2147483648 elements"}},
  };
  for (const Case& c : cases) {
    OnnxModelBuilder b(17);
    b.AddInput("images", c.dims);
    b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
    b.AddOutput("y", Shape(4, -1));
    absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
    ASSERT_FALSE(g.ok()) << ShapeToString(c.dims);
    EXPECT_THAT(Message(g.status()), HasSubstr("input 'images'")) << ShapeToString(c.dims);
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(Message(g.status()), HasSubstr(part)) << ShapeToString(c.dims);
    }
  }
  // The largest dims that pass: a declared 8192 x 8192 image.
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 8192, 8192});
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("y", {1, 3, 8192, 8192});
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->metadata().at(kMetadataDeclaredInputShape), "1,3,8192,8192");
}

TEST(OnnxShapeRejectsTest, DeclaredValueShapes) {
  const int64_t big = int64_t{1} << 40;
  struct Case {
    const char* label;
    Shape dims;
    bool as_value_info;
    std::vector<std::string> message_has;
  };
  const std::vector<Case> cases = {
      {"huge output", {big, big}, false, {"graph output 'y'", "max_tensor_elements"}},
      {"negative output", {1, -5}, false, {"graph output 'y'", "negative dimension -5"}},
      {"huge value_info", {big, big}, true, {"value_info 'y'", "max_tensor_elements"}},
      {"rank 17 value_info", Shape(17, 1), true, {"value_info 'y'", "rank 17"}},
  };
  for (const Case& c : cases) {
    OnnxModelBuilder b(17);
    b.AddInput("images", {1, 3, 4, 4});
    b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
    b.AddOutput("y", {1, 3, 4, 4});
    onnx::ValueInfoProto* vi = c.as_value_info ? b.proto().mutable_graph()->add_value_info()
                                               : b.proto().mutable_graph()->mutable_output(0);
    vi->set_name("y");
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
    onnx::TensorShapeProto* shape = vi->mutable_type()->mutable_tensor_type()->mutable_shape();
    shape->clear_dim();
    for (int64_t d : c.dims) shape->add_dim()->set_dim_value(d);
    absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
    ASSERT_FALSE(g.ok()) << c.label;
    for (const std::string& part : c.message_has) {
      EXPECT_THAT(Message(g.status()), HasSubstr(part)) << c.label;
    }
  }
}

// ONNX shape inference knows the output of an Expand to a constant shape; the inferred shape is
// checked before constant folding would allocate 2^40 floats.
TEST(OnnxShapeRejectsTest, InferredShapeBombIsRefusedBeforeFolding) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddFloatInitializer("one", {1}, {1.0f});
  b.AddInt64Initializer("huge_shape", {int64_t{1} << 20, int64_t{1} << 20});
  b.AddNode("Expand", {"one", "huge_shape"}, {"bomb"}, "expand");
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("y", {1, 3, 4, 4});
  b.AddOutput("bomb", Shape{-1, -1});
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'bomb'"), HasSubstr("max_tensor_elements")));
}

TEST(OnnxShapeRejectsTest, FileCannotFakeImporterMetadata) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  b.AddNode("Sigmoid", {"images"}, {"y"}, "act");
  b.AddOutput("y", {1, 3, 4, 4});
  b.AddMetadata(kMetadataDeclaredInputShape, "1,3,99999,99999");
  b.AddMetadata("yolopipe.anything", "x");
  b.AddMetadata("stride", "32");
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->metadata().at(kMetadataDeclaredInputShape), "1,3,4,4");
  EXPECT_EQ(g->metadata().count("yolopipe.anything"), 0u);
  EXPECT_EQ(g->metadata().at("stride"), "32");
}

// --- bombs ---

// images -> n Sigmoid nodes in a chain -> y.
OnnxModelBuilder SigmoidChain(int n) {
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  onnx::GraphProto* g = b.proto().mutable_graph();
  std::string prev = "images";
  for (int i = 0; i < n; ++i) {
    onnx::NodeProto* node = g->add_node();
    node->set_op_type("Sigmoid");
    node->set_name("s" + std::to_string(i));
    node->add_input(prev);
    prev = i + 1 == n ? "y" : "v" + std::to_string(i);
    node->add_output(prev);
  }
  b.AddOutput("y", {1, 3, 4, 4});
  return b;
}

TEST(OnnxBombRejectsTest, NodeCountAtTheDefaultCap) {
  absl::StatusOr<Graph> g = ImportOnnxBytes(SigmoidChain(100001).Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("100001 nodes"), HasSubstr("100000"),
                                         HasSubstr("max_graph_entries")));
}

TEST(OnnxBombRejectsTest, EveryListIsCounted) {
  OnnxImportOptions options;
  options.limits.max_graph_entries = 3;
  EXPECT_TRUE(ImportOnnxBytes(SigmoidChain(3).Bytes(), "m.onnx", options).ok());
  EXPECT_THAT(Message(ImportOnnxBytes(SigmoidChain(4).Bytes(), "m.onnx", options).status()),
              HasSubstr("4 nodes"));

  OnnxModelBuilder inits = SigmoidChain(1);
  for (int i = 0; i < 4; ++i) inits.AddFloatInitializer("c" + std::to_string(i), {1}, {1.0f});
  EXPECT_THAT(Message(ImportOnnxBytes(inits.Bytes(), "m.onnx", options).status()),
              HasSubstr("4 initializers"));

  OnnxModelBuilder infos = SigmoidChain(1);
  for (int i = 0; i < 4; ++i) {
    infos.proto().mutable_graph()->add_value_info()->set_name("vi" + std::to_string(i));
  }
  EXPECT_THAT(Message(ImportOnnxBytes(infos.Bytes(), "m.onnx", options).status()),
              HasSubstr("4 value_info entries"));

  OnnxModelBuilder meta = SigmoidChain(1);
  for (int i = 0; i < 4; ++i) meta.AddMetadata("k" + std::to_string(i), "v");
  EXPECT_THAT(Message(ImportOnnxBytes(meta.Bytes(), "m.onnx", options).status()),
              HasSubstr("4 metadata_props entries"));

  OnnxModelBuilder outputs = SigmoidChain(1);
  for (int i = 0; i < 3; ++i) outputs.AddOutput("y", {1, 3, 4, 4});
  EXPECT_THAT(Message(ImportOnnxBytes(outputs.Bytes(), "m.onnx", options).status()),
              HasSubstr("4 graph outputs"));
}

// A long Identity chain ending in the graph output, and many equal node names, import correctly.
// The importer handles both in one linear pass each (renames are resolved through a map, and the
// next free "__k" suffix is remembered per name), so a file at the node cap cannot make it spin.
TEST(OnnxBombRejectsTest, LongIdentityChainsAndRepeatedNamesStayCheap) {
  constexpr int kChain = 20000;
  OnnxModelBuilder b(17);
  b.AddInput("images", {1, 3, 4, 4});
  onnx::GraphProto* g = b.proto().mutable_graph();
  std::string prev = "images";
  onnx::NodeProto* s = g->add_node();
  s->set_op_type("Sigmoid");
  s->set_name("dup");
  s->add_input(prev);
  s->add_output("s");
  prev = "s";
  for (int i = 0; i < kChain; ++i) {
    onnx::NodeProto* id = g->add_node();
    id->set_op_type("Identity");
    id->set_name("dup");
    id->add_input(prev);
    prev = i + 1 == kChain ? "output0" : "i" + std::to_string(i);
    id->add_output(prev);
  }
  b.AddOutput("output0", {1, 3, 4, 4});
  absl::StatusOr<Graph> graph = ImportOnnxBytes(b.Bytes(), "m.onnx", {.fuse = false});
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(graph->nodes().size(), 1u);
  EXPECT_EQ(graph->nodes()[0].op_type, "Sigmoid");
  EXPECT_THAT(graph->nodes()[0].inputs, ElementsAre("images"));
  // The chain ends in the graph output: the Sigmoid now writes it directly.
  EXPECT_THAT(graph->nodes()[0].outputs, ElementsAre("output0"));
  EXPECT_THAT(graph->outputs(), ElementsAre("output0"));

  // 20,000 Sigmoid nodes all named "dup" get dup, dup__1, ..., dup__19999.
  OnnxModelBuilder named(17);
  named.AddInput("images", {1, 3, 4, 4});
  prev = "images";
  for (int i = 0; i < kChain; ++i) {
    onnx::NodeProto* node = named.proto().mutable_graph()->add_node();
    node->set_op_type("Sigmoid");
    node->set_name("dup");
    node->add_input(prev);
    prev = i + 1 == kChain ? "y" : "v" + std::to_string(i);
    node->add_output(prev);
  }
  named.AddOutput("y", {1, 3, 4, 4});
  graph = ImportOnnxBytes(named.Bytes(), "m.onnx", {.fuse = false});
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(graph->nodes().size(), static_cast<size_t>(kChain));
  std::set<std::string> names;
  for (const Node& n : graph->nodes()) names.insert(n.name);
  EXPECT_EQ(names.size(), static_cast<size_t>(kChain));
  EXPECT_EQ(names.count("dup"), 1u);
  EXPECT_EQ(names.count("dup__" + std::to_string(kChain - 1)), 1u);
}

TEST(OnnxBombRejectsTest, SubgraphAttributesAreRefusedNamingTheNode) {
  OnnxModelBuilder b = SigmoidChain(1);
  onnx::AttributeProto* a = b.proto().mutable_graph()->mutable_node(0)->add_attribute();
  a->set_name("body");
  a->set_type(onnx::AttributeProto::GRAPH);
  *a->mutable_g() = SigmoidChain(1).proto().graph();
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("node 's0' (Sigmoid)"), HasSubstr("'body'"), HasSubstr("subgraph")));

  OnnxModelBuilder loop = SigmoidChain(1);
  onnx::NodeProto* node = loop.proto().mutable_graph()->add_node();
  node->set_op_type("If");
  node->set_name("branch");
  node->add_input("y");
  node->add_output("z");
  for (const char* name : {"then_branch", "else_branch"}) {
    onnx::AttributeProto* attr = node->add_attribute();
    attr->set_name(name);
    attr->set_type(onnx::AttributeProto::GRAPH);
    *attr->mutable_g() = SigmoidChain(1).proto().graph();
  }
  g = ImportOnnxBytes(loop.Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("node 'branch' (If)"),
                                         HasSubstr("'then_branch'"), HasSubstr("subgraph")));
}

TEST(OnnxBombRejectsTest, TrainingInfoIsRefused) {
  OnnxModelBuilder b = SigmoidChain(1);
  *b.proto().add_training_info()->mutable_algorithm() = SigmoidChain(1).proto().graph();
  absl::StatusOr<Graph> g = ImportOnnxBytes(b.Bytes(), "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), HasSubstr("training_info"));
}

// Wire-format helpers: a length-delimited field, written by hand so that the nesting depth is
// not limited by protobuf's own serializer.
void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
std::string LengthDelimited(int field, const std::string& payload) {
  std::string out;
  AppendVarint((static_cast<uint64_t>(field) << 3) | 2, &out);
  AppendVarint(payload.size(), &out);
  return out + payload;
}

// A ModelProto whose graph nests node -> attribute -> graph `levels` times
// (GraphProto.node = 1, NodeProto.attribute = 5, AttributeProto.g = 6, ModelProto.graph = 7).
// Each level adds three messages.
std::string NestedModel(int levels) {
  std::string graph;  // innermost: an empty GraphProto
  for (int i = 0; i < levels; ++i) {
    const std::string attribute = LengthDelimited(6, graph);
    const std::string node = LengthDelimited(5, attribute);
    graph = LengthDelimited(1, node);
  }
  std::string model;
  AppendVarint((1 << 3) | 0, &model);  // ir_version = 8
  AppendVarint(8, &model);
  return model + LengthDelimited(7, graph);
}

TEST(OnnxBombRejectsTest, NestingDepth) {
  // 12 levels = 37 nested messages: over the default limit of 32, under protobuf's 100.
  absl::StatusOr<Graph> g = ImportOnnxBytes(NestedModel(12), "deep.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr("'deep.onnx'"), HasSubstr("nested more than 32"),
                                         HasSubstr("max_message_depth")));
  // Far deeper than any stack would survive if parsing recursed without a limit.
  g = ImportOnnxBytes(NestedModel(20000), "deeper.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()),
              AllOf(HasSubstr("'deeper.onnx'"), HasSubstr("nested more than 32 levels")));
  // Shallow nesting parses (and is then refused for its subgraph, not for depth).
  g = ImportOnnxBytes(NestedModel(2), "shallow.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), Not(HasSubstr("nested")));
}

TEST(OnnxBombRejectsTest, ModelSizeCap) {
  const std::string bytes = SigmoidChain(3).Bytes();
  OnnxImportOptions options;
  options.limits.max_model_bytes = static_cast<int64_t>(bytes.size()) - 1;
  absl::StatusOr<Graph> g = ImportOnnxBytes(bytes, "m.onnx", options);
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(g.status())) << g.status();
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr(std::to_string(bytes.size()) + " bytes"),
                                         HasSubstr("max_model_bytes")));

  // A file is refused from its size, before it is read.
  const std::string dir = FreshDir("model_size");
  WriteFile(dir + "/m.onnx", bytes);
  g = ImportOnnxFile(dir + "/m.onnx", options);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(Message(g.status()), AllOf(HasSubstr(dir + "/m.onnx"), HasSubstr("max_model_bytes")));

  options.limits.max_model_bytes = static_cast<int64_t>(bytes.size());
  EXPECT_TRUE(ImportOnnxFile(dir + "/m.onnx", options).ok());
}

}  // namespace
}  // namespace yolopipe
