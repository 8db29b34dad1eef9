// Host emulation of CudaExecutor::EnqueueSteps (cuda_executor_cuda.cc) over a plain float arena.
// Every step is handled in two phases: first the exact arena regions its kernel would read and
// write are derived from the plan the way the device code derives its pointers (and checked), then
// the kernel runs on those regions. Keeping the addressing in one place per step is what makes a
// layout bug in the plan show up here as it would on the GPU.
#include "runtime/cuda/lowering_emulator.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "ops/cuda/conv.h"
#include "ops/cuda/half.h"
#include "ops/cuda/kernels.h"

namespace yolopipe {
namespace {

using ops::cuda::NhwcShape;

// Markers in the ownership map (check_layout): element never written / written by this step.
constexpr int kNeverWritten = -1;
constexpr int kBeingWritten = -2;

float RoundToHalf(float v) { return ops::cuda::HalfBitsToFloat(ops::cuda::FloatToHalfBits(v)); }

float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// How a kernel addresses one NHWC tensor: `pixels` pixels of `stride` elements from arena element
// `base`, of which channels [offset, offset + count) are used.
struct View {
  int activation = -1;  // what the step means to read or write (the ownership check)
  int tensor = -1;      // whose pointer the device code passes (the one `base` belongs to)
  int64_t base = 0;
  int64_t stride = 0;
  int64_t offset = 0;
  int64_t count = 0;
  int64_t pixels = 0;
  int64_t At(int64_t pixel, int64_t k) const { return base + pixel * stride + offset + k; }
};

// The arena regions of one step, in the order the kernel code below expects them.
struct StepIo {
  std::vector<View> reads;
  std::vector<View> writes;
};

class Emulator {
 public:
  Emulator(const CudaLoweringPlan& plan, const CudaEmulatorOptions& options)
      : plan_(plan),
        options_(options),
        fp16_(plan.precision == DType::kFloat16),
        element_bytes_(fp16_ ? 2 : 4) {}

  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs);

 private:
  absl::Status CheckPlan() const;
  // Error helpers naming step `s`.
  absl::Status StepError(absl::StatusCode code, const std::string& what) const;
  std::string StepName(int s) const;
  std::string ActivationName(int id) const;

  absl::Status CheckIds(const std::vector<int>& ids, const char* what) const;
  // A dense pointer to activation `id` (ptrs[id] in the device code) with the given addressing.
  View Dense(int id, int64_t stride, int64_t offset, int64_t count, int64_t pixels) const;
  // SliceOf(plan, ptrs, id) in the device code: `count` channels of every pixel.
  View SliceOf(int id, int64_t count, int64_t pixels) const;
  // The kernel's CheckSlice, then the arena bounds (and, with check_layout, the tensor's bytes).
  absl::Status CheckView(const View& v, const char* kernel, const char* role) const;

  absl::StatusOr<StepIo> Accesses(const CudaStep& step);
  // check_layout: what a step reads must still hold what it means to read.
  absl::Status CheckReads(const StepIo& io) const;
  void PoisonWrites(const StepIo& io);

  absl::Status Execute(const CudaStep& step, const StepIo& io, absl::Span<const Tensor> inputs);
  absl::Status RunConv(const CudaStep& step, const StepIo& io);
  absl::Status RunDetectDecode(const CudaStep& step, const StepIo& io);

  float Load(int64_t i) const { return arena_[i]; }
  void Store(int64_t i, float v, int writer) {
    arena_[i] = fp16_ ? RoundToHalf(v) : v;
    if (options_.check_layout) {
      owner_[i] = writer;
      owner_step_[i] = step_;
    }
  }

