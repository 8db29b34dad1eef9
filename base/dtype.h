// Element types and shapes shared by every layer.
#ifndef YOLOPIPE_BASE_DTYPE_H_
#define YOLOPIPE_BASE_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace yolopipe {

// Element types. Activations are kFloat32; kInt64 (and the others) appear in shape arithmetic that
// the importer folds into constants, and in ONNX files.
enum class DType : int {
  kUndefined = 0,
  kFloat32,
  kFloat16,
  kInt64,
  kInt32,
  kInt8,
  kUInt8,
  kBool,
  kFloat64,
};

// Bytes per element (0 for kUndefined).
size_t DTypeSize(DType dtype);
// "float32", "int64", ...
std::string DTypeName(DType dtype);
// ONNX TensorProto.DataType code <-> DType. Unsupported codes give InvalidArgument.
absl::StatusOr<DType> DTypeFromOnnx(int onnx_type);
int DTypeToOnnx(DType dtype);

// A shape; dimensions are >= 0 once bound. kUnknownDim marks a dimension not known yet (a symbolic
// ONNX dimension before the input shape is bound).
using Shape = std::vector<int64_t>;
inline constexpr int64_t kUnknownDim = -1;

// Number of elements; 1 for a scalar (empty shape). Assumes every dimension is known.
int64_t NumElements(const Shape& shape);
// True when every dimension is >= 0.
bool IsFullyKnown(const Shape& shape);
// "(1, 3, 640, 640)"; unknown dimensions print as "?".
std::string ShapeToString(const Shape& shape);

}  // namespace yolopipe

#endif  // YOLOPIPE_BASE_DTYPE_H_
