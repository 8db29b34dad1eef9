// --config=cuda build: the device half of CudaExecutor (memory, stream, cuDNN runner, CUDA graph).
#include <cuda_runtime_api.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "ops/cuda/conv.h"
#include "ops/cuda/kernels.h"
#include "runtime/cuda/cuda_executor.h"
#include "runtime/cuda/cuda_util.h"
#include "runtime/cuda/device_memory.h"
#include "runtime/cuda/stream.h"

namespace yolopipe {

struct CudaExecutor::State {
  // One set of device boundary buffers: per graph input / output (plan order), float32 NCHW as
  // the host gives and takes them, and the CUDA graph that reads and writes exactly these.
  struct IoSet {
    std::vector<DeviceBuffer> inputs_nchw;
    std::vector<DeviceBuffer> outputs;
    cudaGraphExec_t graph_exec = nullptr;
  };
  CudaStream stream;
  std::unique_ptr<ops::cuda::CudnnConvRunner> conv;
  DeviceArena arena;
  DeviceBuffer weights;
  DeviceBuffer workspace;
  std::vector<IoSet> sets;
  // Pinned host buffers the boundary tensors are copied through (shared by the sets: every run
  // completes before it returns).
  std::vector<PinnedHostBuffer> pinned_inputs;
  std::vector<PinnedHostBuffer> pinned_outputs;
  std::vector<void*> activation_ptrs;  // per plan activation, inside the arena
  size_t workspace_bytes = 0;

  ~State() {
    // Nothing useful can be done with a failure here; the executor is going away. Work of a
    // failed Run may still be in flight: let it finish before the buffers are freed.
    if (stream.valid()) (void)stream.Synchronize();
    for (IoSet& set : sets) {
      if (set.graph_exec != nullptr) (void)cudaGraphExecDestroy(set.graph_exec);
    }
  }
};

namespace {

// Where activation `id` lives: its own dense tensor, or a channel slice of the one it aliases.
ops::cuda::ChannelSlice SliceOf(const CudaLoweringPlan& plan, const std::vector<void*>& ptrs,
                                int id) {
  const CudaActivation& a = plan.activations[id];
  if (a.alias_of < 0) return ops::cuda::ChannelSlice{ptrs[id], a.shape.c, 0};
  return ops::cuda::ChannelSlice{ptrs[a.alias_of], plan.activations[a.alias_of].shape.c,
                                 a.channel_offset};
}

// Everything Forward needs besides x and w, pointing into the executor's buffers.
void ConvCallFor(const CudaLoweringPlan& plan, const CudaStep& step, const std::vector<void*>& ptrs,
                 const DeviceBuffer& weights, ops::cuda::ConvEpilogueParams* epilogue,
                 ops::cuda::ChannelSlice* y) {
  const char* blob = static_cast<const char*>(weights.data());
  epilogue->bias =
      step.has_bias ? reinterpret_cast<const float*>(blob + step.bias_offset) : nullptr;
  epilogue->silu = step.silu;
  epilogue->residual = ops::cuda::ConstChannelSlice{};
  if (step.has_residual) {
    const ops::cuda::ChannelSlice r = SliceOf(plan, ptrs, step.inputs[1]);
    epilogue->residual = ops::cuda::ConstChannelSlice{r.data, r.channels, r.offset};
  }
  *y = SliceOf(plan, ptrs, step.outputs[0]);
}

absl::Status WithStep(const CudaStep& step, absl::Status status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("CUDA executor: running node '", step.name, "' (",
                                                  step.op_type, "): ", status.message()));
}

}  // namespace

CudaExecutor::CudaExecutor(const CudaExecutorOptions& options) : options_(options) {}
CudaExecutor::~CudaExecutor() = default;

size_t CudaExecutor::workspace_bytes() const { return state_ ? state_->workspace_bytes : 0; }
bool CudaExecutor::graph_captured() const {
  return state_ && !state_->sets.empty() && state_->sets[0].graph_exec != nullptr;
}

