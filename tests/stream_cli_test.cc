// yolopipe stream end to end: generated videos (MPEG-4 .mp4, MJPEG .avi) and a frame folder in,
// per-source JSON out; every frame present once and in order; pipeline mode equals single mode.
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/detect/image.h"
#include "runtime/detect/video.h"
#include "tests/cli_runner.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using testing::ReadFile;
using testing::RunYolopipe;

namespace fs = std::filesystem;

// A gradient with a bright square moving right by 5 pixels per frame.
Image Frame(int w, int h, int i, int seed) {
  Image im(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = im.at(x, y);
      const bool inside = x >= 4 + 5 * i && x < 4 + 5 * i + w / 4 && y >= h / 3 && y < 2 * h / 3;
      p[0] = static_cast<uint8_t>(inside ? 230 : x * 255 / w);
      p[1] = static_cast<uint8_t>(inside ? 40 + 60 * seed : y * 255 / h);
      p[2] = static_cast<uint8_t>(inside ? 20 : 128);
    }
  }
  return im;
}

struct SourceSpec {
  std::string path;
  int frames;
};

class StreamCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string d = ::testing::TempDir() + "/stream_inputs";
    fs::create_directories(d + "/folder");
    sources_ = new std::vector<SourceSpec>{
        {d + "/cam_a.mp4", 12}, {d + "/cam_b.avi", 9}, {d + "/folder", 5}};
    const int sizes[2][2] = {{160, 120}, {96, 128}};
    for (int v = 0; v < 2; ++v) {
      auto writer = VideoWriter::Open((*sources_)[v].path, sizes[v][0], sizes[v][1], 10);
      ASSERT_TRUE(writer.ok()) << writer.status();
      for (int i = 0; i < (*sources_)[v].frames; ++i) {
        ASSERT_TRUE((*writer)->Write(Frame(sizes[v][0], sizes[v][1], i, v)).ok());
      }
      ASSERT_TRUE((*writer)->Close().ok());
    }
    for (int i = 0; i < 5; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "/f%03d.png", i);
      ASSERT_TRUE(WritePng(d + "/folder" + name, Frame(75, 61, i, 2)).ok());  // odd size
    }
  }
  static std::vector<SourceSpec>* sources_;

  static std::string SourceFlags() {
    std::string s;
    for (const auto& src : *sources_) s += " --source " + src.path;
    return s;
  }
};
std::vector<SourceSpec>* StreamCliTest::sources_ = nullptr;

constexpr char kCommon[] = "stream --model yolov8n --imgsz 64 --conf 0.001 --microbatch 2";

// The frame indices listed in a per-source JSON file, in file order.
std::vector<int> FrameIndices(const std::string& json) {
  std::vector<int> out;
  std::istringstream in(json);
  std::string line;
  while (std::getline(in, line)) {
    const size_t f = line.find("{\"frame\": ");
    if (f != std::string::npos) out.push_back(std::stoi(line.substr(f + 10)));
  }
  return out;
}

// Each frame's JSON text (its line and its detections' lines) by frame index.
std::map<int, std::string> FrameBlocks(const std::string& json) {
  std::map<int, std::string> out;
  std::istringstream in(json);
  std::string line;
  int current = -1;
  while (std::getline(in, line)) {
    const size_t f = line.find("{\"frame\": ");
    if (f != std::string::npos) current = std::stoi(line.substr(f + 10));
    if (current >= 0) out[current] += line + "\n";
  }
  return out;
}

TEST_F(StreamCliTest, EveryFrameOnceAndInOrderAndPipelineEqualsSingle) {
  std::vector<std::string> single_json;
  int run = 0;
  for (const std::string mode : {"", " --mode pipeline --devices cpu:2",
                                 " --mode hybrid --replicas 2 --devices cpu:4"}) {
    const std::string dir = ::testing::TempDir() + "/json_" + std::to_string(run++);
    const auto r = RunYolopipe(std::string(kCommon) + mode + " --policy block --queue 2" +
                               SourceFlags() + " --json-dir " + dir);
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.out << r.err;
    EXPECT_THAT(r.out, HasSubstr("total: 26 frame(s), 0 dropped"));
    const std::vector<std::string> names = {"cam_a", "cam_b", "folder"};
    for (size_t s = 0; s < names.size(); ++s) {
      const std::string json = ReadFile(dir + "/" + names[s] + ".json");
      std::vector<int> expected((*sources_)[s].frames);
      for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int>(i);
      EXPECT_EQ(FrameIndices(json), expected) << mode << " " << names[s];
      EXPECT_THAT(json, HasSubstr("\"source\": \"" + (*sources_)[s].path + "\""));
      EXPECT_THAT(json, HasSubstr("\"frames_dropped\": 0"));
      EXPECT_THAT(r.out, HasSubstr("stream " + std::to_string(s) + " " + (*sources_)[s].path +
                                   ": " + std::to_string((*sources_)[s].frames) +
                                   " frame(s), 0 dropped"));
      if (mode.empty()) {
        single_json.push_back(json);
      } else {
        EXPECT_EQ(json, single_json[s]) << names[s];
      }
    }
    // Frame sizes are the sources' own, and the generated scenes give boxes to compare.
    EXPECT_THAT(ReadFile(dir + "/cam_b.json"), HasSubstr("\"width\": 96, \"height\": 128"));
    EXPECT_THAT(ReadFile(dir + "/folder.json"), HasSubstr("\"width\": 75, \"height\": 61"));
    EXPECT_THAT(ReadFile(dir + "/cam_a.json"), HasSubstr("\"box\""));
  }
}

