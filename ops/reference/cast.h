// Reference Cast kernel (Backend::kReference): attribute `to` (ONNX TensorProto data type code);
// converts among float32, float64, int64, int32, int8, uint8 and bool. Float to integer truncates
// toward zero; NaN becomes 0 and values outside the target range saturate (ONNX leaves these
// undefined; saturating keeps the conversion free of undefined behaviour). Any value to bool is
// "!= 0"; bool to a number is 0 or 1. Inputs must be Layout::kPlain.
#ifndef YOLOPIPE_OPS_REFERENCE_CAST_H_
#define YOLOPIPE_OPS_REFERENCE_CAST_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "ops/kernel.h"

namespace yolopipe::ops {

// True when CastElements supports `dtype` as a source or target.
bool IsCastableDType(DType dtype);

// Converts `count` elements from `src` (of dtype `from`) to `dst` (of dtype `to`). Fails for
// unsupported dtypes.
absl::Status CastElements(DType from, const void* src, DType to, void* dst, int64_t count);

absl::StatusOr<std::unique_ptr<Kernel>> CreateReferenceCast(const KernelSpec& spec);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_REFERENCE_CAST_H_
