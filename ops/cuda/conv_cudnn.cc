// --config=cuda build of CudnnConvRunner: cuDNN's legacy convolution API + our epilogue kernel
// (kLegacyPlusEpilogue), or cuDNN's backend graph API with a fused epilogue (kGraphFusion).
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <algorithm>
#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ops/cuda/conv.h"
#include "ops/cuda/cuda_status.h"
#include "ops/cuda/launchers.h"

namespace yolopipe::ops::cuda {
namespace {

constexpr size_t kAlignment = 256;
constexpr size_t kMaxLegacyWorkspaceBytes = size_t{256} << 20;

size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

int64_t ElemSize(DType dtype) { return dtype == DType::kFloat16 ? 2 : 4; }

cudnnHandle_t AsHandle(void* handle) { return static_cast<cudnnHandle_t>(handle); }

std::vector<int64_t> PlanKey(const ConvParams& p) {
  return {static_cast<int64_t>(p.dtype),
          p.n,
          p.h,
          p.w,
          p.c_in,
          p.c_out,
          p.kernel_h,
          p.kernel_w,
          p.stride_h,
          p.stride_w,
          p.pad_h,
          p.pad_w,
          p.dilation_h,
          p.dilation_w,
          p.groups,
          p.allow_tf32 ? 1 : 0};
}

// cuDNN's legacy descriptors take int dimensions and compute int strides.
absl::Status CheckFitsInt(const ConvParams& p) {
  std::vector<int64_t> values = PlanKey(p);
  values.push_back(p.n * p.h * p.w * p.c_in);
  absl::StatusOr<NhwcShape> out = ConvOutputShape(p);
  if (!out.ok()) return out.status();
  values.push_back(out->elements());
  for (int64_t v : values) {
    if (v > INT_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Conv: a dimension or tensor size exceeds cuDNN's int range: ", p.ToString()));
    }
  }
  return absl::OkStatus();
}

bool IsTensorOpMath(cudnnMathType_t math) {
  return math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

// The parts of an epilogue and output that shape a graph plan (pointers do not).
std::vector<int64_t> EpilogueKey(const ConvEpilogueParams& e, const ChannelSlice& y) {
  const bool residual = e.residual.data != nullptr;
  return {e.bias != nullptr ? 1 : 0,
          e.silu ? 1 : 0,
          residual ? 1 : 0,
          residual ? e.residual.channels : 0,
          residual ? e.residual.offset : 0,
          y.channels,
          y.offset};
}

// Largest power of two (<= 16) dividing a slice's byte offset: what cuDNN may assume about the
// slice pointer's alignment, given a 256-byte aligned tensor base.
int64_t SliceAlignment(int64_t offset_elements, int64_t elem_size) {
  const int64_t bytes = offset_elements * elem_size;
  int64_t alignment = 16;
  while (alignment > 1 && bytes % alignment != 0) alignment /= 2;
  return alignment;
}

// Unique ids of the tensors a graph plan reads and writes (virtual ones are >= 100).
constexpr int64_t kUidX = 1, kUidW = 2, kUidBias = 3, kUidResidual = 4, kUidY = 5;

}  // namespace

struct CudnnConvRunner::Plan {
  cudnnTensorDescriptor_t x = nullptr;
  cudnnTensorDescriptor_t y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t cudnn_workspace_bytes = 0;
  NhwcShape out;
  std::string description;

  // kGraphFusion: every backend descriptor made for the plan (destroyed with it), the finalized
  // execution plan among them, and which optional tensors it reads.
  std::vector<cudnnBackendDescriptor_t> backend;
  cudnnBackendDescriptor_t execution_plan = nullptr;
  bool reads_bias = false;
  bool reads_residual = false;

