// YOLOv8 post-processing (YOLOV8.md "Post-processing"): confidence filter, best class per anchor,
// cxcywh -> xyxy, candidate cap, class-aware non-maximum suppression, max_det.
#ifndef YOLOPIPE_RUNTIME_DETECT_NMS_H_
#define YOLOPIPE_RUNTIME_DETECT_NMS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"

namespace yolopipe {

// One detected object; coordinates in the pixels of whatever space the boxes were given in
// (model input until MapBoxToOriginal).
struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int class_id = 0;
};

struct PostprocessOptions {
  float conf = 0.25f;            // keep anchors whose best class score is > conf; in [0, 1)
  float iou = 0.7f;              // suppress a box whose IoU with a kept box of its class is > iou
  int max_det = 300;             // at most this many detections (>= 1)
  int max_candidates = 30000;    // at most this many boxes (best scores) enter NMS (>= 1)
};

// InvalidArgument naming the field when an option is out of range (NaN included).
absl::Status ValidatePostprocessOptions(const PostprocessOptions& options);

// IoU of two xyxy boxes: intersection / union with widths and heights of the intersection
// clamped at 0; 0 when the union is not positive (zero-area boxes never suppress anything).
float BoxIou(const Detection& a, const Detection& b);

// Post-processes one image's model output: `rows` (4 + nc) rows of `anchors` floats each
// (row-major, rows 0..3 = cx, cy, w, h; row 4 + c = class c's score). Best class per anchor
// (the lowest class id on ties); anchors with score > conf; the max_candidates best (ties keep
// anchor order); greedy NMS per class in descending score order (same result as YOLOv8's
// "offset boxes by class x 7680, one NMS", without the offset's rounding); the max_det best.
// Result sorted by score descending (ties: anchor order). rows must be >= 5, anchors >= 0.
absl::StatusOr<std::vector<Detection>> Postprocess(const float* output, int64_t rows,
                                                   int64_t anchors,
                                                   const PostprocessOptions& options);

// The same for a float32 tensor (4 + nc, A) or (1, 4 + nc, A). InvalidArgument naming the dtype
// and shape otherwise.
absl::StatusOr<std::vector<Detection>> Postprocess(const Tensor& output,
                                                   const PostprocessOptions& options);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_NMS_H_
