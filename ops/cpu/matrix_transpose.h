// Cache-blocked transposes of 2-D matrices, the inner loop of the channels-last layout
// conversions and of Transpose when the innermost axis moves. Pure data movement: elements are
// copied bit for bit (NaN payloads included). Single-threaded; callers split the work.
#ifndef YOLOPIPE_OPS_CPU_MATRIX_TRANSPOSE_H_
#define YOLOPIPE_OPS_CPU_MATRIX_TRANSPOSE_H_

#include <cstddef>
#include <cstdint>

namespace yolopipe::ops {

// Writes the transpose of the `rows` x `cols` matrix at `src` (row r starts src_stride elements
// after row r-1) to `dst`: dst[c * dst_stride + r] = src[r * src_stride + c]. Elements are
// `element_size` bytes (any size; 1, 2, 4 and 8 have typed loops); strides are in elements.
// 4-byte elements take 8x8 AVX2 register transposes (when compiled for AVX2) inside 16x16 tiles,
// and 2 to 7 rows going to a dense destination (dst_stride == rows) are interleaved with AVX2
// permutes; the rest runs blocked scalar loops. `src` and `dst` must not overlap.
void TransposeMatrix(const void* src, int64_t src_stride, void* dst, int64_t dst_stride,
                     int64_t rows, int64_t cols, size_t element_size);

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_MATRIX_TRANSPOSE_H_