  Plan() = default;
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
  // Destroy failures cannot be reported from a destructor; they only leak a descriptor.
  ~Plan() {
    for (auto it = backend.rbegin(); it != backend.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
    if (conv != nullptr) cudnnDestroyConvolutionDescriptor(conv);
    if (w != nullptr) cudnnDestroyFilterDescriptor(w);
    if (y != nullptr) cudnnDestroyTensorDescriptor(y);
    if (x != nullptr) cudnnDestroyTensorDescriptor(x);
  }
};

absl::StatusOr<std::unique_ptr<CudnnConvRunner>> CudnnConvRunner::Create(
    ConvImplementation implementation) {
  // Ask the runtime first: without a GPU it gives a clear "no device / no driver" error, which
  // cudnnCreate would not.
  int devices = 0;
  YP_CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&devices));
  if (devices == 0) return absl::FailedPreconditionError("CudnnConvRunner: no CUDA devices");
  cudnnHandle_t handle = nullptr;
  YP_CUDNN_RETURN_IF_ERROR(cudnnCreate(&handle));
  std::unique_ptr<CudnnConvRunner> runner(new CudnnConvRunner(implementation));
  runner->handle_ = handle;
  return runner;
}

CudnnConvRunner::CudnnConvRunner(ConvImplementation implementation)
    : implementation_(implementation) {}

CudnnConvRunner::~CudnnConvRunner() {
  plans_.clear();
  if (handle_ != nullptr) cudnnDestroy(AsHandle(handle_));
}

absl::Status CudnnConvRunner::BuildLegacyPlan(const ConvParams& p, Plan* plan) {
  cudnnHandle_t handle = AsHandle(handle_);
  absl::StatusOr<NhwcShape> out = ConvOutputShape(p);
  if (!out.ok()) return out.status();
  if (auto s = CheckFitsInt(p); !s.ok()) return s;
  const auto I = [](int64_t v) { return static_cast<int>(v); };
  const bool half = p.dtype == DType::kFloat16;
  const cudnnDataType_t data_type = half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  // fp16 tensors accumulate in fp32 (cuDNN's PSEUDO_HALF_CONFIG).
  const cudnnDataType_t compute_type = CUDNN_DATA_FLOAT;
  const bool strict_fp32 = !half && !p.allow_tf32;

  plan->out = *out;
  YP_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&plan->x));
  YP_CUDNN_RETURN_IF_ERROR(cudnnCreateTensorDescriptor(&plan->y));
  YP_CUDNN_RETURN_IF_ERROR(cudnnCreateFilterDescriptor(&plan->w));
  YP_CUDNN_RETURN_IF_ERROR(cudnnCreateConvolutionDescriptor(&plan->conv));
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(plan->x, CUDNN_TENSOR_NHWC, data_type, I(p.n),
                                                      I(p.c_in), I(p.h), I(p.w)));
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetFilter4dDescriptor(plan->w, data_type, CUDNN_TENSOR_NHWC,
                                                      I(p.c_out), I(p.c_in / p.groups),
                                                      I(p.kernel_h), I(p.kernel_w)));
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetConvolution2dDescriptor(
      plan->conv, I(p.pad_h), I(p.pad_w), I(p.stride_h), I(p.stride_w), I(p.dilation_h),
      I(p.dilation_w), CUDNN_CROSS_CORRELATION, compute_type));
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(plan->conv, I(p.groups)));
  const cudnnMathType_t requested_math =
      half ? CUDNN_TENSOR_OP_MATH : (p.allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(plan->conv, requested_math));

  int on = 0, oc = 0, oh = 0, ow = 0;
  YP_CUDNN_RETURN_IF_ERROR(
      cudnnGetConvolution2dForwardOutputDim(plan->conv, plan->x, plan->w, &on, &oc, &oh, &ow));
  if (on != out->n || oc != out->c || oh != out->h || ow != out->w) {
    return absl::InternalError(absl::StrCat("Conv: cuDNN computes output (", on, ", ", oc, ", ", oh,
                                            ", ", ow, "), we compute ", out->ToString(), " for ",
                                            p.ToString()));
  }
  YP_CUDNN_RETURN_IF_ERROR(
      cudnnSetTensor4dDescriptor(plan->y, CUDNN_TENSOR_NHWC, data_type, on, oc, oh, ow));

  int max_algos = 0;
  YP_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithmMaxCount(handle, &max_algos));
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(
      static_cast<size_t>(max_algos > 0 ? max_algos : 1));
  int returned = 0;
  YP_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(
      handle, plan->x, plan->w, plan->conv, plan->y, static_cast<int>(perf.size()), &returned,
      perf.data()));
  // Results come best first. Strict fp32 must not pick a tensor-core (TF32) variant, and no
  // algorithm may need more than kMaxLegacyWorkspaceBytes (FFT variants can ask for gigabytes).
  const cudnnConvolutionFwdAlgoPerf_t* chosen = nullptr;
  for (int i = 0; i < returned; ++i) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    if (perf[i].memory > kMaxLegacyWorkspaceBytes) continue;
    if (strict_fp32 && IsTensorOpMath(perf[i].mathType)) continue;
    chosen = &perf[i];
    break;
  }
  if (chosen == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("Conv: cuDNN offers no forward algorithm for ", p.ToString()));
  }
  plan->algo = chosen->algo;
  // fp16 keeps the math type cuDNN reported for the algorithm; strict fp32 stays on FMA.
  if (!strict_fp32) {
    YP_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(plan->conv, chosen->mathType));
  }
  YP_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardWorkspaceSize(
      handle, plan->x, plan->w, plan->conv, plan->y, plan->algo, &plan->cudnn_workspace_bytes));
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  YP_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionMathType(plan->conv, &math));
  plan->description =
      absl::StrCat("legacy algo ", static_cast<int>(plan->algo), ", math ", static_cast<int>(math),
                   ", cuDNN workspace ", plan->cudnn_workspace_bytes, " bytes");
  return absl::OkStatus();
}

