#include "ops/reference/kernel_util.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace yolopipe::ops {

bool AllShapesKnown(absl::Span<const TensorDesc> inputs) {
  for (const TensorDesc& d : inputs) {
    if (d.present() && !IsFullyKnown(d.shape)) return false;
  }
  return true;
}

bool HasInput(absl::Span<const TensorDesc> inputs, int index) {
  return index >= 0 && index < static_cast<int>(inputs.size()) && inputs[index].present();
}

const Tensor* FindConstant(const KernelSpec& spec, int index) {
  if (index < 0 || index >= static_cast<int>(spec.constant_inputs.size())) return nullptr;
  const Tensor& t = spec.constant_inputs[index];
  return t.defined() ? &t : nullptr;
}

absl::StatusOr<std::vector<int64_t>> TensorToInt64s(const Tensor& tensor) {
  switch (tensor.dtype()) {
    case DType::kInt64:
    case DType::kInt32:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("expected an integer tensor, got ", tensor.DebugString()));
  }
  std::vector<int64_t> values(tensor.num_elements());
  for (int64_t i = 0; i < tensor.num_elements(); ++i) values[i] = tensor.GetAsInt64(i);
  return values;
}

std::vector<double> TensorToDoubles(const Tensor& tensor) {
  std::vector<double> values(tensor.num_elements());
  for (int64_t i = 0; i < tensor.num_elements(); ++i) values[i] = tensor.GetAsDouble(i);
  return values;
}

absl::StatusOr<std::vector<int64_t>> ConstantInt64s(const KernelSpec& spec, int index,
                                                    const std::string& input_name) {
  if (!HasInput(spec.inputs, index)) {
    return KernelError(spec, absl::StrCat("input ", index, " ('", input_name, "') is missing"));
  }
  const Tensor* t = FindConstant(spec, index);
  if (t == nullptr) {
    return KernelError(spec, absl::StrCat("input '", input_name,
                                          "' must be a constant (its values decide the output "
                                          "shape)"));
  }
  auto values = TensorToInt64s(*t);
  if (!values.ok()) {
    return KernelError(spec, absl::StrCat("input '", input_name, "': ", values.status().message()));
  }
  return values;
}

absl::Status CheckInputCount(const KernelSpec& spec, absl::Span<const TensorDesc> inputs,
                             int required, int max_inputs) {
  if (static_cast<int>(inputs.size()) > max_inputs) {
    return KernelError(spec, absl::StrCat("expects at most ", max_inputs, " inputs, got ",
                                          inputs.size()));
  }
  for (int i = 0; i < required; ++i) {
    if (!HasInput(inputs, i)) {
      return KernelError(spec, absl::StrCat("expects at least ", required,
                                            " inputs, input ", i, " is missing"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKnown(const KernelSpec& spec, absl::Span<const TensorDesc> inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].present() && !IsFullyKnown(inputs[i].shape)) {
      return KernelError(spec, absl::StrCat("input ", i, " has a shape that is not fully known: ",
                                            DescString(inputs[i])));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPlainAndKnown(const KernelSpec& spec, absl::Span<const TensorDesc> inputs) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].present() && inputs[i].layout != Layout::kPlain) {
      return KernelError(spec, absl::StrCat("input ", i, " ", DescString(inputs[i]),
                                            " is channels-last; this kernel needs plain layout"));
    }
  }
  return CheckKnown(spec, inputs);
}

absl::Status CheckDType(const KernelSpec& spec, absl::Span<const TensorDesc> inputs, int index,
                        const std::string& input_name, std::initializer_list<DType> allowed) {
  const DType d = inputs[index].dtype;
  for (DType a : allowed) {
    if (a == d) return absl::OkStatus();
  }
  std::vector<std::string> names;
  for (DType a : allowed) names.push_back(DTypeName(a));
  return KernelError(spec, absl::StrCat("input '", input_name, "' has unsupported dtype ",
                                        DTypeName(d), " (supported: ",
                                        absl::StrJoin(names, ", "), ")"));
}

absl::StatusOr<int> NormalizeAxis(const KernelSpec& spec, int64_t axis, int rank,
                                  const std::string& what) {
  if (axis < -rank || axis >= rank) {
    return KernelError(spec, absl::StrCat(what, " ", axis, " is out of range for rank ", rank,
                                          " (valid: ", -rank, "..", rank - 1, ")"));
  }
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

absl::StatusOr<Shape> BroadcastShapes(const KernelSpec& spec, const std::vector<Shape>& shapes) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (size_t d = 0; d < rank; ++d) {
    for (const Shape& s : shapes) {
      if (d + s.size() < rank) continue;
      const int64_t dim = s[d + s.size() - rank];
      if (dim == 1) continue;
      if (out[d] == 1) {
        out[d] = dim;
      } else if (out[d] != dim) {
        std::vector<std::string> names;
        for (const Shape& t : shapes) names.push_back(ShapeToString(t));
        return KernelError(spec, absl::StrCat("shapes ", absl::StrJoin(names, ", "),
                                              " cannot be broadcast together (dimension ", d,
                                              " of the result: ", out[d], " vs ", dim, ")"));
      }
    }
  }
  return out;
}

std::vector<int64_t> RowMajorStrides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d) {
    strides[d] = strides[d + 1] * shape[d + 1];
  }
  return strides;
}

