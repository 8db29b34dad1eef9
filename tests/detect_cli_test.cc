// yolopipe detect end to end: generated JPEG/PNG/BMP images (odd sizes) and a corrupt file in,
// annotated PNGs and JSON out; every mode gives single mode's detections.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/detect/image.h"
#include "stb/stb_image_write.h"
#include "tests/cli_runner.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFile;
using testing::RunYolopipe;

namespace fs = std::filesystem;

std::vector<uint8_t> Pixels(int w, int h, int seed) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* q = &p[(static_cast<size_t>(y) * w + x) * 3];
      // Smooth shapes rather than noise: a bright rectangle on a gradient.
      const bool inside = x > w / 4 && x < 3 * w / 4 && y > h / 3 && y < 2 * h / 3;
      q[0] = static_cast<uint8_t>(inside ? 230 : (x * 255 / w));
      q[1] = static_cast<uint8_t>(inside ? 40 + seed * 30 : (y * 255 / h));
      q[2] = static_cast<uint8_t>(inside ? 20 : 128);
    }
  }
  return p;
}

struct Sizes {
  int w, h;
};

class DetectCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/detect_images");
    fs::create_directories(*dir_);
    const std::string d = *dir_;
    auto a = Pixels(333, 517, 0);
    ASSERT_TRUE(stbi_write_png((d + "/a_odd.png").c_str(), 333, 517, 3, a.data(), 333 * 3));
    auto b = Pixels(201, 149, 1);
    ASSERT_TRUE(stbi_write_bmp((d + "/b_wide.BMP").c_str(), 201, 149, 3, b.data()));
    auto c = Pixels(120, 90, 2);
    ASSERT_TRUE(stbi_write_jpg((d + "/c_photo.jpg").c_str(), 120, 90, 3, c.data(), 90));
    std::ofstream(d + "/d_corrupt.jpg") << "\xff\xd8\xff not really a jpeg";
    std::ofstream(d + "/notes.txt") << "not an image, ignored by the directory scan";
  }
  static std::string* dir_;
};
std::string* DetectCliTest::dir_ = nullptr;

// The JSON lines "{"file": F, "width": W, "height": H, ..." and the boxes under each.
struct ParsedImage {
  std::string file;
  int width = 0, height = 0;
  std::vector<std::vector<double>> boxes;
};
std::vector<ParsedImage> ParseJson(const std::string& json) {
  std::vector<ParsedImage> out;
  std::istringstream in(json);
  std::string line;
  while (std::getline(in, line)) {
    const size_t f = line.find("{\"file\": \"");
    if (f != std::string::npos) {
      ParsedImage p;
      const size_t start = f + 10, end = line.find('"', start);
      p.file = line.substr(start, end - start);
      std::sscanf(line.c_str() + line.find("\"width\": "), "\"width\": %d, \"height\": %d",
                  &p.width, &p.height);
      out.push_back(p);
    }
    const size_t b = line.find("{\"box\": [");
    if (b != std::string::npos && !out.empty()) {
      std::vector<double> box(5);
      std::sscanf(line.c_str() + b, "{\"box\": [%lf, %lf, %lf, %lf], \"score\": %lf", &box[0],
                  &box[1], &box[2], &box[3], &box[4]);
      out.back().boxes.push_back(box);
    }
  }
  return out;
}

constexpr char kCommon[] = "detect --model yolov8n --imgsz 64 --conf 0.001 --batch 2";

