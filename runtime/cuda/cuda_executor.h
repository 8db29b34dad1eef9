// CudaExecutor: runs a prepared YOLOv8 graph (graph/prepare.h) on one NVIDIA GPU.
//
// Create() lowers the graph once, on the host:
//   - every activation is an NHWC tensor in the chosen precision (fp16 or fp32), placed in one
//     DeviceArena at offsets from the static memory plan (runtime/memory_plan.h);
//   - Conv -> ops::cuda::CudnnConvRunner with the bias, SiLU and residual fused in its epilogue
//     (weights repacked once from ONNX OIHW fp32 to OHWI in the precision; biases stay fp32);
//     Concat and Split -> channel-slice copies, except that a convolution whose only reader is a
//     Concat writes straight into its channel slice (no copy); MaxPool and Resize (nearest x2) ->
//     CUDA kernels;
//   - the YOLOv8 Detect head (the subgraph from the per-level [box, cls] tensors to the graph
//     output) -> one ops::cuda::DetectDecode writing the fp32 (B, 4 + nc, A) output. A graph
//     whose first output is a 4-D activation instead gets an NHWC -> NCHW fp32 conversion.
// Any other op, or a supported op with attributes the CUDA kernels do not implement, gives
// Unimplemented naming the node. Nothing is guessed: a head that does not match the expected
// structure is rejected the same way.
//
// Run() copies each NCHW fp32 input through a pinned host buffer, converts it to NHWC in the
// precision, enqueues the steps on the executor's stream and copies the outputs back through
// pinned memory. With use_cuda_graph, the first Run executes the steps directly (which also
// warms up cuDNN and loads the kernels) and then captures them into a CUDA graph; later Runs
// replay it. An executor is bound to one input shape, so one graph per executor.
//
// The host-side parts (FindDetectHead, PlanCudaLowering) are pure functions that work in every
// build, so they are tested without a GPU. In a build without --config=cuda,
// CudaExecutor::Create returns FailedPrecondition("... built without CUDA support").
#ifndef YOLOPIPE_RUNTIME_CUDA_CUDA_EXECUTOR_H_
#define YOLOPIPE_RUNTIME_CUDA_CUDA_EXECUTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/dtype.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "ops/cuda/conv.h"
#include "ops/cuda/kernels.h"

