#include "runtime/detect/letterbox.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

Image RandomImage(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  Image im(w, h);
  for (uint8_t& p : im.pixels) p = static_cast<uint8_t>(rng() & 255);
  return im;
}

// Independent reference: OpenCV INTER_LINEAR written as "clamp the sample coordinate into
// [0, n-1], then interpolate between floor and floor+1", in double precision.
double NaiveSample(const Image& im, int dst_w, int dst_h, int dx, int dy, int c) {
  const auto coord = [](int d, int src, int dst, int* i0, int* i1, double* f) {
    double s = (d + 0.5) * static_cast<double>(src) / dst - 0.5;
    s = std::min(std::max(s, 0.0), static_cast<double>(src - 1));
    *i0 = static_cast<int>(std::floor(s));
    *i1 = std::min(*i0 + 1, src - 1);
    *f = s - *i0;
  };
  int x0, x1, y0, y1;
  double fx, fy;
  coord(dx, im.width, dst_w, &x0, &x1, &fx);
  coord(dy, im.height, dst_h, &y0, &y1, &fy);
  const double top = im.at(x0, y0)[c] * (1 - fx) + im.at(x1, y0)[c] * fx;
  const double bottom = im.at(x0, y1)[c] * (1 - fx) + im.at(x1, y1)[c] * fx;
  return top * (1 - fy) + bottom * fy;
}

TEST(ResizeBilinearTest, MatchesNaiveReferenceOnOddSizes) {
  struct Case {
    int sw, sh, dw, dh;
  };
  for (const Case& k : {Case{333, 517, 82, 128}, Case{17, 9, 64, 33}, Case{1, 1, 5, 3},
                        Case{100, 39, 64, 25}, Case{7, 7, 7, 7}}) {
    const Image src = RandomImage(k.sw, k.sh, 42u + k.sw);
    const Image dst = ResizeBilinear(src, k.dw, k.dh);
    ASSERT_EQ(dst.width, k.dw);
    ASSERT_EQ(dst.height, k.dh);
    for (int y = 0; y < k.dh; ++y) {
      for (int x = 0; x < k.dw; ++x) {
        for (int c = 0; c < 3; ++c) {
          const double want = NaiveSample(src, k.dw, k.dh, x, y, c);
          // Rounded to the nearest level; allow float-vs-double ties to land either way.
          ASSERT_LE(std::abs(dst.at(x, y)[c] - want), 0.5 + 1e-3)
              << k.sw << "x" << k.sh << " -> " << k.dw << "x" << k.dh << " at " << x << "," << y;
        }
      }
    }
  }
}

TEST(ResizeBilinearTest, SameSizeIsIdentity) {
  const Image src = RandomImage(13, 11, 5);
  EXPECT_EQ(ResizeBilinear(src, 13, 11).pixels, src.pixels);
}

TEST(LetterboxTest, PadsOddSplitAndScalesAsYolov8) {
  // 100x39 at 64: r = 0.64, resized 64x25 (24.96 rounds up), vertical padding 39 split 19 top,
  // 20 bottom (round(19.5 - 0.1), round(19.5 + 0.1)).
  Image black(100, 39);
  std::vector<float> chw(3 * 64 * 64, -1.f);
  auto t = LetterboxInto(black, 64, chw.data());
  ASSERT_TRUE(t.ok()) << t.status();
  const float pad = 114.f / 255.f;
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 64; ++y) {
      const bool content = y >= 19 && y < 44;
      for (int x = 0; x < 64; ++x) {
        ASSERT_FLOAT_EQ(chw[(c * 64 + y) * 64 + x], content ? 0.f : pad) << c << "," << y << "," << x;
      }
    }
  }
  EXPECT_DOUBLE_EQ(t->gain, 0.64);
  EXPECT_DOUBLE_EQ(t->pad_x, 0.0);
  EXPECT_DOUBLE_EQ(t->pad_y, 19.0);  // round((64 - 24.96) / 2 - 0.1)
}

