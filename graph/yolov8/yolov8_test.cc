#include "graph/yolov8/yolov8.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "base/dtype.h"
#include "base/tensor.h"
#include "gmock/gmock.h"
#include "graph/ir.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ---- Expectations derived independently from shared/YOLOV8.md ---------------------------------

struct ScaleRow {
  char scale;
  double depth;
  double width;
  int64_t max_channels;
  int64_t published_params;  // after Conv+BN fusion, nc = 80
};

constexpr ScaleRow kRows[] = {
    {'n', 0.33, 0.25, 1024, 3151904}, {'s', 0.33, 0.50, 1024, 11156544},
    {'m', 0.67, 0.75, 768, 25886080}, {'l', 1.00, 1.00, 512, 43668288},
    {'x', 1.00, 1.25, 512, 68200608},
};

int64_t Ch(const ScaleRow& r, int64_t c) {
  return static_cast<int64_t>(std::ceil(std::min<double>(c, r.max_channels) * r.width / 8)) * 8;
}
int64_t Rep(const ScaleRow& r, int64_t n) {
  // std::nearbyint rounds half to even in the default rounding mode, like Python's round().
  return std::max<int64_t>(static_cast<int64_t>(std::nearbyint(n * r.depth)), 1);
}
int64_t ConvParams(int64_t c_in, int64_t c_out, int64_t k) { return c_in * c_out * k * k + c_out; }
int64_t C2fParams(int64_t c_in, int64_t c_out, int64_t n) {
  const int64_t h = c_out / 2;
  return ConvParams(c_in, 2 * h, 1) + n * 2 * ConvParams(h, h, 3) +
         ConvParams((2 + n) * h, c_out, 1);
}

int64_t ExpectedParams(const ScaleRow& r, int64_t nc) {
  const int64_t c64 = Ch(r, 64), c128 = Ch(r, 128), c256 = Ch(r, 256), c512 = Ch(r, 512),
                c1024 = Ch(r, 1024);
  int64_t p = ConvParams(3, c64, 3) + ConvParams(c64, c128, 3) + C2fParams(c128, c128, Rep(r, 3)) +
              ConvParams(c128, c256, 3) + C2fParams(c256, c256, Rep(r, 6)) +
              ConvParams(c256, c512, 3) + C2fParams(c512, c512, Rep(r, 6)) +
              ConvParams(c512, c1024, 3) + C2fParams(c1024, c1024, Rep(r, 3)) +
              ConvParams(c1024, c1024 / 2, 1) + ConvParams(c1024 / 2 * 4, c1024, 1);
  p += C2fParams(c1024 + c512, c512, Rep(r, 3)) + C2fParams(c512 + c256, c256, Rep(r, 3)) +
       ConvParams(c256, c256, 3) + C2fParams(c256 + c512, c512, Rep(r, 3)) +
       ConvParams(c512, c512, 3) + C2fParams(c512 + c1024, c1024, Rep(r, 3));
  const int64_t c2 = std::max<int64_t>({16, c256 / 4, 64});
  const int64_t c3 = std::max<int64_t>(c256, std::min<int64_t>(nc, 100));
  for (int64_t x : {c256, c512, c1024}) {
    p += ConvParams(x, c2, 3) + ConvParams(c2, c2, 3) + ConvParams(c2, 64, 1);
    p += ConvParams(x, c3, 3) + ConvParams(c3, c3, 3) + ConvParams(c3, nc, 1);
  }
  return p + 16;  // DFL's fixed 1x1 conv weights, no bias
}

const ScaleRow& Row(char scale) {
  for (const ScaleRow& r : kRows) {
    if (r.scale == scale) return r;
  }
  return kRows[0];
}

// Op histogram of the export described in YOLOV8.md, from the module structure.
std::map<std::string, int> ExpectedOpCounts(const ScaleRow& r) {
  const int64_t r3 = Rep(r, 3), r6 = Rep(r, 6);
  // SiLU convs: 5 strided convs + C2f (cv1, cv2, 2 per bottleneck) x 8 + SPPF 2 + 2 neck convs
  // + Detect 2 per branch x 2 branches x 3 levels.
  const int64_t bottlenecks = 2 * r3 + 2 * r6 + 4 * r3;
  const int64_t shortcut_bottlenecks = 2 * r3 + 2 * r6;
  const int silu = static_cast<int>(5 + 8 * 2 + 2 * bottlenecks + 2 + 2 + 12);
  return {
      {"Conv", silu + 6 + 1},                               // + Detect's plain convs + DFL
      {"Sigmoid", silu + 1},                                // + class scores
      {"Mul", silu + 1},                                    // + stride scaling
      {"Add", static_cast<int>(shortcut_bottlenecks) + 2},  // + x2y2, x1y1 + x2y2
      {"Concat", 8 + 1 + 4 + 3 + 1 + 1 + 1},
      {"Split", 8 + 1},
      {"Reshape", 3 + 2},
      {"MaxPool", 3},
      {"Resize", 2},
      {"Slice", 2},
      {"Sub", 2},
      {"Div", 1},
      {"Transpose", 1},
      {"Softmax", 1},
  };
}

