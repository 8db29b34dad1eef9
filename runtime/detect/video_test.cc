#include "runtime/detect/video.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "runtime/detect/image.h"

namespace yolopipe {
namespace {

namespace fs = std::filesystem;

// Frame i: a horizontal gradient with a bright 24x24 square whose left edge is at 8 + 6*i.
Image MovingSquare(int w, int h, int i) {
  Image im(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      const bool inside = x >= 8 + 6 * i && x < 32 + 6 * i && y >= 40 && y < 64;
      p[0] = inside ? 240 : static_cast<uint8_t>(x * 200 / w);
      p[1] = inside ? 220 : 60;
      p[2] = inside ? 30 : static_cast<uint8_t>(y * 200 / h);
    }
  }
  return im;
}

double MeanAbsDiff(const Image& a, const Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) sum += std::abs(a.pixels[i] - b.pixels[i]);
  return sum / static_cast<double>(a.pixels.size());
}

void RoundTrip(const std::string& name) {
  const std::string path = ::testing::TempDir() + "/" + name;
  constexpr int kW = 160, kH = 120, kFrames = 12;
  {
    auto writer = VideoWriter::Open(path, kW, kH, 10);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < kFrames; ++i) ASSERT_TRUE((*writer)->Write(MovingSquare(kW, kH, i)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
    EXPECT_EQ((*writer)->frames_written(), kFrames);
  }
  auto reader = VideoReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->width(), kW);
  EXPECT_EQ((*reader)->height(), kH);
  EXPECT_NEAR((*reader)->fps(), 10.0, 0.01);
  int n = 0;
  while (true) {
    auto frame = (*reader)->Next();
    ASSERT_TRUE(frame.ok()) << frame.status();
    if (!frame->has_value()) break;
    ASSERT_LT(n, kFrames);
    ASSERT_EQ((*frame)->width, kW);
    ASSERT_EQ((*frame)->height, kH);
    const Image expected = MovingSquare(kW, kH, n);
    // Lossy codec at high quality: close on average, and the square is where it was drawn.
    EXPECT_LT(MeanAbsDiff(**frame, expected), 6.0) << name << " frame " << n;
    const uint8_t* center = (*frame)->at(20 + 6 * n, 52);
    EXPECT_GT(center[0], 200) << name << " frame " << n;
    EXPECT_GT(center[1], 180) << name << " frame " << n;
    // Next frame's square must not be here yet: frames are distinct and in order.
    if (n > 0) {
      EXPECT_GT(MeanAbsDiff(**frame, MovingSquare(kW, kH, n - 1)),
                MeanAbsDiff(**frame, expected));
    }
    ++n;
  }
  EXPECT_EQ(n, kFrames);
  // The end is sticky.
  auto again = (*reader)->Next();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST(VideoTest, Mpeg4Mp4RoundTrip) { RoundTrip("moving.mp4"); }
TEST(VideoTest, MjpegAviRoundTrip) { RoundTrip("moving.avi"); }

// Widths that are not a multiple of the SIMD width once made swscale write past the rows.
TEST(VideoTest, UnalignedSizeRoundTrip) {
  const std::string path = ::testing::TempDir() + "/unaligned.mp4";
  constexpr int kW = 74, kH = 62;
  {
    auto writer = VideoWriter::Open(path, kW, kH, 25);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*writer)->Write(MovingSquare(kW, kH, i)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
  }
  auto reader = VideoReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  int n = 0;
  while (true) {
    auto frame = (*reader)->Next();
    ASSERT_TRUE(frame.ok()) << frame.status();
    if (!frame->has_value()) break;
    EXPECT_EQ((*frame)->width, kW);
    EXPECT_EQ((*frame)->height, kH);
    EXPECT_LT(MeanAbsDiff(**frame, MovingSquare(kW, kH, n)), 8.0) << "frame " << n;
    ++n;
  }
  EXPECT_EQ(n, 3);
}

TEST(VideoTest, MissingFileIsNotFoundNamingIt) {
  const std::string path = ::testing::TempDir() + "/no_such_video.mp4";
  auto reader = VideoReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(reader.status().message().find(path), std::string::npos);
  auto source = OpenFrameSource(path);
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find(path), std::string::npos);
}

TEST(VideoTest, NonVideoFileIsRejectedNamingIt) {
  const std::string path = ::testing::TempDir() + "/garbage.mp4";
  std::ofstream(path) << "this is not a video file at all";
  auto reader = VideoReader::Open(path);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reader.status().message().find(path), std::string::npos);
}

// A synthetic camera through libavdevice's lavfi device: a solid-colour source of a known size,
// rate and length. Reading it goes through the same device path as a V4L2 camera.
TEST(VideoTest, CaptureDeviceDeliversItsFrames) {
  const std::string spec = "lavfi:color=c=0x2040C0:size=48x32:rate=5:duration=2";
  EXPECT_EQ(VideoReader::DeviceOf(spec), "lavfi");
  auto source = OpenFrameSource(spec);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_NEAR((*source)->fps(), 5.0, 0.01);
  int n = 0;
  while (true) {
    auto frame = (*source)->Next();
    ASSERT_TRUE(frame.ok()) << frame.status();
    if (!frame->has_value()) break;
    ASSERT_EQ((*frame)->width, 48);
    ASSERT_EQ((*frame)->height, 32);
    // (0x20, 0x40, 0xC0) after the device's YUV round trip: within a few levels.
    const uint8_t* p = (*frame)->at(24, 16);
    EXPECT_NEAR(p[0], 0x20, 4);
    EXPECT_NEAR(p[1], 0x40, 4);
    EXPECT_NEAR(p[2], 0xC0, 4);
    ++n;
  }
  EXPECT_EQ(n, 10);  // 2 s at 5 frames per second
}

