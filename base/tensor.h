// Tensor: a typed, shaped view of a host memory buffer.
#ifndef YOLOPIPE_BASE_TENSOR_H_
#define YOLOPIPE_BASE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/dtype.h"

namespace yolopipe {

// Physical order of a 4-D activation's elements. The shape is always logical (N, C, H, W); kNHWC
// stores the same tensor channels-last, which is what oneDNN's convolutions prefer. Tensors of any
// other rank are always kPlain (row-major in shape order).
enum class Layout : int { kPlain = 0, kNHWC = 1 };

std::string LayoutName(Layout layout);

// A contiguous, 64-byte-aligned block of host memory, shared by the tensors that view it.
class Buffer {
 public:
  // Allocates `bytes` zero-initialised bytes.
  explicit Buffer(size_t bytes);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

// A dense tensor on the host. Copying a Tensor copies the view, not the data (shared ownership of
// the Buffer). Not thread-safe for concurrent writes; concurrent reads are fine.
class Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled tensor.
  Tensor(DType dtype, Shape shape, Layout layout = Layout::kPlain);
  // Views `bytes_needed` bytes of `buffer` starting at `offset` bytes.
  Tensor(std::shared_ptr<Buffer> buffer, size_t offset, DType dtype, Shape shape,
         Layout layout = Layout::kPlain);

  // Builds a kPlain tensor from values (copies them).
  static Tensor FromFloats(const Shape& shape, const std::vector<float>& values);
  static Tensor FromInt64s(const Shape& shape, const std::vector<int64_t>& values);
  static Tensor ScalarFloat(float v);
  static Tensor ScalarInt64(int64_t v);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  Layout layout() const { return layout_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[i]; }
  int64_t num_elements() const { return NumElements(shape_); }
  size_t bytes() const { return static_cast<size_t>(num_elements()) * DTypeSize(dtype_); }

  void* raw_data() { return static_cast<char*>(buffer_->data()) + offset_; }
  const void* raw_data() const { return static_cast<const char*>(buffer_->data()) + offset_; }
  template <typename T>
  T* data() { return static_cast<T*>(raw_data()); }
  template <typename T>
  const T* data() const { return static_cast<const T*>(raw_data()); }

  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
  size_t offset() const { return offset_; }

  // A deep copy with its own buffer (same layout).
  Tensor Clone() const;
  // Same data in `layout` (a copy when the layout differs; 4-D float32 only for kNHWC).
  absl::StatusOr<Tensor> ToLayout(Layout layout) const;
  // Reinterprets the same data under another shape with the same element count (kPlain only).
  absl::StatusOr<Tensor> Reshaped(const Shape& shape) const;

  // Reads element i (in physical order) converted to double / int64; for folding and tests.
  double GetAsDouble(int64_t i) const;
  int64_t GetAsInt64(int64_t i) const;

  // "float32(1, 3, 640, 640)" (+ " nhwc" when channels-last).
  std::string DebugString() const;

 private:
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  Layout layout_ = Layout::kPlain;
};

// Copies a 4-D float32 `src` into `dst`, which has the same shape and possibly another layout
// (plain <-> channels-last). No allocation.
void ConvertLayoutInto(const Tensor& src, Tensor& dst);

// True when both tensors have the same dtype, shape, layout and bytes.
bool BitwiseEqual(const Tensor& a, const Tensor& b);

}  // namespace yolopipe

#endif  // YOLOPIPE_BASE_TENSOR_H_