  const CudaLoweringPlan& plan_;
  const CudaEmulatorOptions options_;
  const bool fp16_;
  const int64_t element_bytes_;
  std::vector<float> arena_;
  std::vector<int> owner_;       // check_layout: activation that last wrote each element
  std::vector<int> owner_step_;  // check_layout: the step that wrote it
  std::vector<Tensor> outputs_;
  int step_ = 0;                 // index of the step being emulated
};

std::string Emulator::StepName(int s) const {
  if (s < 0 || s >= static_cast<int>(plan_.steps.size())) return absl::StrCat("step ", s);
  const CudaStep& step = plan_.steps[s];
  return absl::StrCat("step ", s, " '", step.name, "' (", step.op_type, ")");
}

std::string Emulator::ActivationName(int id) const {
  return absl::StrCat("activation ", id, " '", plan_.activations[id].name, "'");
}

absl::Status Emulator::StepError(absl::StatusCode code, const std::string& what) const {
  return absl::Status(code, absl::StrCat("CUDA emulator: ", StepName(step_), ": ", what));
}

absl::Status Emulator::CheckPlan() const {
  if (plan_.precision != DType::kFloat16 && plan_.precision != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA emulator: plan precision must be float16 or float32, got ",
        DTypeName(plan_.precision)));
  }
  const int count = static_cast<int>(plan_.activations.size());
  for (int id = 0; id < count; ++id) {
    const CudaActivation& a = plan_.activations[id];
    // DeviceArena::At refuses pieces outside the arena, so CudaExecutor::Create would fail.
    if (a.offset % element_bytes_ != 0 || a.offset > plan_.arena_bytes ||
        a.bytes > plan_.arena_bytes - a.offset) {
      return absl::InternalError(absl::StrCat(
          "CUDA emulator: ", ActivationName(id), " at byte offset ", a.offset, " (", a.bytes,
          " bytes) is misaligned or outside the arena of ", plan_.arena_bytes, " bytes"));
    }
    if (a.alias_of >= count || (a.alias_of >= 0 && a.alias_of == id)) {
      return absl::InternalError(absl::StrCat("CUDA emulator: ", ActivationName(id),
                                              " aliases activation ", a.alias_of,
                                              " of ", count));
    }
  }
  return absl::OkStatus();
}

absl::Status Emulator::CheckIds(const std::vector<int>& ids, const char* what) const {
  for (int id : ids) {
    if (id < 0 || id >= static_cast<int>(plan_.activations.size())) {
      return StepError(absl::StatusCode::kInternal,
                       absl::StrCat(what, " activation id ", id, " is out of range (",
                                    plan_.activations.size(), " activations)"));
    }
  }
  return absl::OkStatus();
}

View Emulator::Dense(int id, int64_t stride, int64_t offset, int64_t count,
                     int64_t pixels) const {
  View v;
  v.activation = v.tensor = id;
  v.base = static_cast<int64_t>(plan_.activations[id].offset) / element_bytes_;
  v.stride = stride;
  v.offset = offset;
  v.count = count;
  v.pixels = pixels;
  return v;
}

View Emulator::SliceOf(int id, int64_t count, int64_t pixels) const {
  const CudaActivation& a = plan_.activations[id];
  if (a.alias_of < 0) return Dense(id, a.shape.c, 0, count, pixels);
  const CudaActivation& wide = plan_.activations[a.alias_of];
  View v = Dense(a.alias_of, wide.shape.c, a.channel_offset, count, pixels);
  v.activation = id;
  return v;
}