TEST(VideoTest, CaptureDeviceErrorsNameThePath) {
  // No such camera node.
  auto camera = VideoReader::Open("/dev/video97");
  ASSERT_FALSE(camera.ok());
  EXPECT_EQ(camera.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(camera.status().message()), "/dev/video97: no such device");
  EXPECT_EQ(VideoReader::DeviceOf("/dev/video97"), "v4l2");
  // A device that takes no capture size.
  CaptureOptions capture;
  capture.video_size = "640x480";
  auto sized = VideoReader::Open("lavfi:testsrc=duration=1", capture);
  ASSERT_FALSE(sized.ok());
  EXPECT_EQ(sized.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(sized.status().message().find("lavfi:testsrc=duration=1: the lavfi device takes no "
                                          "capture size"),
            std::string::npos);
  // A device input it cannot open.
  auto broken = VideoReader::Open("lavfi:no_such_filter");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("lavfi:no_such_filter: cannot open the lavfi device"),
            std::string::npos);
  // Not a device name: a file path with a colon, missing.
  EXPECT_EQ(VideoReader::DeviceOf("notadevice:clip.mp4"), "");
  EXPECT_EQ(VideoReader::Open("notadevice:clip.mp4").status().code(),
            absl::StatusCode::kNotFound);
}

// A file whose name starts like a device is still read as that file.
TEST(VideoTest, ExistingFileNamedLikeADeviceIsAFile) {
  const fs::path dir = ::testing::TempDir();
  const fs::path saved = fs::current_path();
  fs::current_path(dir);
  {
    auto writer = VideoWriter::Open("lavfi:clip.avi", 32, 32, 10);
    ASSERT_TRUE(writer.ok()) << writer.status();
    for (int i = 0; i < 2; ++i) ASSERT_TRUE((*writer)->Write(MovingSquare(32, 32, 0)).ok());
    ASSERT_TRUE((*writer)->Close().ok());
  }
  EXPECT_EQ(VideoReader::DeviceOf("lavfi:clip.avi"), "");
  auto reader = VideoReader::Open("lavfi:clip.avi");
  fs::current_path(saved);
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_EQ((*reader)->width(), 32);
}

TEST(VideoTest, WriterRejectsBadArguments) {
  const std::string dir = ::testing::TempDir();
  EXPECT_FALSE(VideoWriter::Open(dir + "/odd.mp4", 161, 120, 10).ok());
  EXPECT_FALSE(VideoWriter::Open(dir + "/zero.mp4", 0, 120, 10).ok());
  EXPECT_FALSE(VideoWriter::Open(dir + "/fps.mp4", 160, 120, 0).ok());
  auto unknown = VideoWriter::Open(dir + "/x.notaformat", 160, 120, 10);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("x.notaformat"), std::string::npos);
  auto writer = VideoWriter::Open(dir + "/size.mp4", 160, 120, 10);
  ASSERT_TRUE(writer.ok()) << writer.status();
  absl::Status s = (*writer)->Write(Image(80, 60));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("80x60"), std::string::npos);
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_EQ((*writer)->Write(Image(160, 120)).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(VideoTest, FrameFolderIsSortedAndSkipsNonImages) {
  const std::string dir = ::testing::TempDir() + "/frames";
  fs::create_directories(dir);
  // Written out of order; read back by name.
  for (int i : {2, 0, 1}) {
    ASSERT_TRUE(WritePng(dir + "/f" + std::to_string(i) + ".png", MovingSquare(64, 48, i)).ok());
  }
  std::ofstream(dir + "/readme.txt") << "ignored";
  auto source = OpenFrameSource(dir);
  ASSERT_TRUE(source.ok()) << source.status();
  for (int i = 0; i < 3; ++i) {
    auto frame = (*source)->Next();
    ASSERT_TRUE(frame.ok()) << frame.status();
    ASSERT_TRUE(frame->has_value());
    EXPECT_EQ((*frame)->pixels, MovingSquare(64, 48, i).pixels) << "frame " << i;
  }
  auto end = (*source)->Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST(VideoTest, FrameFolderErrorsNameTheFile) {
  const std::string empty = ::testing::TempDir() + "/empty_frames";
  fs::create_directories(empty);
  auto none = FrameFolderReader::Open(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find(empty), std::string::npos);

  const std::string dir = ::testing::TempDir() + "/bad_frames";
  fs::create_directories(dir);
  ASSERT_TRUE(WritePng(dir + "/a.png", MovingSquare(64, 48, 0)).ok());
  std::ofstream(dir + "/b.png") << "not a png";
  auto reader = FrameFolderReader::Open(dir);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE((*reader)->Next().ok());
  auto bad = (*reader)->Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("b.png"), std::string::npos);
}

}  // namespace
}  // namespace yolopipe