TEST_F(DetectCliTest, WritesPngsAndJsonAndSkipsTheCorruptFile) {
  const std::string out = ::testing::TempDir() + "/detect_out";
  const std::string json = ::testing::TempDir() + "/detect.json";
  const auto r = RunYolopipe(std::string(kCommon) + " --image " + *dir_ + " --out " + out +
                             " --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: skipping " + *dir_ + "/d_corrupt.jpg: "));
  EXPECT_THAT(r.err, Not(HasSubstr("notes.txt")));
  EXPECT_THAT(r.out, HasSubstr("3 image(s) processed, 1 skipped"));

  const std::vector<Sizes> sizes = {{333, 517}, {201, 149}, {120, 90}};
  const std::vector<std::string> stems = {"a_odd", "b_wide", "c_photo"};
  for (size_t i = 0; i < stems.size(); ++i) {
    auto png = DecodeImageFile(out + "/" + stems[i] + ".png");
    ASSERT_TRUE(png.ok()) << png.status();
    EXPECT_EQ(png->width, sizes[i].w);
    EXPECT_EQ(png->height, sizes[i].h);
  }
  EXPECT_FALSE(fs::exists(out + "/d_corrupt.png"));

  const std::vector<ParsedImage> images = ParseJson(ReadFile(json));
  ASSERT_EQ(images.size(), 3u) << ReadFile(json);
  size_t boxes = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    EXPECT_EQ(images[i].file, *dir_ + "/" + stems[i] + (i == 0 ? ".png" : i == 1 ? ".BMP" : ".jpg"));
    EXPECT_EQ(images[i].width, sizes[i].w);
    EXPECT_EQ(images[i].height, sizes[i].h);
    double last_score = 2;
    for (const auto& b : images[i].boxes) {
      ++boxes;
      EXPECT_GE(b[0], 0);
      EXPECT_GE(b[1], 0);
      EXPECT_LE(b[2], sizes[i].w);
      EXPECT_LE(b[3], sizes[i].h);
      EXPECT_LE(b[0], b[2]);
      EXPECT_LE(b[1], b[3]);
      EXPECT_GT(b[4], 0.001);
      EXPECT_LE(b[4], last_score);  // sorted by score
      last_score = b[4];
    }
    EXPECT_LE(images[i].boxes.size(), 300u);
  }
  EXPECT_GT(boxes, 0u) << "no detections to check; lower --conf";
  // Built-in models carry COCO names in their metadata, or numbers otherwise: never empty.
  EXPECT_THAT(ReadFile(json), Not(HasSubstr("\"class_name\": \"\"")));
  // Nothing half-written left behind.
  for (const auto& e : fs::directory_iterator(out)) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
}

TEST_F(DetectCliTest, EveryModeGivesSingleModesDetections) {
  const std::string single = ::testing::TempDir() + "/single.json";
  const auto r0 = RunYolopipe(std::string(kCommon) + " --image " + *dir_ + " --json " + single);
  ASSERT_EQ(r0.exit_code, 0) << r0.err;
  const std::string want = ReadFile(single);
  ASSERT_THAT(want, HasSubstr("\"box\""));
  for (const std::string mode : {"--mode pipeline --devices cpu:2", "--mode data --devices cpu:2",
                                 "--mode hybrid --replicas 2 --devices cpu:4"}) {
    const std::string json = ::testing::TempDir() + "/mode.json";
    const auto r = RunYolopipe(std::string(kCommon) + " " + mode + " --image " + *dir_ +
                               " --json " + json);
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.out << r.err;
    EXPECT_EQ(ReadFile(json), want) << mode;
  }
}

TEST_F(DetectCliTest, RepeatedImageFlagsKeepTheirOrder) {
  const std::string json = ::testing::TempDir() + "/repeat.json";
  const auto r = RunYolopipe(std::string(kCommon) + " --image " + *dir_ + "/c_photo.jpg --image=" +
                             *dir_ + "/a_odd.png --json " + json);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<ParsedImage> images = ParseJson(ReadFile(json));
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0].file, *dir_ + "/c_photo.jpg");
  EXPECT_EQ(images[1].file, *dir_ + "/a_odd.png");
}

TEST_F(DetectCliTest, FailuresAndUsageErrors) {
  // Only unreadable images: nothing processed, exit 1, each named.
  const auto none = RunYolopipe(std::string(kCommon) + " --image " + *dir_ +
                                "/d_corrupt.jpg --image " + *dir_ + "/missing.png");
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.err, HasSubstr("d_corrupt.jpg"));
  EXPECT_THAT(none.err, HasSubstr("missing.png"));
  EXPECT_THAT(none.err, HasSubstr("error: no image could be processed"));

  EXPECT_EQ(RunYolopipe("detect --model yolov8n").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image x.png --conf 1.5").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image x.png --iou -1").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image x.png --max_det 0").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image x.png --batch 0").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image x.png --mode sideways").exit_code, 2);
  EXPECT_EQ(RunYolopipe("detect --image").exit_code, 2);
  const auto help = RunYolopipe("detect --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out + help.err, HasSubstr("exit status"));
}

}  // namespace
}  // namespace yolopipe
