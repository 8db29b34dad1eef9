#include "runtime/detect/image.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stb/stb_image_write.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

// A well-formed DHT segment (AC table 0) declaring `per_length` codes of each length 1..16.
std::string DhtSegment(int per_length) {
  const int codes = 16 * per_length;
  const int length = 2 + 17 + codes;
  std::string s = {'\xFF', '\xC4', static_cast<char>(length >> 8), static_cast<char>(length & 255),
                   '\x10'};
  s.append(16, static_cast<char>(per_length));
  for (int i = 0; i < codes; ++i) s += static_cast<char>(i & 255);
  return s;
}

// stb 2.27 writes past its Huffman tables when a DHT segment declares more than 256 codes
// (found by //fuzz:fuzz_image): refused before stb sees the file, also after the first scan.
TEST(DecodeImageTest, RefusesJpegHuffmanTableWithMoreThan256Codes) {
  const std::string good = EncodeJpg(Pattern(16, 16));
  ASSERT_TRUE(DecodeImage(good, "good.jpg").ok());
  ASSERT_EQ(good.substr(0, 2), "\xFF\xD8");

  // 17 codes of each length = 272 codes, right after SOI.
  const std::string bad = good.substr(0, 2) + DhtSegment(17) + good.substr(2);
  auto refused = DecodeImage(bad, "bad_dht.jpg");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("bad_dht.jpg"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("declares 272 codes"));

  // stb reads markers after any number of 0xFF fill bytes, the SOI marker too.
  const std::string filled = std::string("\xFF\xFF", 2) + bad.substr(1);
  auto filled_refused = DecodeImage(filled, "filled.jpg");
  ASSERT_EQ(filled_refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(filled_refused.status().message()), HasSubstr("declares 272 codes"));

  // 256 codes is the most stb can hold: not refused by the check (stb itself refuses these code
  // lengths as impossible, by its own message), and nothing crashes.
  const std::string full = good.substr(0, 2) + DhtSegment(16) + good.substr(2);
  auto at_limit = DecodeImage(full, "full_dht.jpg");
  ASSERT_FALSE(at_limit.ok());
  EXPECT_THAT(std::string(at_limit.status().message()), Not(HasSubstr("Huffman table")));

  // A DHT segment between scans (after the first SOS), here just before EOI, is checked too.
  const size_t sos = good.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  std::string late = good;
  late.insert(late.size() - 2, DhtSegment(17));
  auto late_refused = DecodeImage(late, "late_dht.jpg");
  ASSERT_EQ(late_refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(late_refused.status().message()), HasSubstr("declares 272 codes"));
}

// stb reads missing JPEG/BMP data as zeros and allocates a PNG's rows before inflating, so a
// tiny file could demand the work and memory of a huge image (found by //fuzz:fuzz_image: a
// 244-byte JPEG declaring 23296x4112 took over 10 s). Files smaller than their format's least
// bytes per pixel are refused before decoding.
TEST(DecodeImageTest, RefusesFilesTooSmallForTheirDeclaredSize) {
  // A real 16x16 JPEG with its frame header (SOF0: FF C0, length, precision, height, width)
  // patched to 16000 x 16000: 4,000,000 blocks need at least 500,000 bytes.
  std::string jpeg = EncodeJpg(Pattern(16, 16));
  const size_t sof = jpeg.find("\xFF\xC0");
  ASSERT_NE(sof, std::string::npos);
  for (int off : {5, 7}) {
    jpeg[sof + off] = static_cast<char>(16000 >> 8);
    jpeg[sof + off + 1] = static_cast<char>(16000 & 255);
  }
  auto small_jpeg = DecodeImage(jpeg, "bomb.jpg");
  ASSERT_EQ(small_jpeg.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small_jpeg.status().message()),
              HasSubstr("bomb.jpg: truncated or corrupt JPEG: a 16000x16000 image needs at "
                        "least 500000 bytes"));

  // 20000 x 10000 is within the size limits, but a BMP header alone holds none of its pixels.
  auto small_bmp = DecodeImage(BmpHeader(20000, 10000), "bomb.bmp");
  ASSERT_EQ(small_bmp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small_bmp.status().message()),
              HasSubstr("truncated or corrupt BMP: a 20000x10000 image needs at least 25000000"));

  // A real PNG whose IHDR says 16000 x 16000 RGB: rows of 1 + 48000 bytes deflate to at least
  // 16000 * 48001 / 1032 = 744201 bytes.
  std::string png = EncodePng(Pattern(16, 16));
  for (int off : {16, 20}) {
    png[off] = 0;
    png[off + 1] = 0;
    png[off + 2] = static_cast<char>(16000 >> 8);
    png[off + 3] = static_cast<char>(16000 & 255);
  }
  auto small_png = DecodeImage(png, "bomb.png");
  ASSERT_EQ(small_png.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small_png.status().message()),
              HasSubstr("truncated or corrupt PNG: a 16000x16000 image needs at least 744201"));
}

