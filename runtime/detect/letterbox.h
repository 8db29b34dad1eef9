// YOLOv8 pre-processing (YOLOV8.md "Pre-processing (letterbox)") and the mapping of boxes back
// to the original image ("Post-processing").
#ifndef YOLOPIPE_RUNTIME_DETECT_LETTERBOX_H_
#define YOLOPIPE_RUNTIME_DETECT_LETTERBOX_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "base/tensor.h"
#include "runtime/detect/image.h"

namespace yolopipe {

// How a letterboxed image relates to its original, as YOLOV8.md's post-processing computes it:
// gain = min(S/h0, S/w0); pad_x = round((S - w0*gain)/2 - 0.1); pad_y likewise. A point x in
// the S x S model input is (x - pad_x) / gain in the original.
struct LetterboxTransform {
  double gain = 1.0;
  double pad_x = 0.0;
  double pad_y = 0.0;
  int original_width = 0;
  int original_height = 0;
};

// The transform for an image of `width` x `height` letterboxed to `size` x `size`.
LetterboxTransform LetterboxTransformFor(int width, int height, int64_t size);

// Bilinear resize with OpenCV's INTER_LINEAR sampling (half-pixel centres): destination pixel
// dx samples source x = (dx + 0.5) * src_w / dst_w - 0.5, clamped to the edge pixels (a sample
// left of pixel 0 takes pixel 0, right of the last takes the last); the same for y. Values are
// computed in float and rounded to the nearest integer, so they can differ from OpenCV's
// fixed-point arithmetic by at most 1 level. dst_w, dst_h >= 1.
Image ResizeBilinear(const Image& src, int dst_w, int dst_h);

// Letterboxes `image` into `chw`, a (3, size, size) float32 slice (R, G, B planes, values / 255):
// r = min(size/h, size/w); resized to (round(w*r), round(h*r)) with ResizeBilinear (not at all
// when that is the original size); padded with 114 split as left = round(dw - 0.1),
// right = round(dw + 0.1) with dw half the horizontal padding (same for top/bottom).
// `chw` must hold 3*size*size floats. InvalidArgument for an empty image or size < 1.
absl::StatusOr<LetterboxTransform> LetterboxInto(const Image& image, int64_t size, float* chw);

// The same into image `index` of `batch`, a float32 (B, 3, size, size) tensor. InvalidArgument
// naming the shapes when `batch` is not such a tensor or `index` is out of range.
absl::StatusOr<LetterboxTransform> LetterboxIntoBatch(const Image& image, Tensor& batch,
                                                      int64_t index);

// A box in model-input pixels (x1, y1, x2, y2) mapped back to the original image: pad
// subtracted, divided by gain, x clipped to [0, width] and y to [0, height].
void MapBoxToOriginal(const LetterboxTransform& t, float* x1, float* y1, float* x2, float* y2);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_LETTERBOX_H_
