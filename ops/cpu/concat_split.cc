#include "ops/cpu/concat_split.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/concat_split.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Rows shorter than this many bytes are not worth a thread each.
constexpr int64_t kMinBytesPerThread = 64 * 1024;
// Rows are copied in blocks of about this many bytes of the wide (concatenated) side, so that
// the block's destination lines stay in L1/L2 while each input fills its part of them.
constexpr int64_t kBlockBytes = 32 * 1024;

// Copies `rows` runs of exactly kBytes bytes; the fixed size lets the compiler inline the copy
// as a few vector moves instead of one memcpy call per (often 64-byte) run.
template <size_t kBytes>
void CopyFixedRows(const char* src, size_t src_stride, char* dst, size_t dst_stride,
                   int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * dst_stride, src + r * src_stride, kBytes);
  }
}

// Copies `rows` runs of `row_bytes` bytes: run r goes from src + r * src_stride to
// dst + r * dst_stride (strides in bytes).
void CopyRows(const char* src, size_t src_stride, char* dst, size_t dst_stride, size_t row_bytes,
              int64_t rows) {
  switch (row_bytes) {  // channel counts 8 to 64 of float32, the common ones in YOLOv8
    case 32: return CopyFixedRows<32>(src, src_stride, dst, dst_stride, rows);
    case 64: return CopyFixedRows<64>(src, src_stride, dst, dst_stride, rows);
    case 128: return CopyFixedRows<128>(src, src_stride, dst, dst_stride, rows);
    case 192: return CopyFixedRows<192>(src, src_stride, dst, dst_stride, rows);
    case 256: return CopyFixedRows<256>(src, src_stride, dst, dst_stride, rows);
    default: break;
  }
  if (row_bytes >= 1024) {  // long runs: memcpy's call cost no longer matters
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(dst + r * dst_stride, src + r * src_stride, row_bytes);
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const char* s = src + r * src_stride;
    char* d = dst + r * dst_stride;
    size_t offset = 0;
    for (; offset + 32 <= row_bytes; offset += 32) std::memcpy(d + offset, s + offset, 32);
    if (row_bytes - offset >= 16) {
      std::memcpy(d + offset, s + offset, 16);
      offset += 16;
    }
    if (row_bytes - offset >= 8) {
      std::memcpy(d + offset, s + offset, 8);
      offset += 8;
    }
    if (row_bytes - offset >= 4) {
      std::memcpy(d + offset, s + offset, 4);
      offset += 4;
    }
    for (; offset < row_bytes; ++offset) d[offset] = s[offset];
  }
}

// Plain rows at least this long are copied as byte ranges of the wide side rather than row by
// row, so that a concatenation or split with few rows (YOLOv8's detect head at batch 1 has one)
// still spreads over the threads.
constexpr size_t kLongRowBytes = 4096;
constexpr int64_t kRangeChunkBytes = 64 * 1024;

// One narrow tensor of a concatenation or split: its data, its row length and where its run
// starts within a row of the wide tensor (bytes).
template <typename BytePtr>
struct Part {
  BytePtr data;
  size_t row = 0;
  size_t column = 0;
};

// Copies bytes [begin, end) of the wide tensor (rows of `wide_row` bytes, each the
// concatenation of the parts' runs) from the parts (concat: BytePtr is const char*) or to them
// (split: WidePtr is const char*).
template <typename WidePtr, typename BytePtr>
void CopyWideRange(WidePtr wide, size_t wide_row, const std::vector<Part<BytePtr>>& parts,
                   size_t begin, size_t end) {
  size_t part = 0;
  while (begin < end) {
    const size_t row = begin / wide_row;
    const size_t within = begin % wide_row;
    while (part > 0 && parts[part].column > within) --part;
    while (parts[part].column + parts[part].row <= within) ++part;
    const Part<BytePtr>& p = parts[part];
    const size_t bytes = std::min(end - begin, p.column + p.row - within);
    BytePtr narrow = p.data + row * p.row + (within - p.column);
    if constexpr (std::is_const_v<std::remove_pointer_t<BytePtr>>) {
      std::memcpy(wide + begin, narrow, bytes);
    } else {
      std::memcpy(narrow, wide + begin, bytes);
    }
    begin += bytes;
  }
}

