#include "ops/cpu/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "ops/reference/conv.h"
#include "ops/reference/kernel_util.h"
#include "ops/registry.h"

namespace yolopipe::ops {
namespace {

using dnnl::memory;

constexpr size_t kAlignment = 64;

size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// The process-wide CPU engine (creation is cheap but not free; every primitive shares it).
dnnl::engine& CpuEngine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

// Sets the calling thread's OpenMP thread count for the lifetime of the object.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int threads) : previous_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
  }
  ~ScopedOmpThreads() { omp_set_num_threads(previous_); }

 private:
  int previous_;
};

memory::dims Dims(std::initializer_list<int64_t> values) {
  return memory::dims(values.begin(), values.end());
}

// One compiled convolution for one input shape, set of layouts and thread count, with the memory
// objects (data handles bound at Run) and the reorders that stage plain tensors.
struct ConvPlan {
  Shape x_shape;
  Layout x_layout = Layout::kPlain;
  Layout residual_layout = Layout::kPlain;
  bool has_residual = false;
  int threads = 1;

  ConvGeometry geometry;
  dnnl::convolution_forward primitive;
  std::unordered_map<int, memory> args;
  memory src, dst, residual, bias;     // what the primitive reads and writes (NHWC)
  std::shared_ptr<memory> weights;     // packed, shared among plans with the same format
  // Staging of plain-layout tensors through the workspace.
  bool stage_src = false, stage_dst = false, stage_residual = false;
  memory user_src, user_dst, user_residual;
  dnnl::reorder src_reorder, dst_reorder, residual_reorder;
  size_t src_offset = 0, dst_offset = 0, residual_offset = 0, workspace_bytes = 0;
  // Non-constant weights are reordered at every Run.
  memory user_weights;
  dnnl::reorder weights_reorder;

  bool Matches(const Shape& shape, Layout xl, bool residual_present, Layout rl, int t) const {
    return x_shape == shape && x_layout == xl && has_residual == residual_present &&
           (!has_residual || residual_layout == rl) && threads == t;
  }
};

class CpuConvKernel : public SpecKernel {
 public:
  using SpecKernel::SpecKernel;