namespace yolopipe {

// ---- Detect head recognition (host only) -------------------------------------------------------

// The YOLOv8 Detect head of a prepared graph, as DetectDecode needs it.
struct DetectHeadInfo {
  // Per level, in the order the head concatenates them (anchor order): the (B, 64 + nc, H, W)
  // tensors whose channels are [box logits (4 x 16 bins), class logits].
  std::vector<std::string> level_tensors;
  std::vector<int64_t> heights, widths;
  std::vector<int64_t> strides;  // input pixels per grid cell: input height / level height
  int64_t num_classes = 0;
  int64_t batch = 0;
  int64_t anchors = 0;     // sum of H * W over the levels
  std::string output;      // the graph output the head produces, (B, 4 + nc, anchors) float32
  std::vector<int> nodes;  // indices (into graph.nodes()) of the nodes DetectDecode replaces
};

// Recognises the Detect head that produces the graph's first output: the nodes between the
// per-level tensors (inputs of the head's Reshapes with 4 * 16 + nc channels) and the output.
// Checks, rather than assumes: only the op types of the YOLOv8 head (Reshape, Concat, Split,
// Transpose, Softmax, Conv, Slice, Sub, Add, Div, Mul, Sigmoid) with exactly one Conv whose
// weight is the DFL's 0..15 bins, no other node reads a head-internal value, the levels
// concatenate in order along the anchor axis, the input size is a whole multiple of every level
// size, and any (1, 2, A) / (1, A) constant equals the anchor centres / per-anchor strides that
// DetectDecode uses. Unimplemented, naming the output or the offending node, when the graph does
// not match. `prepared` must have concrete shapes (graph/prepare.h). `image_shape`: the model's
// image batch (N, C, H, W), which sets the strides; empty: the graph's only input (a pipeline
// stage, whose inputs are the tensors it receives, must pass the model's).
absl::StatusOr<DetectHeadInfo> FindDetectHead(const Graph& prepared,
                                              const Shape& image_shape = {});

// Pipeline stages on CUDA devices: the Detect head runs as one kernel (DetectDecode), so it must
// sit whole in one stage. Returns `stage_nodes` (per stage, node names of `prepared`, a whole
// model) with every node of the head that produces the first output moved to the last stage:
// always a valid split, since only the head reads head values and the head reads only the level
// tensors and constants. Unchanged when the head is already in the last stage or the first
// output is a 4-D activation (no head); FindDetectHead's error for a non-4-D output that is not a
// Detect head; InvalidArgument when moving the head empties an earlier stage (use fewer stages).
absl::StatusOr<std::vector<std::vector<std::string>>> KeepDetectHeadInLastStage(
    const Graph& prepared, std::vector<std::vector<std::string>> stage_nodes);

// ---- Lowering plan (host only) -----------------------------------------------------------------

enum class CudaStepKind {
  kInputToNhwc,   // a graph input: fp32 NCHW device staging buffer -> NHWC precision
  kConv,          // CudnnConvRunner::Forward
  kConcat,        // one CopyChannelSlice per input
  kSplit,         // one CopyChannelSlice per output
  kMaxPool,       // MaxPool2d
  kResize,        // ResizeNearest2x
  kDetectDecode,  // the Detect head -> the first graph output's fp32 buffer
  kOutputToNchw,  // a 4-D graph output -> its fp32 NCHW output buffer
};

// One NHWC activation in the arena.
struct CudaActivation {
  std::string name;
  ops::cuda::NhwcShape shape;
  size_t bytes = 0;   // elements * precision size (of this tensor, not of alias_of's)
  size_t offset = 0;  // in the arena, a multiple of 256 (alias: alias_of's offset)
  int first_step = 0, last_step = 0;
  // A convolution output that only a Concat reads lives in that Concat's output: channels
  // [channel_offset, channel_offset + shape.c) of activation alias_of (a dense, wider tensor).
  int alias_of = -1;
  int64_t channel_offset = 0;
};

struct CudaStep {
  CudaStepKind kind = CudaStepKind::kConv;
  std::string name;          // node name ("<input>" / "<output>" for the boundary steps)
  // kInputToNhwc: index of the graph input it converts; kDetectDecode / kOutputToNchw: index of
  // the graph output it writes. -1 otherwise.
  int boundary = -1;
  std::string op_type;       // node op type, or "DetectHead" / "LayoutConversion"
  std::vector<int> inputs;   // activation ids
  std::vector<int> outputs;  // activation ids
  // kConv: shape/parameters and where the packed weights and fp32 bias sit in the weight blob.
  ops::cuda::ConvParams conv;
  bool silu = false;
  bool has_bias = false;
  bool has_residual = false;  // then inputs[1] is the residual
  size_t weight_offset = 0, bias_offset = 0;
  // kConcat / kSplit: channel offset of each input (Concat) or output (Split) in the wide tensor.
  std::vector<int64_t> channel_offsets;
  // kConcat: per input, true when its producer already wrote it in place (no copy).
  std::vector<bool> written_in_place;
  // kMaxPool.
  ops::cuda::Pool2dParams pool;
};

// A graph input or output as the host sees it: plain float32 NCHW (the Detect output: (B, 4 + nc,
// anchors)).
struct CudaBoundaryTensor {
  std::string name;
  Shape shape;
  size_t bytes() const { return static_cast<size_t>(NumElements(shape)) * sizeof(float); }
};

struct CudaLoweringPlan {
  DType precision = DType::kFloat16;
  std::vector<CudaActivation> activations;
  // In execution order: one kInputToNhwc per graph input first (graph order), then the nodes,
  // then one kDetectDecode / kOutputToNchw per graph output (graph order).
  std::vector<CudaStep> steps;
  size_t arena_bytes = 0;       // after reuse (a multiple of 256)
  size_t unplanned_bytes = 0;   // without reuse
  // Packed conv weights (OHWI in the precision) and fp32 biases, each 256-byte aligned.
  std::vector<uint8_t> weights;
  // Every graph input and output, in graph order. A whole model has one input; a pipeline
  // stage has one per tensor it receives and one output per tensor it sends.
  std::vector<CudaBoundaryTensor> inputs, outputs;
  bool has_detect_head = false;
  DetectHeadInfo head;  // when has_detect_head
};

// Lowers a prepared graph (a whole model, or a pipeline stage's graph from graph/partition.h) for
// the CUDA kernels, without touching a device. Every input must be a bound float32 4-D tensor;
// every output a 4-D activation, except that a non-4-D first output must be the Detect head
// (FindDetectHead with `image_shape`). `precision` is kFloat16 or kFloat32 (InvalidArgument
// otherwise). Unimplemented("CUDA executor: node 'X'
// (op Y) is not supported") for an op without a CUDA lowering, and Unimplemented naming the node
// for unsupported attributes (asymmetric padding, ceil_mode, non-constant weights...).
// With `concat_in_place`, convolution outputs read only by a Concat alias that Concat's channel
// slice (see CudaActivation::alias_of).
absl::StatusOr<CudaLoweringPlan> PlanCudaLowering(const Graph& prepared, DType precision,
                                                  bool concat_in_place = true,
                                                  const Shape& image_shape = {});

// Per step of `plan` (lowered from `prepared`), the indices (into prepared.nodes()) of the nodes
// whose cost the step is: a node's own step; a Detect decode: every node of the head; an input
// conversion: the first node that reads the input (none when no node reads it); an output
// conversion: the node producing the output (none for an output that is a graph input). The
// profiler splits a step's time evenly among its nodes. Internal when a step names no node.
absl::StatusOr<std::vector<std::vector<int>>> CudaStepNodes(const Graph& prepared,
                                                            const CudaLoweringPlan& plan);

// ---- Executor ----------------------------------------------------------------------------------

struct CudaExecutorOptions {
  int device = 0;                     // CUDA ordinal
  // The model's image batch shape when the graph is a pipeline stage ending in the Detect head
  // (see FindDetectHead); empty for a whole model.
  Shape image_shape;
  DType precision = DType::kFloat16;  // of weights and activations: kFloat16 or kFloat32
  bool use_cuda_graph = true;         // replay a captured CUDA graph after the first Run
  // Sets of device input/output buffers (RunSet; RunAll uses set 0), each with its own CUDA
  // graph: a pipeline stage receives micro-batch i+1 into one set while it computes i in another.
  int io_sets = 1;
  bool concat_in_place = true;        // convolutions write into Concat slices directly
  ops::cuda::ConvImplementation conv_implementation =
      ops::cuda::ConvImplementation::kLegacyPlusEpilogue;
};

// Thread-safe: Run() calls are serialised (one arena, one stream). Owns all its device memory,
// its stream, its cuDNN runner and its CUDA graph; destroying it releases them.
class CudaExecutor {
 public:
  // `prepared` as for PlanCudaLowering. FailedPrecondition without CUDA support or without a GPU;
  // the lowering errors of PlanCudaLowering; cuDNN/CUDA errors while planning convolutions or
  // allocating memory.
  static absl::StatusOr<std::unique_ptr<CudaExecutor>> Create(const Graph& prepared,
                                                              const CudaExecutorOptions& options);
  ~CudaExecutor();
  CudaExecutor(const CudaExecutor&) = delete;
  CudaExecutor& operator=(const CudaExecutor&) = delete;