namespace {

// Creates backend descriptors and records them in the plan so they are destroyed with it.
class BackendMaker {
 public:
  explicit BackendMaker(std::vector<cudnnBackendDescriptor_t>* owned) : owned_(owned) {}

  absl::StatusOr<cudnnBackendDescriptor_t> Make(cudnnBackendDescriptorType_t type) {
    cudnnBackendDescriptor_t desc = nullptr;
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendCreateDescriptor(type, &desc));
    owned_->push_back(desc);
    return desc;
  }

  // An NCHW-indexed tensor with the given strides (dims/strides order N, C, H, W).
  absl::StatusOr<cudnnBackendDescriptor_t> Tensor(int64_t uid, cudnnDataType_t type,
                                                  const int64_t (&dims)[4],
                                                  const int64_t (&strides)[4], int64_t alignment,
                                                  bool is_virtual) {
    absl::StatusOr<cudnnBackendDescriptor_t> t = Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    if (!t.ok()) return t.status();
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type));
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT,
                                                      CUDNN_TYPE_INT64, 1, &alignment));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*t, CUDNN_ATTR_TENSOR_IS_VIRTUAL,
                                                      CUDNN_TYPE_BOOLEAN, 1, &is_virtual));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*t));
    return *t;
  }

  // A pointwise operation y = mode(x [, b]) computed in fp32.
  absl::StatusOr<cudnnBackendDescriptor_t> Pointwise(cudnnPointwiseMode_t mode,
                                                     cudnnBackendDescriptor_t x,
                                                     cudnnBackendDescriptor_t b,
                                                     cudnnBackendDescriptor_t y) {
    absl::StatusOr<cudnnBackendDescriptor_t> pw = Make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    if (!pw.ok()) return pw.status();
    const cudnnDataType_t precision = CUDNN_DATA_FLOAT;
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*pw, CUDNN_ATTR_POINTWISE_MODE,
                                                      CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*pw, CUDNN_ATTR_POINTWISE_MATH_PREC,
                                                      CUDNN_TYPE_DATA_TYPE, 1, &precision));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*pw));
    absl::StatusOr<cudnnBackendDescriptor_t> op =
        Make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    if (!op.ok()) return op.status();
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
        *op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*pw));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
    if (b != nullptr) {
      YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC,
                                                        CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
    }
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*op));
    return *op;
  }

 private:
  std::vector<cudnnBackendDescriptor_t>* owned_;
};

}  // namespace

