#include "graph/testing/mini_detector.h"

#include <map>

#include "base/status_macros.h"
#include "graph/fold.h"

namespace yolopipe::testing {
namespace {

using B = OnnxModelBuilder;

// Emits a node with the opset-appropriate form of an ints "axes"/"split" operand: an attribute
// before opset 13, a Constant input from 13 on.
class Emitter {
 public:
  Emitter(OnnxModelBuilder& b, int64_t opset) : b_(b), opset_(opset) {}

  std::string Const(const std::string& name, const Tensor& t) { return b_.AddConstant(name, t); }
  std::string Ints(const std::string& name, const std::vector<int64_t>& v) {
    return Const(name, Tensor::FromInt64s({static_cast<int64_t>(v.size())}, v));
  }

  void Unsqueeze(const std::string& name, const std::string& x, const std::vector<int64_t>& axes,
                 const std::string& out) {
    if (opset_ < 13) {
      B::AttrInts(b_.AddNode("Unsqueeze", {x}, {out}, name), "axes", axes);
    } else {
      b_.AddNode("Unsqueeze", {x, Ints(name + "/axes", axes)}, {out}, name);
    }
  }

  void Split(const std::string& name, const std::string& x, const std::vector<int64_t>& sizes,
             int64_t axis, const std::vector<std::string>& outs) {
    onnx::NodeProto* node;
    if (opset_ < 13) {
      node = &b_.AddNode("Split", {x}, outs, name);
      B::AttrInts(*node, "split", sizes);
    } else {
      node = &b_.AddNode("Split", {x, Ints(name + "/sizes", sizes)}, outs, name);
    }
    B::AttrInt(*node, "axis", axis);
  }

  void Slice(const std::string& name, const std::string& x, int64_t start, int64_t end,
             int64_t axis, const std::string& out) {
    b_.AddNode("Slice",
               {x, Ints(name + "/starts", {start}), Ints(name + "/ends", {end}),
                Ints(name + "/axes", {axis})},
               {out}, name);
  }

  void Concat(const std::string& name, const std::vector<std::string>& xs, int64_t axis,
              const std::string& out) {
    B::AttrInt(b_.AddNode("Concat", xs, {out}, name), "axis", axis);
  }

  void Silu(const std::string& conv, const std::string& x, const std::string& out,
            bool sigmoid_first) {
    b_.AddNode("Sigmoid", {x}, {conv + "_sig"}, conv + "/sigmoid");
    b_.AddNode("Mul",
               sigmoid_first ? std::vector<std::string>{conv + "_sig", x}
                             : std::vector<std::string>{x, conv + "_sig"},
               {out}, conv + "/silu");
  }