std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out) {
  std::vector<int64_t> in_strides = RowMajorStrides(in);
  std::vector<int64_t> strides(out.size(), 0);
  const size_t offset = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) {
    strides[d + offset] = in[d] == 1 ? 0 : in_strides[d];
  }
  return strides;
}

std::string DescString(const TensorDesc& desc) {
  if (!desc.present()) return "<absent>";
  return absl::StrCat(DTypeName(desc.dtype), ShapeToString(desc.shape),
                      desc.layout == Layout::kNHWC ? " nhwc" : "");
}

std::string IntsString(absl::Span<const int64_t> values) {
  return absl::StrCat("[", absl::StrJoin(values, ", "), "]");
}

void CopyElement(const void* src, int64_t src_index, void* dst, int64_t dst_index,
                 size_t element_size) {
  std::memcpy(static_cast<char*>(dst) + dst_index * element_size,
              static_cast<const char*>(src) + src_index * element_size, element_size);
}

absl::StatusOr<WindowAxis> ComputeWindowAxis(const KernelSpec& spec, const std::string& auto_pad,
                                             int64_t in, int64_t kernel, int64_t stride,
                                             int64_t dilation, int64_t pad_begin,
                                             int64_t pad_end, bool ceil_mode) {
  if (kernel < 1 || stride < 1 || dilation < 1) {
    return KernelError(spec, absl::StrCat("kernel size ", kernel, ", stride ", stride,
                                          " and dilation ", dilation, " must all be >= 1"));
  }
  if (pad_begin < 0 || pad_end < 0) {
    return KernelError(spec, absl::StrCat("pads must be >= 0, got ", pad_begin, " and ", pad_end));
  }
  const int64_t extent = (kernel - 1) * dilation + 1;
  WindowAxis axis;
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    axis.out = (in + stride - 1) / stride;
    const int64_t total = std::max<int64_t>(0, (axis.out - 1) * stride + extent - in);
    if (auto_pad == "SAME_UPPER") {
      axis.pad_begin = total / 2;
      axis.pad_end = total - axis.pad_begin;
    } else {
      axis.pad_end = total / 2;
      axis.pad_begin = total - axis.pad_end;
    }
    return axis;
  }
  if (auto_pad == "VALID") {
    pad_begin = 0;
    pad_end = 0;
  } else if (!auto_pad.empty() && auto_pad != "NOTSET") {
    return KernelError(spec, absl::StrCat("unknown auto_pad '", auto_pad,
                                          "' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)"));
  }
  const int64_t padded = in + pad_begin + pad_end;
  if (padded < extent) {
    return KernelError(spec, absl::StrCat("window of extent ", extent, " (kernel ", kernel,
                                          ", dilation ", dilation, ") does not fit input size ",
                                          in, " padded by ", pad_begin, "+", pad_end));
  }
  axis.pad_begin = pad_begin;
  axis.pad_end = pad_end;
  if (ceil_mode) {
    axis.out = (padded - extent + stride - 1) / stride + 1;
    if ((axis.out - 1) * stride >= in + pad_begin) --axis.out;
  } else {
    axis.out = (padded - extent) / stride + 1;
  }
  return axis;
}

}  // namespace yolopipe::ops