absl::Status CudnnConvRunner::BuildGraphPlan(const ConvParams& p,
                                             const ConvEpilogueParams& epilogue,
                                             const ChannelSlice& y, Plan* plan) {
  absl::StatusOr<NhwcShape> out = ConvOutputShape(p);
  if (!out.ok()) return out.status();
  plan->out = *out;
  cudnnHandle_t handle = AsHandle(handle_);
  const bool half = p.dtype == DType::kFloat16;
  const cudnnDataType_t data_type = half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  const bool strict_fp32 = !half && !p.allow_tf32;
  const int64_t elem = ElemSize(p.dtype);
  const NhwcShape& o = *out;
  BackendMaker make(&plan->backend);

  // Tensors, dims in N, C, H, W order with NHWC strides.
  const int64_t x_dims[4] = {p.n, p.c_in, p.h, p.w};
  const int64_t x_strides[4] = {p.h * p.w * p.c_in, 1, p.w * p.c_in, p.c_in};
  const int64_t cig = p.c_in / p.groups;
  const int64_t w_dims[4] = {p.c_out, cig, p.kernel_h, p.kernel_w};
  const int64_t w_strides[4] = {p.kernel_h * p.kernel_w * cig, 1, p.kernel_w * cig, cig};
  const int64_t o_dims[4] = {o.n, p.c_out, o.h, o.w};
  const int64_t dense_strides[4] = {o.h * o.w * p.c_out, 1, o.w * p.c_out, p.c_out};
  const int64_t y_strides[4] = {o.h * o.w * y.channels, 1, o.w * y.channels, y.channels};

  absl::StatusOr<cudnnBackendDescriptor_t> x =
      make.Tensor(kUidX, data_type, x_dims, x_strides, 16, false);
  if (!x.ok()) return x.status();
  absl::StatusOr<cudnnBackendDescriptor_t> w =
      make.Tensor(kUidW, data_type, w_dims, w_strides, 16, false);
  if (!w.ok()) return w.status();
  absl::StatusOr<cudnnBackendDescriptor_t> y_tensor =
      make.Tensor(kUidY, data_type, o_dims, y_strides, SliceAlignment(y.offset, elem), false);
  if (!y_tensor.ok()) return y_tensor.status();

  // The chain conv -> [+bias] -> [swish] -> [+residual]; the last stage writes Y, the others
  // write fp32 virtual tensors.
  const bool has_bias = epilogue.bias != nullptr;
  const bool has_residual = epilogue.residual.data != nullptr;
  const int stages = (has_bias ? 1 : 0) + (epilogue.silu ? 1 : 0) + (has_residual ? 1 : 0);
  int64_t next_virtual_uid = 100;
  int stages_left = stages;
  auto stage_output = [&]() -> absl::StatusOr<cudnnBackendDescriptor_t> {
    if (stages_left-- == 0) return *y_tensor;
    return make.Tensor(next_virtual_uid++, CUDNN_DATA_FLOAT, o_dims, dense_strides, 16, true);
  };

  // Convolution.
  absl::StatusOr<cudnnBackendDescriptor_t> conv_desc =
      make.Make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  if (!conv_desc.ok()) return conv_desc.status();
  const cudnnDataType_t compute_type = CUDNN_DATA_FLOAT;
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t spatial_dims = 2;
  const int64_t dilations[2] = {p.dilation_h, p.dilation_w};
  const int64_t strides[2] = {p.stride_h, p.stride_w};
  const int64_t paddings[2] = {p.pad_h, p.pad_w};
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_desc, CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
                                                    CUDNN_TYPE_DATA_TYPE, 1, &compute_type));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_desc, CUDNN_ATTR_CONVOLUTION_CONV_MODE,
                                                    CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_desc, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS,
                                                    CUDNN_TYPE_INT64, 1, &spatial_dims));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_desc, CUDNN_ATTR_CONVOLUTION_DILATIONS,
                                                    CUDNN_TYPE_INT64, 2, dilations));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_desc, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, strides));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_desc, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS,
                                                    CUDNN_TYPE_INT64, 2, paddings));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_desc, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, paddings));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*conv_desc));

  absl::StatusOr<cudnnBackendDescriptor_t> conv_out = stage_output();
  if (!conv_out.ok()) return conv_out.status();
  absl::StatusOr<cudnnBackendDescriptor_t> conv_op =
      make.Make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  if (!conv_op.ok()) return conv_op.status();
  const float alpha = 1.0f, beta = 0.0f;
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*x));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*w));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*conv_op,
                                                    CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                                    CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*conv_out));
  YP_CUDNN_RETURN_IF_ERROR(
      cudnnBackendSetAttribute(*conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                               CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*conv_desc));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(
      *conv_op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*conv_op));
  std::vector<cudnnBackendDescriptor_t> ops = {*conv_op};

  cudnnBackendDescriptor_t current = *conv_out;
  if (has_bias) {
    const int64_t b_dims[4] = {1, p.c_out, 1, 1};
    const int64_t b_strides[4] = {p.c_out, 1, p.c_out, p.c_out};
    absl::StatusOr<cudnnBackendDescriptor_t> bias =
        make.Tensor(kUidBias, CUDNN_DATA_FLOAT, b_dims, b_strides, 16, false);
    if (!bias.ok()) return bias.status();
    absl::StatusOr<cudnnBackendDescriptor_t> t = stage_output();
    if (!t.ok()) return t.status();
    absl::StatusOr<cudnnBackendDescriptor_t> op =
        make.Pointwise(CUDNN_POINTWISE_ADD, current, *bias, *t);
    if (!op.ok()) return op.status();
    ops.push_back(*op);
    current = *t;
  }
  if (epilogue.silu) {
    absl::StatusOr<cudnnBackendDescriptor_t> t = stage_output();
    if (!t.ok()) return t.status();
    absl::StatusOr<cudnnBackendDescriptor_t> op =
        make.Pointwise(CUDNN_POINTWISE_SWISH_FWD, current, nullptr, *t);
    if (!op.ok()) return op.status();
    ops.push_back(*op);
    current = *t;
  }
  if (has_residual) {
    const int64_t rc = epilogue.residual.channels;
    const int64_t r_strides[4] = {o.h * o.w * rc, 1, o.w * rc, rc};
    absl::StatusOr<cudnnBackendDescriptor_t> residual =
        make.Tensor(kUidResidual, data_type, o_dims, r_strides,
                    SliceAlignment(epilogue.residual.offset, elem), false);
    if (!residual.ok()) return residual.status();
    absl::StatusOr<cudnnBackendDescriptor_t> t = stage_output();
    if (!t.ok()) return t.status();
    absl::StatusOr<cudnnBackendDescriptor_t> op =
        make.Pointwise(CUDNN_POINTWISE_ADD, current, *residual, *t);
    if (!op.ok()) return op.status();
    ops.push_back(*op);
    current = *t;
  }

  absl::StatusOr<cudnnBackendDescriptor_t> graph =
      make.Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  if (!graph.ok()) return graph.status();
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS,
                                                    CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                                    static_cast<int64_t>(ops.size()), ops.data()));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE,
                                                    CUDNN_TYPE_HANDLE, 1, &handle));
  YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(*graph));

  // Ask the heuristics (mode A, then the fallback list) for engine configs and keep the first one
  // that finalizes into an execution plan.
  std::string tried;
  for (cudnnBackendHeurMode_t heur_mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
    absl::StatusOr<cudnnBackendDescriptor_t> heur = make.Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
    if (!heur.ok()) return heur.status();
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &*graph));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_MODE,
                                                      CUDNN_TYPE_HEUR_MODE, 1, &heur_mode));
    if (cudnnBackendFinalize(*heur) != CUDNN_STATUS_SUCCESS) continue;
    int64_t count = 0;
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(
        *heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
    if (count <= 0) continue;
    std::vector<cudnnBackendDescriptor_t> configs;
    for (int64_t i = 0; i < count; ++i) {
      absl::StatusOr<cudnnBackendDescriptor_t> cfg = make.Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
      if (!cfg.ok()) return cfg.status();
      configs.push_back(*cfg);
    }
    int64_t returned = 0;
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(*heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                                      CUDNN_TYPE_BACKEND_DESCRIPTOR, count,
                                                      &returned, configs.data()));
    for (int64_t i = 0; i < returned; ++i) {
      if (strict_fp32) {
        // Strict fp32 must not run on tensor cores (TF32): skip engines that note them.
        absl::StatusOr<cudnnBackendDescriptor_t> engine =
            make.Make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
        if (!engine.ok()) return engine.status();
        int64_t got_engine = 0;
        YP_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(configs[i], CUDNN_ATTR_ENGINECFG_ENGINE,
                                                          CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
                                                          &got_engine, &*engine));
        cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
        int64_t note_count = 0;
        YP_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(
            *engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
            CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &note_count, notes));
        if (std::find(notes, notes + note_count, CUDNN_NUMERICAL_NOTE_TENSOR_CORE) !=
            notes + note_count) {
          absl::StrAppend(&tried, tried.empty() ? "" : "; ", "heuristic ",
                          static_cast<int>(heur_mode), " config ", i, ": tensor cores (TF32)");
          continue;
        }
      }
      absl::StatusOr<cudnnBackendDescriptor_t> exec =
          make.Make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      if (!exec.ok()) return exec.status();
      YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(*exec, CUDNN_ATTR_EXECUTION_PLAN_HANDLE,
                                                        CUDNN_TYPE_HANDLE, 1, &handle));
      YP_CUDNN_RETURN_IF_ERROR(
          cudnnBackendSetAttribute(*exec, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[i]));
      const cudnnStatus_t finalized = cudnnBackendFinalize(*exec);
      if (finalized != CUDNN_STATUS_SUCCESS) {
        absl::StrAppend(&tried, tried.empty() ? "" : "; ", "heuristic ",
                        static_cast<int>(heur_mode), " config ", i, ": ",
                        cudnnGetErrorString(finalized));
        continue;
      }
      int64_t workspace = 0;
      int64_t got = 0;
      YP_CUDNN_RETURN_IF_ERROR(cudnnBackendGetAttribute(
          *exec, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &got, &workspace));
      plan->execution_plan = *exec;
      plan->cudnn_workspace_bytes = static_cast<size_t>(workspace);
      plan->reads_bias = has_bias;
      plan->reads_residual = has_residual;
      plan->description = absl::StrCat("graph fusion (", stages, " epilogue stages), heuristic ",
                                       static_cast<int>(heur_mode), " config ", i, ", workspace ",
                                       workspace, " bytes");
      return absl::OkStatus();
    }
  }
  return absl::UnimplementedError(absl::StrCat("Conv: no cuDNN fused engine for ", p.ToString(),
                                               tried.empty() ? "" : " (", tried,
                                               tried.empty() ? "" : ")"));
}

