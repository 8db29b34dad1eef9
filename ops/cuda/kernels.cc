#include "ops/cuda/kernels.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ops/cuda/cuda_status.h"
#include "ops/cuda/launchers.h"

namespace yolopipe::ops::cuda {
namespace {

launch::ElemType ToElemType(DType dtype) {
  return dtype == DType::kFloat16 ? launch::ElemType::kFloat16 : launch::ElemType::kFloat32;
}

int64_t ElemSize(DType dtype) { return dtype == DType::kFloat16 ? 2 : 4; }

absl::Status CheckShape(const NhwcShape& shape, const char* what) {
  if (shape.n < 0 || shape.h < 0 || shape.w < 0 || shape.c < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": negative dimension in NHWC shape ", shape.ToString()));
  }
  return absl::OkStatus();
}

absl::Status CheckPointer(const void* p, int64_t elements, const char* what, const char* name) {
  if (p == nullptr && elements > 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", name, " is null"));
  }
  return absl::OkStatus();
}

absl::Status CheckCount(int64_t count, const char* what, const char* name) {
  if (count < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", name, " is negative (", count, ")"));
  }
  return absl::OkStatus();
}

// The slice [offset, offset + count) must lie inside `channels`.
absl::Status CheckSlice(int64_t channels, int64_t offset, int64_t count, const char* what,
                        const char* name) {
  if (channels < 1 || offset < 0 || count < 1 || offset + count > channels) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", name, " slice [", offset, ", ",
                                                   offset + count, ") does not fit a tensor with ",
                                                   channels, " channels per pixel"));
  }
  return absl::OkStatus();
}

// Moves a slice's base pointer to its first channel.
const void* SliceStart(const ConstChannelSlice& slice, DType dtype) {
  return static_cast<const char*>(slice.data) + slice.offset * ElemSize(dtype);
}
void* SliceStart(const ChannelSlice& slice, DType dtype) {
  return static_cast<char*>(slice.data) + slice.offset * ElemSize(dtype);
}

absl::Status Launched(int error, const char* what) {
  return CudaErrorToStatus(error, absl::StrCat(what, " kernel launch"));
}

}  // namespace

std::string NhwcShape::ToString() const {
  return absl::StrCat("(n=", n, ", h=", h, ", w=", w, ", c=", c, ")");
}

absl::Status CheckActivationDType(DType dtype, const char* what) {
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": dtype ", DTypeName(dtype),
                                                   " is not supported (float32 or float16 only)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<NhwcShape> MaxPool2dOutputShape(const NhwcShape& in, const Pool2dParams& p) {
  constexpr const char* kWhat = "MaxPool2d";
  if (auto s = CheckShape(in, kWhat); !s.ok()) return s;
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1 || p.pad_h < 0 ||
      p.pad_w < 0 || p.pad_h >= p.kernel_h || p.pad_w >= p.kernel_w) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": invalid parameters kernel ", p.kernel_h, "x", p.kernel_w,
                     ", stride ", p.stride_h, "x", p.stride_w, ", pad ", p.pad_h, "x", p.pad_w,
                     " (need kernel >= 1, stride >= 1, 0 <= pad < kernel)"));
  }
  const int64_t span_h = in.h + 2 * p.pad_h - p.kernel_h;
  const int64_t span_w = in.w + 2 * p.pad_w - p.kernel_w;
  if (span_h < 0 || span_w < 0) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": kernel ", p.kernel_h, "x", p.kernel_w,
                                                   " is larger than the padded input ",
                                                   in.ToString()));
  }
  return NhwcShape{in.n, span_h / p.stride_h + 1, span_w / p.stride_w + 1, in.c};
}