YoloV8Config Config(char scale, int64_t nc = 80, uint64_t seed = 0, int64_t imgsz = 640,
                    int64_t batch = 1) {
  YoloV8Config c;
  c.scale = scale;
  c.num_classes = nc;
  c.seed = seed;
  c.imgsz = imgsz;
  c.batch = batch;
  return c;
}

Graph BuildOrDie(const YoloV8Config& config) {
  absl::StatusOr<Graph> g = BuildYoloV8(config);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *std::move(g) : Graph();
}

const Node* FindNode(const Graph& g, const std::string& name) {
  const int i = g.FindNode(name);
  return i < 0 ? nullptr : &g.nodes()[i];
}

std::vector<float> Floats(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.num_elements());
}

// ---- Tests
// ----------------------------------------------------------------------------------------

TEST(YoloV8Test, TestFormulaReproducesPublishedParameterCounts) {
  for (const ScaleRow& r : kRows) {
    EXPECT_EQ(ExpectedParams(r, 80), r.published_params) << r.scale;
  }
}

TEST(YoloV8Test, ParameterCountsMatchYoloV8Md) {
  for (const ScaleRow& r : kRows) {
    // Parameters do not depend on the input size; a small input keeps the anchors small.
    Graph g = BuildOrDie(Config(r.scale, 80, 0, 64));
    EXPECT_EQ(g.ParameterCount(), r.published_params) << "yolov8" << r.scale;
    EXPECT_TRUE(g.Validate().ok()) << g.Validate();
  }
}

TEST(YoloV8Test, ParameterCountsFollowClassCount) {
  for (char scale : {'n', 'm'}) {
    for (int64_t nc : {1, 3, 200}) {
      Graph g = BuildOrDie(Config(scale, nc, 0, 64));
      EXPECT_EQ(g.ParameterCount(), ExpectedParams(Row(scale), nc))
          << "yolov8" << scale << " nc=" << nc;
    }
  }
}

TEST(YoloV8Test, InputAndOutputShapes) {
  Graph g = BuildOrDie(Config('n'));
  ASSERT_THAT(g.inputs(), ElementsAre("images"));
  ASSERT_THAT(g.outputs(), ElementsAre("output0"));
  EXPECT_THAT(g.FindValue("images")->shape, ElementsAre(1, 3, 640, 640));
  EXPECT_EQ(g.FindValue("output0")->dtype, DType::kFloat32);
  EXPECT_THAT(g.FindValue("output0")->shape, ElementsAre(1, 84, 80 * 80 + 40 * 40 + 20 * 20));

  Graph small = BuildOrDie(Config('s', 3, 0, 320, 2));
  EXPECT_THAT(small.FindValue("images")->shape, ElementsAre(2, 3, 320, 320));
  EXPECT_THAT(small.FindValue("output0")->shape, ElementsAre(2, 7, 2100));
}

TEST(YoloV8Test, EveryValueHasAConcreteShapeAndNodesAreSorted) {
  Graph g = BuildOrDie(Config('n', 80, 0, 320, 3));
  for (const Node& node : g.nodes()) {
    for (const std::string& out : node.outputs) {
      const Value* v = g.FindValue(out);
      ASSERT_NE(v, nullptr) << out;
      EXPECT_FALSE(v->shape.empty()) << out;
      EXPECT_TRUE(IsFullyKnown(v->shape)) << out << " " << ShapeToString(v->shape);
      EXPECT_EQ(v->shape[0], 3) << out;
    }
  }
  auto order = g.TopologicalOrder();
  ASSERT_TRUE(order.ok());
  for (size_t i = 0; i < order->size(); ++i) EXPECT_EQ((*order)[i], static_cast<int>(i));
}

