#include "runtime/detect/image.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stb/stb_image_write.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;

Image Pattern(int w, int h) {
  Image im(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 3);
      p[2] = static_cast<uint8_t>((x ^ y) & 255);
    }
  }
  return im;
}

void Append(void* context, void* data, int size) {
  static_cast<std::string*>(context)->append(static_cast<const char*>(data), size);
}

std::string EncodePng(const Image& im) {
  std::string out;
  stbi_write_png_to_func(Append, &out, im.width, im.height, 3, im.pixels.data(), im.width * 3);
  return out;
}
std::string EncodeBmp(const Image& im) {
  std::string out;
  stbi_write_bmp_to_func(Append, &out, im.width, im.height, 3, im.pixels.data());
  return out;
}
std::string EncodeJpg(const Image& im) {
  std::string out;
  stbi_write_jpg_to_func(Append, &out, im.width, im.height, 3, im.pixels.data(), 95);
  return out;
}

// A 24-bit BMP header declaring w x h (no pixel data follows).
std::string BmpHeader(int32_t w, int32_t h) {
  std::string s(54, '\0');
  auto put32 = [&](int off, uint32_t v) {
    for (int i = 0; i < 4; ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 255);
  };
  s[0] = 'B';
  s[1] = 'M';
  put32(2, 54);
  put32(10, 54);
  put32(14, 40);
  put32(18, static_cast<uint32_t>(w));
  put32(22, static_cast<uint32_t>(h));
  s[26] = 1;
  s[28] = 24;
  return s;
}

TEST(DecodeImageTest, PngAndBmpRoundTripExactly) {
  const Image im = Pattern(33, 17);
  for (const std::string& bytes : {EncodePng(im), EncodeBmp(im)}) {
    auto decoded = DecodeImage(bytes, "mem");
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->width, 33);
    EXPECT_EQ(decoded->height, 17);
    EXPECT_EQ(decoded->pixels, im.pixels);
  }
}

TEST(DecodeImageTest, JpegDecodesCloseToOriginal) {
  Image im(40, 24);
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 40; ++x) {
      uint8_t* p = im.at(x, y);
      p[0] = 200;
      p[1] = static_cast<uint8_t>(100 + x);
      p[2] = 30;
    }
  }
  auto decoded = DecodeImage(EncodeJpg(im), "mem.jpg");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->width, 40);
  ASSERT_EQ(decoded->height, 24);
  double max_err = 0;
  for (size_t i = 0; i < im.pixels.size(); ++i) {
    max_err = std::max(max_err, std::abs(double(decoded->pixels[i]) - im.pixels[i]));
  }
  EXPECT_LT(max_err, 20);
}

TEST(DecodeImageTest, RejectsGarbageEmptyTruncatedAndUnsupported) {
  auto garbage = DecodeImage("this is not an image at all", "bad.jpg");
  ASSERT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("bad.jpg"));

  EXPECT_EQ(DecodeImage("", "empty.png").status().code(), absl::StatusCode::kInvalidArgument);

  const std::string png = EncodePng(Pattern(64, 64));
  auto truncated = DecodeImage(png.substr(0, png.size() / 2), "half.png");
  ASSERT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("half.png"));

  // GIF is compiled out of stb: refused as unsupported.
  const std::string gif = std::string("GIF89a") + std::string("\x01\x00\x01\x00\x00\x00\x00", 7) +
                          std::string(32, '\0');
  auto unsupported = DecodeImage(gif, "anim.gif");
  ASSERT_EQ(unsupported.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unsupported.status().message()), HasSubstr("anim.gif"));
}

TEST(DecodeImageTest, RefusesOversizedImagesFromTheHeader) {
  auto wide = DecodeImage(BmpHeader(40000, 10), "wide.bmp");
  ASSERT_EQ(wide.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wide.status().message()), HasSubstr("too large"));
  EXPECT_THAT(std::string(wide.status().message()), HasSubstr("40000x10"));
  // Each side allowed, but 20000 x 20000 = 400 Mpx is over the pixel limit.
  auto huge = DecodeImage(BmpHeader(20000, 20000), "huge.bmp");
  ASSERT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(huge.status().message()), HasSubstr("too large"));
}

TEST(DecodeImageFileTest, MissingFileIsNotFoundAndDirectoryIsInvalid) {
  const std::string dir = ::testing::TempDir();
  auto missing = DecodeImageFile(dir + "/no_such_image.png");
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("no_such_image.png"));
  EXPECT_EQ(DecodeImageFile(dir).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WritePngTest, WritesAtomicallyAndReadsBack) {
  const std::string path = ::testing::TempDir() + "/written.png";
  const Image im = Pattern(21, 13);
  ASSERT_TRUE(WritePng(path, im).ok());
  auto back = DecodeImageFile(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->pixels, im.pixels);
  for (const auto& entry : std::filesystem::directory_iterator(::testing::TempDir())) {
    EXPECT_EQ(entry.path().filename().string().find("written.png.tmp"), std::string::npos);
  }
}

TEST(WritePngTest, RejectsEmptyImageAndUnwritablePath) {
  EXPECT_EQ(WritePng(::testing::TempDir() + "/e.png", Image()).code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status s = WritePng(::testing::TempDir() + "/no/such/dir/x.png", Pattern(4, 4));
  ASSERT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("x.png"));
}

}  // namespace
}  // namespace yolopipe
