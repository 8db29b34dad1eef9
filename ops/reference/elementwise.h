// Reference elementwise kernels (Backend::kReference), ONNX semantics:
//   Add, Sub, Mul, Div  numpy-style multidirectional broadcasting; float32, float64, int64, int32
//                       (integer Div truncates toward zero; division by zero is a Run error;
//                       integer overflow wraps)
//   Equal               same broadcasting; those dtypes and bool; output bool
//   Where               (condition bool, X, Y) broadcast together; X and Y of any one dtype
//   Sigmoid, Floor, Ceil  float32, float64
// Inputs must be Layout::kPlain with known shapes.
#ifndef YOLOPIPE_OPS_REFERENCE_ELEMENTWISE_H_
#define YOLOPIPE_OPS_REFERENCE_ELEMENTWISE_H_

#include <cmath>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

enum class BinaryOp { kAdd, kSub, kMul, kDiv, kEqual };

// out = a <op> b over row-major data, broadcasting a_shape and b_shape to out_shape (which must be
// their broadcast). a and b have `dtype`; out has `dtype`, or kBool (one byte per element) for
// kEqual. Fails on an unsupported dtype and on integer division by zero.
absl::Status ComputeBinary(BinaryOp op, DType dtype, const void* a, const Shape& a_shape,
                           const void* b, const Shape& b_shape, void* out, const Shape& out_shape);

// Numerically stable logistic function.
inline float Sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}
inline double Sigmoid(double x) {
  if (x >= 0.0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// Factories (also registered with the KernelRegistry under kReference).
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceBinary(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceUnary(const KernelSpec& spec);
absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceWhere(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_ELEMENTWISE_H_