TEST(YoloV8Test, OpCountsMatchTheExportStructure) {
  for (char scale : {'n', 'x'}) {
    Graph g = BuildOrDie(Config(scale, 80, 0, 64));
    std::map<std::string, int> counts;
    for (const Node& node : g.nodes()) ++counts[node.op_type];
    EXPECT_EQ(counts, ExpectedOpCounts(Row(scale))) << "yolov8" << scale;
  }
  // yolov8n's numbers as YOLOV8.md lists them (its Mul/Add/Div counts include torch's chunk
  // arithmetic, which the built-in graph does not need).
  const auto n = ExpectedOpCounts(Row('n'));
  EXPECT_EQ(n.at("Conv"), 64);
  EXPECT_EQ(n.at("Sigmoid"), 58);
  EXPECT_EQ(n.at("Concat"), 19);
  EXPECT_EQ(n.at("Split"), 9);
}

TEST(YoloV8Test, LayerOutputChannelsMatchYoloV8Md) {
  const std::map<char, std::vector<int64_t>> expected = {
      {'n', {16,  32,  32,  64,  64, 128, 128, 256, 256, 256, 256,
             384, 128, 128, 192, 64, 64,  192, 128, 128, 384, 256}},
      {'s', {32,  64,  64,  128, 128, 256, 256, 512, 512, 512, 512,
             768, 256, 256, 384, 128, 128, 384, 256, 256, 768, 512}},
  };
  for (const auto& [scale, channels] : expected) {
    Graph g = BuildOrDie(Config(scale, 80, 0, 64));
    std::vector<int64_t> got;
    for (int layer = 0; layer < 22; ++layer) {
      const std::string name = "model." + std::to_string(layer);
      const Node* last = nullptr;
      for (const Node& node : g.nodes()) {
        if (node.name == name || node.name.rfind(name + ".", 0) == 0) last = &node;
      }
      ASSERT_NE(last, nullptr) << name;
      got.push_back(g.FindValue(last->outputs[0])->shape[1]);
    }
    EXPECT_THAT(got, ElementsAreArray(channels)) << "yolov8" << scale;
  }
}

TEST(YoloV8Test, NodeNamesFollowUltralyticsModules) {
  Graph g = BuildOrDie(Config('n', 80, 0, 64));
  const Node* conv = FindNode(g, "model.4.m.1.cv2");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->op_type, "Conv");
  EXPECT_THAT(conv->inputs, ElementsAre("model.4.m.1.cv1.silu", "model.4.m.1.cv2.weight",
                                        "model.4.m.1.cv2.bias"));
  EXPECT_THAT(conv->outputs, ElementsAre("model.4.m.1.cv2"));
  const Node* sig = FindNode(g, "model.4.m.1.cv2.sigmoid");
  ASSERT_NE(sig, nullptr);
  EXPECT_EQ(sig->op_type, "Sigmoid");
  EXPECT_THAT(sig->inputs, ElementsAre("model.4.m.1.cv2"));
  const Node* silu = FindNode(g, "model.4.m.1.cv2.silu");
  ASSERT_NE(silu, nullptr);
  EXPECT_EQ(silu->op_type, "Mul");
  EXPECT_THAT(silu->inputs, ElementsAre("model.4.m.1.cv2", "model.4.m.1.cv2.sigmoid"));
  // Shortcut: the bottleneck's input plus its output.
  const Node* add = FindNode(g, "model.4.m.1.add");
  ASSERT_NE(add, nullptr);
  EXPECT_THAT(add->inputs, ElementsAre("model.4.m.0.add", "model.4.m.1.cv2.silu"));
  // No shortcut in the neck.
  EXPECT_EQ(FindNode(g, "model.12.m.0.add"), nullptr);
  EXPECT_NE(FindNode(g, "model.12.m.0.cv2.silu"), nullptr);
  // Detect: the third conv of each branch is a plain conv.
  const Node* box = FindNode(g, "model.22.cv2.0.2");
  ASSERT_NE(box, nullptr);
  EXPECT_EQ(box->op_type, "Conv");
  EXPECT_EQ(box->inputs[0], "model.22.cv2.0.1.silu");
  EXPECT_EQ(FindNode(g, "model.22.cv2.0.2.sigmoid"), nullptr);
  EXPECT_NE(FindNode(g, "model.22.cv3.2.2"), nullptr);
  const Node* dfl = FindNode(g, "model.22.dfl");
  ASSERT_NE(dfl, nullptr);
  EXPECT_EQ(dfl->op_type, "Conv");
  EXPECT_EQ(dfl->inputs.size(), 2u);  // no bias
  EXPECT_THAT(Floats(*g.FindInitializer("model.22.dfl.weight")),
              ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  // C2f's split and the concat order [a, b, m0, ...].
  const Node* split = FindNode(g, "model.2.split");
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->op_type, "Split");
  EXPECT_THAT(split->outputs, ElementsAre("model.2.split.0", "model.2.split.1"));
  EXPECT_THAT(FindNode(g, "model.2.cat")->inputs,
              ElementsAre("model.2.split.0", "model.2.split.1", "model.2.m.0.add"));
  // Neck concats in the listed order.
  EXPECT_THAT(FindNode(g, "model.11")->inputs, ElementsAre("model.10", "model.6.cv2.silu"));
  EXPECT_THAT(FindNode(g, "model.20")->inputs, ElementsAre("model.19.silu", "model.9.cv2.silu"));
  // The graph's output is produced by Detect's last concat of boxes and scores.
  const Node* out = FindNode(g, "model.22.output");
  ASSERT_NE(out, nullptr);
  EXPECT_THAT(out->inputs, ElementsAre("model.22.dbox", "model.22.cls_sigmoid"));
  EXPECT_THAT(out->outputs, ElementsAre("output0"));
}

