#include "tests/model_compare.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace yolopipe::testing {

std::string CompareDetections(const Tensor& got, const Tensor& want, double box_atol, double rtol,
                              double prob_atol) {
  if (got.shape() != want.shape() || got.dtype() != DType::kFloat32 ||
      want.dtype() != DType::kFloat32) {
    return absl::StrCat("shape/dtype mismatch: got ", got.DebugString(), ", want ",
                        want.DebugString());
  }
  const int64_t batch = got.dim(0), rows = got.dim(1), anchors = got.dim(2);
  double worst_excess = 0.0;
  std::string worst;
  int64_t bad = 0;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t a = 0; a < anchors; ++a) {
        const int64_t i = (b * rows + r) * anchors + a;
        const double g = got.data<float>()[i], w = want.data<float>()[i];
        const double tol = r < 4 ? box_atol + rtol * std::fabs(w) : prob_atol;
        const double diff = std::fabs(g - w);
        if (!(diff <= tol)) {  // also catches NaN
          ++bad;
          if (!(diff - tol <= worst_excess)) {
            worst_excess = std::isnan(diff) ? std::numeric_limits<double>::infinity() : diff - tol;
            worst = absl::StrCat("[", b, ", ", r, ", ", a, "] got ", g, " want ", w,
                                 " (tolerance ", tol, ")");
          }
        }
      }
    }
  }
  if (bad == 0) return "";
  return absl::StrCat(bad, " elements out of tolerance; worst ", worst);
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (int64_t i = 0; i < a.num_elements(); ++i) {
    m = std::max(m, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  }
  return m;
}

}  // namespace yolopipe::testing
