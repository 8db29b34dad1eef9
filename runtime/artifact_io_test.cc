#include "runtime/artifact_io.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/proto/plan.pb.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

proto::Profile SampleProfile() {
  proto::Profile p;
  p.set_model("yolov8n");
  p.set_model_fingerprint("abc123");
  p.add_microbatch_sizes(1);
  auto* n = p.add_nodes();
  n->set_name("model.0");
  n->set_op("Conv");
  n->set_time_ms(1.25);
  n->set_output_bytes(6553600);
  n->set_weight_bytes(1792);
  return p;
}

class ArtifactRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(ArtifactRoundTrip, WritesAndReadsBack) {
  const std::string path = ::testing::TempDir() + "/profile" + GetParam();
  const proto::Profile p = SampleProfile();
  ASSERT_TRUE(WriteArtifact(path, p).ok());
  proto::Profile back;
  ASSERT_TRUE(ReadArtifact(path, &back).ok());
  EXPECT_EQ(back.SerializeAsString(), p.SerializeAsString());
}

INSTANTIATE_TEST_SUITE_P(Formats, ArtifactRoundTrip,
                         ::testing::Values(".pbtxt", ".pb", ".json"));

TEST(ArtifactIoTest, JsonKeepsProtoFieldNames) {
  auto json = SerializeArtifact(SampleProfile(), ArtifactFormat::kJson);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"time_ms\""));
  EXPECT_THAT(*json, HasSubstr("\"output_bytes\""));
  EXPECT_THAT(*json, HasSubstr("\"weight_bytes\""));
  EXPECT_THAT(*json, HasSubstr("\"nodes\""));
}

TEST(ArtifactIoTest, RejectsUnknownExtension) {
  auto s = WriteArtifact(::testing::TempDir() + "/p.yaml", SampleProfile());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr(".pbtxt, .pb or .json"));
}

TEST(ArtifactIoTest, RejectsCorruptFilesWithTheirName) {
  proto::Plan plan;
  auto s = ParseArtifact("stages { compute_ms: banana }", ArtifactFormat::kText, "bad.pbtxt",
                         &plan);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("bad.pbtxt"));
  EXPECT_THAT(s.message(), HasSubstr("line 1"));
  s = ParseArtifact("{\"stages\": [{\"compute_ms\": \"x\"}]", ArtifactFormat::kJson, "bad.json",
                    &plan);
  EXPECT_FALSE(s.ok());
  s = ParseArtifact("{\"no_such_field\": 1}", ArtifactFormat::kJson, "extra.json", &plan);
  EXPECT_FALSE(s.ok());
  s = ParseArtifact(std::string("\xff\xff\xff\xff\x0f", 5), ArtifactFormat::kBinary, "bad.pb",
                    &plan);
  EXPECT_FALSE(s.ok());
}

TEST(ArtifactIoTest, MissingFileNamesThePath) {
  proto::Plan plan;
  auto s = ReadArtifact("/nonexistent/plan.pbtxt", &plan);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent/plan.pbtxt"));
}

}  // namespace
}  // namespace yolopipe
