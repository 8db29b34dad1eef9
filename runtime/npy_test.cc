#include "runtime/npy.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

std::string Header(const std::string& dict) {
  std::string header = dict;
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header;
}

TEST(NpyTest, ReadsWhatNumpyWrote) {
  auto t = ReadNpyFile("runtime/testdata/arange_f4.npy");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->dtype(), DType::kFloat32);
  EXPECT_EQ(t->shape(), (Shape{2, 3, 4}));
  for (int i = 0; i < 24; ++i) EXPECT_EQ(t->data<float>()[i], 0.5f * i);

  auto v2 = ReadNpyFile("runtime/testdata/arange_i8_v2.npy");
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(v2->dtype(), DType::kInt64);
  EXPECT_EQ(v2->shape(), (Shape{5}));
  EXPECT_EQ(v2->data<int64_t>()[0], -2);
  EXPECT_EQ(v2->data<int64_t>()[4], 2);

  auto scalar = ReadNpyFile("runtime/testdata/scalar_f4.npy");
  ASSERT_TRUE(scalar.ok()) << scalar.status();
  EXPECT_TRUE(scalar->shape().empty());
  EXPECT_EQ(scalar->data<float>()[0], 3.25f);
}

TEST(NpyTest, RoundTripsThroughWriter) {
  Tensor t = Tensor::FromFloats({1, 2, 3}, {1, 2, 3, 4, 5, 6.5f});
  const std::string path = ::testing::TempDir() + "/rt.npy";
  ASSERT_TRUE(WriteNpyFile(path, t).ok());
  auto back = ReadNpyFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(BitwiseEqual(*back, t));
}

TEST(NpyTest, WriterConvertsChannelsLastToPlain) {
  Tensor t = Tensor::FromFloats({1, 2, 1, 2}, {1, 2, 3, 4});
  auto nhwc = t.ToLayout(Layout::kNHWC);
  ASSERT_TRUE(nhwc.ok());
  auto bytes = SerializeNpy(*nhwc);
  ASSERT_TRUE(bytes.ok());
  auto back = ParseNpy(*bytes, "mem");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(BitwiseEqual(*back, t));
}

TEST(NpyTest, RejectsBadMagic) {
  auto r = ParseNpy("PK\x03\x04 not an npy file at all", "x.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("x.npy"));
  EXPECT_THAT(r.status().message(), HasSubstr("magic"));
}

TEST(NpyTest, RejectsTruncatedData) {
  std::string bytes = Header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
  bytes.append(5 * 4, '\0');  // one float short
  auto r = ParseNpy(bytes, "short.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("needs 24 data bytes"));
  EXPECT_THAT(r.status().message(), HasSubstr("file has 20"));
}

TEST(NpyTest, RejectsTrailingGarbage) {
  std::string bytes = Header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
  bytes.append(8, '\0');
  EXPECT_FALSE(ParseNpy(bytes, "long.npy").ok());
}

TEST(NpyTest, RejectsUnsupportedDtypeAndOrder) {
  std::string big_endian = Header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }");
  big_endian.append(4, '\0');
  auto r = ParseNpy(big_endian, "be.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(">f4"));

  std::string fortran = Header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }");
  fortran.append(4, '\0');
  r = ParseNpy(fortran, "f.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("Fortran"));
}

TEST(NpyTest, RejectsAbsurdShapesBeforeAllocating) {
  std::string bytes = Header(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }");
  auto r = ParseNpy(bytes, "huge.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("too large"));
  r = ParseNpy(Header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }"), "neg");
  EXPECT_FALSE(r.ok());
}

TEST(NpyTest, RejectsTruncatedHeaderAndMissingKeys) {
  std::string bytes = Header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }");
  EXPECT_FALSE(ParseNpy(bytes.substr(0, 30), "cut.npy").ok());
  auto r = ParseNpy(Header("{'descr': '<f4', 'fortran_order': False, }"), "noshape.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("shape"));
}

TEST(NpyTest, MissingFileNamesThePath) {
  auto r = ReadNpyFile("/nonexistent/dir/in.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/dir/in.npy"));
}

}  // namespace
}  // namespace yolopipe