absl::Status MaxPool2d(DType dtype, const void* x, const NhwcShape& in, const Pool2dParams& params,
                       void* y, void* stream) {
  constexpr const char* kWhat = "MaxPool2d";
  if (auto s = CheckActivationDType(dtype, kWhat); !s.ok()) return s;
  absl::StatusOr<NhwcShape> out = MaxPool2dOutputShape(in, params);
  if (!out.ok()) return out.status();
  if (auto s = CheckPointer(x, in.elements(), kWhat, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, out->elements(), kWhat, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(
      launch::MaxPool2dNhwc(ToElemType(dtype), x, in.n, in.h, in.w, in.c, params.kernel_h,
                            params.kernel_w, params.stride_h, params.stride_w, params.pad_h,
                            params.pad_w, out->h, out->w, y, stream),
      kWhat);
}

absl::Status ResizeNearest2x(DType dtype, const void* x, const NhwcShape& in, void* y,
                             void* stream) {
  constexpr const char* kWhat = "ResizeNearest2x";
  if (auto s = CheckActivationDType(dtype, kWhat); !s.ok()) return s;
  if (auto s = CheckShape(in, kWhat); !s.ok()) return s;
  if (auto s = CheckPointer(x, in.elements(), kWhat, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, in.elements(), kWhat, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(
      launch::ResizeNearest2xNhwc(ToElemType(dtype), x, in.n, in.h, in.w, in.c, y, stream), kWhat);
}

absl::Status CopyChannelSlice(DType dtype, const ConstChannelSlice& src, const ChannelSlice& dst,
                              int64_t pixels, int64_t count, void* stream) {
  constexpr const char* kWhat = "CopyChannelSlice";
  if (auto s = CheckActivationDType(dtype, kWhat); !s.ok()) return s;
  if (auto s = CheckCount(pixels, kWhat, "pixels"); !s.ok()) return s;
  if (auto s = CheckSlice(src.channels, src.offset, count, kWhat, "source"); !s.ok()) return s;
  if (auto s = CheckSlice(dst.channels, dst.offset, count, kWhat, "destination"); !s.ok()) {
    return s;
  }
  if (auto s = CheckPointer(src.data, pixels, kWhat, "source data"); !s.ok()) return s;
  if (auto s = CheckPointer(dst.data, pixels, kWhat, "destination data"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(
      launch::CopyStridedChannels(ToElemType(dtype), SliceStart(src, dtype), src.channels,
                                  SliceStart(dst, dtype), dst.channels, pixels, count, stream),
      kWhat);
}

absl::Status Elementwise(BinaryOp op, DType dtype, const void* a, const void* b, void* y,
                         int64_t count, void* stream) {
  const char* what = op == BinaryOp::kAdd ? "Add" : "Mul";
  if (auto s = CheckActivationDType(dtype, what); !s.ok()) return s;
  if (auto s = CheckCount(count, what, "count"); !s.ok()) return s;
  if (auto s = CheckPointer(a, count, what, "a"); !s.ok()) return s;
  if (auto s = CheckPointer(b, count, what, "b"); !s.ok()) return s;
  if (auto s = CheckPointer(y, count, what, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(what);
  const auto code = op == BinaryOp::kAdd ? launch::BinaryOpCode::kAdd : launch::BinaryOpCode::kMul;
  return Launched(launch::Binary(code, ToElemType(dtype), a, b, y, count, stream), what);
}

absl::Status Elementwise(UnaryOp op, DType dtype, const void* x, void* y, int64_t count,
                         void* stream) {
  const char* what = op == UnaryOp::kSigmoid ? "Sigmoid" : "SiLU";
  if (auto s = CheckActivationDType(dtype, what); !s.ok()) return s;
  if (auto s = CheckCount(count, what, "count"); !s.ok()) return s;
  if (auto s = CheckPointer(x, count, what, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, count, what, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(what);
  const auto code =
      op == UnaryOp::kSigmoid ? launch::UnaryOpCode::kSigmoid : launch::UnaryOpCode::kSilu;
  return Launched(launch::Unary(code, ToElemType(dtype), x, y, count, stream), what);
}

absl::Status NchwFloatToNhwc(const float* x, const NhwcShape& shape, DType out_dtype, void* y,
                             void* stream) {
  constexpr const char* kWhat = "NchwFloatToNhwc";
  if (auto s = CheckActivationDType(out_dtype, kWhat); !s.ok()) return s;
  if (auto s = CheckShape(shape, kWhat); !s.ok()) return s;
  if (auto s = CheckPointer(x, shape.elements(), kWhat, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, shape.elements(), kWhat, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(launch::NchwFloatToNhwc(x, shape.n, shape.c, shape.h, shape.w,
                                          ToElemType(out_dtype), y, stream),
                  kWhat);
}

absl::Status NhwcToNchwFloat(DType in_dtype, const void* x, const NhwcShape& shape, float* y,
                             void* stream) {
  constexpr const char* kWhat = "NhwcToNchwFloat";
  if (auto s = CheckActivationDType(in_dtype, kWhat); !s.ok()) return s;
  if (auto s = CheckShape(shape, kWhat); !s.ok()) return s;
  if (auto s = CheckPointer(x, shape.elements(), kWhat, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, shape.elements(), kWhat, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(launch::NhwcToNchwFloat(ToElemType(in_dtype), x, shape.n, shape.c, shape.h,
                                          shape.w, y, stream),
                  kWhat);
}

absl::Status SoftmaxLastAxis(const float* x, float* y, int64_t rows, int64_t cols, void* stream) {
  constexpr const char* kWhat = "SoftmaxLastAxis";
  if (auto s = CheckCount(rows, kWhat, "rows"); !s.ok()) return s;
  if (cols < 1) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": cols must be >= 1, got ", cols));
  }
  if (auto s = CheckPointer(x, rows * cols, kWhat, "x"); !s.ok()) return s;
  if (auto s = CheckPointer(y, rows * cols, kWhat, "y"); !s.ok()) return s;
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(launch::SoftmaxLastAxis(x, y, rows, cols, stream), kWhat);
}

int64_t DetectAnchorCount(const std::vector<DetectLevel>& levels) {
  int64_t anchors = 0;
  for (const DetectLevel& level : levels) anchors += level.height * level.width;
  return anchors;
}

absl::Status DetectDecode(DType dtype, const std::vector<DetectLevel>& levels, int64_t batch,
                          int64_t num_classes, float* out, void* stream) {
  constexpr const char* kWhat = "DetectDecode";
  if (auto s = CheckActivationDType(dtype, kWhat); !s.ok()) return s;
  if (levels.empty() || levels.size() > static_cast<size_t>(kDetectMaxLevels)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWhat, ": ", levels.size(), " levels given, need 1 to ", kDetectMaxLevels));
  }
  if (batch < 1 || num_classes < 1) {
    return absl::InvalidArgumentError(absl::StrCat(kWhat, ": batch (", batch, ") and num_classes (",
                                                   num_classes, ") must be >= 1"));
  }
  static_assert(kDetectRegMax == launch::kDetectRegMax, "launcher and API disagree on reg_max");
  static_assert(kDetectMaxLevels == launch::kMaxDetectLevels, "launcher and API disagree");
  std::vector<launch::DetectLevelArgs> args;
  int64_t anchor_offset = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    const DetectLevel& level = levels[i];
    const std::string name = absl::StrCat("level ", i);
    if (level.height < 1 || level.width < 1 || !(level.stride > 0.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat(kWhat, ": ", name, " has height ", level.height, ", width ", level.width,
                       ", stride ", level.stride, " (all must be positive)"));
    }
    const std::string box_name = absl::StrCat(name, " box");
    const std::string cls_name = absl::StrCat(name, " class");
    if (auto s = CheckSlice(level.box.channels, level.box.offset, kDetectBoxChannels, kWhat,
                            box_name.c_str());
        !s.ok()) {
      return s;
    }
    if (auto s =
            CheckSlice(level.cls.channels, level.cls.offset, num_classes, kWhat, cls_name.c_str());
        !s.ok()) {
      return s;
    }
    if (level.box.data == nullptr || level.cls.data == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(kWhat, ": ", name, " has a null pointer"));
    }
    launch::DetectLevelArgs a;
    a.box = SliceStart(level.box, dtype);
    a.box_stride = level.box.channels;
    a.cls = SliceStart(level.cls, dtype);
    a.cls_stride = level.cls.channels;
    a.height = level.height;
    a.width = level.width;
    a.stride = level.stride;
    a.anchor_offset = anchor_offset;
    anchor_offset += level.height * level.width;
    args.push_back(a);
  }
  if (out == nullptr) return absl::InvalidArgumentError(absl::StrCat(kWhat, ": out is null"));
  if (!BuiltWithCuda()) return NotBuiltWithCudaError(kWhat);
  return Launched(
      launch::DetectDecode(ToElemType(dtype), args.data(), static_cast<int>(args.size()), batch,
                           num_classes, anchor_offset, out, stream),
      kWhat);
}

}  // namespace yolopipe::ops::cuda