absl::Status Emulator::CheckView(const View& v, const char* kernel, const char* role) const {
  if (v.stride < 1 || v.offset < 0 || v.count < 1 || v.offset + v.count > v.stride ||
      v.pixels < 0) {
    return StepError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat(kernel, ": ", role, " ", ActivationName(v.activation),
                                  ": slice [", v.offset, ", ", v.offset + v.count,
                                  ") of ", v.pixels, " pixels does not fit a tensor with ",
                                  v.stride, " channels per pixel"));
  }
  if (v.pixels == 0) return absl::OkStatus();
  const int64_t first = v.At(0, 0);
  const int64_t end = v.At(v.pixels - 1, v.count - 1) + 1;
  if (first < 0 || end > static_cast<int64_t>(arena_.size())) {
    return StepError(absl::StatusCode::kInternal,
                     absl::StrCat(kernel, ": ", role, " ", ActivationName(v.activation),
                                  " spans arena bytes [", first * element_bytes_, ", ",
                                  end * element_bytes_, "), outside the arena of ",
                                  plan_.arena_bytes, " bytes"));
  }
  if (options_.check_layout) {
    const CudaActivation& t = plan_.activations[v.tensor];
    const int64_t begin_t = static_cast<int64_t>(t.offset) / element_bytes_;
    const int64_t end_t = begin_t + static_cast<int64_t>(t.bytes) / element_bytes_;
    if (first < begin_t || end > end_t) {
      return StepError(absl::StatusCode::kInternal,
                       absl::StrCat(kernel, ": ", role, " ", ActivationName(v.activation),
                                    " spans arena bytes [", first * element_bytes_, ", ",
                                    end * element_bytes_, "), beyond the bytes [",
                                    t.offset, ", ", t.offset + t.bytes, ") of ",
                                    ActivationName(v.tensor)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<StepIo> Emulator::Accesses(const CudaStep& step) {
  YP_RETURN_IF_ERROR(CheckIds(step.inputs, "input"));
  YP_RETURN_IF_ERROR(CheckIds(step.outputs, "output"));
  auto expect_counts = [&](size_t inputs, size_t outputs) -> absl::Status {
    if (step.inputs.size() != inputs || step.outputs.size() != outputs) {
      return StepError(absl::StatusCode::kInternal,
                       absl::StrCat("expected ", inputs, " inputs and ", outputs,
                                    " outputs, the plan has ", step.inputs.size(), " and ",
                                    step.outputs.size()));
    }
    return absl::OkStatus();
  };
  const auto& acts = plan_.activations;
  StepIo io;
  const char* kernel = "";
  switch (step.kind) {
    case CudaStepKind::kInputToNhwc: {
      kernel = "NchwFloatToNhwc";
      YP_RETURN_IF_ERROR(expect_counts(0, 1));
      const NhwcShape& s = acts[step.outputs[0]].shape;
      io.writes.push_back(Dense(step.outputs[0], s.c, 0, s.c, s.pixels()));
      break;
    }
    case CudaStepKind::kConv: {
      kernel = "Conv";
      YP_RETURN_IF_ERROR(expect_counts(step.has_residual ? 2 : 1, 1));
      const ops::cuda::ConvParams& p = step.conv;
      if (p.dtype != plan_.precision) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("the convolution is planned in ", DTypeName(p.dtype),
                                      ", the arena holds ", DTypeName(plan_.precision)));
      }
      const absl::StatusOr<NhwcShape> shape = ops::cuda::ConvOutputShape(p);
      if (!shape.ok()) return StepError(shape.status().code(), std::string(shape.status().message()));
      const NhwcShape& out = *shape;
      io.reads.push_back(Dense(step.inputs[0], p.c_in, 0, p.c_in, p.n * p.h * p.w));
      if (step.has_residual) io.reads.push_back(SliceOf(step.inputs[1], p.c_out, out.pixels()));
      io.writes.push_back(SliceOf(step.outputs[0], p.c_out, out.pixels()));
      // The argument checks CudnnConvRunner::Forward runs (the pointers only need to be non-null).
      const View& y = io.writes[0];
      ops::cuda::ConvEpilogueParams epilogue;
      epilogue.silu = step.silu;
      if (step.has_residual) {
        epilogue.residual = ops::cuda::ConstChannelSlice{this, io.reads[1].stride,
                                                         io.reads[1].offset};
      }
      const absl::Status valid = ops::cuda::ValidateConvCall(
          p, this, this, epilogue, ops::cuda::ChannelSlice{this, y.stride, y.offset});
      if (!valid.ok()) return StepError(valid.code(), std::string(valid.message()));
      break;
    }
    case CudaStepKind::kConcat: {
      kernel = "CopyChannelSlice";
      YP_RETURN_IF_ERROR(expect_counts(step.inputs.size(), 1));
      if (step.channel_offsets.size() != step.inputs.size() ||
          step.written_in_place.size() != step.inputs.size()) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat(step.inputs.size(), " inputs but ",
                                      step.channel_offsets.size(), " channel offsets and ",
                                      step.written_in_place.size(), " written_in_place flags"));
      }
      const int wide = step.outputs[0];
      for (size_t i = 0; i < step.inputs.size(); ++i) {
        if (step.written_in_place[i]) continue;
        const int id = step.inputs[i];
        const int64_t c = acts[id].shape.c;
        io.reads.push_back(Dense(id, c, 0, c, acts[wide].shape.pixels()));
        io.writes.push_back(Dense(wide, acts[wide].shape.c, step.channel_offsets[i], c,
                                  acts[wide].shape.pixels()));
      }
      break;
    }
    case CudaStepKind::kSplit: {
      kernel = "CopyChannelSlice";
      YP_RETURN_IF_ERROR(expect_counts(1, step.outputs.size()));
      if (step.channel_offsets.size() != step.outputs.size()) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat(step.outputs.size(), " outputs but ",
                                      step.channel_offsets.size(), " channel offsets"));
      }
      const CudaActivation& in = acts[step.inputs[0]];
      for (size_t i = 0; i < step.outputs.size(); ++i) {
        const int64_t c = acts[step.outputs[i]].shape.c;
        io.reads.push_back(
            Dense(step.inputs[0], in.shape.c, step.channel_offsets[i], c, in.shape.pixels()));
        io.writes.push_back(Dense(step.outputs[i], c, 0, c, in.shape.pixels()));
      }
      break;
    }
    case CudaStepKind::kMaxPool: {
      kernel = "MaxPool2d";
      YP_RETURN_IF_ERROR(expect_counts(1, 1));
      const NhwcShape& in = acts[step.inputs[0]].shape;
      absl::StatusOr<NhwcShape> out = ops::cuda::MaxPool2dOutputShape(in, step.pool);
      if (!out.ok()) return StepError(out.status().code(), std::string(out.status().message()));
      io.reads.push_back(Dense(step.inputs[0], in.c, 0, in.c, in.pixels()));
      io.writes.push_back(Dense(step.outputs[0], in.c, 0, in.c, out->pixels()));
      break;
    }
    case CudaStepKind::kResize: {
      kernel = "ResizeNearest2x";
      YP_RETURN_IF_ERROR(expect_counts(1, 1));
      const NhwcShape& in = acts[step.inputs[0]].shape;
      io.reads.push_back(Dense(step.inputs[0], in.c, 0, in.c, in.pixels()));
      io.writes.push_back(Dense(step.outputs[0], in.c, 0, in.c, in.n * 2 * in.h * 2 * in.w));
      break;
    }
    case CudaStepKind::kDetectDecode: {
      kernel = "DetectDecode";
      YP_RETURN_IF_ERROR(expect_counts(step.inputs.size(), 0));
      const DetectHeadInfo& head = plan_.head;
      const size_t levels = step.inputs.size();
      if (levels < 1 || levels > static_cast<size_t>(ops::cuda::kDetectMaxLevels) ||
          head.heights.size() < levels || head.widths.size() < levels ||
          head.strides.size() < levels) {
        return StepError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat(levels, " levels, the head describes ",
                                      head.heights.size(), " (1 to ",
                                      ops::cuda::kDetectMaxLevels, " supported)"));
      }
      if (head.batch < 1 || head.num_classes < 1) {
        return StepError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("DetectDecode: batch (", head.batch, ") and num_classes (",
                                      head.num_classes, ") must be >= 1"));
      }
      for (size_t l = 0; l < levels; ++l) {
        if (head.heights[l] < 1 || head.widths[l] < 1 || head.strides[l] < 1) {
          return StepError(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("DetectDecode: level ", l, " has height ",
                                        head.heights[l], ", width ", head.widths[l], ", stride ",
                                        head.strides[l], " (all must be positive)"));
        }
        const int id = step.inputs[l];
        const int64_t c = acts[id].shape.c;
        const int64_t pixels = head.batch * head.heights[l] * head.widths[l];
        io.reads.push_back(Dense(id, c, 0, ops::cuda::kDetectBoxChannels, pixels));
        io.reads.push_back(
            Dense(id, c, ops::cuda::kDetectBoxChannels, head.num_classes, pixels));
      }
      break;
    }
    case CudaStepKind::kOutputToNchw: {
      kernel = "NhwcToNchwFloat";
      YP_RETURN_IF_ERROR(expect_counts(1, 0));
      const NhwcShape& s = acts[step.inputs[0]].shape;
      io.reads.push_back(Dense(step.inputs[0], s.c, 0, s.c, s.pixels()));
      break;
    }
    default:
      return StepError(absl::StatusCode::kInternal,
                       absl::StrCat("unknown step kind ", static_cast<int>(step.kind)));
  }
  for (const View& v : io.reads) YP_RETURN_IF_ERROR(CheckView(v, kernel, "input"));
  for (const View& v : io.writes) YP_RETURN_IF_ERROR(CheckView(v, kernel, "output"));
  return io;
}