TEST(LetterboxTest, ContentIsResizedRgbOverTwoFiftyFive) {
  // 333x517 at 128: r = 128/517, resized to round(82.45) = 82 x 128; dw = 23: left 23.
  const Image src = RandomImage(333, 517, 7);
  std::vector<float> chw(3 * 128 * 128);
  ASSERT_TRUE(LetterboxInto(src, 128, chw.data()).ok());
  const int left = 23;
  for (int c = 0; c < 3; ++c) {
    for (int y = 0; y < 128; ++y) {
      for (int x = 0; x < 128; ++x) {
        const float got = chw[(c * 128 + y) * 128 + x];
        if (x < left || x >= left + 82) {
          ASSERT_FLOAT_EQ(got, 114.f / 255.f);
        } else {
          const double want = NaiveSample(src, 82, 128, x - left, y, c) / 255.0;
          ASSERT_NEAR(got, want, 0.5 / 255.0 + 1e-5) << c << "," << y << "," << x;
        }
      }
    }
  }
}

TEST(LetterboxTest, MapBackRoundTripsAndClips) {
  for (auto [w, h] : {std::pair{333, 517}, std::pair{640, 480}, std::pair{101, 37}}) {
    const LetterboxTransform t = LetterboxTransformFor(w, h, 640);
    const double gain = std::min(640.0 / h, 640.0 / w);
    EXPECT_DOUBLE_EQ(t.gain, gain);
    EXPECT_DOUBLE_EQ(t.pad_x, std::round((640 - w * gain) / 2 - 0.1));
    EXPECT_DOUBLE_EQ(t.pad_y, std::round((640 - h * gain) / 2 - 0.1));
    // A box inside the original, taken forward into model space and back.
    const float ox1 = w * 0.1f, oy1 = h * 0.2f, ox2 = w * 0.7f, oy2 = h * 0.9f;
    float x1 = static_cast<float>(ox1 * gain + t.pad_x), y1 = static_cast<float>(oy1 * gain + t.pad_y);
    float x2 = static_cast<float>(ox2 * gain + t.pad_x), y2 = static_cast<float>(oy2 * gain + t.pad_y);
    MapBoxToOriginal(t, &x1, &y1, &x2, &y2);
    EXPECT_NEAR(x1, ox1, 1e-3);
    EXPECT_NEAR(y1, oy1, 1e-3);
    EXPECT_NEAR(x2, ox2, 1e-3);
    EXPECT_NEAR(y2, oy2, 1e-3);
    // A box covering the whole model input clips to the image.
    float a = -5, b = -5, c = 700, d = 700;
    MapBoxToOriginal(t, &a, &b, &c, &d);
    EXPECT_EQ(a, 0.f);
    EXPECT_EQ(b, 0.f);
    EXPECT_EQ(c, static_cast<float>(w));
    EXPECT_EQ(d, static_cast<float>(h));
  }
}

TEST(LetterboxTest, BatchSliceAndRejections) {
  const Image src = RandomImage(20, 10, 3);
  Tensor batch(DType::kFloat32, {2, 3, 32, 32});
  std::fill(batch.data<float>(), batch.data<float>() + 2 * 3 * 32 * 32, -1.f);
  ASSERT_TRUE(LetterboxIntoBatch(src, batch, 1).ok());
  // Image 0 untouched, image 1 written.
  EXPECT_EQ(batch.data<float>()[0], -1.f);
  EXPECT_EQ(batch.data<float>()[3 * 32 * 32], 114.f / 255.f);  // top-left pad of image 1

  EXPECT_EQ(LetterboxIntoBatch(src, batch, 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LetterboxIntoBatch(src, batch, -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  Tensor wrong_shape(DType::kFloat32, {1, 3, 32, 16});
  EXPECT_EQ(LetterboxIntoBatch(src, wrong_shape, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  Tensor wrong_dtype(DType::kInt64, {1, 3, 32, 32});
  EXPECT_EQ(LetterboxIntoBatch(src, wrong_dtype, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> chw(3 * 32 * 32);
  EXPECT_EQ(LetterboxInto(Image(), 32, chw.data()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LetterboxInto(src, 0, chw.data()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace yolopipe