void* CudaExecutor::input_buffer(int set, int i) const {
  if (!state_ || set < 0 || set >= static_cast<int>(state_->sets.size())) return nullptr;
  const auto& inputs = state_->sets[set].inputs_nchw;
  return i >= 0 && i < static_cast<int>(inputs.size()) ? inputs[i].data() : nullptr;
}

void* CudaExecutor::output_buffer(int set, int i) const {
  if (!state_ || set < 0 || set >= static_cast<int>(state_->sets.size())) return nullptr;
  const auto& outputs = state_->sets[set].outputs;
  return i >= 0 && i < static_cast<int>(outputs.size()) ? outputs[i].data() : nullptr;
}

absl::StatusOr<std::unique_ptr<CudaExecutor>> CudaExecutor::Create(
    const Graph& prepared, const CudaExecutorOptions& options) {
  if (options.io_sets < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA executor: io_sets must be >= 1, got ", options.io_sets));
  }
  // Host-side lowering first: its errors do not depend on having a GPU.
  YP_ASSIGN_OR_RETURN(
      CudaLoweringPlan plan,
      PlanCudaLowering(prepared, options.precision, options.concat_in_place, options.image_shape));
  ScopedCudaDevice scope(options.device);
  YP_RETURN_IF_ERROR(scope.status());

  std::unique_ptr<CudaExecutor> ex(new CudaExecutor(options));
  ex->plan_ = std::move(plan);
  ex->state_ = std::make_unique<State>();
  const CudaLoweringPlan& p = ex->plan_;
  State& st = *ex->state_;
  YP_ASSIGN_OR_RETURN(st.stream, CudaStream::Create(options.device));
  YP_ASSIGN_OR_RETURN(st.conv, ops::cuda::CudnnConvRunner::Create(options.conv_implementation));
  YP_ASSIGN_OR_RETURN(st.arena, DeviceArena::Create(p.arena_bytes, options.device));
  for (const CudaActivation& a : p.activations) {
    YP_ASSIGN_OR_RETURN(void* ptr, st.arena.At(a.offset, a.bytes));
    st.activation_ptrs.push_back(ptr);
  }
  YP_ASSIGN_OR_RETURN(st.weights, DeviceBuffer::Allocate(p.weights.size(), options.device));
  if (!p.weights.empty()) {
    YP_RETURN_IF_ERROR(
        CopyHostToDeviceAsync(st.weights.data(), p.weights.data(), p.weights.size(), st.stream));
    YP_RETURN_IF_ERROR(st.stream.Synchronize());
  }
  // Plan every convolution now (cuDNN algorithm search), so Run only enqueues work.
  for (const CudaStep& step : p.steps) {
    if (step.kind != CudaStepKind::kConv) continue;
    ops::cuda::ConvEpilogueParams epilogue;
    ops::cuda::ChannelSlice y;
    ConvCallFor(p, step, st.activation_ptrs, st.weights, &epilogue, &y);
    auto bytes = st.conv->WorkspaceBytes(step.conv, epilogue, y);
    if (!bytes.ok()) return WithStep(step, bytes.status());
    st.workspace_bytes = std::max(st.workspace_bytes, *bytes);
  }
  YP_ASSIGN_OR_RETURN(st.workspace, DeviceBuffer::Allocate(st.workspace_bytes, options.device));
  st.sets.resize(static_cast<size_t>(options.io_sets));
  for (State::IoSet& set : st.sets) {
    for (const CudaBoundaryTensor& in : p.inputs) {
      YP_ASSIGN_OR_RETURN(DeviceBuffer device, DeviceBuffer::Allocate(in.bytes(), options.device));
      set.inputs_nchw.push_back(std::move(device));
    }
    for (const CudaBoundaryTensor& out : p.outputs) {
      YP_ASSIGN_OR_RETURN(DeviceBuffer device, DeviceBuffer::Allocate(out.bytes(), options.device));
      set.outputs.push_back(std::move(device));
    }
  }
  for (const CudaBoundaryTensor& in : p.inputs) {
    YP_ASSIGN_OR_RETURN(PinnedHostBuffer pinned, PinnedHostBuffer::Allocate(in.bytes()));
    st.pinned_inputs.push_back(std::move(pinned));
  }
  for (const CudaBoundaryTensor& out : p.outputs) {
    YP_ASSIGN_OR_RETURN(PinnedHostBuffer pinned, PinnedHostBuffer::Allocate(out.bytes()));
    st.pinned_outputs.push_back(std::move(pinned));
  }
  return ex;
}

