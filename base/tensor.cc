#include "base/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {

std::string LayoutName(Layout layout) {
  return layout == Layout::kNHWC ? "nhwc" : "plain";
}

Buffer::Buffer(size_t bytes) : size_(bytes) {
  size_t rounded = ((bytes + 63) / 64) * 64;
  if (rounded == 0) rounded = 64;
  data_ = std::aligned_alloc(64, rounded);
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, rounded);
}

Buffer::~Buffer() { std::free(data_); }

Tensor::Tensor(DType dtype, Shape shape, Layout layout)
    : dtype_(dtype), shape_(std::move(shape)), layout_(layout) {
  buffer_ = std::make_shared<Buffer>(bytes());
}

Tensor::Tensor(std::shared_ptr<Buffer> buffer, size_t offset, DType dtype, Shape shape,
               Layout layout)
    : buffer_(std::move(buffer)),
      offset_(offset),
      dtype_(dtype),
      shape_(std::move(shape)),
      layout_(layout) {}

Tensor Tensor::FromFloats(const Shape& shape, const std::vector<float>& values) {
  Tensor t(DType::kFloat32, shape);
  // memcpy's pointers must be valid even for 0 bytes (an empty tensor has no data pointer).
  const size_t n = std::min(t.bytes(), values.size() * sizeof(float));
  if (n > 0) std::memcpy(t.raw_data(), values.data(), n);
  return t;
}

Tensor Tensor::FromInt64s(const Shape& shape, const std::vector<int64_t>& values) {
  Tensor t(DType::kInt64, shape);
  const size_t n = std::min(t.bytes(), values.size() * sizeof(int64_t));
  if (n > 0) std::memcpy(t.raw_data(), values.data(), n);
  return t;
}

Tensor Tensor::ScalarFloat(float v) { return FromFloats({}, {v}); }
Tensor Tensor::ScalarInt64(int64_t v) { return FromInt64s({}, {v}); }

Tensor Tensor::Clone() const {
  Tensor t(dtype_, shape_, layout_);
  if (bytes() > 0) std::memcpy(t.raw_data(), raw_data(), bytes());
  return t;
}

absl::StatusOr<Tensor> Tensor::ToLayout(Layout layout) const {
  if (layout == layout_) return *this;
  if (rank() != 4 || dtype_ != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat("cannot convert ", DebugString(), " to ",
                                                   LayoutName(layout)));
  }
  Tensor out(dtype_, shape_, layout);
  ConvertLayoutInto(*this, out);
  return out;
}

absl::StatusOr<Tensor> Tensor::Reshaped(const Shape& shape) const {
  if (NumElements(shape) != num_elements() || !IsFullyKnown(shape)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot reshape ", DebugString(), " to ",
                                                   ShapeToString(shape)));
  }
  if (layout_ != Layout::kPlain) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape channels-last tensor ", DebugString()));
  }
  return Tensor(buffer_, offset_, dtype_, shape, Layout::kPlain);
}

double Tensor::GetAsDouble(int64_t i) const {
  switch (dtype_) {
    case DType::kFloat32: return data<float>()[i];
    case DType::kFloat64: return data<double>()[i];
    case DType::kInt64: return static_cast<double>(data<int64_t>()[i]);
    case DType::kInt32: return data<int32_t>()[i];
    case DType::kInt8: return data<int8_t>()[i];
    case DType::kUInt8: return data<uint8_t>()[i];
    case DType::kBool: return data<uint8_t>()[i] ? 1.0 : 0.0;
    default: return 0.0;
  }
}

int64_t Tensor::GetAsInt64(int64_t i) const {
  switch (dtype_) {
    case DType::kInt64: return data<int64_t>()[i];
    case DType::kInt32: return data<int32_t>()[i];
    case DType::kInt8: return data<int8_t>()[i];
    case DType::kUInt8: return data<uint8_t>()[i];
    case DType::kBool: return data<uint8_t>()[i] ? 1 : 0;
    case DType::kFloat32: return static_cast<int64_t>(data<float>()[i]);
    case DType::kFloat64: return static_cast<int64_t>(data<double>()[i]);
    default: return 0;
  }
}

std::string Tensor::DebugString() const {
  return absl::StrCat(DTypeName(dtype_), ShapeToString(shape_),
                      layout_ == Layout::kNHWC ? " nhwc" : "");
}

void ConvertLayoutInto(const Tensor& src, Tensor& dst) {
  const int64_t n = src.dim(0), c = src.dim(1), hw = src.dim(2) * src.dim(3);
  const float* s = src.data<float>();
  float* d = dst.data<float>();
  if (src.layout() == dst.layout()) {
    std::memcpy(d, s, src.bytes());
    return;
  }
  for (int64_t b = 0; b < n; ++b) {
    const float* sb = s + b * c * hw;
    float* db = d + b * c * hw;
    if (dst.layout() == Layout::kNHWC) {
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t p = 0; p < hw; ++p) db[p * c + ch] = sb[ch * hw + p];
      }
    } else {
      for (int64_t p = 0; p < hw; ++p) {
        for (int64_t ch = 0; ch < c; ++ch) db[ch * hw + p] = sb[p * c + ch];
      }
    }
  }
}

bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape() || a.layout() != b.layout()) return false;
  if (a.bytes() == 0) return true;
  return std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

}  // namespace yolopipe
