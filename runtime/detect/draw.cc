#include "runtime/detect/draw.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_format.h"
#include "stb/stb_easy_font.h"

namespace yolopipe {
namespace {

void FillRect(Image& image, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> color) {
  x0 = std::max(x0, 0);
  y0 = std::max(y0, 0);
  x1 = std::min(x1, image.width);
  y1 = std::min(y1, image.height);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = image.at(x, y);
      p[0] = color[0];
      p[1] = color[1];
      p[2] = color[2];
    }
  }
}

int ToPixel(float v) {
  if (!std::isfinite(v)) return 0;
  return static_cast<int>(std::lround(std::clamp(v, -1e6f, 1e6f)));
}

}  // namespace

std::array<uint8_t, 3> ClassColor(int class_id) {
  // Ultralytics' palette.
  static constexpr uint8_t kPalette[20][3] = {
      {255, 56, 56},  {255, 157, 151}, {255, 112, 31}, {255, 178, 29}, {207, 210, 49},
      {72, 249, 10},  {146, 204, 23},  {61, 219, 134}, {26, 147, 52},  {0, 212, 187},
      {44, 153, 168}, {0, 194, 255},   {52, 69, 147},  {100, 115, 255}, {0, 24, 236},
      {132, 56, 255}, {82, 0, 133},    {203, 56, 255}, {255, 149, 200}, {255, 55, 199}};
  const int i = ((class_id % 20) + 20) % 20;
  return {kPalette[i][0], kPalette[i][1], kPalette[i][2]};
}

void DrawBox(Image& image, float x1, float y1, float x2, float y2, std::array<uint8_t, 3> color,
             int thickness) {
  int l = ToPixel(std::min(x1, x2)), r = ToPixel(std::max(x1, x2));
  int t = ToPixel(std::min(y1, y2)), b = ToPixel(std::max(y1, y2));
  if (r <= l) r = l + 1;
  if (b <= t) b = t + 1;
  FillRect(image, l, t, r, std::min(t + thickness, b), color);   // top
  FillRect(image, l, std::max(b - thickness, t), r, b, color);   // bottom
  FillRect(image, l, t, std::min(l + thickness, r), b, color);   // left
  FillRect(image, std::max(r - thickness, l), t, r, b, color);   // right
}

void DrawLabel(Image& image, int x, int y, const std::string& text,
               std::array<uint8_t, 3> background, std::array<uint8_t, 3> text_color, int scale) {
  if (text.empty()) return;
  scale = std::max(scale, 1);
  // stb_easy_font indexes its glyph table by (char - 32) and has glyphs for ' '..'~' only: any
  // other byte (UTF-8 class names, control characters) would read outside the table.
  std::string buf = text;
  for (char& ch : buf) {
    if (ch < 32 || ch > 126) ch = '?';
  }
  const int w = stb_easy_font_width(buf.data());
  const int h = stb_easy_font_height(buf.data());
  FillRect(image, x, y, x + (w + 2) * scale, y + (h + 2) * scale, background);
  // Each quad is 4 vertices of 16 bytes (x, y, z floats + RGBA); a glyph has at most ~12 quads.
  std::vector<char> vertices(text.size() * 1024 + 1024);
  unsigned char rgba[4] = {255, 255, 255, 255};
  const int quads =
      stb_easy_font_print(1, 1, buf.data(), rgba, vertices.data(), static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(vertices.data() + q * 64);
    const float* v2 = reinterpret_cast<const float*>(vertices.data() + q * 64 + 32);
    // Quads are axis-aligned rectangles: vertex 0 top-left, vertex 2 bottom-right.
    const int qx0 = x + static_cast<int>(std::lround(v0[0] * scale));
    const int qy0 = y + static_cast<int>(std::lround(v0[1] * scale));
    const int qx1 = x + static_cast<int>(std::lround(v2[0] * scale));
    const int qy1 = y + static_cast<int>(std::lround(v2[1] * scale));
    FillRect(image, qx0, qy0, qx1, qy1, text_color);
  }
}

std::string DetectionLabel(const std::string& class_name, float score) {
  return absl::StrFormat("%s %.2f", class_name, score);
}

void DrawDetection(Image& image, const Detection& d, const std::string& class_name) {
  const std::array<uint8_t, 3> color = ClassColor(d.class_id);
  DrawBox(image, d.x1, d.y1, d.x2, d.y2, color);
  const int scale = std::min(image.width, image.height) >= 640 ? 2 : 1;
  const std::string label = DetectionLabel(class_name, d.score);
  // One line of stb_easy_font text is 12 units high at most (its line advance).
  const int label_h = (12 + 2) * scale;
  const int left = ToPixel(std::min(d.x1, d.x2));
  const int top = ToPixel(std::min(d.y1, d.y2));
  const int y = top - label_h >= 0 ? top - label_h : top;
  DrawLabel(image, left, y, label, color, {255, 255, 255}, scale);
}

}  // namespace yolopipe
