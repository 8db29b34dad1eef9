#include "ops/cpu/transpose.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/matrix_transpose.h"
#include "ops/cpu/parallel.h"
#include "ops/reference/kernel_util.h"
#include "ops/reference/transpose.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

// Bytes a thread should move at the least before another thread is worth starting.
constexpr int64_t kMinBytesPerThread = 64 << 10;
// Elements of one 2-D tile work item (64 KiB of floats).
constexpr int64_t kTileItemElements = 16 << 10;

// An output axis of the simplified permutation: its size and the element strides with which the
// input and the output walk it.
struct Axis {
  int64_t size = 1;
  int64_t in_stride = 0;
  int64_t out_stride = 0;
};

// Input shape `in` and permutation `perm` (output axis d is input axis perm[d]) reduced to the
// fewest output axes that describe the same element mapping: size-1 axes dropped, and runs of
// output axes that read consecutive input axes merged.
std::vector<Axis> SimplifiedAxes(const Shape& in, const std::vector<int>& perm) {
  const int rank = static_cast<int>(in.size());
  const std::vector<int64_t> in_strides = RowMajorStrides(in);
  std::vector<Axis> axes;
  int previous_input_axis = -1;
  for (int d = 0; d < rank; ++d) {
    const int a = perm[d];
    if (in[a] == 1) continue;
    // Merge with the previous output axis when that one reads the next non-unit input axis
    // before a: then the two read as one axis with a's stride.
    bool adjacent = !axes.empty() && previous_input_axis < a;
    for (int t = previous_input_axis + 1; adjacent && t < a; ++t) adjacent = in[t] == 1;
    if (adjacent) {
      axes.back().size *= in[a];
      axes.back().in_stride = in_strides[a];
    } else {
      axes.push_back(Axis{in[a], in_strides[a], 0});
    }
    previous_input_axis = a;
  }
  int64_t out_stride = 1;
  for (int d = static_cast<int>(axes.size()) - 1; d >= 0; --d) {
    axes[d].out_stride = out_stride;
    out_stride *= axes[d].size;
  }
  return axes;
}

// Element offsets into the input and the output of index `index` over `axes` (row-major).
void Offsets(const std::vector<Axis>& axes, int64_t index, int64_t* in_offset,
             int64_t* out_offset) {
  *in_offset = *out_offset = 0;
  for (int d = static_cast<int>(axes.size()) - 1; d >= 0; --d) {
    const int64_t i = index % axes[d].size;
    index /= axes[d].size;
    *in_offset += i * axes[d].in_stride;
    *out_offset += i * axes[d].out_stride;
  }
}

class CpuTransposeKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    // The reference kernel validates the permutation; its Reshape errors are this kernel's.
    YP_ASSIGN_OR_RETURN(reference_, CreateReferenceTranspose(spec_));
    if (spec_.attrs.Has("perm")) {
      auto perm = spec_.attrs.GetInts("perm");
      if (!perm.ok()) return Error(std::string(perm.status().message()));
      perm_attr_ = *perm;
      has_perm_ = true;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_ASSIGN_OR_RETURN(std::vector<TensorDesc> outputs, reference_->Reshape(inputs));
    const Shape& in = inputs[0].shape;
    const int rank = static_cast<int>(in.size());
    std::vector<int> perm(rank);
    for (int d = 0; d < rank; ++d) {
      perm[d] = has_perm_ ? static_cast<int>(perm_attr_[d]) : rank - 1 - d;
    }
    axes_ = SimplifiedAxes(in, perm);
    element_size_ = DTypeSize(inputs[0].dtype);
    mode_ = Mode::kCopy;
    if (!axes_.empty() && axes_.back().in_stride != 1) {
      // The input's innermost axis (stride 1) went somewhere else: tiles.
      mode_ = Mode::kTiles;
      column_axis_ = -1;
      for (int d = 0; d < static_cast<int>(axes_.size()); ++d) {
        if (axes_[d].in_stride == 1) column_axis_ = d;
      }
    } else if (axes_.size() > 1) {
      mode_ = Mode::kRows;
    }
    return outputs;
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    const Tensor& x = inputs[0];
    Tensor& y = outputs[0];
    if (y.num_elements() == 0) return absl::OkStatus();
    const char* src = static_cast<const char*>(x.raw_data());
    char* dst = static_cast<char*>(y.raw_data());
    switch (mode_) {
      case Mode::kCopy:
        ParallelMemcpy(ctx.num_threads, dst, src, y.bytes());
        break;
      case Mode::kRows:
        CopyRows(ctx, src, dst);
        break;
      case Mode::kTiles:
        TransposeTiles(ctx, src, dst);
        break;
    }
    return absl::OkStatus();
  }

 private:
  enum class Mode { kCopy, kRows, kTiles };

  // The innermost output axis is also innermost in the input: copy runs of axes_.back().size
  // elements, walking the outer axes with an odometer.
  void CopyRows(const RunContext& ctx, const char* src, char* dst) const {
    const std::vector<Axis> outer(axes_.begin(), axes_.end() - 1);
    const int64_t row_elements = axes_.back().size;
    const size_t row_bytes = static_cast<size_t>(row_elements) * element_size_;
    int64_t rows = 1;
    for (const Axis& a : outer) rows *= a.size;
    ParallelFor(ctx.num_threads, rows,
                std::max<int64_t>(1, kMinBytesPerThread / static_cast<int64_t>(row_bytes)),
                [&](int64_t begin, int64_t end) {
                  std::vector<int64_t> index(outer.size());
                  int64_t rest = begin;
                  int64_t in_offset = 0;
                  for (int d = static_cast<int>(outer.size()) - 1; d >= 0; --d) {
                    index[d] = rest % outer[d].size;
                    rest /= outer[d].size;
                    in_offset += index[d] * outer[d].in_stride;
                  }
                  for (int64_t row = begin; row < end; ++row) {
                    std::memcpy(dst + row * row_bytes, src + in_offset * element_size_, row_bytes);
                    for (int d = static_cast<int>(outer.size()) - 1; d >= 0; --d) {
                      in_offset += outer[d].in_stride;
                      if (++index[d] < outer[d].size) break;
                      in_offset -= outer[d].in_stride * outer[d].size;
                      index[d] = 0;
                    }
                  }
                });
  }

  // The input's innermost axis (axes_[column_axis_]) is not the output's innermost axis
  // (axes_.back()): every combination of the other axes holds a 2-D transpose between the two.
  void TransposeTiles(const RunContext& ctx, const char* src, char* dst) const {
    const Axis& out_inner = axes_.back();        // rows of the source matrix
    const Axis& in_inner = axes_[column_axis_];  // columns of the source matrix
    std::vector<Axis> outer;
    for (int d = 0; d + 1 < static_cast<int>(axes_.size()); ++d) {
      if (d != column_axis_) outer.push_back(axes_[d]);
    }
    int64_t matrices = 1;
    for (const Axis& a : outer) matrices *= a.size;
    // Items: blocks of up to block_cols input-contiguous x block_rows output-contiguous elements.
    const int64_t block_cols = std::min<int64_t>(in_inner.size, 256);
    const int64_t block_rows = std::min<int64_t>(
        out_inner.size, std::max<int64_t>(16, kTileItemElements / block_cols / 16 * 16));
    const int64_t row_blocks = (out_inner.size + block_rows - 1) / block_rows;
    const int64_t col_blocks = (in_inner.size + block_cols - 1) / block_cols;
    const int64_t items = matrices * row_blocks * col_blocks;
    const int64_t item_bytes = block_rows * block_cols * static_cast<int64_t>(element_size_);
    ParallelFor(ctx.num_threads, items, std::max<int64_t>(1, kMinBytesPerThread / item_bytes),
                [&](int64_t begin, int64_t end) {
                  for (int64_t item = begin; item < end; ++item) {
                    const int64_t matrix = item / (row_blocks * col_blocks);
                    const int64_t row0 = item / col_blocks % row_blocks * block_rows;
                    const int64_t col0 = item % col_blocks * block_cols;
                    int64_t in_offset, out_offset;
                    Offsets(outer, matrix, &in_offset, &out_offset);
                    in_offset += row0 * out_inner.in_stride + col0;
                    out_offset += col0 * in_inner.out_stride + row0;
                    TransposeMatrix(src + in_offset * element_size_, out_inner.in_stride,
                                    dst + out_offset * element_size_, in_inner.out_stride,
                                    std::min(block_rows, out_inner.size - row0),
                                    std::min(block_cols, in_inner.size - col0), element_size_);
                  }
                });
  }

  std::unique_ptr<Kernel> reference_;
  bool has_perm_ = false;
  std::vector<int64_t> perm_attr_;
  // The plan of the last Reshape.
  std::vector<Axis> axes_;
  size_t element_size_ = 4;
  Mode mode_ = Mode::kCopy;
  int column_axis_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuTranspose(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuTransposeKernel>(spec);
}

YP_REGISTER_KERNEL(CpuTranspose, "Transpose", Backend::kCpu, CreateCpuTranspose);

}  // namespace yolopipe::ops
