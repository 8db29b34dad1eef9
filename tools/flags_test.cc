#include "tools/flags.h"

#include "gtest/gtest.h"

namespace yolopipe::cli {
namespace {

FlagSet MakeFlags() {
  FlagSet f("run", "test");
  f.AddString("model", "yolov8n", "");
  f.AddInt("batch", 1, "");
  f.AddDouble("scale", 1.5, "");
  f.AddBool("layers", true, "");
  return f;
}

TEST(FlagsTest, ParsesBothSpellingsAndBooleans) {
  FlagSet f = MakeFlags();
  ASSERT_TRUE(f.Parse({"--model=a.onnx", "--batch", "8", "--nolayers", "--scale=0.25"}).ok());
  EXPECT_EQ(f.GetString("model"), "a.onnx");
  EXPECT_EQ(f.GetInt("batch"), 8);
  EXPECT_FALSE(f.GetBool("layers"));
  EXPECT_DOUBLE_EQ(f.GetDouble("scale"), 0.25);
  EXPECT_TRUE(f.IsSet("batch"));
}

TEST(FlagsTest, DefaultsWhenAbsent) {
  FlagSet f = MakeFlags();
  ASSERT_TRUE(f.Parse({}).ok());
  EXPECT_EQ(f.GetString("model"), "yolov8n");
  EXPECT_EQ(f.GetInt("batch"), 1);
  EXPECT_TRUE(f.GetBool("layers"));
  EXPECT_FALSE(f.IsSet("batch"));
}

TEST(FlagsTest, RejectsUnknownMalformedAndPositional) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--bogus=1"},
                                             {"--batch=eight"},
                                             {"--batch"},
                                             {"stray"},
                                             {"--layers=maybe"},
                                             {"--scale=x"}}) {
    FlagSet f = MakeFlags();
    EXPECT_FALSE(f.Parse(args).ok()) << args[0];
  }
}

TEST(FlagsTest, UsageListsFlags) {
  FlagSet f = MakeFlags();
  const std::string usage = f.Usage();
  EXPECT_NE(usage.find("--model"), std::string::npos);
  EXPECT_NE(usage.find("yolopipe run"), std::string::npos);
}

}  // namespace
}  // namespace yolopipe::cli
