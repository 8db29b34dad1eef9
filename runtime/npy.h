// Reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0).
//
// The reader validates everything it reads: magic, version, header length and syntax, dtype
// (little-endian float32, float64, int64, int32, uint8, bool), C order, shape, and that the file
// holds exactly the bytes the header declares. Every error names the file and what is wrong.
#ifndef YOLOPIPE_RUNTIME_NPY_H_
#define YOLOPIPE_RUNTIME_NPY_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/tensor.h"

namespace yolopipe {

// Largest array the reader accepts (bytes of data); larger declared sizes are refused before any
// allocation.
inline constexpr uint64_t kMaxNpyBytes = uint64_t{16} << 30;

// Parses .npy bytes. `source` names the origin in error messages.
absl::StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& source);
absl::StatusOr<Tensor> ReadNpyFile(const std::string& path);

// Serialises a tensor (converted to plain layout) as .npy version 1.0.
absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor);
// Writes atomically: to "<path>.tmp.<pid>", then rename, so a partial file never looks complete.
absl::Status WriteNpyFile(const std::string& path, const Tensor& tensor);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_NPY_H_