absl::StatusOr<const CudnnConvRunner::Plan*> CudnnConvRunner::GetPlan(
    const ConvParams& p, const ConvEpilogueParams& epilogue, const ChannelSlice& y) {
  std::vector<int64_t> key = PlanKey(p);
  const bool graph = implementation_ == ConvImplementation::kGraphFusion;
  if (graph) {
    const std::vector<int64_t> extra = EpilogueKey(epilogue, y);
    key.insert(key.end(), extra.begin(), extra.end());
  }
  if (auto it = plans_.find(key); it != plans_.end()) return it->second.get();
  if (auto s = CheckFitsInt(p); !s.ok()) return s;
  auto plan = std::make_unique<Plan>();
  const absl::Status built =
      graph ? BuildGraphPlan(p, epilogue, y, plan.get()) : BuildLegacyPlan(p, plan.get());
  if (!built.ok()) return built;
  const Plan* result = plan.get();
  plans_.emplace(std::move(key), std::move(plan));
  return result;
}

absl::StatusOr<size_t> CudnnConvRunner::WorkspaceBytes(const ConvParams& params,
                                                       const ConvEpilogueParams& epilogue,
                                                       const ChannelSlice& y) {
  absl::StatusOr<const Plan*> plan = GetPlan(params, epilogue, y);
  if (!plan.ok()) return plan.status();
  size_t bytes = AlignUp((*plan)->cudnn_workspace_bytes);
  if (implementation_ == ConvImplementation::kLegacyPlusEpilogue && !ConvWritesInPlace(params, y)) {
    bytes += AlignUp(static_cast<size_t>((*plan)->out.elements() * ElemSize(params.dtype)));
  }
  return bytes;
}

