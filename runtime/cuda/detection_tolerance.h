// Test helper (testonly): compares a (batch, 4 + classes, anchors) detection output computed on a
// GPU with the CPU float32 reference, with tolerances for the precision.
#ifndef YOLOPIPE_RUNTIME_CUDA_DETECTION_TOLERANCE_H_
#define YOLOPIPE_RUNTIME_CUDA_DETECTION_TOLERANCE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "base/tensor.h"
#include "gtest/gtest.h"

namespace yolopipe::gpu_testing {

// Tolerances of the GPU result against the CPU Session (float32 reference). fp16 activations
// and weights through ~70 layers: scores within 2e-3; boxes within half a pixel plus 2e-3 of the
// coordinate, since the DFL distances (fp16, up to 16 cells) are scaled by strides up to 32, so
// the error grows with the image (the host emulator of the fp16 plan, lowering_emulator_test,
// measures 0.09 px at 64x64 and up to 0.47 px at 640x640: within 0.5 + 2e-3 x 640 = 1.78).
struct Tolerance {
  double box_relative;  // boxes: |got - want| <= box_relative * max(1, |want|) + box_abs
  double box_abs;
  double score_abs;
};
inline constexpr Tolerance kFloat32Tolerance = {1e-3, 0.0, 1e-4};
inline constexpr Tolerance kFloat16Tolerance = {2e-3, 0.5, 2e-3};

// Counts elements outside the tolerance; reports the worst ones.
inline void ExpectDetectionsNear(const Tensor& got, const Tensor& want, const Tolerance& tol) {
  ASSERT_EQ(got.shape(), want.shape());
  ASSERT_EQ(got.shape().size(), 3u);
  const int64_t batch = got.shape()[0], rows = got.shape()[1], anchors = got.shape()[2];
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  int64_t bad = 0;
  double worst_box = 0.0, worst_score = 0.0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t a = 0; a < anchors; ++a) {
        const int64_t i = (b * rows + r) * anchors + a;
        const double diff = std::fabs(static_cast<double>(g[i]) - w[i]);
        if (!std::isfinite(g[i])) ++bad;
        if (r < 4) {
          worst_box = std::max(worst_box, diff);
          if (diff >
              tol.box_relative * std::max(1.0, std::fabs(static_cast<double>(w[i]))) + tol.box_abs)
            ++bad;
        } else {
          worst_score = std::max(worst_score, diff);
          if (diff > tol.score_abs) ++bad;
        }
      }
    }
  }
  EXPECT_EQ(bad, 0) << "worst box error " << worst_box << " px, worst score error " << worst_score;
}

}  // namespace yolopipe::gpu_testing

#endif  // YOLOPIPE_RUNTIME_CUDA_DETECTION_TOLERANCE_H_
