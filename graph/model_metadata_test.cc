#include "graph/model_metadata.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Optional;

TEST(ParseClassNamesTest, UltralyticsDict) {
  EXPECT_THAT(ParseClassNames("{0: 'person', 1: 'bicycle', 2: \"it's\"}"),
              Optional(ElementsAre("person", "bicycle", "it's")));
}

TEST(ParseClassNamesTest, QuotesCommasEscapesAndSpaces) {
  const std::string literal =
      "{ 0 : 'it\\'s' ,1:\"say \\\"hi\\\"\", 2: 'a, b: {c}', 3: 'tab\\there',\n"
      " 4: '\\x41\\u00e9\\\\', 5: 'caf\xc3\xa9', 6: '' , }";
  EXPECT_THAT(ParseClassNames(literal),
              Optional(ElementsAre("it's", "say \"hi\"", "a, b: {c}", "tab\there", "A\xc3\xa9\\",
                                   "caf\xc3\xa9", "")));
}

TEST(ParseClassNamesTest, KeysInAnyOrderAndJsonStyleKeys) {
  EXPECT_THAT(ParseClassNames("{1: 'b', 0: 'a'}"), Optional(ElementsAre("a", "b")));
  EXPECT_THAT(ParseClassNames("{\"0\": \"a\", \"1\": \"b\"}"), Optional(ElementsAre("a", "b")));
}

TEST(ParseClassNamesTest, ListLiteral) {
  EXPECT_THAT(ParseClassNames("['cat', \"dog\"]"), Optional(ElementsAre("cat", "dog")));
}

TEST(ParseClassNamesTest, MalformedLiteralsGiveNothing) {
  for (const char* bad : {"", "person", "{0: 'a', 1: 'b'", "{0: 'a', 2: 'b'}", "{0: 'a', 0: 'b'}",
                          "{-1: 'a'}", "{0: a}", "{0: 'a'} extra", "{0: 'a' 1: 'b'}",
                          "{0: 'unterminated}", "{99999999999999999999: 'a'}", "{1: 'a'}",
                          "{0: 'a\\x4'}", "{'x': 'a'}", "['a' 'b']", "{0 'a'}"}) {
    EXPECT_EQ(ParseClassNames(bad), std::nullopt) << bad;
  }
}

TEST(ParseIntListTest, ScalarsListsAndTuples) {
  EXPECT_THAT(ParseIntList("32"), Optional(ElementsAre(32)));
  EXPECT_THAT(ParseIntList(" [8, 16, 32] "), Optional(ElementsAre(8, 16, 32)));
  EXPECT_THAT(ParseIntList("(640, 480)"), Optional(ElementsAre(640, 480)));
  EXPECT_THAT(ParseIntList("(32,)"), Optional(ElementsAre(32)));
  EXPECT_THAT(ParseIntList("32.0"), Optional(ElementsAre(32)));
}

TEST(ParseIntListTest, MalformedGiveNothing) {
  for (const char* bad : {"", "abc", "[8, x]", "[8, 16", "8, 16", "32.5", "[8,, 16]"}) {
    EXPECT_EQ(ParseIntList(bad), std::nullopt) << bad;
  }
}

Graph GraphWithInput(const Shape& shape) {
  Graph g;
  g.AddInput(Value{"images", DType::kFloat32, shape});
  return g;
}

TEST(ReadModelMetadataTest, ReadsUltralyticsProps) {
  Graph g = GraphWithInput({1, 3, 640, 640});
  g.mutable_metadata()["names"] = "{0: 'person', 1: 'bicycle'}";
  g.mutable_metadata()["stride"] = "32";
  g.mutable_metadata()["task"] = "detect";
  g.mutable_metadata()["imgsz"] = "[640, 480]";
  g.mutable_metadata()["batch"] = "4";
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_THAT(meta->class_names, ElementsAre("person", "bicycle"));
  EXPECT_THAT(meta->strides, ElementsAre(32));
  EXPECT_EQ(meta->task, "detect");
  EXPECT_THAT(meta->imgsz, ElementsAre(640, 480));
  EXPECT_EQ(meta->batch, 4);
  EXPECT_THAT(meta->declared_input_shape, ElementsAre(1, 3, 640, 640));
  EXPECT_FALSE(meta->dynamic_batch);
  EXPECT_FALSE(meta->dynamic_hw);
}

TEST(ReadModelMetadataTest, MalformedEntriesAreIgnored) {
  Graph g = GraphWithInput({1, 3, 640, 640});
  g.mutable_metadata()["names"] = "{0: 'person', 1: ";
  g.mutable_metadata()["stride"] = "[8, sixteen]";
  g.mutable_metadata()["batch"] = "many";
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_TRUE(meta->class_names.empty());
  EXPECT_TRUE(meta->strides.empty());
  EXPECT_EQ(meta->batch, 0);
}

TEST(ReadModelMetadataTest, DeclaredShapeComesFromImportNotFromTheBoundInput) {
  // After BindInputShape the input is concrete; the declaration recorded at import still says
  // which dimensions were symbolic.
  Graph g = GraphWithInput({2, 3, 320, 320});
  g.mutable_metadata()[kMetadataDeclaredInputShape] = "-1,3,-1,-1";
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_THAT(meta->declared_input_shape, ElementsAre(-1, 3, -1, -1));
  EXPECT_TRUE(meta->dynamic_batch);
  EXPECT_TRUE(meta->dynamic_hw);
}

TEST(ReadModelMetadataTest, DynamicFlagsFromInputShape) {
  Graph g = GraphWithInput({1, 3, kUnknownDim, 640});
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(g);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_FALSE(meta->dynamic_batch);
  EXPECT_TRUE(meta->dynamic_hw);
  EXPECT_TRUE(meta->class_names.empty());
}

TEST(ReadModelMetadataTest, RejectsGraphWithoutSingleInput) {
  Graph g;
  g.AddInput(Value{"a", DType::kFloat32, {1, 3, 8, 8}});
  g.AddInput(Value{"b", DType::kFloat32, {1, 3, 8, 8}});
  absl::StatusOr<ModelMetadata> meta = ReadModelMetadata(g);
  ASSERT_FALSE(meta.ok());
  EXPECT_THAT(meta.status().message(), HasSubstr("exactly one input"));
}

}  // namespace
}  // namespace yolopipe
