#include "graph/fingerprint.h"

#include <cstdint>
#include <string>

#include "base/tensor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "graph/yolov8/yolov8.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::MatchesRegex;

// Small so the tests stay fast; the structure and weights are those of any imgsz.
Graph BuildN(uint64_t seed = 0, int64_t nc = 80, int64_t imgsz = 64) {
  YoloV8Config config;
  config.scale = 'n';
  config.seed = seed;
  config.num_classes = nc;
  config.imgsz = imgsz;
  absl::StatusOr<Graph> g = BuildYoloV8(config);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *std::move(g) : Graph();
}

// x -> Relu "a" -> y, with one attribute and one initializer.
Graph Tiny() {
  Graph g;
  g.AddInput(Value{"x", DType::kFloat32, {kUnknownDim, 3, 4, 4}});
  g.AddInitializer("w", Tensor::FromFloats({2}, {1.0f, 2.0f}));
  Node n{"a", "Mul", {"x", "w"}, {"y"}, {}};
  n.attrs.Set("alpha", 0.5f);
  g.AddNode(n);
  g.AddOutput("y");
  return g;
}

// Published FNV-1a 64 test vectors (the FNV reference test suite).
TEST(FingerprintTest, Fnv1a64MatchesPublishedVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
  EXPECT_EQ(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"));
}

TEST(FingerprintTest, IsSixteenHexDigits) {
  EXPECT_THAT(ModelFingerprint(Tiny()), MatchesRegex("[0-9a-f]{16}"));
  EXPECT_THAT(ModelFingerprint(Graph()), MatchesRegex("[0-9a-f]{16}"));
  EXPECT_NE(ModelFingerprint(Tiny()), ModelFingerprint(Graph()));
}

TEST(FingerprintTest, StableAcrossTwoBuilds) {
  const Graph a = BuildN();
  const Graph b = BuildN();
  EXPECT_EQ(ModelFingerprint(a), ModelFingerprint(b));
  EXPECT_EQ(ModelFingerprint(a), ModelFingerprint(a));
}

TEST(FingerprintTest, DiffersForSeedClassesAndImageSize) {
  const std::string base = ModelFingerprint(BuildN());
  EXPECT_NE(ModelFingerprint(BuildN(/*seed=*/1)), base);
  EXPECT_NE(ModelFingerprint(BuildN(0, /*nc=*/79)), base);
  // A built-in model declares its input (1, 3, imgsz, imgsz).
  EXPECT_NE(ModelFingerprint(BuildN(0, 80, /*imgsz=*/96)), base);
}

TEST(FingerprintTest, OneChangedWeightChangesIt) {
  const Graph original = BuildN();
  const std::string base = ModelFingerprint(original);
  Graph changed = original;
  const std::string name = "model.2.m.0.cv2.weight";
  const Tensor* w = changed.FindInitializer(name);
  ASSERT_NE(w, nullptr) << name;
  // Tensors share buffers on copy: change a deep copy, leave `original` alone.
  Tensor copy = w->Clone();
  ASSERT_GT(copy.num_elements(), 1000);
  copy.data<float>()[777] += 1.0f;
  changed.AddInitializer(name, copy);
  EXPECT_NE(ModelFingerprint(changed), base);
  EXPECT_EQ(ModelFingerprint(original), base);
}

TEST(FingerprintTest, RenamedNodeChangesIt) {
  const Graph original = BuildN();
  Graph renamed = original;
  renamed.mutable_nodes()[5].name += "_x";
  EXPECT_NE(ModelFingerprint(renamed), ModelFingerprint(original));
}

TEST(FingerprintTest, StructureAndAttributesChangeIt) {
  const std::string base = ModelFingerprint(Tiny());
  {
    Graph g = Tiny();
    g.mutable_nodes()[0].op_type = "Add";
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    Graph g = Tiny();
    g.mutable_nodes()[0].attrs.Set("alpha", 0.5000001f);
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    Graph g = Tiny();
    g.mutable_nodes()[0].attrs.Set("alpha", int64_t{0});
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    Graph g = Tiny();
    g.mutable_nodes()[0].attrs.Set("beta", int64_t{0});
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    Graph g = Tiny();
    g.mutable_nodes()[0].inputs = {"w", "x"};
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    Graph g = Tiny();
    g.AddOutput("x");
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    // Same bytes under another shape.
    Graph g = Tiny();
    g.AddInitializer("w", Tensor::FromFloats({2, 1}, {1.0f, 2.0f}));
    EXPECT_NE(ModelFingerprint(g), base);
  }
  {
    // The declared input shape counts (here the batch dimension).
    Graph g = Tiny();
    g.FindMutableValue("x")->shape = {1, 3, 4, 4};
    EXPECT_NE(ModelFingerprint(g), base);
  }
}

// Length prefixes: names that concatenate to the same text must not collide.
TEST(FingerprintTest, EncodingIsUnambiguous) {
  Graph a = Tiny();
  Graph b = Tiny();
  a.mutable_nodes()[0].outputs = {"ab", "c"};
  b.mutable_nodes()[0].outputs = {"a", "bc"};
  EXPECT_NE(ModelFingerprint(a), ModelFingerprint(b));
  Graph c = Tiny();
  Graph d = Tiny();
  c.mutable_nodes()[0].attrs.Set("s", std::vector<std::string>{"x", "yz"});
  d.mutable_nodes()[0].attrs.Set("s", std::vector<std::string>{"xy", "z"});
  EXPECT_NE(ModelFingerprint(c), ModelFingerprint(d));
}

// Documented exclusions: descriptive data and intermediate shape annotations.
TEST(FingerprintTest, IgnoresNameMetadataAndIntermediateShapes) {
  const std::string base = ModelFingerprint(Tiny());
  Graph g = Tiny();
  g.set_name("renamed graph");
  g.mutable_metadata()["names"] = "{0: 'cat'}";
  g.SetValue(Value{"y", DType::kFloat32, {8, 3, 4, 4}});
  EXPECT_EQ(ModelFingerprint(g), base);
}

}  // namespace
}  // namespace yolopipe