TEST(YoloV8Test, ExportStyleAttributesAndConstants) {
  Graph g = BuildOrDie(Config('n', 80, 0, 64, 2));
  const Node* conv = FindNode(g, "model.0");
  ASSERT_NE(conv, nullptr);
  EXPECT_THAT(*conv->attrs.GetInts("kernel_shape"), ElementsAre(3, 3));
  EXPECT_THAT(*conv->attrs.GetInts("strides"), ElementsAre(2, 2));
  EXPECT_THAT(*conv->attrs.GetInts("pads"), ElementsAre(1, 1, 1, 1));
  EXPECT_EQ(*conv->attrs.GetInt("group", 1), 1);
  const Node* resize = FindNode(g, "model.10");
  ASSERT_NE(resize, nullptr);
  EXPECT_EQ(resize->op_type, "Resize");
  EXPECT_EQ(*resize->attrs.GetString("mode", ""), "nearest");
  EXPECT_EQ(*resize->attrs.GetString("coordinate_transformation_mode", ""), "asymmetric");
  EXPECT_EQ(*resize->attrs.GetString("nearest_mode", ""), "floor");
  ASSERT_EQ(resize->inputs.size(), 3u);
  EXPECT_EQ(resize->inputs[1], "");
  EXPECT_THAT(Floats(*g.FindInitializer(resize->inputs[2])), ElementsAre(1, 1, 2, 2));
  const Node* pool = FindNode(g, "model.9.m.1");
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->op_type, "MaxPool");
  EXPECT_THAT(*pool->attrs.GetInts("kernel_shape"), ElementsAre(5, 5));
  EXPECT_THAT(*pool->attrs.GetInts("pads"), ElementsAre(2, 2, 2, 2));
  const Node* view = FindNode(g, "model.22.view.1");
  ASSERT_NE(view, nullptr);
  const Tensor* shape = g.FindInitializer(view->inputs[1]);
  ASSERT_NE(shape, nullptr);
  EXPECT_EQ(shape->dtype(), DType::kInt64);
  EXPECT_THAT(std::vector<int64_t>(shape->data<int64_t>(), shape->data<int64_t>() + 3),
              ElementsAre(2, 144, -1));
  EXPECT_EQ(*FindNode(g, "model.22.dfl.softmax")->attrs.GetInt("axis"), 1);
  EXPECT_THAT(*FindNode(g, "model.22.dfl.transpose")->attrs.GetInts("perm"),
              ElementsAre(0, 2, 1, 3));
}