TEST_F(StreamCliTest, MaxFramesAndAnnotatedVideo) {
  const std::string json = ::testing::TempDir() + "/json_max";
  const std::string out = ::testing::TempDir() + "/video_out";
  const auto r = RunYolopipe(std::string(kCommon) + " --max-frames 4 --source " +
                             (*sources_)[0].path + " --source " + (*sources_)[2].path +
                             " --json-dir " + json + " --out-dir " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(FrameIndices(ReadFile(json + "/cam_a.json")), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(FrameIndices(ReadFile(json + "/folder.json")), (std::vector<int>{0, 1, 2, 3}));
  // The annotated videos decode to 4 frames of the source's size (odd sizes cropped to even).
  const std::vector<std::pair<std::string, std::pair<int, int>>> videos = {
      {"cam_a", {160, 120}}, {"folder", {74, 60}}};
  for (const auto& [name, size] : videos) {
    auto reader = VideoReader::Open(out + "/" + name + ".mp4");
    ASSERT_TRUE(reader.ok()) << reader.status();
    int n = 0;
    while (true) {
      auto frame = (*reader)->Next();
      ASSERT_TRUE(frame.ok()) << frame.status();
      if (!frame->has_value()) break;
      EXPECT_EQ((*frame)->width, size.first) << name;
      EXPECT_EQ((*frame)->height, size.second) << name;
      ++n;
    }
    EXPECT_EQ(n, 4) << name;
  }
}

// Under --policy drop frames are letterboxed only when batched (see cmd_stream.cc); the frames
// that get through must have the detections the same frames have under --policy block.
TEST_F(StreamCliTest, DropPolicyAccountsForEveryFrame) {
  const std::string dir = ::testing::TempDir() + "/json_drop";
  const auto r = RunYolopipe(std::string(kCommon) + " --policy drop --queue 1" + SourceFlags() +
                             " --json-dir " + dir);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string block_dir = ::testing::TempDir() + "/json_drop_block";
  const auto block = RunYolopipe(std::string(kCommon) + " --policy block" + SourceFlags() +
                                 " --json-dir " + block_dir);
  ASSERT_EQ(block.exit_code, 0) << block.out << block.err;
  const std::vector<std::string> names = {"cam_a", "cam_b", "folder"};
  for (size_t s = 0; s < names.size(); ++s) {
    const std::string json = ReadFile(dir + "/" + names[s] + ".json");
    const std::vector<int> got = FrameIndices(json);
    int dropped = -1;
    const size_t at = json.find("\"frames_dropped\": ");
    ASSERT_NE(at, std::string::npos);
    std::sscanf(json.c_str() + at, "\"frames_dropped\": %d", &dropped);
    // Which frames drop depends on timing; that processed + dropped = all, in order, does not.
    EXPECT_EQ(static_cast<int>(got.size()) + dropped, (*sources_)[s].frames) << names[s];
    for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1], got[i]) << names[s];
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.back(), (*sources_)[s].frames - 1) << names[s];
    const std::map<int, std::string> all = FrameBlocks(ReadFile(block_dir + "/" + names[s] + ".json"));
    for (const auto& [frame, text] : FrameBlocks(json)) {
      ASSERT_EQ(all.count(frame), 1u) << names[s] << " frame " << frame;
      // The last frame's block also holds the file's closing bracket in both files.
      EXPECT_EQ(text, all.at(frame)) << names[s] << " frame " << frame;
    }
  }
}

TEST_F(StreamCliTest, MissingSourceIsAnErrorNamingIt) {
  const std::string missing = ::testing::TempDir() + "/no_such_camera.mp4";
  const auto r = RunYolopipe(std::string(kCommon) + " --source " + (*sources_)[0].path +
                             " --source " + missing);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("error: " + missing));
}

