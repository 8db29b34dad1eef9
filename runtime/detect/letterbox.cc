#include "runtime/detect/letterbox.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace yolopipe {
namespace {

constexpr uint8_t kPadValue = 114;

// For each destination index: the two source indices and the weight of the second, following
// OpenCV's INTER_LINEAR coordinate mapping and border handling.
struct Tap {
  int i0, i1;
  float f;
};

std::vector<Tap> Taps(int src, int dst) {
  std::vector<Tap> taps(dst);
  const double scale = static_cast<double>(src) / dst;
  for (int d = 0; d < dst; ++d) {
    const double s = (d + 0.5) * scale - 0.5;
    int i0 = static_cast<int>(std::floor(s));
    float f = static_cast<float>(s - i0);
    if (i0 < 0) {
      i0 = 0;
      f = 0.f;
    }
    if (i0 >= src - 1) {
      i0 = src - 1;
      f = 0.f;
    }
    taps[d] = {i0, std::min(i0 + 1, src - 1), f};
  }
  return taps;
}

}  // namespace

LetterboxTransform LetterboxTransformFor(int width, int height, int64_t size) {
  LetterboxTransform t;
  t.original_width = width;
  t.original_height = height;
  const double s = static_cast<double>(size);
  t.gain = std::min(s / height, s / width);
  t.pad_x = std::round((s - width * t.gain) / 2 - 0.1);
  t.pad_y = std::round((s - height * t.gain) / 2 - 0.1);
  return t;
}

Image ResizeBilinear(const Image& src, int dst_w, int dst_h) {
  Image dst(dst_w, dst_h);
  const std::vector<Tap> xs = Taps(src.width, dst_w);
  const std::vector<Tap> ys = Taps(src.height, dst_h);
  for (int y = 0; y < dst_h; ++y) {
    const Tap& ty = ys[y];
    const uint8_t* row0 = src.at(0, ty.i0);
    const uint8_t* row1 = src.at(0, ty.i1);
    uint8_t* out = dst.at(0, y);
    for (int x = 0; x < dst_w; ++x) {
      const Tap& tx = xs[x];
      for (int c = 0; c < 3; ++c) {
        const float top = row0[tx.i0 * 3 + c] * (1.f - tx.f) + row0[tx.i1 * 3 + c] * tx.f;
        const float bottom = row1[tx.i0 * 3 + c] * (1.f - tx.f) + row1[tx.i1 * 3 + c] * tx.f;
        const float v = top * (1.f - ty.f) + bottom * ty.f;
        out[x * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return dst;
}

absl::StatusOr<LetterboxTransform> LetterboxInto(const Image& image, int64_t size, float* chw) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat("cannot letterbox an empty or malformed ",
                                                   image.width, "x", image.height, " image"));
  }
  if (size < 1 || size > kMaxImageSide) {
    return absl::InvalidArgumentError(absl::StrCat("letterbox size must be in [1, ", kMaxImageSide,
                                                   "], got ", size));
  }
  const double r = std::min(static_cast<double>(size) / image.height,
                            static_cast<double>(size) / image.width);
  const int new_w = std::max(1, static_cast<int>(std::lround(image.width * r)));
  const int new_h = std::max(1, static_cast<int>(std::lround(image.height * r)));
  const double dw = (size - new_w) / 2.0, dh = (size - new_h) / 2.0;
  const int left = static_cast<int>(std::lround(dw - 0.1));
  const int top = static_cast<int>(std::lround(dh - 0.1));

  Image resized_storage;
  const Image* resized = &image;
  if (new_w != image.width || new_h != image.height) {
    resized_storage = ResizeBilinear(image, new_w, new_h);
    resized = &resized_storage;
  }
  const int64_t plane = size * size;
  const float pad = kPadValue / 255.f;
  std::fill(chw, chw + 3 * plane, pad);
  for (int y = 0; y < new_h; ++y) {
    const uint8_t* src = resized->at(0, y);
    const int64_t row = (top + y) * size + left;
    for (int x = 0; x < new_w; ++x) {
      for (int c = 0; c < 3; ++c) chw[c * plane + row + x] = src[x * 3 + c] / 255.f;
    }
  }
  return LetterboxTransformFor(image.width, image.height, size);
}

absl::StatusOr<LetterboxTransform> LetterboxIntoBatch(const Image& image, Tensor& batch,
                                                      int64_t index) {
  if (batch.dtype() != DType::kFloat32 || batch.rank() != 4 || batch.dim(1) != 3 ||
      batch.dim(2) != batch.dim(3)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "letterbox batch must be float32 (B, 3, S, S), got ", DTypeName(batch.dtype()), " ",
        ShapeToString(batch.shape())));
  }
  if (index < 0 || index >= batch.dim(0)) {
    return absl::InvalidArgumentError(absl::StrCat("letterbox index ", index,
                                                   " out of range for batch ",
                                                   ShapeToString(batch.shape())));
  }
  const int64_t size = batch.dim(2);
  return LetterboxInto(image, size, batch.data<float>() + index * 3 * size * size);
}

void MapBoxToOriginal(const LetterboxTransform& t, float* x1, float* y1, float* x2, float* y2) {
  const auto map = [&](float v, double pad, int limit) {
    const double m = (v - pad) / t.gain;
    return static_cast<float>(std::clamp(m, 0.0, static_cast<double>(limit)));
  };
  *x1 = map(*x1, t.pad_x, t.original_width);
  *x2 = map(*x2, t.pad_x, t.original_width);
  *y1 = map(*y1, t.pad_y, t.original_height);
  *y2 = map(*y2, t.pad_y, t.original_height);
}

}  // namespace yolopipe