TEST(YoloV8Test, AnchorsStridesAndDetectBiases) {
  const int64_t nc = 5;
  Graph g = BuildOrDie(Config('n', nc, 0, 320));
  const int64_t a = 40 * 40 + 20 * 20 + 10 * 10;
  const Tensor* anchors = g.FindInitializer("model.22.anchors");
  const Tensor* strides = g.FindInitializer("model.22.strides");
  ASSERT_NE(anchors, nullptr);
  ASSERT_NE(strides, nullptr);
  EXPECT_THAT(anchors->shape(), ElementsAre(1, 2, a));
  EXPECT_THAT(strides->shape(), ElementsAre(1, a));
  const float* ax = anchors->data<float>();
  const float* ay = ax + a;
  const float* st = strides->data<float>();
  // Stride 8: 40 columns, y outer. Cell 41 is (x=1, y=1); 79 is (39, 1).
  EXPECT_EQ(ax[0], 0.5f);
  EXPECT_EQ(ay[0], 0.5f);
  EXPECT_EQ(ax[41], 1.5f);
  EXPECT_EQ(ay[41], 1.5f);
  EXPECT_EQ(ax[79], 39.5f);
  EXPECT_EQ(ay[79], 1.5f);
  EXPECT_EQ(st[1599], 8.0f);
  // Stride 16 starts at 1600, stride 32 at 2000; the last anchor is (9.5, 9.5).
  EXPECT_EQ(ax[1600], 0.5f);
  EXPECT_EQ(st[1600], 16.0f);
  EXPECT_EQ(st[2000], 32.0f);
  EXPECT_EQ(ax[a - 1], 9.5f);
  EXPECT_EQ(ay[a - 1], 9.5f);
  EXPECT_EQ(st[a - 1], 32.0f);

  for (int level = 0; level < 3; ++level) {
    const std::string l = std::to_string(level);
    const std::vector<float> box = Floats(*g.FindInitializer("model.22.cv2." + l + ".2.bias"));
    EXPECT_EQ(box, std::vector<float>(64, 1.0f));
    const double stride = 8 << level;
    const float cls = static_cast<float>(std::log(5.0 / nc / std::pow(640.0 / stride, 2)));
    EXPECT_THAT(Floats(*g.FindInitializer("model.22.cv3." + l + ".2.bias")),
                ElementsAreArray(std::vector<float>(nc, cls)));
  }
}

TEST(YoloV8Test, SameSeedSameWeightsOtherSeedOtherWeights) {
  Graph a = BuildOrDie(Config('n', 80, 7, 64));
  Graph b = BuildOrDie(Config('n', 80, 7, 64));
  Graph c = BuildOrDie(Config('n', 80, 8, 64));
  ASSERT_EQ(a.initializers().size(), b.initializers().size());
  int random_tensors = 0;
  for (const auto& [name, tensor] : a.initializers()) {
    ASSERT_NE(b.FindInitializer(name), nullptr) << name;
    EXPECT_TRUE(BitwiseEqual(tensor, *b.FindInitializer(name))) << name;
    const bool learned = absl::EndsWith(name, ".weight") || absl::EndsWith(name, ".bias");
    // DFL's bins and Detect's initialised biases do not depend on the seed.
    const bool fixed = name == "model.22.dfl.weight" ||
                       (absl::StartsWith(name, "model.22.cv") && absl::EndsWith(name, ".2.bias"));
    if (learned && !fixed) {
      ++random_tensors;
      EXPECT_FALSE(BitwiseEqual(tensor, *c.FindInitializer(name))) << name;
    } else {
      EXPECT_TRUE(BitwiseEqual(tensor, *c.FindInitializer(name))) << name;
    }
  }
  // Weights of the 63 convs besides DFL; biases of the 57 SiLU convs.
  EXPECT_EQ(random_tensors, 63 + 57);
}

TEST(YoloV8Test, WeightsFollowTheVarianceRule) {
  Graph g = BuildOrDie(Config('n', 80, 0, 64));
  // Plain rule: uniform, variance 1.5 / fan_in; residual branch 0.75 / fan_in; head 1.0 / fan_in.
  struct Case {
    const char* name;
    double gain;
  };
  for (const Case& c : {Case{"model.8.cv2", 1.5}, Case{"model.4.m.0.cv2", 0.75},
                        Case{"model.7", 1.5}, Case{"model.22.cv3.0.2", 1.0}}) {
    const Tensor* w = g.FindInitializer(std::string(c.name) + ".weight");
    ASSERT_NE(w, nullptr) << c.name;
    const int64_t fan_in = w->num_elements() / w->dim(0);
    const double var = c.gain / fan_in;
    const double bound = std::sqrt(3 * var);
    double sum = 0, sum_sq = 0;
    for (float v : Floats(*w)) {
      ASSERT_LE(std::abs(v), bound * (1 + 1e-6)) << c.name;
      sum += v;
      sum_sq += static_cast<double>(v) * v;
    }
    const double n = static_cast<double>(w->num_elements());
    // Relative standard error of the second moment of a uniform sample is sqrt(0.8 / n) (< 1%).
    EXPECT_NEAR(sum_sq / n, var, var * 5 * std::sqrt(0.8 / n)) << c.name;
    EXPECT_NEAR(sum / n, 0.0, 5 * std::sqrt(var / n)) << c.name;
  }
  for (float v : Floats(*g.FindInitializer("model.8.cv2.bias"))) {
    EXPECT_GE(v, 0.4f);
    EXPECT_LE(v, 0.6f);
  }
}