absl::StatusOr<std::string> CudnnConvRunner::DescribePlan(const ConvParams& params,
                                                          const ConvEpilogueParams& epilogue,
                                                          const ChannelSlice& y) {
  absl::StatusOr<const Plan*> plan = GetPlan(params, epilogue, y);
  if (!plan.ok()) return plan.status();
  return (*plan)->description;
}

absl::Status CudnnConvRunner::Forward(const ConvParams& params, const void* x, const void* w,
                                      const ConvEpilogueParams& epilogue, const ChannelSlice& y,
                                      void* workspace, size_t workspace_bytes, void* stream) {
  if (auto s = ValidateConvCall(params, x, w, epilogue, y); !s.ok()) return s;
  absl::StatusOr<const Plan*> plan_or = GetPlan(params, epilogue, y);
  if (!plan_or.ok()) return plan_or.status();
  const Plan& plan = **plan_or;
  absl::StatusOr<size_t> needed = WorkspaceBytes(params, epilogue, y);
  if (!needed.ok()) return needed.status();
  if (workspace_bytes < *needed || (*needed > 0 && workspace == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("Conv: workspace of ", workspace_bytes,
                                                   " bytes given, ", *needed, " needed for ",
                                                   params.ToString()));
  }
  const int64_t elem = ElemSize(params.dtype);
  const bool has_residual = epilogue.residual.data != nullptr;
  const void* residual = has_residual ? static_cast<const char*>(epilogue.residual.data) +
                                            epilogue.residual.offset * elem
                                      : nullptr;
  void* out = static_cast<char*>(y.data) + y.offset * elem;
  YP_CUDNN_RETURN_IF_ERROR(cudnnSetStream(AsHandle(handle_), static_cast<cudaStream_t>(stream)));

  if (implementation_ == ConvImplementation::kGraphFusion) {
    std::vector<int64_t> uids = {kUidX, kUidW, kUidY};
    std::vector<void*> pointers = {const_cast<void*>(x), const_cast<void*>(w), out};
    if (plan.reads_bias) {
      uids.push_back(kUidBias);
      pointers.push_back(const_cast<float*>(epilogue.bias));
    }
    if (plan.reads_residual) {
      uids.push_back(kUidResidual);
      pointers.push_back(const_cast<void*>(residual));
    }
    cudnnBackendDescriptor_t pack = nullptr;
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack));
    // The pack lives for this call only; destroy it on every path.
    struct PackGuard {
      cudnnBackendDescriptor_t pack;
      ~PackGuard() { cudnnBackendDestroyDescriptor(pack); }
    } guard{pack};
    void* ws = plan.cudnn_workspace_bytes > 0 ? workspace : nullptr;
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64,
                                 static_cast<int64_t>(uids.size()), uids.data()));
    YP_CUDNN_RETURN_IF_ERROR(
        cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
                                 static_cast<int64_t>(pointers.size()), pointers.data()));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE,
                                                      CUDNN_TYPE_VOID_PTR, 1, &ws));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendFinalize(pack));
    YP_CUDNN_RETURN_IF_ERROR(cudnnBackendExecute(AsHandle(handle_), plan.execution_plan, pack));
    return absl::OkStatus();
  }

  const bool in_place = ConvWritesInPlace(params, y);
  void* conv_out =
      in_place ? y.data : static_cast<char*>(workspace) + AlignUp(plan.cudnn_workspace_bytes);
  const float alpha = 1.0f, beta = 0.0f;
  YP_CUDNN_RETURN_IF_ERROR(
      cudnnConvolutionForward(AsHandle(handle_), &alpha, plan.x, x, plan.w, w, plan.conv, plan.algo,
                              plan.cudnn_workspace_bytes > 0 ? workspace : nullptr,
                              plan.cudnn_workspace_bytes, &beta, plan.y, conv_out));
  if (in_place && epilogue.bias == nullptr && !epilogue.silu && !has_residual) {
    return absl::OkStatus();
  }
  const int error = launch::ConvEpilogue(
      params.dtype == DType::kFloat16 ? launch::ElemType::kFloat16 : launch::ElemType::kFloat32,
      conv_out, epilogue.bias, epilogue.silu, residual, epilogue.residual.channels, out, y.channels,
      plan.out.pixels(), params.c_out, stream);
  return CudaErrorToStatus(error, "Conv epilogue kernel launch");
}

}  // namespace yolopipe::ops::cuda