absl::Status CudaExecutor::EnqueueSteps(int set) {
  for (const CudaStep& step : plan_.steps) YP_RETURN_IF_ERROR(EnqueueStep(step, set));
  return absl::OkStatus();
}

absl::Status CudaExecutor::EnqueueStep(const CudaStep& step, int set) {
  const CudaLoweringPlan& p = plan_;
  State& st = *state_;
  State::IoSet& io = st.sets[set];
  void* stream = st.stream.handle();
  const DType dtype = p.precision;
  const std::vector<void*>& ptrs = st.activation_ptrs;
  absl::Status status;
  switch (step.kind) {
    case CudaStepKind::kInputToNhwc:
      status = ops::cuda::NchwFloatToNhwc(
          static_cast<const float*>(io.inputs_nchw[step.boundary].data()),
          p.activations[step.outputs[0]].shape, dtype, ptrs[step.outputs[0]], stream);
      break;
    case CudaStepKind::kConv: {
      ops::cuda::ConvEpilogueParams epilogue;
      ops::cuda::ChannelSlice y;
      ConvCallFor(p, step, ptrs, st.weights, &epilogue, &y);
      const char* blob = static_cast<const char*>(st.weights.data());
      status = st.conv->Forward(step.conv, ptrs[step.inputs[0]], blob + step.weight_offset,
                                epilogue, y, st.workspace.data(), st.workspace_bytes, stream);
      break;
    }
    case CudaStepKind::kConcat: {
      const CudaActivation& out = p.activations[step.outputs[0]];
      for (size_t i = 0; i < step.inputs.size() && status.ok(); ++i) {
        if (step.written_in_place[i]) continue;  // its producer wrote the slice
        const CudaActivation& in = p.activations[step.inputs[i]];
        status = ops::cuda::CopyChannelSlice(
            dtype, ops::cuda::ConstChannelSlice{ptrs[step.inputs[i]], in.shape.c, 0},
            ops::cuda::ChannelSlice{ptrs[step.outputs[0]], out.shape.c, step.channel_offsets[i]},
            out.shape.pixels(), in.shape.c, stream);
      }
      break;
    }
    case CudaStepKind::kSplit: {
      const CudaActivation& in = p.activations[step.inputs[0]];
      for (size_t i = 0; i < step.outputs.size() && status.ok(); ++i) {
        const CudaActivation& out = p.activations[step.outputs[i]];
        status = ops::cuda::CopyChannelSlice(
            dtype,
            ops::cuda::ConstChannelSlice{ptrs[step.inputs[0]], in.shape.c, step.channel_offsets[i]},
            ops::cuda::ChannelSlice{ptrs[step.outputs[i]], out.shape.c, 0}, in.shape.pixels(),
            out.shape.c, stream);
      }
      break;
    }
    case CudaStepKind::kMaxPool:
      status =
          ops::cuda::MaxPool2d(dtype, ptrs[step.inputs[0]], p.activations[step.inputs[0]].shape,
                               step.pool, ptrs[step.outputs[0]], stream);
      break;
    case CudaStepKind::kResize:
      status = ops::cuda::ResizeNearest2x(dtype, ptrs[step.inputs[0]],
                                          p.activations[step.inputs[0]].shape,
                                          ptrs[step.outputs[0]], stream);
      break;
    case CudaStepKind::kDetectDecode: {
      std::vector<ops::cuda::DetectLevel> levels;
      for (size_t l = 0; l < step.inputs.size(); ++l) {
        const int id = step.inputs[l];
        const int64_t channels = p.activations[id].shape.c;
        ops::cuda::DetectLevel level;
        level.box = ops::cuda::ConstChannelSlice{ptrs[id], channels, 0};
        level.cls = ops::cuda::ConstChannelSlice{ptrs[id], channels, ops::cuda::kDetectBoxChannels};
        level.height = p.head.heights[l];
        level.width = p.head.widths[l];
        level.stride = static_cast<float>(p.head.strides[l]);
        levels.push_back(level);
      }
      status =
          ops::cuda::DetectDecode(dtype, levels, p.head.batch, p.head.num_classes,
                                  static_cast<float*>(io.outputs[step.boundary].data()), stream);
      break;
    }
    case CudaStepKind::kOutputToNchw:
      status = ops::cuda::NhwcToNchwFloat(
          dtype, ptrs[step.inputs[0]], p.activations[step.inputs[0]].shape,
          static_cast<float*>(io.outputs[step.boundary].data()), stream);
      break;
  }
  return WithStep(step, status);
}

