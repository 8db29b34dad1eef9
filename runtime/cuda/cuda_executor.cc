// Host-side half of the CUDA executor: Detect head recognition and the lowering plan. Compiled in
// every build (no CUDA headers); the device half is cuda_executor_cuda.cc or the stub.
#include "runtime/cuda/cuda_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "ops/cuda/half.h"
#include "ops/kernel.h"
#include "ops/reference/conv.h"
#include "ops/reference/max_pool.h"
#include "ops/reference/resize.h"
#include "runtime/memory_plan.h"

namespace yolopipe {
namespace {

constexpr size_t kAlignment = 256;  // DeviceArena offsets and weight-blob entries

size_t AlignUp(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

absl::Status NotSupported(const Node& node) {
  return absl::UnimplementedError(absl::StrCat("CUDA executor: node '", node.name, "' (op ",
                                               node.op_type, ") is not supported"));
}

absl::Status NodeUnimplemented(const Node& node, const std::string& why) {
  return absl::UnimplementedError(
      absl::StrCat("CUDA executor: node '", node.name, "' (op ", node.op_type, "): ", why));
}

absl::Status HeadMismatch(const std::string& what) {
  return absl::UnimplementedError(
      absl::StrCat("CUDA executor: the graph output is not a YOLOv8 Detect head: ", what));
}

// The kernel spec the reference parsers expect (constants filled from initializers).
ops::KernelSpec SpecFor(const Graph& graph, const Node& node) {
  ops::KernelSpec spec;
  spec.node_name = node.name;
  spec.op_type = node.op_type;
  spec.attrs = node.attrs;
  spec.num_outputs = static_cast<int>(node.outputs.size());
  for (const std::string& in : node.inputs) {
    if (in.empty()) {
      spec.inputs.push_back(ops::TensorDesc{});
      spec.constant_inputs.emplace_back();
    } else if (const Tensor* c = graph.FindInitializer(in)) {
      spec.inputs.push_back(ops::TensorDesc{c->dtype(), c->shape(), Layout::kPlain});
      spec.constant_inputs.push_back(*c);
    } else {
      const Value* v = graph.FindValue(in);
      spec.inputs.push_back(v == nullptr ? ops::TensorDesc{}
                                         : ops::TensorDesc{v->dtype, v->shape, Layout::kPlain});
      spec.constant_inputs.emplace_back();
    }
  }
  return spec;
}

const Shape* ShapeOf(const Graph& graph, const std::string& name) {
  const Value* v = graph.FindValue(name);
  return v == nullptr ? nullptr : &v->shape;
}

// Anchor centres (grid units) as DetectDecode computes them: row 0 x, row 1 y.
std::vector<float> ExpectedAnchors(const DetectHeadInfo& head) {
  std::vector<float> anchors(2 * head.anchors);
  int64_t index = 0;
  for (size_t l = 0; l < head.level_tensors.size(); ++l) {
    for (int64_t y = 0; y < head.heights[l]; ++y) {
      for (int64_t x = 0; x < head.widths[l]; ++x, ++index) {
        anchors[index] = static_cast<float>(x) + 0.5f;
        anchors[head.anchors + index] = static_cast<float>(y) + 0.5f;
      }
    }
  }
  return anchors;
}

std::vector<float> ExpectedStrides(const DetectHeadInfo& head) {
  std::vector<float> strides;
  strides.reserve(head.anchors);
  for (size_t l = 0; l < head.level_tensors.size(); ++l) {
    strides.insert(strides.end(), head.heights[l] * head.widths[l],
                   static_cast<float>(head.strides[l]));
  }
  return strides;
}

bool FloatsEqual(const Tensor& t, const std::vector<float>& expected) {
  if (t.dtype() != DType::kFloat32 || t.num_elements() != static_cast<int64_t>(expected.size())) {
    return false;
  }
  const float* data = t.data<float>();
  for (size_t i = 0; i < expected.size(); ++i) {
    if (std::fabs(data[i] - expected[i]) > 1e-5f * std::max(1.0f, std::fabs(expected[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<DetectHeadInfo> FindDetectHead(const Graph& graph, const Shape& image_shape) {
  const Shape* input_shape = &image_shape;
  if (image_shape.empty()) {
    if (graph.inputs().size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CUDA executor: expected one graph input (the image batch), got ", graph.inputs().size(),
          "; a pipeline stage must be given the model's image shape"));
    }
    input_shape = ShapeOf(graph, graph.inputs()[0]);
    if (input_shape == nullptr || input_shape->size() != 4 || !IsFullyKnown(*input_shape)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "CUDA executor: graph input '", graph.inputs()[0], "' must be a bound 4-D tensor"));
    }
  } else if (image_shape.size() != 4 || !IsFullyKnown(image_shape)) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA executor: the image shape ",
                                                   ShapeToString(image_shape),
                                                   " must be a known 4-D (N, C, H, W) shape"));
  }
  if (graph.outputs().empty()) return absl::InvalidArgumentError("graph has no outputs");
  DetectHeadInfo head;
  head.output = graph.outputs()[0];
  const Value* out = graph.FindValue(head.output);
  if (out == nullptr || out->dtype != DType::kFloat32 || out->shape.size() != 3 ||
      !IsFullyKnown(out->shape) || out->shape[1] <= 4) {
    return HeadMismatch(absl::StrCat(
        "output '", head.output, "' is ",
        out == nullptr ? "undescribed" : DTypeName(out->dtype) + ShapeToString(out->shape),
        ", expected float32 (batch, 4 + classes, anchors)"));
  }
  head.batch = out->shape[0];
  head.num_classes = out->shape[1] - 4;
  head.anchors = out->shape[2];
  const int64_t level_channels = ops::cuda::kDetectBoxChannels + head.num_classes;

  // Candidate level tensors: inputs of Reshapes (B, 64 + nc, H, W) -> (B, 64 + nc, H * W).
  std::map<std::string, std::string> level_of_reshape_output;  // reshape output -> level tensor
  std::set<std::string> candidates;
  for (const Node& node : graph.nodes()) {
    if (node.op_type != "Reshape" || node.inputs.empty() || node.outputs.size() != 1) continue;
    const std::string& in = node.inputs[0];
    if (in.empty() || graph.IsInitializer(in)) continue;
    const Shape* s = ShapeOf(graph, in);
    const Shape* o = ShapeOf(graph, node.outputs[0]);
    if (s == nullptr || o == nullptr || s->size() != 4 || o->size() != 3) continue;
    if ((*s)[0] != head.batch || (*s)[1] != level_channels) continue;
    if (*o != Shape{head.batch, level_channels, (*s)[2] * (*s)[3]}) continue;
    candidates.insert(in);
    level_of_reshape_output[node.outputs[0]] = in;
  }
  if (candidates.empty()) {
    return HeadMismatch(absl::StrCat("no Reshape of a (", head.batch, ", ", level_channels,
                                     ", H, W) tensor (64 box + ", head.num_classes,
                                     " class channels) feeds output '", head.output, "'"));
  }

  // The head: every node between the level tensors (and constants) and the output.
  const std::map<std::string, int> producers = graph.Producers();
  std::set<int> head_nodes;
  std::set<std::string> used_levels;
  std::vector<std::string> stack = {head.output};
  std::set<std::string> seen;
  while (!stack.empty()) {
    const std::string v = stack.back();
    stack.pop_back();
    if (v.empty() || !seen.insert(v).second) continue;
    if (candidates.count(v)) {
      used_levels.insert(v);
      continue;
    }
    if (graph.IsInitializer(v)) continue;
    if (graph.IsGraphInput(v)) {
      return HeadMismatch(absl::StrCat("output '", head.output, "' depends on graph input '", v,
                                       "' other than through the per-level tensors"));
    }
    auto p = producers.find(v);
    if (p == producers.end()) {
      return HeadMismatch(absl::StrCat("tensor '", v, "' has no producer"));
    }
    if (head_nodes.insert(p->second).second) {
      for (const std::string& in : graph.nodes()[p->second].inputs) stack.push_back(in);
    }
  }

  static const std::set<std::string> kHeadOps = {"Reshape", "Concat", "Split", "Transpose",
                                                 "Softmax", "Conv",   "Slice", "Sub",
                                                 "Add",     "Div",    "Mul",   "Sigmoid"};
  const std::map<std::string, std::vector<int>> consumers = graph.Consumers();
  int convs = 0, softmaxes = 0, sigmoids = 0;
  for (int index : head_nodes) {
    const Node& node = graph.nodes()[index];
    if (!kHeadOps.count(node.op_type)) {
      return absl::UnimplementedError(
          absl::StrCat("CUDA executor: node '", node.name, "' (op ", node.op_type,
                       ") in the Detect head is not one of the YOLOv8 head's ops"));
    }
    for (const std::string& o : node.outputs) {
      auto c = consumers.find(o);
      if (c == consumers.end()) continue;
      for (int consumer : c->second) {
        if (!head_nodes.count(consumer)) {
          return absl::UnimplementedError(
              absl::StrCat("CUDA executor: node '", graph.nodes()[consumer].name, "' (op ",
                           graph.nodes()[consumer].op_type, ") reads '", o,
                           "' from inside the Detect head, which DetectDecode replaces"));
        }
      }
    }
    if (node.op_type == "Softmax") ++softmaxes;
    if (node.op_type == "Sigmoid") ++sigmoids;
    if (node.op_type == "Conv") {
      ++convs;
      // The DFL: a bias-free 1x1 conv of 16 -> 1 channels with weights 0, 1, ..., 15.
      const Tensor* w = node.inputs.size() > 1 ? graph.FindInitializer(node.inputs[1]) : nullptr;
      std::vector<float> bins(ops::cuda::kDetectRegMax);
      for (size_t i = 0; i < bins.size(); ++i) bins[i] = static_cast<float>(i);
      const bool has_bias = node.inputs.size() > 2 && !node.inputs[2].empty();
      if (w == nullptr || w->shape() != Shape{1, ops::cuda::kDetectRegMax, 1, 1} ||
          !FloatsEqual(*w, bins) || has_bias) {
        return absl::UnimplementedError(absl::StrCat(
            "CUDA executor: node '", node.name,
            "' (op Conv) in the Detect head is not the DFL (a bias-free 1x1 conv with constant "
            "weights 0..15 of shape (1, 16, 1, 1))"));
      }
    }
  }
  if (convs != 1 || softmaxes != 1 || sigmoids != 1) {
    return HeadMismatch(
        absl::StrCat("expected exactly one DFL Conv, one Softmax and one "
                     "Sigmoid between the levels and the output, found ",
                     convs, ", ", softmaxes, " and ", sigmoids));
  }
  if (used_levels.empty() || used_levels.size() > ops::cuda::kDetectMaxLevels) {
    return HeadMismatch(absl::StrCat(used_levels.size(), " per-level tensors feed the head (1 to ",
                                     ops::cuda::kDetectMaxLevels, " supported)"));
  }

  // Level order: the Concat of the flattened levels along the anchor axis.
  std::vector<std::string> order;
  if (used_levels.size() == 1) {
    order.assign(used_levels.begin(), used_levels.end());
  } else {
    for (int index : head_nodes) {
      const Node& node = graph.nodes()[index];
      if (node.op_type != "Concat" || node.inputs.size() != used_levels.size()) continue;
      std::vector<std::string> levels;
      for (const std::string& in : node.inputs) {
        auto it = level_of_reshape_output.find(in);
        if (it == level_of_reshape_output.end() || !used_levels.count(it->second)) break;
        levels.push_back(it->second);
      }
      if (levels.size() != used_levels.size()) continue;
      auto axis = node.attrs.GetInt("axis");
      if (!axis.ok() || (*axis != 2 && *axis != -1)) {
        return absl::UnimplementedError(absl::StrCat(
            "CUDA executor: node '", node.name,
            "' (op Concat) joins the Detect levels on an axis other than the anchor axis"));
      }
      order = std::move(levels);
      break;
    }
    if (order.empty()) {
      return HeadMismatch(absl::StrCat("no Concat joins the flattened levels ",
                                       absl::StrJoin(used_levels, ", "), " along the anchor axis"));
    }
  }

  int64_t anchors = 0;
  for (const std::string& level : order) {
    const Shape& s = *ShapeOf(graph, level);
    const int64_t h = s[2], w = s[3];
    if (h <= 0 || w <= 0 || (*input_shape)[2] % h != 0 || (*input_shape)[3] % w != 0 ||
        (*input_shape)[2] / h != (*input_shape)[3] / w) {
      return HeadMismatch(absl::StrCat("level '", level, "' ", ShapeToString(s),
                                       " is not a whole-stride grid of the input ",
                                       ShapeToString(*input_shape)));
    }
    head.level_tensors.push_back(level);
    head.heights.push_back(h);
    head.widths.push_back(w);
    head.strides.push_back((*input_shape)[2] / h);
    anchors += h * w;
  }
  if (anchors != head.anchors) {
    return HeadMismatch(absl::StrCat("the levels hold ", anchors, " anchors, output '", head.output,
                                     "' has ", head.anchors));
  }

  // Constants the head uses for anchors and strides must be the ones DetectDecode computes.
  const std::vector<float> expected_anchors = ExpectedAnchors(head);
  const std::vector<float> expected_strides = ExpectedStrides(head);
  for (int index : head_nodes) {
    const Node& node = graph.nodes()[index];
    for (const std::string& in : node.inputs) {
      const Tensor* c = in.empty() ? nullptr : graph.FindInitializer(in);
      if (c == nullptr) continue;
      const Shape& s = c->shape();
      const bool anchor_like = s == Shape{1, 2, head.anchors} || s == Shape{2, head.anchors};
      const bool stride_like = s == Shape{1, head.anchors} || s == Shape{head.anchors};
      if (anchor_like && !FloatsEqual(*c, expected_anchors)) {
        return absl::UnimplementedError(absl::StrCat(
            "CUDA executor: node '", node.name, "' in the Detect head reads constant '", in, "' ",
            ShapeToString(s), " that differs from the anchor centres (cell + 0.5)"));
      }
      if (stride_like && !FloatsEqual(*c, expected_strides)) {
        return absl::UnimplementedError(
            absl::StrCat("CUDA executor: node '", node.name,
                         "' in the Detect head reads constant '", in, "' ", ShapeToString(s),
                         " that differs from the per-anchor strides (input size / "
                         "level size)"));
      }
    }
  }
  head.nodes.assign(head_nodes.begin(), head_nodes.end());
  return head;
}

absl::StatusOr<std::vector<std::vector<std::string>>> KeepDetectHeadInLastStage(
    const Graph& prepared, std::vector<std::vector<std::string>> stage_nodes) {
  if (stage_nodes.size() <= 1 || prepared.outputs().empty()) return stage_nodes;
  const Value* out = prepared.FindValue(prepared.outputs()[0]);
  if (out != nullptr && out->shape.size() == 4) return stage_nodes;
  YP_ASSIGN_OR_RETURN(const DetectHeadInfo head, FindDetectHead(prepared));
  std::set<std::string> head_names;
  for (int index : head.nodes) head_names.insert(prepared.nodes()[index].name);
  std::vector<std::string>& last = stage_nodes.back();
  for (size_t s = 0; s + 1 < stage_nodes.size(); ++s) {
    std::vector<std::string>& nodes = stage_nodes[s];
    const size_t before = nodes.size();
    std::vector<std::string> kept;
    for (std::string& name : nodes) {
      if (head_names.count(name)) {
        last.push_back(std::move(name));
      } else {
        kept.push_back(std::move(name));
      }
    }
    nodes = std::move(kept);
    if (nodes.empty() && before > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stage ", s, " holds only nodes of the Detect head, which CUDA stages run whole in the "
          "last stage; use fewer stages"));
    }
  }
  return stage_nodes;
}