// A scan reading a Huffman table that no DHT defined made stb 2.27 decode with uninitialised
// memory and index far past its tables (found by //fuzz:fuzz_image).
TEST(DecodeImageTest, RefusesJpegScanUsingUndefinedHuffmanTable) {
  const std::string good = EncodeJpg(Pattern(16, 16));
  const size_t sos = good.find("\xFF\xDA");
  ASSERT_NE(sos, std::string::npos);
  // SOS: marker (2), length (2), component count (1), then per component its id and the
  // table selectors (DC << 4 | AC). Point the first component at AC table 2, never defined.
  std::string bad = good;
  bad[sos + 6] = static_cast<char>((static_cast<unsigned char>(good[sos + 6]) & 0xF0) | 2);
  auto refused = DecodeImage(bad, "undefined_table.jpg");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("undefined_table.jpg: corrupt JPEG: the scan at byte offset ",
                                     sos, " uses Huffman table AC 2")));
}

// stb 2.27 sized its IDAT buffer from the chunk header before reading the data: a tiny PNG
// declaring a 1 GiB chunk made it allocate 2 GiB (found by //fuzz:fuzz_image). Refused first.
TEST(DecodeImageTest, RefusesPngDataChunkLongerThanTheFile) {
  const std::string png = EncodePng(Pattern(4, 4));
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  std::string bad = png;
  bad[idat - 4] = 0x40;  // length 0x400000xx: about 1 GiB
  auto refused = DecodeImage(bad, "huge_chunk.png");
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("huge_chunk.png: truncated or corrupt PNG: the IDAT chunk at "
                                     "byte offset ", idat - 4, " declares 10737418")));
}

// Empty IDAT chunks are legal PNG but made stb 2.27 call memcpy(NULL, p, 0) (found by
// //fuzz:fuzz_image under UBSan); they are dropped before decoding and the image is unchanged.
TEST(DecodeImageTest, PngWithEmptyDataChunksDecodesUnchanged) {
  const Image original = Pattern(9, 5);
  const std::string png = EncodePng(original);
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  const std::string empty_idat("\x00\x00\x00\x00IDAT\x35\xAF\x06\x1E", 12);
  // Two empty chunks before the data (where stb had no buffer yet) and one after it.
  std::string with_empty = png.substr(0, idat - 4) + empty_idat + empty_idat + png.substr(idat - 4);
  with_empty.insert(with_empty.size() - 12, empty_idat);  // before IEND
  auto decoded = DecodeImage(with_empty, "empty_idat.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->width, 9);
  EXPECT_EQ(decoded->height, 5);
  EXPECT_EQ(decoded->pixels, original.pixels);

  // An empty IDAT as the last, CRC-less bytes of a file is dropped too: a clean refusal.
  const std::string cut = png.substr(0, idat - 4) + std::string("\x00\x00\x00\x00IDAT", 8);
  auto refused = DecodeImage(cut, "cut.png");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
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
  ASSERT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("x.png"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No such file or directory"));
}

}  // namespace
}  // namespace yolopipe
