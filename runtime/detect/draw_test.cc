#include "runtime/detect/draw.h"

#include "gtest/gtest.h"

namespace yolopipe {
namespace {

Image Gray(int w, int h) {
  Image im(w, h);
  std::fill(im.pixels.begin(), im.pixels.end(), 50);
  return im;
}

bool IsColor(const Image& im, int x, int y, std::array<uint8_t, 3> c) {
  const uint8_t* p = im.at(x, y);
  return p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
}
bool IsGray(const Image& im, int x, int y) { return IsColor(im, x, y, {50, 50, 50}); }

TEST(DrawBoxTest, TwoPixelOutlineInsideTheEdgesOnly) {
  Image im = Gray(100, 80);
  const std::array<uint8_t, 3> red = {255, 0, 0};
  DrawBox(im, 20, 10, 60, 50, red);
  // Edges, two pixels thick, inside [20, 60) x [10, 50).
  EXPECT_TRUE(IsColor(im, 30, 10, red));
  EXPECT_TRUE(IsColor(im, 30, 11, red));
  EXPECT_TRUE(IsGray(im, 30, 12));
  EXPECT_TRUE(IsColor(im, 30, 49, red));
  EXPECT_TRUE(IsColor(im, 30, 48, red));
  EXPECT_TRUE(IsColor(im, 20, 30, red));
  EXPECT_TRUE(IsColor(im, 59, 30, red));
  EXPECT_TRUE(IsGray(im, 57, 30));
  // Interior and outside untouched.
  EXPECT_TRUE(IsGray(im, 40, 30));
  EXPECT_TRUE(IsGray(im, 19, 30));
  EXPECT_TRUE(IsGray(im, 60, 30));
  EXPECT_TRUE(IsGray(im, 30, 9));
  EXPECT_TRUE(IsGray(im, 90, 70));
  int changed = 0;
  for (int y = 0; y < 80; ++y) {
    for (int x = 0; x < 100; ++x) changed += !IsGray(im, x, y);
  }
  // 40x40 box with a 2-px ring: 40*40 - 36*36 pixels.
  EXPECT_EQ(changed, 40 * 40 - 36 * 36);
}

TEST(DrawBoxTest, ClipsBoxesOutsideTheImage) {
  Image im = Gray(10, 10);
  DrawBox(im, -20, -20, 5, 5, {0, 255, 0});
  EXPECT_TRUE(IsColor(im, 4, 0, {0, 255, 0}));
  EXPECT_TRUE(IsGray(im, 2, 2));
  DrawBox(im, 100, 100, 200, 200, {0, 0, 255});  // entirely outside: nothing, no crash
  DrawBox(im, NAN, 0, 3, 3, {0, 0, 255});
}

TEST(DrawLabelTest, DrawsTextInsideItsBackgroundOnly) {
  Image im = Gray(120, 40);
  const std::array<uint8_t, 3> bg = {0, 0, 200}, fg = {255, 255, 255};
  DrawLabel(im, 5, 5, "cat 0.87", bg, fg);
  int text = 0, background = 0;
  for (int y = 0; y < 40; ++y) {
    for (int x = 0; x < 120; ++x) {
      if (IsColor(im, x, y, fg)) {
        ++text;
        EXPECT_GE(x, 5);
        EXPECT_GE(y, 5);
      } else if (IsColor(im, x, y, bg)) {
        ++background;
      }
    }
  }
  EXPECT_GT(text, 20);
  EXPECT_GT(background, text);
  EXPECT_TRUE(IsGray(im, 110, 35));
}

TEST(DrawLabelTest, NonAsciiAndControlBytesAreDrawnAsQuestionMarks) {
  Image a = Gray(120, 40), b = Gray(120, 40);
  DrawLabel(a, 2, 2, "\xc3\xa9t\x01\n\x7f", {0, 0, 0}, {255, 255, 255});
  DrawLabel(b, 2, 2, "??t???", {0, 0, 0}, {255, 255, 255});
  EXPECT_EQ(a.pixels, b.pixels);
}

TEST(DrawDetectionTest, OutlineAndLabelInClassColour) {
  Image im = Gray(200, 200);
  Detection d{50, 60, 150, 160, 0.87f, 3};
  DrawDetection(im, d, "dog");
  const std::array<uint8_t, 3> c = ClassColor(3);
  EXPECT_TRUE(IsColor(im, 100, 159, c));   // bottom edge
  EXPECT_TRUE(IsColor(im, 149, 100, c));   // right edge
  EXPECT_TRUE(IsGray(im, 100, 110));       // interior
  EXPECT_TRUE(IsGray(im, 10, 190));        // far away
  // Label above the box: something in the class colour in the rows just above y = 60.
  bool label = false;
  for (int y = 45; y < 60; ++y) label |= IsColor(im, 52, y, c);
  EXPECT_TRUE(label);
  EXPECT_EQ(DetectionLabel("dog", 0.87f), "dog 0.87");
  EXPECT_NE(ClassColor(0), ClassColor(1));
  EXPECT_EQ(ClassColor(-1), ClassColor(19));
}

}  // namespace
}  // namespace yolopipe