  absl::Status Init() override {
    YP_ASSIGN_OR_RETURN(params_, ParseConvParams(spec_));
    threads_hint_ = std::max(1, omp_get_max_threads());
    weights_ = FindConstant(spec_, 1);
    bias_ = FindConstant(spec_, 2);
    if (weights_ != nullptr && (weights_->dtype() != DType::kFloat32 ||
                                weights_->layout() != Layout::kPlain)) {
      return Error(absl::StrCat("constant W must be plain float32, got ", weights_->DebugString()));
    }
    if (bias_ != nullptr &&
        (bias_->dtype() != DType::kFloat32 || bias_->layout() != Layout::kPlain)) {
      return Error(absl::StrCat("constant B must be plain float32, got ", bias_->DebugString()));
    }
    try {
      stream_ = dnnl::stream(CpuEngine());
    } catch (const dnnl::error& e) {
      return DnnlError("creating a stream", e);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<TensorDesc>> Reshape(absl::Span<const TensorDesc> inputs) override {
    YP_RETURN_IF_ERROR(CheckLayouts(inputs));
    YP_ASSIGN_OR_RETURN(ConvGeometry g, ComputeConvGeometry(spec_, params_, inputs));
    const Layout rl = g.has_residual ? inputs[3].layout : Layout::kPlain;
    YP_ASSIGN_OR_RETURN(current_, FindOrBuildPlan(g, inputs[0].layout, rl, threads_hint_));
    return std::vector<TensorDesc>{
        TensorDesc{DType::kFloat32, g.output_shape(), inputs[0].layout}};
  }

  size_t workspace_bytes() const override {
    return current_ != nullptr ? current_->workspace_bytes : 0;
  }

  absl::Status Run(const RunContext& ctx, absl::Span<const Tensor> inputs,
                   absl::Span<Tensor> outputs) override {
    if (current_ == nullptr) return Error("Run called before Reshape");
    const int threads = std::max(1, ctx.num_threads);
    omp_set_num_threads(threads);
    threads_hint_ = threads;
    ConvPlan* plan = current_;
    if (plan->threads != threads) {
      YP_ASSIGN_OR_RETURN(plan, FindOrBuildPlan(current_->geometry, current_->x_layout,
                                                current_->residual_layout, threads));
    }
    if (plan->workspace_bytes > 0 && ctx.workspace == nullptr) {
      return Error(absl::StrCat("needs ", plan->workspace_bytes,
                                " workspace bytes to stage plain-layout tensors, got none"));
    }
    char* workspace = static_cast<char*>(ctx.workspace);
    try {
      void* x = const_cast<void*>(inputs[0].raw_data());
      if (plan->stage_src) {
        plan->user_src.set_data_handle(x);
        plan->src.set_data_handle(workspace + plan->src_offset);
        plan->src_reorder.execute(stream_, plan->user_src, plan->src);
      } else {
        plan->src.set_data_handle(x);
      }
      if (plan->has_residual) {
        void* r = const_cast<void*>(inputs[3].raw_data());
        if (plan->stage_residual) {
          plan->user_residual.set_data_handle(r);
          plan->residual.set_data_handle(workspace + plan->residual_offset);
          plan->residual_reorder.execute(stream_, plan->user_residual, plan->residual);
        } else {
          plan->residual.set_data_handle(r);
        }
      }
      if (weights_ == nullptr) {
        plan->user_weights.set_data_handle(const_cast<void*>(inputs[1].raw_data()));
        plan->weights_reorder.execute(stream_, plan->user_weights, *plan->weights);
      }
      if (plan->geometry.has_bias && bias_ == nullptr) {
        plan->bias.set_data_handle(const_cast<void*>(inputs[2].raw_data()));
      }
      void* y = outputs[0].raw_data();
      plan->dst.set_data_handle(plan->stage_dst ? workspace + plan->dst_offset : y);
      plan->primitive.execute(stream_, plan->args);
      if (plan->stage_dst) {
        plan->user_dst.set_data_handle(y);
        plan->dst_reorder.execute(stream_, plan->dst, plan->user_dst);
      }
      stream_.wait();
    } catch (const dnnl::error& e) {
      return DnnlError("executing the convolution", e);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status DnnlError(const std::string& what, const dnnl::error& e) const {
    return Error(absl::StrCat("oneDNN failed ", what, ": ", e.what(), " (status ",
                              static_cast<int>(e.status), ")"));
  }

  absl::Status CheckLayouts(absl::Span<const TensorDesc> inputs) const {
    for (int i : {1, 2}) {
      if (HasInput(inputs, i) && inputs[i].layout != Layout::kPlain) {
        return Error(absl::StrCat("input ", i, " ", DescString(inputs[i]),
                                  " must be in plain layout"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<ConvPlan*> FindOrBuildPlan(const ConvGeometry& g, Layout x_layout,
                                            Layout residual_layout, int threads) {
    const Shape x_shape = {g.n, g.c, g.h, g.w};
    for (const auto& plan : plans_) {
      if (plan->Matches(x_shape, x_layout, g.has_residual, residual_layout, threads)) {
        return plan.get();
      }
    }
    auto plan = std::make_unique<ConvPlan>();
    plan->x_shape = x_shape;
    plan->x_layout = x_layout;
    plan->residual_layout = residual_layout;
    plan->has_residual = g.has_residual;
    plan->threads = threads;
    plan->geometry = g;
    try {
      ScopedOmpThreads scoped(threads);
      YP_RETURN_IF_ERROR(BuildPlan(*plan));
    } catch (const dnnl::error& e) {
      return DnnlError(absl::StrCat("creating the convolution for input ", ShapeToString(x_shape)),
                       e);
    }
    plans_.push_back(std::move(plan));
    return plans_.back().get();
  }

  absl::Status BuildPlan(ConvPlan& plan) {
    dnnl::engine& engine = CpuEngine();
    const ConvGeometry& g = plan.geometry;
    const auto f32 = memory::data_type::f32;
    const auto nhwc = memory::format_tag::nhwc;
    const auto nchw = memory::format_tag::nchw;
    const memory::dims src_dims = Dims({g.n, g.c, g.h, g.w});
    const memory::dims dst_dims = Dims({g.n, g.m, g.oh, g.ow});
    const memory::dims weight_dims =
        g.group > 1 ? Dims({g.group, g.m / g.group, g.c / g.group, g.kh, g.kw})
                    : Dims({g.m, g.c, g.kh, g.kw});
    const auto user_weight_tag = g.group > 1 ? memory::format_tag::goihw : memory::format_tag::oihw;
    const memory::desc src_md(src_dims, f32, nhwc);
    const memory::desc dst_md(dst_dims, f32, nhwc);
    const memory::desc weights_any(weight_dims, f32, memory::format_tag::any);
    const memory::desc bias_md = g.has_bias ? memory::desc(Dims({g.m}), f32, memory::format_tag::x)
                                            : memory::desc();
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md,
        weights_any, bias_md, dst_md, Dims({g.stride_h, g.stride_w}),
        Dims({g.dilation_h - 1, g.dilation_w - 1}), Dims({g.pad_top, g.pad_left}),
        Dims({g.pad_bottom, g.pad_right}));
    dnnl::post_ops post_ops;
    if (params_.activation == ConvActivation::kSilu) {
      post_ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_swish, 1.0f, 0.0f);
    }
    // The residual is added after the activation, as y = act(conv + b) + residual requires.
    const memory::desc residual_md(dst_dims, f32, nhwc);
    if (g.has_residual) post_ops.append_binary(dnnl::algorithm::binary_add, residual_md);
    dnnl::primitive_attr attr;
    attr.set_post_ops(post_ops);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    plan.primitive = dnnl::convolution_forward(pd);

    // Weights: reuse a packing with the same format, or pack (constant W) / plan a per-Run reorder.
    const memory::desc packed_md = pd.weights_desc();
    for (const auto& packed : packed_weights_) {
      if (packed->get_desc() == packed_md) plan.weights = packed;
    }
    const memory::desc user_weights_md(weight_dims, f32, user_weight_tag);
    if (weights_ == nullptr) {
      plan.weights = std::make_shared<memory>(packed_md, engine);
      plan.user_weights = memory(user_weights_md, engine, DNNL_MEMORY_NONE);
      plan.weights_reorder = dnnl::reorder(plan.user_weights, *plan.weights);
    } else if (plan.weights == nullptr) {
      memory user(user_weights_md, engine, const_cast<void*>(weights_->raw_data()));
      if (packed_md == user_weights_md) {
        plan.weights = std::make_shared<memory>(user);  // already in the preferred format
      } else {
        plan.weights = std::make_shared<memory>(packed_md, engine);
        dnnl::reorder(user, *plan.weights).execute(stream_, user, *plan.weights);
        stream_.wait();
      }
      packed_weights_.push_back(plan.weights);
    }

    plan.src = memory(src_md, engine, DNNL_MEMORY_NONE);
    plan.dst = memory(dst_md, engine, DNNL_MEMORY_NONE);
    plan.args = {{DNNL_ARG_SRC, plan.src}, {DNNL_ARG_WEIGHTS, *plan.weights},
                 {DNNL_ARG_DST, plan.dst}};
    if (g.has_bias) {
      plan.bias = memory(bias_md, engine,
                         bias_ != nullptr ? const_cast<void*>(bias_->raw_data()) : DNNL_MEMORY_NONE);
      plan.args[DNNL_ARG_BIAS] = plan.bias;
    }
    if (g.has_residual) {
      plan.residual = memory(residual_md, engine, DNNL_MEMORY_NONE);
      const int index = params_.activation == ConvActivation::kSilu ? 1 : 0;
      plan.args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(index) | DNNL_ARG_SRC_1] = plan.residual;
    }

    // Plain tensors go through NHWC staging buffers laid out in the workspace.
    size_t offset = 0;
    const size_t src_bytes = AlignUp(static_cast<size_t>(g.n * g.c * g.h * g.w) * sizeof(float));
    const size_t dst_bytes = AlignUp(static_cast<size_t>(g.n * g.m * g.oh * g.ow) * sizeof(float));
    if (plan.x_layout == Layout::kPlain) {
      plan.stage_src = true;
      plan.user_src = memory(memory::desc(src_dims, f32, nchw), engine, DNNL_MEMORY_NONE);
      plan.src_reorder = dnnl::reorder(plan.user_src, plan.src);
      plan.src_offset = offset;
      offset += src_bytes;
      plan.stage_dst = true;
      plan.user_dst = memory(memory::desc(dst_dims, f32, nchw), engine, DNNL_MEMORY_NONE);
      plan.dst_reorder = dnnl::reorder(plan.dst, plan.user_dst);
      plan.dst_offset = offset;
      offset += dst_bytes;
    }
    if (g.has_residual && plan.residual_layout == Layout::kPlain) {
      plan.stage_residual = true;
      plan.user_residual = memory(memory::desc(dst_dims, f32, nchw), engine, DNNL_MEMORY_NONE);
      plan.residual_reorder = dnnl::reorder(plan.user_residual, plan.residual);
      plan.residual_offset = offset;
      offset += dst_bytes;
    }
    plan.workspace_bytes = offset;
    return absl::OkStatus();
  }

  ConvParams params_;
  const Tensor* weights_ = nullptr;  // points into spec_.constant_inputs
  const Tensor* bias_ = nullptr;
  int threads_hint_ = 1;
  dnnl::stream stream_;
  std::vector<std::shared_ptr<memory>> packed_weights_;
  std::vector<std::unique_ptr<ConvPlan>> plans_;
  ConvPlan* current_ = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernel>> CreateCpuConv(const KernelSpec& spec) {
  return CreateValidatedKernel<CpuConvKernel>(spec);
}

YP_REGISTER_KERNEL(CpuConv, "Conv", Backend::kCpu, CreateCpuConv,
                   KernelTraits{/*accepts_nhwc=*/true, /*nhwc_inputs=*/{0, 3}});

}  // namespace yolopipe::ops
