// Images for detection: decoding JPEG/PNG/BMP files (stb_image) into 8-bit RGB, and writing PNGs.
#ifndef YOLOPIPE_RUNTIME_DETECT_IMAGE_H_
#define YOLOPIPE_RUNTIME_DETECT_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace yolopipe {

// An 8-bit RGB image, row-major, 3 bytes per pixel, no row padding: pixel (x, y) channel c is
// pixels[(y * width + x) * 3 + c]. A plain value type (copyable, owns its pixels).
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;

  Image() = default;
  Image(int w, int h) : width(w), height(h), pixels(static_cast<size_t>(w) * h * 3, 0) {}
  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * 3]; }
  const uint8_t* at(int x, int y) const {
    return &pixels[(static_cast<size_t>(y) * width + x) * 3];
  }
};

// Largest accepted image: a side of more than kMaxImageSide pixels, or more than kMaxImagePixels
// pixels in all, is refused before any pixel memory is allocated.
inline constexpr int64_t kMaxImageSide = 32768;
inline constexpr int64_t kMaxImagePixels = int64_t{256} * 1024 * 1024;

// Decodes a JPEG, PNG or BMP held in memory (any channel count; converted to RGB, alpha dropped).
// `name` only labels errors. InvalidArgument naming `name` and stb's reason for a corrupt,
// truncated, unsupported (GIF, TGA, ...) or oversized image. Thread-safe (stb's failure reason is
// thread-local).
absl::StatusOr<Image> DecodeImage(const std::string& bytes, const std::string& name);

// Reads and decodes a file. NotFound when it does not exist, InvalidArgument when it cannot be
// read (a directory, no permission) or decoded; the message names the path.
absl::StatusOr<Image> DecodeImageFile(const std::string& path);

// Writes `image` as a PNG: to "<path>.tmp.<pid>" first, then renamed to `path`, so `path` never
// holds a half-written file. InvalidArgument for an empty image; Internal naming the path when
// writing or renaming fails (the temporary file is removed).
absl::Status WritePng(const std::string& path, const Image& image);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_IMAGE_H_