absl::StatusOr<std::vector<std::vector<int>>> CudaStepNodes(const Graph& graph,
                                                            const CudaLoweringPlan& plan) {
  std::map<std::string, int> index_of;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    index_of[graph.nodes()[i].name] = static_cast<int>(i);
  }
  const std::map<std::string, int> producers = graph.Producers();
  std::vector<std::vector<int>> nodes(plan.steps.size());
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    const CudaStep& step = plan.steps[s];
    switch (step.kind) {
      case CudaStepKind::kInputToNhwc: {
        const std::string& input = plan.inputs.at(step.boundary).name;
        for (size_t i = 0; i < graph.nodes().size() && nodes[s].empty(); ++i) {
          const std::vector<std::string>& reads = graph.nodes()[i].inputs;
          if (std::find(reads.begin(), reads.end(), input) != reads.end()) {
            nodes[s].push_back(static_cast<int>(i));
          }
        }
        break;
      }
      case CudaStepKind::kDetectDecode:
        nodes[s] = plan.head.nodes;
        break;
      case CudaStepKind::kOutputToNchw: {
        auto p = producers.find(plan.outputs.at(step.boundary).name);
        if (p != producers.end()) nodes[s].push_back(p->second);
        break;
      }
      default: {
        auto it = index_of.find(step.name);
        if (it == index_of.end()) {
          return absl::InternalError(
              absl::StrCat("CUDA step ", s, " '", step.name, "' names no node of the graph"));
        }
        nodes[s].push_back(it->second);
      }
    }
  }
  return nodes;
}