// A frame that cannot be decoded ends its own source only: the other sources run to the end,
// everything is written, the broken source's JSON keeps its frames before the error and says
// why, and the run exits 1 naming it.
TEST_F(StreamCliTest, ABrokenFrameEndsOnlyItsSource) {
  const std::string broken = ::testing::TempDir() + "/broken_folder";
  const std::string json = ::testing::TempDir() + "/json_broken";
  std::filesystem::create_directories(broken);
  for (int i = 0; i < 5; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/g%03d.png", i);
    if (i == 3) {
      std::FILE* f = std::fopen((broken + name).c_str(), "wb");
      ASSERT_NE(f, nullptr);
      std::fputs("this is not a PNG file", f);
      std::fclose(f);
    } else {
      ASSERT_TRUE(WritePng(broken + name, Frame(48, 40, i, 1)).ok());
    }
  }
  const auto r = RunYolopipe(std::string(kCommon) + " --source " + (*sources_)[0].path +
                             " --source " + broken + " --json-dir " + json);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: stream 1 " + broken + ": frame 3: "));
  EXPECT_THAT(r.err, HasSubstr("g003.png"));
  EXPECT_THAT(r.err, HasSubstr("1 of 2 source(s) ended early"));
  const std::string good = ReadFile(json + "/cam_a.json");
  EXPECT_THAT(good, HasSubstr("\"complete\": true"));
  std::vector<int> all((*sources_)[0].frames);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  EXPECT_EQ(FrameIndices(good), all);
  const std::string bad = ReadFile(json + "/broken_folder.json");
  EXPECT_THAT(bad, HasSubstr("\"complete\": false"));
  EXPECT_THAT(bad, HasSubstr("\"error\": \"frame 3: "));
  EXPECT_EQ(FrameIndices(bad), (std::vector<int>{0, 1, 2}));
}

// --realtime paces each source at its frame rate (the video's own 10 fps, the folder's --fps);
// with the blocking policy every frame still comes out. A file:// URL reads like the path.
TEST_F(StreamCliTest, RealtimePacingAndUrlSources) {
  const std::string json = ::testing::TempDir() + "/json_realtime";
  const auto r = RunYolopipe(std::string(kCommon) + " --realtime --fps 50 --source file://" +
                             (*sources_)[1].path + " --source " + (*sources_)[2].path +
                             " --json-dir " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(FrameIndices(ReadFile(json + "/cam_b.json")).size(), 9u);
  EXPECT_EQ(FrameIndices(ReadFile(json + "/folder.json")).size(), 5u);
  EXPECT_EQ(RunYolopipe(std::string(kCommon) + " --realtime --fps 0 --source " +
                        (*sources_)[2].path)
                .exit_code,
            2);
}

// Capture devices: libavdevice's lavfi device stands in for a camera (one that ends after 1 s,
// and a live one that never ends, stopped by --max-frames).
TEST_F(StreamCliTest, CaptureDevicesAreSources) {
  const std::string json = ::testing::TempDir() + "/json_devices";
  const auto r = RunYolopipe(std::string(kCommon) +
                             " --source lavfi:testsrc=size=96x64:rate=10:duration=1"
                             " --source lavfi:testsrc2=size=80x48:rate=25 --max-frames 7" +
                             " --json-dir " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string first = ReadFile(json + "/lavfi_testsrc_size_96x64_rate_10_duration_1.json");
  EXPECT_EQ(FrameIndices(first), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_THAT(first, HasSubstr("\"width\": 96, \"height\": 64"));
  const std::string live = ReadFile(json + "/lavfi_testsrc2_size_80x48_rate_25.json");
  EXPECT_EQ(FrameIndices(live).size(), 7u);
  EXPECT_THAT(live, HasSubstr("\"complete\": true"));
  // Without --max-frames the finite one ends by itself after its 10 frames.
  const auto all = RunYolopipe(std::string(kCommon) +
                               " --source lavfi:testsrc=size=96x64:rate=10:duration=1");
  ASSERT_EQ(all.exit_code, 0) << all.out << all.err;
  EXPECT_THAT(all.out, HasSubstr("total: 10 frame(s), 0 dropped"));
  // A missing camera and a bad capture size.
  const auto camera = RunYolopipe(std::string(kCommon) + " --source /dev/video97");
  EXPECT_EQ(camera.exit_code, 1);
  EXPECT_THAT(camera.err, HasSubstr("/dev/video97: no such device"));
  const auto size = RunYolopipe(std::string(kCommon) + " --capture-size 640 --source /dev/video0");
  EXPECT_EQ(size.exit_code, 2);
  EXPECT_THAT(size.err, HasSubstr("--capture-size must be WIDTHxHEIGHT"));
}

TEST_F(StreamCliTest, BadUsageIsRejected) {
  EXPECT_EQ(RunYolopipe("stream --model yolov8n").exit_code, 2);
  const auto policy = RunYolopipe("stream --policy newest --source " + (*sources_)[0].path);
  EXPECT_EQ(policy.exit_code, 2);
  EXPECT_THAT(policy.err, HasSubstr("newest"));
  EXPECT_EQ(RunYolopipe("stream --queue 0 --source " + (*sources_)[0].path).exit_code, 2);
  EXPECT_EQ(RunYolopipe("stream --source").exit_code, 2);
}

}  // namespace
}  // namespace yolopipe