TEST(YoloV8Test, MetadataLikeTheUltralyticsExporter) {
  Graph g = BuildOrDie(Config('n', 80, 3));
  const auto& m = g.metadata();
  EXPECT_EQ(m.at("stride"), "32");
  EXPECT_EQ(m.at("task"), "detect");
  EXPECT_EQ(m.at("batch"), "1");
  EXPECT_EQ(m.at("imgsz"), "[640, 640]");
  EXPECT_EQ(m.at("description"), "yolopipe built-in yolov8n, seed 3");
  const std::string& names = m.at("names");
  EXPECT_EQ(names.rfind("{0: 'person', 1: 'bicycle', 2: 'car', ", 0), 0u) << names;
  EXPECT_THAT(names, HasSubstr(", 9: 'traffic light', "));
  EXPECT_TRUE(absl::EndsWith(names, ", 78: 'hair drier', 79: 'toothbrush'}")) << names;
  EXPECT_EQ(g.name(), "yolov8n");

  Graph custom = BuildOrDie(Config('s', 3, 0, 320, 4));
  EXPECT_EQ(custom.metadata().at("names"), "{0: 'class0', 1: 'class1', 2: 'class2'}");
  EXPECT_EQ(custom.metadata().at("imgsz"), "[320, 320]");
  EXPECT_EQ(custom.metadata().at("batch"), "4");
  EXPECT_EQ(custom.name(), "yolov8s");
}

TEST(YoloV8Test, RejectsBadConfigs) {
  struct Case {
    YoloV8Config config;
    const char* message;
  };
  const Case cases[] = {
      {Config('q'), "scale 'q' is unknown"},
      {Config('N'), "scale 'N' is unknown"},
      {Config('n', 0), "num_classes 0 is out of range"},
      {Config('n', -3), "num_classes -3 is out of range"},
      {Config('n', kMaxBuiltinClasses + 1), "num_classes 100001 is out of range"},
      {Config('n', 80, 0, 100), "imgsz 100 must be a positive multiple of 32"},
      {Config('n', 80, 0, 0), "imgsz 0 must be a positive multiple of 32"},
      {Config('n', 80, 0, -64), "imgsz -64"},
      {Config('n', 80, 0, kMaxBuiltinImgsz + 32), "at most 8192"},
      {Config('n', 80, 0, 640, 0), "batch 0 is out of range"},
      {Config('n', 80, 0, 640, kMaxBuiltinBatch + 1), "batch 65537 is out of range"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Graph> g = BuildYoloV8(c.config);
    ASSERT_FALSE(g.ok()) << c.message;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(c.message));
    EXPECT_EQ(ValidateYoloV8Config(c.config).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_TRUE(ValidateYoloV8Config(Config('x', 1, 0, 32, 1)).ok());
}

TEST(YoloV8Test, ParsesBuiltinModelNames) {
  for (char scale : {'n', 's', 'm', 'l', 'x'}) {
    const std::string name = std::string("yolov8") + scale;
    absl::StatusOr<YoloV8Config> c = ParseBuiltinModelName(name);
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_EQ(c->scale, scale);
    EXPECT_EQ(c->num_classes, 80);
    EXPECT_EQ(c->imgsz, 640);
    EXPECT_EQ(c->batch, 1);
    EXPECT_TRUE(IsBuiltinModelName(name));
    EXPECT_EQ(BuiltinModelName(*c), name);
  }
  for (const char* bad : {"yolov8q", "yolov8"}) {
    absl::StatusOr<YoloV8Config> c = ParseBuiltinModelName(bad);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("names no YOLOv8 scale"));
    EXPECT_FALSE(IsBuiltinModelName(bad));
  }
  for (const char* other : {"yolov8n.onnx", "models/yolov8n", "resnet50", "", "YOLOV8N"}) {
    absl::StatusOr<YoloV8Config> c = ParseBuiltinModelName(other);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << other;
    EXPECT_THAT(std::string(c.status().message()), HasSubstr("is not a built-in model"));
    EXPECT_FALSE(IsBuiltinModelName(other));
  }
}

}  // namespace
}  // namespace yolopipe
