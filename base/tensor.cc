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
  std::memcpy(t.raw_data(), values.data(), std::min(t.bytes(), values.size() * sizeof(float)));
  return t;
}

Tensor Tensor::FromInt64s(const Shape& shape, const std::vector<int64_t>& values) {
  Tensor t(DType::kInt64, shape);
  std::memcpy(t.raw_data(), values.data(), std::min(t.bytes(), values.size() * sizeof(int64_t)));
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
  const int64_t n = shape_[0], c = shape_[1], h = shape_[2], w = shape_[3];
  Tensor out(dtype_, shape_, layout);
  const float* src = data<float>();
  float* dst = out.data<float>();
  const int64_t hw = h * w;
  if (layout == Layout::kNHWC) {  // plain -> nhwc
    for (int64_t b = 0; b < n; ++b) {
      const float* s = src + b * c * hw;
      float* d = dst + b * c * hw;
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t p = 0; p < hw; ++p) d[p * c + ch] = s[ch * hw + p];
      }
    }
  } else {  // nhwc -> plain
    for (int64_t b = 0; b < n; ++b) {
      const float* s = src + b * c * hw;
      float* d = dst + b * c * hw;
      for (int64_t p = 0; p < hw; ++p) {
        for (int64_t ch = 0; ch < c; ++ch) d[ch * hw + p] = s[p * c + ch];
      }
    }
  }
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

bool BitwiseEqual(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape() || a.layout() != b.layout()) return false;
  if (a.bytes() == 0) return true;
  return std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

}  // namespace yolopipe