void Emulator::PoisonWrites(const StepIo& io) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (const View& v : io.writes) {
    for (int64_t p = 0; p < v.pixels; ++p) {
      for (int64_t k = 0; k < v.count; ++k) {
        const int64_t i = v.At(p, k);
        arena_[i] = nan;
        if (options_.check_layout) {
          owner_[i] = kBeingWritten;
          owner_step_[i] = step_;
        }
      }
    }
  }
}

absl::Status Emulator::CheckReads(const StepIo& io) const {
  for (const View& v : io.reads) {
    const int want = v.activation;
    for (int64_t p = 0; p < v.pixels; ++p) {
      for (int64_t k = 0; k < v.count; ++k) {
        const int64_t i = v.At(p, k);
        const int owner = owner_[i];
        // A convolution output aliasing a Concat's slice counts as part of the Concat's output.
        if (owner == want || (owner >= 0 && plan_.activations[owner].alias_of == want)) continue;
        std::string held;
        if (owner == kNeverWritten) {
          held = "which no step has written";
        } else if (owner == kBeingWritten) {
          held = "which this step also writes (its input overlaps its output)";
        } else {
          held = absl::StrCat("which holds ", ActivationName(owner), " written by ",
                              StepName(owner_step_[i]));
        }
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("reads ", ActivationName(want), " (pixel ", p,
                                      ", channel ", v.offset + k, ") at arena byte ",
                                      i * element_bytes_, ", ", held));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Emulator::RunConv(const CudaStep& step, const StepIo& io) {
  const ops::cuda::ConvParams& p = step.conv;
  const NhwcShape out = *ops::cuda::ConvOutputShape(p);  // checked in Accesses
  const int64_t cg = p.c_in / p.groups;
  const int64_t per_group = p.c_out / p.groups;
  const size_t weight_count = static_cast<size_t>(p.c_out * p.kernel_h * p.kernel_w * cg);
  const size_t weight_bytes = weight_count * element_bytes_;
  if (step.weight_offset > plan_.weights.size() ||
      weight_bytes > plan_.weights.size() - step.weight_offset) {
    return StepError(absl::StatusCode::kInternal,
                     absl::StrCat("weights at blob bytes [", step.weight_offset, ", ",
                                  step.weight_offset + weight_bytes, ") overrun the blob of ",
                                  plan_.weights.size(), " bytes"));
  }
  const size_t bias_bytes = static_cast<size_t>(p.c_out) * sizeof(float);
  if (step.has_bias && (step.bias_offset > plan_.weights.size() ||
                        bias_bytes > plan_.weights.size() - step.bias_offset)) {
    return StepError(absl::StatusCode::kInternal,
                     absl::StrCat("bias at blob bytes [", step.bias_offset, ", ",
                                  step.bias_offset + bias_bytes, ") overruns the blob of ",
                                  plan_.weights.size(), " bytes"));
  }
  // OHWI in the precision, read back as floats.
  std::vector<float> w(weight_count);
  const uint8_t* blob = plan_.weights.data() + step.weight_offset;
  for (size_t i = 0; i < weight_count; ++i) {
    if (fp16_) {
      uint16_t bits;
      std::memcpy(&bits, blob + 2 * i, 2);
      w[i] = ops::cuda::HalfBitsToFloat(bits);
    } else {
      std::memcpy(&w[i], blob + 4 * i, 4);
    }
  }
  std::vector<float> bias(static_cast<size_t>(p.c_out), 0.0f);
  if (step.has_bias) {
    std::memcpy(bias.data(), plan_.weights.data() + step.bias_offset, bias_bytes);
  }
  const View& x = io.reads[0];
  const View* residual = step.has_residual ? &io.reads[1] : nullptr;
  const View& y = io.writes[0];
  const int writer = step.outputs[0];
  for (int64_t b = 0; b < p.n; ++b) {
    for (int64_t oy = 0; oy < out.h; ++oy) {
      for (int64_t ox = 0; ox < out.w; ++ox) {
        const int64_t pixel = (b * out.h + oy) * out.w + ox;
        for (int64_t o = 0; o < p.c_out; ++o) {
          const int64_t group = o / per_group;
          float acc = 0.0f;
          for (int64_t ky = 0; ky < p.kernel_h; ++ky) {
            const int64_t iy = oy * p.stride_h - p.pad_h + ky * p.dilation_h;
            if (iy < 0 || iy >= p.h) continue;
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              const int64_t ix = ox * p.stride_w - p.pad_w + kx * p.dilation_w;
              if (ix < 0 || ix >= p.w) continue;
              const float* xp = &arena_[x.At((b * p.h + iy) * p.w + ix, group * cg)];
              const float* wp = &w[((o * p.kernel_h + ky) * p.kernel_w + kx) * cg];
              for (int64_t i = 0; i < cg; ++i) acc += xp[i] * wp[i];
            }
          }
          // cuDNN stores the raw sum in the precision before the epilogue kernel reads it.
          float v = fp16_ ? RoundToHalf(acc) : acc;
          v += bias[o];
          if (step.silu) v = v * Sigmoid(v);
          if (residual != nullptr) v += Load(residual->At(pixel, o));
          Store(y.At(pixel, o), v, writer);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Emulator::RunDetectDecode(const CudaStep& step, const StepIo& io) {
  const DetectHeadInfo& head = plan_.head;
  const int64_t nc = head.num_classes;
  const size_t levels = step.inputs.size();
  int64_t anchors = 0;
  for (size_t l = 0; l < levels; ++l) anchors += head.heights[l] * head.widths[l];
  Tensor& out = outputs_[step.boundary];
  if (out.num_elements() != head.batch * (4 + nc) * anchors) {
    return StepError(absl::StatusCode::kInternal,
                     absl::StrCat("DetectDecode writes (", head.batch, ", ", 4 + nc, ", ",
                                  anchors, "), output '", plan_.outputs[step.boundary].name,
                                  "' is ", ShapeToString(out.shape())));
  }
  float* o_base = out.data<float>();
  int64_t anchor_offset = 0;
  for (size_t l = 0; l < levels; ++l) {
    const View& box = io.reads[2 * l];
    const View& cls = io.reads[2 * l + 1];
    const int64_t h = head.heights[l], w = head.widths[l];
    const float stride = static_cast<float>(head.strides[l]);
    for (int64_t b = 0; b < head.batch; ++b) {
      for (int64_t cell = 0; cell < h * w; ++cell) {
        const int64_t pixel = b * h * w + cell;
        float dist[4];
        for (int side = 0; side < 4; ++side) {
          const int64_t first = side * ops::cuda::kDetectRegMax;
          float m = -std::numeric_limits<float>::infinity();
          for (int j = 0; j < ops::cuda::kDetectRegMax; ++j) {
            m = std::fmax(m, Load(box.At(pixel, first + j)));
          }
          float sum = 0.0f, weighted = 0.0f;
          for (int j = 0; j < ops::cuda::kDetectRegMax; ++j) {
            const float e = std::exp(Load(box.At(pixel, first + j)) - m);
            sum += e;
            weighted += e * static_cast<float>(j);
          }
          dist[side] = weighted / sum;
        }
        const float ax = static_cast<float>(cell % w) + 0.5f;
        const float ay = static_cast<float>(cell / w) + 0.5f;
        const float x1 = ax - dist[0], y1 = ay - dist[1];
        const float x2 = ax + dist[2], y2 = ay + dist[3];
        float* o = o_base + b * (4 + nc) * anchors + anchor_offset + cell;
        o[0 * anchors] = (x1 + x2) * 0.5f * stride;
        o[1 * anchors] = (y1 + y2) * 0.5f * stride;
        o[2 * anchors] = (x2 - x1) * stride;
        o[3 * anchors] = (y2 - y1) * stride;
        for (int64_t k = 0; k < nc; ++k) o[(4 + k) * anchors] = Sigmoid(Load(cls.At(pixel, k)));
      }
    }
    anchor_offset += h * w;
  }
  return absl::OkStatus();
}

absl::Status Emulator::Execute(const CudaStep& step, const StepIo& io,
                               absl::Span<const Tensor> inputs) {
  const auto& acts = plan_.activations;
  switch (step.kind) {
    case CudaStepKind::kInputToNhwc: {
      if (step.boundary < 0 || step.boundary >= static_cast<int>(inputs.size())) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("converts graph input ", step.boundary, " of ",
                                      inputs.size()));
      }
      const NhwcShape& s = acts[step.outputs[0]].shape;
      const Tensor& x = inputs[step.boundary];
      // The device kernel reads the activation's NCHW extent from a buffer of the input's size.
      if (x.num_elements() != s.elements()) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("converts ", ShapeToString(x.shape()), " into ",
                                      ActivationName(step.outputs[0]), " ", s.ToString()));
      }
      const float* src = x.data<float>();
      const View& y = io.writes[0];
      for (int64_t b = 0; b < s.n; ++b) {
        for (int64_t yy = 0; yy < s.h; ++yy) {
          for (int64_t xx = 0; xx < s.w; ++xx) {
            const int64_t pixel = (b * s.h + yy) * s.w + xx;
            for (int64_t c = 0; c < s.c; ++c) {
              Store(y.At(pixel, c), src[((b * s.c + c) * s.h + yy) * s.w + xx], y.activation);
            }
          }
        }
      }
      return absl::OkStatus();
    }
    case CudaStepKind::kConv:
      return RunConv(step, io);
    case CudaStepKind::kConcat:
    case CudaStepKind::kSplit: {
      for (size_t i = 0; i < io.reads.size(); ++i) {
        const View& src = io.reads[i];
        const View& dst = io.writes[i];
        for (int64_t p = 0; p < src.pixels; ++p) {
          for (int64_t k = 0; k < src.count; ++k) {
            Store(dst.At(p, k), Load(src.At(p, k)), dst.activation);
          }
        }
      }
      return absl::OkStatus();
    }
    case CudaStepKind::kMaxPool: {
      const NhwcShape& in = acts[step.inputs[0]].shape;
      const NhwcShape out = *ops::cuda::MaxPool2dOutputShape(in, step.pool);
      const ops::cuda::Pool2dParams& pp = step.pool;
      const View& x = io.reads[0];
      const View& y = io.writes[0];
      for (int64_t b = 0; b < out.n; ++b) {
        for (int64_t oy = 0; oy < out.h; ++oy) {
          for (int64_t ox = 0; ox < out.w; ++ox) {
            for (int64_t c = 0; c < out.c; ++c) {
              float best = -std::numeric_limits<float>::infinity();
              for (int64_t ky = 0; ky < pp.kernel_h; ++ky) {
                const int64_t iy = oy * pp.stride_h - pp.pad_h + ky;
                if (iy < 0 || iy >= in.h) continue;
                for (int64_t kx = 0; kx < pp.kernel_w; ++kx) {
                  const int64_t ix = ox * pp.stride_w - pp.pad_w + kx;
                  if (ix < 0 || ix >= in.w) continue;
                  best = std::fmax(best, Load(x.At((b * in.h + iy) * in.w + ix, c)));
                }
              }
              Store(y.At((b * out.h + oy) * out.w + ox, c), best, y.activation);
            }
          }
        }
      }
      return absl::OkStatus();
    }
    case CudaStepKind::kResize: {
      const NhwcShape& in = acts[step.inputs[0]].shape;
      const View& x = io.reads[0];
      const View& y = io.writes[0];
      const int64_t oh = 2 * in.h, ow = 2 * in.w;
      for (int64_t b = 0; b < in.n; ++b) {
        for (int64_t oy = 0; oy < oh; ++oy) {
          for (int64_t ox = 0; ox < ow; ++ox) {
            for (int64_t c = 0; c < in.c; ++c) {
              Store(y.At((b * oh + oy) * ow + ox, c),
                    Load(x.At((b * in.h + oy / 2) * in.w + ox / 2, c)), y.activation);
            }
          }
        }
      }
      return absl::OkStatus();
    }
    case CudaStepKind::kDetectDecode:
    case CudaStepKind::kOutputToNchw: {
      if (step.boundary < 0 || step.boundary >= static_cast<int>(outputs_.size())) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("writes graph output ", step.boundary, " of ",
                                      outputs_.size()));
      }
      if (step.kind == CudaStepKind::kDetectDecode) return RunDetectDecode(step, io);
      const NhwcShape& s = acts[step.inputs[0]].shape;
      Tensor& out = outputs_[step.boundary];
      if (out.num_elements() != s.elements()) {
        return StepError(absl::StatusCode::kInternal,
                         absl::StrCat("converts ", ActivationName(step.inputs[0]), " ",
                                      s.ToString(), " into output '",
                                      plan_.outputs[step.boundary].name, "' ",
                                      ShapeToString(out.shape())));
      }
      float* dst = out.data<float>();
      const View& x = io.reads[0];
      for (int64_t b = 0; b < s.n; ++b) {
        for (int64_t c = 0; c < s.c; ++c) {
          for (int64_t yy = 0; yy < s.h; ++yy) {
            for (int64_t xx = 0; xx < s.w; ++xx) {
              dst[((b * s.c + c) * s.h + yy) * s.w + xx] =
                  Load(x.At((b * s.h + yy) * s.w + xx, c));
            }
          }
        }
      }
      return absl::OkStatus();
    }
  }
  return StepError(absl::StatusCode::kInternal, "unknown step kind");
}

absl::StatusOr<std::vector<Tensor>> Emulator::Run(absl::Span<const Tensor> inputs) {
  YP_RETURN_IF_ERROR(CheckPlan());
  if (inputs.size() != plan_.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA emulator: expected ",
                                                   plan_.inputs.size(), " inputs, got ",
                                                   inputs.size()));
  }
  std::vector<Tensor> plain;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& given = inputs[i];
    if (!given.defined() || given.dtype() != DType::kFloat32 ||
        given.shape() != plan_.inputs[i].shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CUDA emulator: input ", i, " '", plan_.inputs[i].name, "' must be float32",
          ShapeToString(plan_.inputs[i].shape), ", got ",
          given.defined() ? given.DebugString() : std::string("nothing")));
    }
    YP_ASSIGN_OR_RETURN(Tensor p, given.ToLayout(Layout::kPlain));
    plain.push_back(std::move(p));
  }
  const size_t elements = plan_.arena_bytes / element_bytes_;
  arena_.assign(elements, std::numeric_limits<float>::quiet_NaN());
  if (options_.check_layout) {
    owner_.assign(elements, kNeverWritten);
    owner_step_.assign(elements, -1);
  }
  // Output buffers no step writes stay NaN, like uninitialised device memory would be garbage.
  outputs_.clear();
  for (const CudaBoundaryTensor& o : plan_.outputs) {
    Tensor t(DType::kFloat32, o.shape);
    float* d = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) d[i] = std::numeric_limits<float>::quiet_NaN();
    outputs_.push_back(std::move(t));
  }
  for (step_ = 0; step_ < static_cast<int>(plan_.steps.size()); ++step_) {
    const CudaStep& step = plan_.steps[step_];
    YP_ASSIGN_OR_RETURN(const StepIo io, Accesses(step));
    PoisonWrites(io);
    if (options_.check_layout) YP_RETURN_IF_ERROR(CheckReads(io));
    YP_RETURN_IF_ERROR(Execute(step, io, plain));
  }
  return std::move(outputs_);
}

}  // namespace

absl::StatusOr<std::vector<Tensor>> EmulateCudaPlan(const CudaLoweringPlan& plan,
                                                    absl::Span<const Tensor> inputs,
                                                    const CudaEmulatorOptions& options) {
  Emulator emulator(plan, options);
  return emulator.Run(inputs);
}

}  // namespace yolopipe