// CopyWideRange over all `total` bytes of the wide tensor on up to `num_threads` threads.
template <typename WidePtr, typename BytePtr>
void ParallelCopyWide(int num_threads, WidePtr wide, size_t wide_row,
                      const std::vector<Part<BytePtr>>& parts, size_t total) {
  const int64_t chunks = static_cast<int64_t>((total + kRangeChunkBytes - 1) / kRangeChunkBytes);
  ParallelFor(num_threads, chunks, 1, [&](int64_t begin, int64_t end) {
    CopyWideRange(wide, wide_row, parts, static_cast<size_t>(begin) * kRangeChunkBytes,
                  std::min(total, static_cast<size_t>(end) * kRangeChunkBytes));
  });
}

// Rows per block when one row of the wide side is `row_bytes` long.
int64_t RowsPerBlock(size_t row_bytes) {
  return std::max<int64_t>(1, kBlockBytes / static_cast<int64_t>(std::max<size_t>(row_bytes, 1)));
}

bool AnyNhwc(absl::Span<const TensorDesc> inputs) {
  for (const TensorDesc& d : inputs) {
    if (d.present() && d.layout == Layout::kNHWC) return true;
  }
  return false;
}

// Both kernels view a tensor as `outer` rows; along the concat/split axis each tensor owns a
// contiguous run of `row_bytes` within every row. Plain layout: outer = prod(dims[:axis]).
// NHWC along channels: outer = N*H*W, run = C_i floats.
class CpuConcatKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    auto axis = spec_.attrs.GetInt("axis");
    if (!axis.ok()) return Error(std::string(axis.status().message()));
    axis_attr_ = *axis;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(Shape out, ConcatOutputShape(spec_, axis_attr_, inputs, &axis_));
    nhwc_ = AnyNhwc(inputs);
    if (nhwc_) {
      if (out.size() != 4 || axis_ != 1 || inputs[0].dtype != DType::kFloat32) {
        return Error(absl::StrCat("channels-last inputs can only be concatenated along the "
                                  "channel axis of 4-D float32 tensors; got axis ", axis_attr_,
                                  " and output ", ShapeToString(out)));
      }
    }
    return std::vector<TensorDesc>{
        TensorDesc{inputs[0].dtype, out, nhwc_ ? Layout::kNHWC : Layout::kPlain}};
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    Tensor& y = outputs[0];
    if (nhwc_) {
      RunNhwc(ctx, inputs, y);
      return absl::OkStatus();
    }
    const size_t size = DTypeSize(y.dtype());
    int64_t outer = 1;
    for (int d = 0; d < axis_; ++d) outer *= y.dim(d);
    if (outer == 0 || y.num_elements() == 0) return absl::OkStatus();
    const size_t out_row = static_cast<size_t>(y.num_elements() / outer) * size;
    char* dst = static_cast<char*>(y.raw_data());
    if (out_row >= kLongRowBytes) {
      std::vector<Part<const char*>> parts;
      size_t column = 0;
      for (const Tensor& x : inputs) {
        const size_t row = static_cast<size_t>(x.num_elements() / outer) * size;
        if (row > 0) parts.push_back({static_cast<const char*>(x.raw_data()), row, column});
        column += row;
      }
      ParallelCopyWide(ctx.num_threads, dst, out_row, parts, y.bytes());
      return absl::OkStatus();
    }
    const int64_t block = RowsPerBlock(out_row);
    ParallelFor(ctx.num_threads, outer,
                std::max<int64_t>(1, kMinBytesPerThread / static_cast<int64_t>(out_row)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t b0 = begin; b0 < end; b0 += block) {
                    const int64_t rows = std::min(end, b0 + block) - b0;
                    size_t column = 0;
                    for (const Tensor& x : inputs) {
                      const size_t row = static_cast<size_t>(x.num_elements() / outer) * size;
                      const char* src = static_cast<const char*>(x.raw_data());
                      if (row > 0) {
                        CopyRows(src + b0 * row, row, dst + b0 * out_row + column, out_row, row,
                                 rows);
                      }
                      column += row;
                    }
                  }
                });
    return absl::OkStatus();
  }

 private:
  void RunNhwc(const RunContext& ctx, absl::Span<const Tensor> inputs, Tensor& y) const {
    const int64_t n = y.dim(0), c_out = y.dim(1), hw = y.dim(2) * y.dim(3);
    float* dst = y.data<float>();
    const size_t out_row = static_cast<size_t>(c_out) * sizeof(float);
    const int64_t block = RowsPerBlock(out_row);
    ParallelFor(ctx.num_threads, n * hw,
                std::max<int64_t>(1, kMinBytesPerThread / (c_out * 4)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t p0 = begin; p0 < end; p0 += block) {
                    const int64_t p1 = std::min(end, p0 + block);
                    int64_t column = 0;
                    for (const Tensor& x : inputs) {
                      const int64_t c = x.dim(1);
                      const float* src = x.data<float>();
                      if (x.layout() == Layout::kNHWC) {
                        const size_t row = static_cast<size_t>(c) * sizeof(float);
                        CopyRows(reinterpret_cast<const char*>(src + p0 * c), row,
                                 reinterpret_cast<char*>(dst + p0 * c_out + column), out_row, row,
                                 p1 - p0);
                      } else {  // plain: element (b, ch, pixel) sits at (b * c + ch) * hw + pixel
                        for (int64_t p = p0; p < p1; ++p) {
                          const int64_t b = p / hw, pixel = p % hw;
                          for (int64_t ch = 0; ch < c; ++ch) {
                            dst[p * c_out + column + ch] = src[(b * c + ch) * hw + pixel];
                          }
                        }
                      }
                      column += c;
                    }
                  }
                });
  }

  int64_t axis_attr_ = 0;
  int axis_ = 0;
  bool nhwc_ = false;
};

class CpuSplitKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseSplitParams(spec_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckInputCount(spec_, inputs, 1, 2));
    YP_RETURN_IF_ERROR(CheckKnown(spec_, inputs));
    if (HasInput(inputs, 1) && inputs[1].layout != Layout::kPlain) {
      return Error("input 'split' must be in plain layout");
    }
    YP_ASSIGN_OR_RETURN(sizes_, ComputeSplitSizes(spec_, params_, inputs[0], &axis_));
    const TensorDesc& x = inputs[0];
    if (x.layout == Layout::kNHWC && (x.shape.size() != 4 || axis_ != 1 ||
                                      x.dtype != DType::kFloat32)) {
      return Error(absl::StrCat("a channels-last input can only be split along the channel axis "
                                "of a 4-D float32 tensor; got axis ", params_.axis,
                                " of ", DescString(x)));
    }
    std::vector<TensorDesc> outs;
    for (int64_t s : sizes_) {
      TensorDesc d = x;
      d.shape[axis_] = s;
      outs.push_back(d);
    }
    return outs;
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    const size_t size = DTypeSize(x.dtype());
    // NHWC along channels is the plain scheme with rows = pixels.
    int64_t outer = 1;
    if (x.layout() == Layout::kNHWC) {
      outer = x.dim(0) * x.dim(2) * x.dim(3);
    } else {
      for (int d = 0; d < axis_; ++d) outer *= x.dim(d);
    }
    if (outer == 0 || x.num_elements() == 0) return absl::OkStatus();
    const size_t in_row = static_cast<size_t>(x.num_elements() / outer) * size;
    const char* src = static_cast<const char*>(x.raw_data());
    if (in_row >= kLongRowBytes) {
      std::vector<Part<char*>> parts;
      size_t column = 0;
      for (Tensor& y : outputs) {
        const size_t row = static_cast<size_t>(y.num_elements() / outer) * size;
        if (row > 0) parts.push_back({static_cast<char*>(y.raw_data()), row, column});
        column += row;
      }
      ParallelCopyWide(ctx.num_threads, src, in_row, parts, x.bytes());
      return absl::OkStatus();
    }
    const int64_t block = RowsPerBlock(in_row);
    ParallelFor(ctx.num_threads, outer,
                std::max<int64_t>(1, kMinBytesPerThread / static_cast<int64_t>(in_row)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t b0 = begin; b0 < end; b0 += block) {
                    const int64_t rows = std::min(end, b0 + block) - b0;
                    size_t column = 0;
                    for (Tensor& y : outputs) {
                      const size_t row = static_cast<size_t>(y.num_elements() / outer) * size;
                      char* dst = static_cast<char*>(y.raw_data());
                      if (row > 0) {
                        CopyRows(src + b0 * in_row + column, in_row, dst + b0 * row, row, row,
                                 rows);
                      }
                      column += row;
                    }
                  }
                });
    return absl::OkStatus();
  }

 private:
  SplitParams params_;
  std::vector<int64_t> sizes_;
  int axis_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuConcat(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuConcatKernel>(spec);
}
absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuSplit(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuSplitKernel>(spec);
}

YP_REGISTER_KERNEL(CpuConcat, "Concat", Backend::kCpu, CreateCpuConcat,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{}});
YP_REGISTER_KERNEL(CpuSplit, "Split", Backend::kCpu, CreateCpuSplit,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0}});

}  // namespace yolopipe::ops
