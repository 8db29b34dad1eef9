#include "runtime/detect/nms.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"

namespace yolopipe {

absl::Status ValidatePostprocessOptions(const PostprocessOptions& options) {
  if (!(options.conf >= 0.f && options.conf < 1.f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("conf must be in [0, 1), got ", options.conf));
  }
  if (!(options.iou >= 0.f && options.iou <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("iou must be in [0, 1], got ", options.iou));
  }
  if (options.max_det < 1) {
    return absl::InvalidArgumentError(absl::StrCat("max_det must be >= 1, got ", options.max_det));
  }
  if (options.max_candidates < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_candidates must be >= 1, got ", options.max_candidates));
  }
  return absl::OkStatus();
}

float BoxIou(const Detection& a, const Detection& b) {
  const float iw = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float ih = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = iw * ih;
  const float uni = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
  if (!(uni > 0.f)) return 0.f;
  return inter / uni;
}

absl::StatusOr<std::vector<Detection>> Postprocess(const float* output, int64_t rows,
                                                   int64_t anchors,
                                                   const PostprocessOptions& options) {
  if (absl::Status s = ValidatePostprocessOptions(options); !s.ok()) return s;
  if (rows < 5 || anchors < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "detection output must have >= 5 rows (4 box + classes) and >= 0 anchors, got (", rows,
        ", ", anchors, ")"));
  }
  const int64_t nc = rows - 4;
  // Best class per anchor, scanning class rows in memory order (rows are contiguous).
  std::vector<float> best(anchors, -INFINITY);
  std::vector<int> best_class(anchors, 0);
  for (int64_t c = 0; c < nc; ++c) {
    const float* row = output + (4 + c) * anchors;
    for (int64_t a = 0; a < anchors; ++a) {
      if (row[a] > best[a]) {
        best[a] = row[a];
        best_class[a] = static_cast<int>(c);
      }
    }
  }
  std::vector<Detection> candidates;
  for (int64_t a = 0; a < anchors; ++a) {
    if (!(best[a] > options.conf)) continue;
    const float cx = output[a], cy = output[anchors + a];
    const float w = output[2 * anchors + a], h = output[3 * anchors + a];
    candidates.push_back(
        {cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, best[a], best_class[a]});
  }
  const auto by_score = [](const Detection& x, const Detection& y) { return x.score > y.score; };
  // stable: equal scores keep anchor order, so the result does not depend on the sort.
  std::stable_sort(candidates.begin(), candidates.end(), by_score);
  if (candidates.size() > static_cast<size_t>(options.max_candidates)) {
    candidates.resize(options.max_candidates);
  }
  std::vector<Detection> kept;
  // Kept boxes grouped by class: a box only competes with its own class.
  std::vector<std::vector<int>> kept_by_class(nc);
  for (const Detection& d : candidates) {
    if (kept.size() >= static_cast<size_t>(options.max_det)) break;
    bool suppressed = false;
    for (int k : kept_by_class[d.class_id]) {
      if (BoxIou(kept[k], d) > options.iou) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    kept_by_class[d.class_id].push_back(static_cast<int>(kept.size()));
    kept.push_back(d);
  }
  return kept;
}

absl::StatusOr<std::vector<Detection>> Postprocess(const Tensor& output,
                                                   const PostprocessOptions& options) {
  const bool ok_shape =
      output.dtype() == DType::kFloat32 &&
      (output.rank() == 2 || (output.rank() == 3 && output.dim(0) == 1));
  if (!ok_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        "detection output must be float32 (4+nc, A) or (1, 4+nc, A), got ",
        DTypeName(output.dtype()), " ", ShapeToString(output.shape())));
  }
  const int r = output.rank();
  return Postprocess(output.data<float>(), output.dim(r - 2), output.dim(r - 1), options);
}

}  // namespace yolopipe
