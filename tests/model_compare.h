// Helpers for end-to-end comparisons of model outputs.
#ifndef YOLOPIPE_TESTS_MODEL_COMPARE_H_
#define YOLOPIPE_TESTS_MODEL_COMPARE_H_

#include <string>

#include "base/tensor.h"

namespace yolopipe::testing {

// Compares YOLOv8 outputs (B, 4+nc, A): the 4 box rows in pixels with `box_atol` + `rtol`*|ref|,
// the class-probability rows with `prob_atol`. Returns "" when within tolerance, otherwise a
// description of the worst element (index, got, want).
std::string CompareDetections(const Tensor& got, const Tensor& want, double box_atol, double rtol,
                              double prob_atol);

// Largest absolute difference between two same-shaped float tensors (infinity on shape mismatch).
double MaxAbsDiff(const Tensor& a, const Tensor& b);

}  // namespace yolopipe::testing

#endif  // YOLOPIPE_TESTS_MODEL_COMPARE_H_