  // `host_input`: float32 with exactly plan().inputs[0].shape (plain or NHWC layout). Returns the
  // graph's first output as a new plain float32 host tensor. InvalidArgument for a graph with
  // more than one input.
  absl::StatusOr<Tensor> Run(const Tensor& host_input);
  // Every graph input in graph order (float32, plan().inputs[i].shape, plain or NHWC layout).
  // Returns every graph output in graph order as new plain float32 host tensors (a pipeline
  // stage's sends).
  absl::StatusOr<std::vector<Tensor>> RunAll(absl::Span<const Tensor> host_inputs);

  // Device-resident runs: the pipeline's NCCL path moves tensors straight between the stages'
  // device buffers. Every set holds one float32 NCHW device buffer per graph input and output
  // (plan().inputs / outputs shapes, the same layout the host tensors have).
  int io_sets() const { return options_.io_sets; }
  // Device address of input / output `i` of set `set` (valid while the executor lives); nullptr
  // when out of range or without CUDA.
  void* input_buffer(int set, int i) const;
  void* output_buffer(int set, int i) const;
  // Runs the graph on set `set`. `host_inputs` has one entry per graph input: a defined tensor
  // (as for RunAll) is copied into the set's buffer first; an undefined one means the buffer
  // already holds the input (written there by the caller, e.g. an NCCL receive that has
  // completed). Outputs stay in the set's buffers; output o is also returned as a new host tensor
  // when download[o] (an undefined Tensor otherwise; `download` empty: none). Returns once all of
  // it has completed. InvalidArgument for a bad set, entry count or input.
  absl::StatusOr<std::vector<Tensor>> RunSet(int set, absl::Span<const Tensor> host_inputs,
                                             const std::vector<bool>& download);

  // Profiling: runs the graph once without the CUDA graph, timing every step with CUDA events
  // on the executor's stream; returns milliseconds per plan().steps entry (the input and output
  // copies between host and device are not steps and not included).
  absl::StatusOr<std::vector<double>> TimeSteps(absl::Span<const Tensor> host_inputs);

  const CudaLoweringPlan& plan() const { return plan_; }
  const CudaExecutorOptions& options() const { return options_; }
  // Largest cuDNN workspace any convolution needs (bytes, allocated once).
  size_t workspace_bytes() const;
  // True once a CUDA graph has been captured for set 0 (after the first Run with
  // use_cuda_graph).
  bool graph_captured() const;

 private:
  struct State;  // device objects; defined by the CUDA build (and trivially by the stub)
  explicit CudaExecutor(const CudaExecutorOptions& options);
  // Enqueues every step between the input H2D copy and the output D2H copy on the executor's
  // stream, reading and writing I/O set `set` (CUDA build only; called directly or under stream
  // capture).
  absl::Status EnqueueSteps(int set);
  absl::Status EnqueueStep(const CudaStep& step, int set);
  // Input copies into set `set` (validation, pinned staging, host-to-device on the stream);
  // undefined entries are skipped when `allow_resident`, refused otherwise.
  absl::Status StageInputs(int set, absl::Span<const Tensor> host_inputs, bool allow_resident);
  // RunSet without the lock.
  absl::StatusOr<std::vector<Tensor>> RunSetLocked(int set, absl::Span<const Tensor> host_inputs,
                                                   const std::vector<bool>& download,
                                                   bool allow_resident);

  CudaExecutorOptions options_;
  CudaLoweringPlan plan_;
  std::unique_ptr<State> state_;
  std::mutex mu_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_CUDA_CUDA_EXECUTOR_H_
