// Drawing detections onto images: box outlines and "name 0.87" labels (stb_easy_font).
#ifndef YOLOPIPE_RUNTIME_DETECT_DRAW_H_
#define YOLOPIPE_RUNTIME_DETECT_DRAW_H_

#include <array>
#include <cstdint>
#include <string>

#include "runtime/detect/image.h"
#include "runtime/detect/nms.h"

namespace yolopipe {

// A fixed, distinct colour per class id (cycles through a 20-colour palette; any int accepted).
std::array<uint8_t, 3> ClassColor(int class_id);

// Draws the outline of the box (x1, y1, x2, y2 in pixels, rounded to the nearest pixel) in
// `color`, `thickness` pixels wide, inside the box edges; parts outside the image are clipped.
void DrawBox(Image& image, float x1, float y1, float x2, float y2, std::array<uint8_t, 3> color,
             int thickness = 2);

// Draws `text` (printable ASCII; other bytes are drawn as '?'; stb_easy_font's glyphs, `scale` pixels per font unit) in `text_color` on a
// filled `background` rectangle whose top-left corner is (x, y); clipped to the image.
void DrawLabel(Image& image, int x, int y, const std::string& text,
               std::array<uint8_t, 3> background, std::array<uint8_t, 3> text_color,
               int scale = 1);

// "name 0.87"
std::string DetectionLabel(const std::string& class_name, float score);

// Draws a detection: a 2-pixel outline in ClassColor(class_id) and its label just above the box
// (inside it when there is no room above). Font scale 2 for images of at least 640 pixels on the
// shorter side, else 1.
void DrawDetection(Image& image, const Detection& d, const std::string& class_name);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_DRAW_H_