absl::StatusOr<CudaLoweringPlan> PlanCudaLowering(const Graph& graph, DType precision,
                                                  bool concat_in_place, const Shape& image_shape) {
  if (precision != DType::kFloat16 && precision != DType::kFloat32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CUDA executor: precision must be float16 or float32, got ", DTypeName(precision)));
  }
  if (graph.inputs().empty() || graph.outputs().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("CUDA executor: expected at least one graph input and one output, got ",
                     graph.inputs().size(), " and ", graph.outputs().size()));
  }
  CudaLoweringPlan plan;
  plan.precision = precision;
  const size_t element_bytes = DTypeSize(precision);
  for (const std::string& name : graph.inputs()) {
    const Value* in = graph.FindValue(name);
    if (in == nullptr || in->dtype != DType::kFloat32 || in->shape.size() != 4 ||
        !IsFullyKnown(in->shape)) {
      return absl::InvalidArgumentError(absl::StrCat("CUDA executor: graph input '", name,
                                                     "' must be a bound float32 4-D tensor"));
    }
    plan.inputs.push_back(CudaBoundaryTensor{name, in->shape});
  }
  for (size_t o = 0; o < graph.outputs().size(); ++o) {
    const std::string& name = graph.outputs()[o];
    const Value* out = graph.FindValue(name);
    if (out == nullptr || !IsFullyKnown(out->shape)) {
      return absl::InvalidArgumentError(
          absl::StrCat("CUDA executor: graph output '", name, "' has no bound shape"));
    }
    if (o > 0 && out->shape.size() != 4) {
      return absl::UnimplementedError(absl::StrCat(
          "CUDA executor: graph output '", name, "' is ", ShapeToString(out->shape),
          "; only the first output may be the Detect head, the others must be 4-D activations"));
    }
    plan.outputs.push_back(CudaBoundaryTensor{name, out->shape});
  }
  std::set<int> skipped;
  if (plan.outputs[0].shape.size() != 4) {
    YP_ASSIGN_OR_RETURN(plan.head, FindDetectHead(graph, image_shape));
    plan.has_detect_head = true;
    skipped.insert(plan.head.nodes.begin(), plan.head.nodes.end());
  }
  const std::set<std::string> graph_outputs(graph.outputs().begin(), graph.outputs().end());

  std::map<std::string, int> activation_of;
  auto add_activation = [&](const std::string& name) -> absl::StatusOr<int> {
    const Value* v = graph.FindValue(name);
    if (v == nullptr || v->dtype != DType::kFloat32 || v->shape.size() != 4 ||
        !IsFullyKnown(v->shape)) {
      return absl::UnimplementedError(absl::StrCat(
          "CUDA executor: tensor '", name, "' is ",
          v == nullptr ? std::string("undescribed") : DTypeName(v->dtype) + ShapeToString(v->shape),
          "; outside the Detect head only bound float32 4-D activations are supported"));
    }
    CudaActivation a;
    a.name = name;
    a.shape = ops::cuda::NhwcShape{v->shape[0], v->shape[2], v->shape[3], v->shape[1]};
    a.bytes = static_cast<size_t>(a.shape.elements()) * element_bytes;
    const int id = static_cast<int>(plan.activations.size());
    plan.activations.push_back(std::move(a));
    activation_of[name] = id;
    return id;
  };
  auto activation = [&](const Node& node, const std::string& name) -> absl::StatusOr<int> {
    auto it = activation_of.find(name);
    if (it != activation_of.end()) return it->second;
    if (graph.IsInitializer(name)) {
      return NodeUnimplemented(node, absl::StrCat("input '", name,
                                                  "' is a constant; only activations are "
                                                  "supported in this position"));
    }
    return absl::InternalError(absl::StrCat("CUDA executor: node '", node.name, "' reads '", name,
                                            "' before it is computed"));
  };
  auto append_weights = [&](const void* data, size_t bytes) {
    const size_t offset = plan.weights.size();
    plan.weights.resize(AlignUp(offset + bytes), 0);
    std::memcpy(plan.weights.data() + offset, data, bytes);
    return offset;
  };

  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    CudaStep step;
    step.kind = CudaStepKind::kInputToNhwc;
    step.name = plan.inputs.size() == 1 ? std::string("<input>")
                                        : absl::StrCat("<input ", plan.inputs[i].name, ">");
    step.op_type = "LayoutConversion";
    step.boundary = static_cast<int>(i);
    YP_ASSIGN_OR_RETURN(int id, add_activation(plan.inputs[i].name));
    step.outputs = {id};
    plan.steps.push_back(std::move(step));
  }

  for (size_t index = 0; index < graph.nodes().size(); ++index) {
    if (skipped.count(static_cast<int>(index))) continue;
    const Node& node = graph.nodes()[index];
    CudaStep step;
    step.name = node.name;
    step.op_type = node.op_type;
    const ops::KernelSpec spec = SpecFor(graph, node);
    if (node.op_type == "Conv") {
      step.kind = CudaStepKind::kConv;
      YP_ASSIGN_OR_RETURN(const ops::ConvParams params, ops::ParseConvParams(spec));
      YP_ASSIGN_OR_RETURN(const ops::ConvGeometry g,
                          ops::ComputeConvGeometry(spec, params, spec.inputs));
      if (g.pad_top != g.pad_bottom || g.pad_left != g.pad_right) {
        return NodeUnimplemented(node, "asymmetric padding");
      }
      if (node.outputs.size() != 1) return NodeUnimplemented(node, "expected one output");
      const Tensor* w = graph.FindInitializer(node.inputs[1]);
      if (w == nullptr) return NodeUnimplemented(node, "the weight is not a constant");
      const Tensor* bias = nullptr;
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        bias = graph.FindInitializer(node.inputs[2]);
        if (bias == nullptr) return NodeUnimplemented(node, "the bias is not a constant");
      }
      YP_ASSIGN_OR_RETURN(int x, activation(node, node.inputs[0]));
      step.inputs = {x};
      if (node.inputs.size() > 3 && !node.inputs[3].empty()) {
        YP_ASSIGN_OR_RETURN(int residual, activation(node, node.inputs[3]));
        step.inputs.push_back(residual);
        step.has_residual = true;
      }
      ops::cuda::ConvParams& cp = step.conv;
      cp.dtype = precision;
      cp.n = g.n;
      cp.h = g.h;
      cp.w = g.w;
      cp.c_in = g.c;
      cp.c_out = g.m;
      cp.kernel_h = g.kh;
      cp.kernel_w = g.kw;
      cp.stride_h = g.stride_h;
      cp.stride_w = g.stride_w;
      cp.pad_h = g.pad_top;
      cp.pad_w = g.pad_left;
      cp.dilation_h = g.dilation_h;
      cp.dilation_w = g.dilation_w;
      cp.groups = g.group;
      YP_ASSIGN_OR_RETURN(const ops::cuda::NhwcShape out_shape, ops::cuda::ConvOutputShape(cp));
      YP_ASSIGN_OR_RETURN(int y, add_activation(node.outputs[0]));
      if (!(plan.activations[y].shape == out_shape)) {
        return NodeUnimplemented(
            node, absl::StrCat("the CUDA convolution gives NHWC ", out_shape.ToString(),
                               ", the graph says ", plan.activations[y].shape.ToString()));
      }
      step.outputs = {y};
      step.silu = params.activation == ops::ConvActivation::kSilu;
      // OIHW float32 -> OHWI in the precision.
      const int64_t cg = g.c / g.group;
      const float* src = w->data<float>();
      std::vector<float> ohwi(static_cast<size_t>(g.m * g.kh * g.kw * cg));
      for (int64_t o = 0; o < g.m; ++o) {
        for (int64_t i = 0; i < cg; ++i) {
          for (int64_t ky = 0; ky < g.kh; ++ky) {
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              ohwi[((o * g.kh + ky) * g.kw + kx) * cg + i] =
                  src[((o * cg + i) * g.kh + ky) * g.kw + kx];
            }
          }
        }
      }
      if (precision == DType::kFloat16) {
        const std::vector<uint16_t> half = ops::cuda::FloatsToHalfBits(ohwi);
        step.weight_offset = append_weights(half.data(), half.size() * sizeof(uint16_t));
      } else {
        step.weight_offset = append_weights(ohwi.data(), ohwi.size() * sizeof(float));
      }
      if (bias != nullptr) {
        if (bias->dtype() != DType::kFloat32 || bias->num_elements() != g.m) {
          return NodeUnimplemented(
              node, absl::StrCat("bias must be float32 (", g.m, "), got ", bias->DebugString()));
        }
        step.has_bias = true;
        step.bias_offset = append_weights(bias->raw_data(), bias->bytes());
      }
    } else if (node.op_type == "Concat" || node.op_type == "Split") {
      const bool concat = node.op_type == "Concat";
      step.kind = concat ? CudaStepKind::kConcat : CudaStepKind::kSplit;
      auto axis = node.attrs.GetInt("axis", concat ? int64_t{1} : int64_t{0});
      if (!axis.ok()) return NodeUnimplemented(node, std::string(axis.status().message()));
      if (*axis != 1 && *axis != -3) {
        return NodeUnimplemented(
            node, absl::StrCat("axis ", *axis, " (only the channel axis 1 is supported)"));
      }
      const std::vector<std::string> parts(concat ? node.inputs : node.outputs);
      const std::string& wide = concat ? node.outputs.at(0) : node.inputs.at(0);
      if (node.inputs.empty() || node.outputs.empty()) {
        return NodeUnimplemented(node, "missing inputs or outputs");
      }
      int wide_id = -1;
      if (!concat) {
        YP_ASSIGN_OR_RETURN(wide_id, activation(node, wide));
        step.inputs = {wide_id};
      }
      int64_t channels = 0;
      std::vector<int> part_ids;
      for (const std::string& part : parts) {
        if (part.empty()) return NodeUnimplemented(node, "an absent input or output");
        int id = -1;
        if (concat) {
          YP_ASSIGN_OR_RETURN(id, activation(node, part));
        } else {
          YP_ASSIGN_OR_RETURN(id, add_activation(part));
        }
        part_ids.push_back(id);
        step.channel_offsets.push_back(channels);
        channels += plan.activations[id].shape.c;
      }
      if (concat) {
        YP_ASSIGN_OR_RETURN(wide_id, add_activation(wide));
        step.inputs = part_ids;
        step.outputs = {wide_id};
        step.written_in_place.assign(part_ids.size(), false);
      } else {
        step.outputs = part_ids;
      }
      const ops::cuda::NhwcShape& ws = plan.activations[wide_id].shape;
      for (int id : part_ids) {
        const ops::cuda::NhwcShape& ps = plan.activations[id].shape;
        if (ps.n != ws.n || ps.h != ws.h || ps.w != ws.w) {
          return NodeUnimplemented(
              node, absl::StrCat("part '", plan.activations[id].name, "' ", ps.ToString(),
                                 " does not match ", ws.ToString()));
        }
      }
      if (channels != ws.c) {
        return NodeUnimplemented(
            node, absl::StrCat("the parts have ", channels, " channels, the whole tensor ", ws.c));
      }
    } else if (node.op_type == "MaxPool") {
      step.kind = CudaStepKind::kMaxPool;
      YP_ASSIGN_OR_RETURN(const ops::PoolParams params, ops::ParsePoolParams(spec));
      YP_ASSIGN_OR_RETURN(const ops::PoolGeometry g,
                          ops::ComputePoolGeometry(spec, params, spec.inputs));
      if (params.dilation_h != 1 || params.dilation_w != 1 || params.ceil_mode ||
          (params.auto_pad != "NOTSET" && !params.auto_pad.empty()) ||
          params.pad_top != params.pad_bottom || params.pad_left != params.pad_right) {
        return NodeUnimplemented(
            node, "only symmetric explicit padding, dilation 1 and ceil_mode 0 are supported");
      }
      if (node.outputs.size() != 1) return NodeUnimplemented(node, "the Indices output");
      step.pool.kernel_h = params.kernel_h;
      step.pool.kernel_w = params.kernel_w;
      step.pool.stride_h = params.stride_h;
      step.pool.stride_w = params.stride_w;
      step.pool.pad_h = g.pad_top;
      step.pool.pad_w = g.pad_left;
      YP_ASSIGN_OR_RETURN(int x, activation(node, node.inputs[0]));
      YP_ASSIGN_OR_RETURN(const ops::cuda::NhwcShape expected,
                          ops::cuda::MaxPool2dOutputShape(plan.activations[x].shape, step.pool));
      YP_ASSIGN_OR_RETURN(int y, add_activation(node.outputs[0]));
      if (!(plan.activations[y].shape == expected)) {
        return NodeUnimplemented(
            node, absl::StrCat("the CUDA kernel gives ", expected.ToString(), ", the graph says ",
                               plan.activations[y].shape.ToString()));
      }
      step.inputs = {x};
      step.outputs = {y};
    } else if (node.op_type == "Resize") {
      step.kind = CudaStepKind::kResize;
      YP_ASSIGN_OR_RETURN(const ops::ResizeParams params, ops::ParseResizeParams(spec));
      YP_ASSIGN_OR_RETURN(const ops::ResizePlan r, ops::PlanResize(spec, params, spec.inputs));
      YP_ASSIGN_OR_RETURN(int x, activation(node, node.inputs[0]));
      if (node.outputs.size() != 1) return NodeUnimplemented(node, "expected one output");
      YP_ASSIGN_OR_RETURN(int y, add_activation(node.outputs[0]));
      const ops::cuda::NhwcShape& xs = plan.activations[x].shape;
      // Only nearest x2 on H and W is implemented: check the reference index maps say exactly that.
      bool doubled =
          r.output_shape == Shape{xs.n, xs.c, 2 * xs.h, 2 * xs.w} && r.index_maps.size() == 4;
      for (int axis = 0; doubled && axis < 4; ++axis) {
        const int64_t scale = axis >= 2 ? 2 : 1;
        if (static_cast<int64_t>(r.index_maps[axis].size()) != r.output_shape[axis]) {
          doubled = false;
          break;
        }
        for (int64_t o = 0; o < r.output_shape[axis]; ++o) {
          if (r.index_maps[axis][o] != o / scale) doubled = false;
        }
      }
      if (!doubled) {
        return NodeUnimplemented(
            node,
            "only nearest-neighbour upsampling by 2 on height and width (out[o] = in[o / 2]) "
            "is supported");
      }
      step.inputs = {x};
      step.outputs = {y};
    } else {
      return NotSupported(node);
    }
    plan.steps.push_back(std::move(step));
  }

  for (size_t o = 0; o < plan.outputs.size(); ++o) {
    CudaStep step;
    step.name = plan.outputs.size() == 1 ? std::string("<output>")
                                         : absl::StrCat("<output ", plan.outputs[o].name, ">");
    step.boundary = static_cast<int>(o);
    if (o == 0 && plan.has_detect_head) {
      step.kind = CudaStepKind::kDetectDecode;
      step.op_type = "DetectHead";
      for (const std::string& level : plan.head.level_tensors) {
        auto it = activation_of.find(level);
        if (it == activation_of.end()) {
          return absl::InternalError(
              absl::StrCat("CUDA executor: Detect level '", level, "' is not computed"));
        }
        if (plan.activations[it->second].shape.c !=
            ops::cuda::kDetectBoxChannels + plan.head.num_classes) {
          return absl::InternalError(absl::StrCat("CUDA executor: Detect level '", level,
                                                  "' has the wrong channel count"));
        }
        step.inputs.push_back(it->second);
      }
    } else {
      step.kind = CudaStepKind::kOutputToNchw;
      step.op_type = "LayoutConversion";
      auto it = activation_of.find(plan.outputs[o].name);
      if (it == activation_of.end()) {
        return absl::InvalidArgumentError(absl::StrCat("CUDA executor: graph output '",
                                                       plan.outputs[o].name,
                                                       "' is neither an input nor computed"));
      }
      step.inputs = {it->second};
    }
    plan.steps.push_back(std::move(step));
  }

  // Lifetimes and the arena. PlanMemory aligns offsets to 64 of its units: plan in 4-byte units
  // so offsets come out 256-byte aligned, as DeviceArena requires.
  std::vector<int> producer(plan.activations.size(), -1);
  std::vector<int> readers(plan.activations.size(), 0);  // (step, input) pairs reading it
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int id : plan.steps[s].outputs) {
      plan.activations[id].first_step = plan.activations[id].last_step = static_cast<int>(s);
      producer[id] = static_cast<int>(s);
    }
  }
  for (size_t s = 0; s < plan.steps.size(); ++s) {
    for (int id : plan.steps[s].inputs) {
      plan.activations[id].last_step =
          std::max(plan.activations[id].last_step, static_cast<int>(s));
      ++readers[id];
    }
  }
  if (concat_in_place) {
    for (CudaStep& step : plan.steps) {
      if (step.kind != CudaStepKind::kConcat) continue;
      const int wide = step.outputs[0];
      for (size_t i = 0; i < step.inputs.size(); ++i) {
        const int id = step.inputs[i];
        // Only this Concat reads it (once), a convolution makes it, and it is no graph output.
        if (readers[id] != 1 || producer[id] < 0 ||
            plan.steps[producer[id]].kind != CudaStepKind::kConv ||
            graph_outputs.count(plan.activations[id].name)) {
          continue;
        }
        CudaActivation& part = plan.activations[id];
        part.alias_of = wide;
        part.channel_offset = step.channel_offsets[i];
        step.written_in_place[i] = true;
        CudaActivation& whole = plan.activations[wide];
        whole.first_step = std::min(whole.first_step, part.first_step);
      }
    }
  }
  std::vector<BufferRequest> requests;
  std::vector<int> placed;
  for (size_t i = 0; i < plan.activations.size(); ++i) {
    const CudaActivation& a = plan.activations[i];
    if (a.alias_of >= 0) continue;
    requests.push_back({AlignUp(a.bytes) / 4, a.first_step, a.last_step});
    placed.push_back(static_cast<int>(i));
  }
  const MemoryPlan memory = PlanMemory(requests);
  for (size_t r = 0; r < placed.size(); ++r) {
    plan.activations[placed[r]].offset = memory.offsets[r] * 4;
  }
  for (CudaActivation& a : plan.activations) {
    if (a.alias_of >= 0) a.offset = plan.activations[a.alias_of].offset;
  }
  plan.arena_bytes = AlignUp(memory.arena_bytes * 4);
  plan.unplanned_bytes = memory.total_bytes * 4;
  return plan;
}

}  // namespace yolopipe