absl::StatusOr<Tensor> CudaExecutor::Run(const Tensor& host_input) {
  if (plan_.inputs.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA executor: the graph has ", plan_.inputs.size(), " inputs; use RunAll"));
  }
  YP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, RunAll({host_input}));
  return std::move(outputs[0]);
}

absl::Status CudaExecutor::StageInputs(int set, absl::Span<const Tensor> host_inputs,
                                       bool allow_resident) {
  const CudaLoweringPlan& p = plan_;
  State& st = *state_;
  if (host_inputs.size() != p.inputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA executor: expected ", p.inputs.size(),
                                                   " inputs, got ", host_inputs.size()));
  }
  // The previous run's copies from the pinned buffers have completed: every run synchronises
  // its stream before returning.
  for (size_t i = 0; i < host_inputs.size(); ++i) {
    const Tensor& given = host_inputs[i];
    if (!given.defined() && allow_resident) continue;  // already in the set's buffer
    if (!given.defined() || given.dtype() != DType::kFloat32 ||
        given.shape() != p.inputs[i].shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("CUDA executor: input '", p.inputs[i].name, "' must be float32",
                       ShapeToString(p.inputs[i].shape), ", got ",
                       given.defined() ? given.DebugString() : std::string("nothing")));
    }
    YP_ASSIGN_OR_RETURN(const Tensor plain, given.ToLayout(Layout::kPlain));
    std::memcpy(st.pinned_inputs[i].data(), plain.raw_data(), plain.bytes());
    YP_RETURN_IF_ERROR(CopyHostToDeviceAsync(st.sets[set].inputs_nchw[i].data(),
                                             st.pinned_inputs[i].data(), p.inputs[i].bytes(),
                                             st.stream));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> CudaExecutor::TimeSteps(absl::Span<const Tensor> host_inputs) {
  std::lock_guard<std::mutex> lock(mu_);
  State& st = *state_;
  ScopedCudaDevice scope(options_.device);
  YP_RETURN_IF_ERROR(scope.status());
  const size_t n = plan_.steps.size();
  std::vector<CudaEvent> events;
  for (size_t i = 0; i <= n; ++i) {
    YP_ASSIGN_OR_RETURN(CudaEvent e, CudaEvent::Create(options_.device, /*enable_timing=*/true));
    events.push_back(std::move(e));
  }
  const absl::Status ran = [&]() -> absl::Status {
    YP_RETURN_IF_ERROR(StageInputs(/*set=*/0, host_inputs, /*allow_resident=*/false));
    // Event i marks the start of step i and the end of step i - 1.
    YP_RETURN_IF_ERROR(events[0].Record(st.stream));
    for (size_t i = 0; i < n; ++i) {
      YP_RETURN_IF_ERROR(EnqueueStep(plan_.steps[i], /*set=*/0));
      YP_RETURN_IF_ERROR(events[i + 1].Record(st.stream));
    }
    return st.stream.Synchronize();
  }();
  if (!ran.ok()) {
    (void)st.stream.Synchronize();
    return ran;
  }
  std::vector<double> ms(n);
  for (size_t i = 0; i < n; ++i) {
    YP_ASSIGN_OR_RETURN(const float elapsed, ElapsedMs(events[i], events[i + 1]));
    ms[i] = elapsed;
  }
  return ms;
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunAll(absl::Span<const Tensor> host_inputs) {
  std::lock_guard<std::mutex> lock(mu_);
  return RunSetLocked(/*set=*/0, host_inputs, std::vector<bool>(plan_.outputs.size(), true),
                      /*allow_resident=*/false);
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunSet(int set,
                                                         absl::Span<const Tensor> host_inputs,
                                                         const std::vector<bool>& download) {
  if (set < 0 || set >= options_.io_sets) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA executor: I/O set ", set, " out of range [0, ", options_.io_sets, ")"));
  }
  if (!download.empty() && download.size() != plan_.outputs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA executor: download lists ",
                                                   download.size(), " outputs, the graph has ",
                                                   plan_.outputs.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  return RunSetLocked(set, host_inputs,
                      download.empty() ? std::vector<bool>(plan_.outputs.size(), false) : download,
                      /*allow_resident=*/true);
}

absl::StatusOr<std::vector<Tensor>> CudaExecutor::RunSetLocked(int set,
                                                               absl::Span<const Tensor> host_inputs,
                                                               const std::vector<bool>& download,
                                                               bool allow_resident) {
  const CudaLoweringPlan& p = plan_;
  State& st = *state_;
  State::IoSet& io = st.sets[set];
  ScopedCudaDevice scope(options_.device);
  YP_RETURN_IF_ERROR(scope.status());
  const absl::Status ran = [&]() -> absl::Status {
    YP_RETURN_IF_ERROR(StageInputs(set, host_inputs, allow_resident));
    if (io.graph_exec != nullptr) {
      YP_CUDA_RETURN_IF_ERROR(
          cudaGraphLaunch(io.graph_exec, static_cast<cudaStream_t>(st.stream.handle())));
    } else {
      YP_RETURN_IF_ERROR(EnqueueSteps(set));
    }
    for (size_t o = 0; o < p.outputs.size(); ++o) {
      if (!download[o]) continue;
      YP_RETURN_IF_ERROR(CopyDeviceToHostAsync(st.pinned_outputs[o].data(), io.outputs[o].data(),
                                               p.outputs[o].bytes(), st.stream));
    }
    return st.stream.Synchronize();
  }();
  if (!ran.ok()) {
    // Do not leave copies from/to the pinned buffers in flight behind an error.
    (void)st.stream.Synchronize();
    return ran;
  }
  std::vector<Tensor> results(p.outputs.size());
  for (size_t o = 0; o < p.outputs.size(); ++o) {
    if (!download[o]) continue;
    Tensor result(DType::kFloat32, p.outputs[o].shape);
    std::memcpy(result.raw_data(), st.pinned_outputs[o].data(), p.outputs[o].bytes());
    results[o] = std::move(result);
  }

  // After a successful direct run of this set (cuDNN initialised, kernels loaded), capture the
  // same steps once; later runs of the set replay them. Capture records work without executing
  // it. Each set has its own graph because a graph holds the buffer addresses it was captured
  // with.
  if (options_.use_cuda_graph && io.graph_exec == nullptr) {
    cudaStream_t stream = static_cast<cudaStream_t>(st.stream.handle());
    YP_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const absl::Status enqueued = EnqueueSteps(set);
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    if (!enqueued.ok() || ended != cudaSuccess) {
      if (graph != nullptr) (void)cudaGraphDestroy(graph);
      (void)cudaGetLastError();
      if (!enqueued.ok()) {
        return absl::Status(enqueued.code(),
                            absl::StrCat("capturing the CUDA graph: ", enqueued.message()));
      }
      return CudaErrorToStatus(ended, "cudaStreamEndCapture (capturing the CUDA graph)");
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    YP_CUDA_RETURN_IF_ERROR(instantiated);
    io.graph_exec = exec;
  }
  return results;
}

}  // namespace yolopipe