 private:
  OnnxModelBuilder& b_;
  int64_t opset_;
};

}  // namespace

OnnxModelBuilder MiniDetector(ExportStyle style, int64_t opset) {
  const bool dynamic = style == ExportStyle::kDynamic;
  const int64_t no = 4 + kMiniClasses;
  OnnxModelBuilder b(opset);
  Emitter e(b, opset);
  if (dynamic) {
    b.AddInput("images", {-1, 3, -1, -1}, DType::kFloat32, {"batch", "", "height", "width"});
  } else {
    b.AddInput("images", {1, 3, 16, 16});
  }

  AddConv(b, "conv0", "images", "conv0_out", 3, 8, 3, kMiniStride, /*seed=*/1);
  e.Silu("conv0", "conv0_out", "p0", /*sigmoid_first=*/false);
  AddConv(b, "conv1", "p0", "conv1_out", 8, 8, 3, 1, /*seed=*/2);
  e.Silu("conv1", "conv1_out", "m1", /*sigmoid_first=*/true);
  b.AddNode("Add", {"p0", "m1"}, {"r0"}, "bottleneck/add");
  AddConv(b, "head", "r0", "h", 8, no, 1, 1, /*seed=*/3);

  if (dynamic) {
    b.AddNode("Shape", {"h"}, {"h_shape"}, "view/shape");
    B::AttrInt(b.AddNode("Gather", {"h_shape", e.Const("view/index", Tensor::ScalarInt64(0))},
                         {"batch_dim"}, "view/gather"),
               "axis", 0);
    e.Unsqueeze("view/unsqueeze", "batch_dim", {0}, "batch_dim1");
    e.Concat("view/concat",
             {"batch_dim1", e.Ints("view/channels", {no}), e.Ints("view/rest", {-1})}, 0,
             "view_shape");
  } else {
    e.Ints("view_shape", {1, no, -1});
  }
  b.AddNode("Reshape", {"h", "view_shape"}, {"flat"}, "view/reshape");
  b.AddNode("Identity", {"flat"}, {"flat_id"}, "view/identity");
  e.Split("split", "flat_id", {4, kMiniClasses}, 1, {"box", "cls"});
  e.Slice("lt/slice", "box", 0, 2, 1, "lt");
  e.Slice("rb/slice", "box", 2, 4, 1, "rb");

  if (dynamic) {
    b.AddNode("Shape", {"h"}, {"grid_shape"}, "anchors/shape");
    B::AttrInt(
        b.AddNode("Gather", {"grid_shape", e.Const("anchors/h_index", Tensor::ScalarInt64(2))},
                  {"grid_h"}, "anchors/gather_h"),
        "axis", 0);
    B::AttrInt(
        b.AddNode("Gather", {"grid_shape", e.Const("anchors/w_index", Tensor::ScalarInt64(3))},
                  {"grid_w"}, "anchors/gather_w"),
        "axis", 0);
    B::AttrInt(b.AddNode("Cast", {"grid_w"}, {"grid_wf"}, "anchors/cast_w"), "to", 1);
    B::AttrInt(b.AddNode("Cast", {"grid_h"}, {"grid_hf"}, "anchors/cast_h"), "to", 1);
    const std::string zero = e.Const("anchors/zero", Tensor::ScalarFloat(0.0f));
    const std::string one = e.Const("anchors/one", Tensor::ScalarFloat(1.0f));
    const std::string half = e.Const("anchors/half", Tensor::ScalarFloat(0.5f));
    b.AddNode("Range", {zero, "grid_wf", one}, {"sx0"}, "anchors/range_x");
    b.AddNode("Add", {"sx0", half}, {"sx"}, "anchors/offset_x");
    b.AddNode("Range", {zero, "grid_hf", one}, {"sy0"}, "anchors/range_y");
    b.AddNode("Add", {"sy0", half}, {"sy"}, "anchors/offset_y");
    b.AddNode("Reshape", {"sy", e.Ints("anchors/col_shape", {-1, 1})}, {"sy_col"},
              "anchors/column");
    b.AddNode("Reshape", {"sx", e.Ints("anchors/row_shape", {1, -1})}, {"sx_row"}, "anchors/row");
    e.Unsqueeze("anchors/unsqueeze_h", "grid_h", {0}, "gh1");
    e.Unsqueeze("anchors/unsqueeze_w", "grid_w", {0}, "gw1");
    e.Concat("anchors/grid_hw", {"gh1", "gw1"}, 0, "grid_hw");
    b.AddNode("Expand", {"sy_col", "grid_hw"}, {"yy"}, "anchors/expand_y");
    b.AddNode("Expand", {"sx_row", "grid_hw"}, {"xx"}, "anchors/expand_x");
    e.Unsqueeze("anchors/xx1", "xx", {-1}, "xx1");
    e.Unsqueeze("anchors/yy1", "yy", {-1}, "yy1");
    e.Concat("anchors/stack", {"xx1", "yy1"}, -1, "xy");
    b.AddNode("Reshape", {"xy", e.Ints("anchors/pairs", {-1, 2})}, {"xy_flat"}, "anchors/flatten");
    B::AttrInts(b.AddNode("Transpose", {"xy_flat"}, {"xy_t"}, "anchors/transpose"), "perm", {1, 0});
    e.Unsqueeze("anchors/batch_axis", "xy_t", {0}, "anchors");

    b.AddNode("Mul", {"grid_h", "grid_w"}, {"hw"}, "strides/count");
    e.Unsqueeze("strides/unsqueeze", "hw", {0}, "hw1");
    e.Concat("strides/shape", {"hw1", e.Ints("strides/one", {1})}, 0, "stride_shape");
    B::AttrTensor(b.AddNode("ConstantOfShape", {"stride_shape"}, {"stride_col"}, "strides/fill"),
                  "value", Tensor::FromFloats({1}, {static_cast<float>(kMiniStride)}));
    B::AttrInts(b.AddNode("Transpose", {"stride_col"}, {"strides"}, "strides/transpose"), "perm",
                {1, 0});
  } else {
    const int64_t a = 8 * 8;
    e.Const("anchors", Tensor::FromFloats({1, 2, a}, ExpectedAnchors(8, 8)));
    e.Const("strides", Tensor::FromFloats({1, a}, std::vector<float>(a, kMiniStride)));
  }

  b.AddNode("Sub", {"anchors", "lt"}, {"x1y1"}, "dist2bbox/x1y1");
  b.AddNode("Add", {"anchors", "rb"}, {"x2y2"}, "dist2bbox/x2y2");
  b.AddNode("Add", {"x1y1", "x2y2"}, {"xy_sum"}, "dist2bbox/sum");
  b.AddNode("Div", {"xy_sum", e.Const("dist2bbox/two", Tensor::ScalarFloat(2.0f))}, {"c_xy"},
            "dist2bbox/center");
  b.AddNode("Sub", {"x2y2", "x1y1"}, {"wh"}, "dist2bbox/wh");
  e.Concat("dist2bbox/concat", {"c_xy", "wh"}, 1, "dbox_grid");
  b.AddNode("Mul", {"dbox_grid", "strides"}, {"dbox"}, "dist2bbox/scale");
  b.AddNode("Sigmoid", {"cls"}, {"cls_sig"}, "cls/sigmoid");
  e.Concat("output/concat", {"dbox", "cls_sig"}, 1, "output0");
  if (dynamic) {
    b.AddOutput("output0", {-1, no, -1}, DType::kFloat32, {"batch", "", "anchors"});
  } else {
    b.AddOutput("output0", {1, no, 64});
  }
  b.AddMetadata("names", "{0: 'person', 1: \"it's\"}");
  b.AddMetadata("stride", "2");
  b.AddMetadata("task", "detect");
  b.AddMetadata("imgsz", "[16, 16]");
  b.AddMetadata("batch", "1");
  return b;
}

std::vector<float> ExpectedAnchors(int64_t h, int64_t w) {
  std::vector<float> anchors(2 * h * w);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      anchors[y * w + x] = static_cast<float>(x) + 0.5f;
      anchors[h * w + y * w + x] = static_cast<float>(y) + 0.5f;
    }
  }
  return anchors;
}

absl::StatusOr<Tensor> RunWithReferenceKernels(const Graph& graph, const Tensor& input) {
  std::map<std::string, Tensor> env(graph.initializers().begin(), graph.initializers().end());
  env[graph.inputs()[0]] = input;
  for (const Node& node : graph.nodes()) {
    std::vector<Tensor> inputs;
    for (const std::string& in : node.inputs) inputs.push_back(in.empty() ? Tensor() : env.at(in));
    YP_ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                        EvaluateNode(node, inputs, /*max_output_bytes=*/size_t{1} << 34));
    for (size_t k = 0; k < node.outputs.size(); ++k) env[node.outputs[k]] = outputs[k];
  }
  return env.at(graph.outputs()[0]);
}

Tensor TestImage(const Shape& shape, int seed) {
  std::vector<float> values = SeededFloats(NumElements(shape), seed);
  for (float& v : values) v += 0.5f;
  return Tensor::FromFloats(shape, values);
}

}  // namespace yolopipe::testing
