#include "graph/yolov8/yolov8.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/attributes.h"
#include "base/dtype.h"
#include "base/status_macros.h"
#include "base/tensor.h"

namespace yolopipe {
namespace {

// Seeded initialisation; tools/torch_reference.py documents why these values (plain 1/fan_in
// weights with small biases let activations die out over ~40 SiLU layers, larger gains blow up
// through C2f's residual chains). Weights are uniform with variance gain / fan_in.
constexpr double kWeightGain = 1.5;
constexpr double kResidualGain = 0.75;  // second conv of a shortcut Bottleneck
constexpr double kHeadGain = 1.0;       // Detect's plain 1x1 convs
constexpr float kBiasMean = 0.5f;       // positive BN-fused biases keep the statistics stable
constexpr float kBiasHalfRange = 0.1f;

constexpr int64_t kRegMax = 16;
constexpr int kDetectLayer = 22;
constexpr int64_t kStrides[3] = {8, 16, 32};

struct ScaleSpec {
  char scale;
  double depth;
  double width;
  int64_t max_channels;
};

constexpr ScaleSpec kScales[] = {
    {'n', 0.33, 0.25, 1024}, {'s', 0.33, 0.50, 1024}, {'m', 0.67, 0.75, 768},
    {'l', 1.00, 1.00, 512},  {'x', 1.00, 1.25, 512},
};

const ScaleSpec* FindScale(char scale) {
  for (const ScaleSpec& s : kScales) {
    if (s.scale == scale) return &s;
  }
  return nullptr;
}

constexpr const char* kCocoNames[80] = {
    "person",        "bicycle",      "car",
    "motorcycle",    "airplane",     "bus",
    "train",         "truck",        "boat",
    "traffic light", "fire hydrant", "stop sign",
    "parking meter", "bench",        "bird",
    "cat",           "dog",          "horse",
    "sheep",         "cow",          "elephant",
    "bear",          "zebra",        "giraffe",
    "backpack",      "umbrella",     "handbag",
    "tie",           "suitcase",     "frisbee",
    "skis",          "snowboard",    "sports ball",
    "kite",          "baseball bat", "baseball glove",
    "skateboard",    "surfboard",    "tennis racket",
    "bottle",        "wine glass",   "cup",
    "fork",          "knife",        "spoon",
    "bowl",          "banana",       "apple",
    "sandwich",      "orange",       "broccoli",
    "carrot",        "hot dog",      "pizza",
    "donut",         "cake",         "chair",
    "couch",         "potted plant", "bed",
    "dining table",  "toilet",       "tv",
    "laptop",        "mouse",        "remote",
    "keyboard",      "cell phone",   "microwave",
    "oven",          "toaster",      "sink",
    "refrigerator",  "book",         "clock",
    "vase",          "scissors",     "teddy bear",
    "hair drier",    "toothbrush",
};

// The exporter writes str(model.names): a Python dict literal.
std::string NamesLiteral(int64_t num_classes) {
  std::vector<std::string> items;
  items.reserve(num_classes);
  for (int64_t i = 0; i < num_classes; ++i) {
    const std::string name =
        num_classes == 80 ? std::string(kCocoNames[i]) : absl::StrCat("class", i);
    items.push_back(absl::StrCat(i, ": '", name, "'"));
  }
  return absl::StrCat("{", absl::StrJoin(items, ", "), "}");
}

// splitmix64 (Steele, Lea, Flood 2014): tiny, portable, and well distributed for this purpose.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [-1, 1): 24 random bits, exact in float, so no platform-dependent rounding.
  float NextSymmetric() {
    const int64_t k = static_cast<int64_t>(Next() >> 40);  // [0, 2^24)
    return static_cast<float>(2 * k - (int64_t{1} << 24)) * 0x1p-24f;
  }

 private:
  uint64_t state_;
};

// Python's round(): half to even (the spec's repeat rule).
int64_t RoundHalfEven(double v) {
  const double f = std::floor(v);
  const double diff = v - f;
  if (diff > 0.5) return static_cast<int64_t>(f) + 1;
  if (diff < 0.5) return static_cast<int64_t>(f);
  return static_cast<int64_t>(f) % 2 == 0 ? static_cast<int64_t>(f) : static_cast<int64_t>(f) + 1;
}

int64_t ConvOutDim(int64_t in, int64_t k, int64_t s) { return (in + 2 * (k / 2) - k) / s + 1; }

// Builds the graph node by node; every helper returns the name of the Value it produced.
class YoloV8Builder {
 public:
  YoloV8Builder(const YoloV8Config& config, const ScaleSpec& spec)
      : config_(config), spec_(spec), rng_(config.seed) {}

  absl::StatusOr<Graph> Build();

 private:
  int64_t Channels(int64_t c) const {
    const double v = static_cast<double>(std::min(c, spec_.max_channels)) * spec_.width;
    return static_cast<int64_t>(std::ceil(v / 8.0)) * 8;
  }
  int64_t Repeats(int64_t r) const {
    return std::max<int64_t>(RoundHalfEven(static_cast<double>(r) * spec_.depth), 1);
  }
  const Shape& ShapeOf(const std::string& value) const { return graph_.FindValue(value)->shape; }

  // Adds a node with one output Value named like the node.
  std::string Add1(const std::string& name, const std::string& op, std::vector<std::string> inputs,
                   const Shape& out_shape, Attributes attrs = Attributes(),
                   DType dtype = DType::kFloat32) {
    graph_.SetValue(Value{name, dtype, out_shape});
    graph_.AddNode(Node{name, op, std::move(inputs), {name}, std::move(attrs)});
    return name;
  }

  Tensor RandomTensor(const Shape& shape, float center, float half_range) {
    Tensor t(DType::kFloat32, shape);
    float* data = t.data<float>();
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      data[i] = center + rng_.NextSymmetric() * half_range;
    }
    return t;
  }

  // A plain convolution with bias (padding k/2, no activation).
  std::string Conv(const std::string& name, const std::string& x, int64_t c_out, int64_t k,
                   int64_t s, double gain) {
    const Shape& in = ShapeOf(x);
    const int64_t c_in = in[1];
    const double fan_in = static_cast<double>(c_in * k * k);
    const float bound = static_cast<float>(std::sqrt(3.0 * gain / fan_in));
    graph_.AddInitializer(name + ".weight", RandomTensor({c_out, c_in, k, k}, 0.0f, bound));
    graph_.AddInitializer(name + ".bias", RandomTensor({c_out}, kBiasMean, kBiasHalfRange));
    Attributes attrs;
    attrs.Set("dilations", std::vector<int64_t>{1, 1});
    attrs.Set("group", int64_t{1});
    attrs.Set("kernel_shape", std::vector<int64_t>{k, k});
    attrs.Set("pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2});
    attrs.Set("strides", std::vector<int64_t>{s, s});
    const Shape out = {in[0], c_out, ConvOutDim(in[2], k, s), ConvOutDim(in[3], k, s)};
    return Add1(name, "Conv", {x, name + ".weight", name + ".bias"}, out, std::move(attrs));
  }

  // Ultralytics Conv module after BN fusion: Conv -> Sigmoid -> Mul.
  std::string ConvSiLU(const std::string& name, const std::string& x, int64_t c_out, int64_t k,
                       int64_t s, double gain = kWeightGain) {
    const std::string conv = Conv(name, x, c_out, k, s, gain);
    const Shape out = ShapeOf(conv);
    const std::string sig = Add1(name + ".sigmoid", "Sigmoid", {conv}, out);
    return Add1(name + ".silu", "Mul", {conv, sig}, out);
  }

  std::string Concat(const std::string& name, const std::vector<std::string>& xs, int64_t axis) {
    Shape out = ShapeOf(xs[0]);
    out[axis] = 0;
    for (const std::string& x : xs) out[axis] += ShapeOf(x)[axis];
    Attributes attrs;
    attrs.Set("axis", axis);
    return Add1(name, "Concat", xs, out, std::move(attrs));
  }

  // Split on `axis` into the given sizes; outputs `<name>.0`, `<name>.1`, ...
  std::vector<std::string> Split(const std::string& name, const std::string& x, int64_t axis,
                                 const std::vector<int64_t>& sizes) {
    graph_.AddInitializer(name + ".sizes",
                          Tensor::FromInt64s({static_cast<int64_t>(sizes.size())}, sizes));
    std::vector<std::string> outs;
    for (size_t i = 0; i < sizes.size(); ++i) {
      Shape shape = ShapeOf(x);
      shape[axis] = sizes[i];
      outs.push_back(absl::StrCat(name, ".", i));
      graph_.SetValue(Value{outs.back(), DType::kFloat32, shape});
    }
    Attributes attrs;
    attrs.Set("axis", axis);
    graph_.AddNode(Node{name, "Split", {x, name + ".sizes"}, outs, std::move(attrs)});
    return outs;
  }

  std::string Reshape(const std::string& name, const std::string& x, const Shape& spec,
                      const Shape& out) {
    graph_.AddInitializer(name + ".shape",
                          Tensor::FromInt64s({static_cast<int64_t>(spec.size())}, spec));
    return Add1(name, "Reshape", {x, name + ".shape"}, out);
  }

  std::string C2f(const std::string& name, const std::string& x, int64_t c_out, int64_t repeats,
                  bool shortcut) {
    const int64_t h = c_out / 2;
    const std::string cv1 = ConvSiLU(name + ".cv1", x, 2 * h, 1, 1);
    std::vector<std::string> parts = Split(name + ".split", cv1, 1, {h, h});
    for (int64_t j = 0; j < repeats; ++j) {
      const std::string m = absl::StrCat(name, ".m.", j);
      const std::string in = parts.back();
      const std::string a = ConvSiLU(m + ".cv1", in, h, 3, 1);
      const std::string b =
          ConvSiLU(m + ".cv2", a, h, 3, 1, shortcut ? kResidualGain : kWeightGain);
      parts.push_back(shortcut ? Add1(m + ".add", "Add", {in, b}, ShapeOf(b)) : b);
    }
    const std::string cat = Concat(name + ".cat", parts, 1);
    return ConvSiLU(name + ".cv2", cat, c_out, 1, 1);
  }

  std::string SPPF(const std::string& name, const std::string& x, int64_t c_out) {
    const int64_t c_hidden = ShapeOf(x)[1] / 2;
    std::vector<std::string> parts = {ConvSiLU(name + ".cv1", x, c_hidden, 1, 1)};
    for (int i = 0; i < 3; ++i) {
      Attributes attrs;
      attrs.Set("ceil_mode", int64_t{0});
      attrs.Set("dilations", std::vector<int64_t>{1, 1});
      attrs.Set("kernel_shape", std::vector<int64_t>{5, 5});
      attrs.Set("pads", std::vector<int64_t>{2, 2, 2, 2});
      attrs.Set("strides", std::vector<int64_t>{1, 1});
      parts.push_back(Add1(absl::StrCat(name, ".m.", i), "MaxPool", {parts.back()},
                           ShapeOf(parts.back()), std::move(attrs)));
    }
    const std::string cat = Concat(name + ".cat", parts, 1);
    return ConvSiLU(name + ".cv2", cat, c_out, 1, 1);
  }

  std::string Upsample(const std::string& name, const std::string& x) {
    graph_.AddInitializer(name + ".scales", Tensor::FromFloats({4}, {1.0f, 1.0f, 2.0f, 2.0f}));
    Attributes attrs;
    attrs.Set("coordinate_transformation_mode", std::string("asymmetric"));
    attrs.Set("cubic_coeff_a", -0.75f);
    attrs.Set("mode", std::string("nearest"));
    attrs.Set("nearest_mode", std::string("floor"));
    Shape out = ShapeOf(x);
    out[2] *= 2;
    out[3] *= 2;
    // The empty input is the absent `roi`, as torch exports it.
    return Add1(name, "Resize", {x, "", name + ".scales"}, out, std::move(attrs));
  }

  std::string Slice(const std::string& name, const std::string& x, int64_t axis, int64_t start,
                    int64_t end) {
    graph_.AddInitializer(name + ".starts", Tensor::FromInt64s({1}, {start}));
    graph_.AddInitializer(name + ".ends", Tensor::FromInt64s({1}, {end}));
    graph_.AddInitializer(name + ".axes", Tensor::FromInt64s({1}, {axis}));
    Shape out = ShapeOf(x);
    out[axis] = end - start;
    return Add1(name, "Slice", {x, name + ".starts", name + ".ends", name + ".axes"}, out);
  }

  void Detect(const std::vector<std::string>& features);

  const YoloV8Config& config_;
  const ScaleSpec& spec_;
  SplitMix64 rng_;
  Graph graph_;
};

void YoloV8Builder::Detect(const std::vector<std::string>& features) {
  const std::string d = absl::StrCat("model.", kDetectLayer);
  const int64_t nc = config_.num_classes;
  const int64_t batch = config_.batch;
  const int64_t no = 4 * kRegMax + nc;
  const int64_t c0 = ShapeOf(features[0])[1];
  const int64_t c2 = std::max<int64_t>({16, c0 / 4, 4 * kRegMax});
  const int64_t c3 = std::max<int64_t>(c0, std::min<int64_t>(nc, 100));

  std::vector<std::string> levels;
  int64_t num_anchors = 0;
  for (size_t i = 0; i < features.size(); ++i) {
    const std::string box = absl::StrCat(d, ".cv2.", i);
    const std::string cls = absl::StrCat(d, ".cv3.", i);
    std::string b = ConvSiLU(box + ".0", features[i], c2, 3, 1);
    b = ConvSiLU(box + ".1", b, c2, 3, 1);
    b = Conv(box + ".2", b, 4 * kRegMax, 1, 1, kHeadGain);
    std::string c = ConvSiLU(cls + ".0", features[i], c3, 3, 1);
    c = ConvSiLU(cls + ".1", c, c3, 3, 1);
    c = Conv(cls + ".2", c, nc, 1, 1, kHeadGain);
    // Detect's bias initialisation (YOLOV8.md): box 1.0; class log(5 / nc / (640 / stride)^2).
    // The random biases drawn above are replaced, so the generator's stream does not depend on
    // this rule.
    graph_.AddInitializer(box + ".2.bias",
                          Tensor::FromFloats({4 * kRegMax}, std::vector<float>(4 * kRegMax, 1.0f)));
    const double cells_per_side = 640.0 / static_cast<double>(kStrides[i]);
    const float cls_init = static_cast<float>(
        std::log(5.0 / static_cast<double>(nc) / (cells_per_side * cells_per_side)));
    graph_.AddInitializer(cls + ".2.bias",
                          Tensor::FromFloats({nc}, std::vector<float>(nc, cls_init)));

    const std::string cat = Concat(absl::StrCat(d, ".cat.", i), {b, c}, 1);
    const Shape& s = ShapeOf(cat);
    const int64_t cells = s[2] * s[3];
    num_anchors += cells;
    levels.push_back(
        Reshape(absl::StrCat(d, ".view.", i), cat, {batch, no, -1}, {batch, no, cells}));
  }
  const int64_t a = num_anchors;
  const std::string x_cat = Concat(d + ".cat", levels, 2);
  const std::vector<std::string> box_cls = Split(d + ".split", x_cat, 1, {4 * kRegMax, nc});

  // DFL: softmax over the 16 bins of each side, expectation via a 1x1 conv with weights 0..15.
  const std::string dfl = d + ".dfl";
  std::string t =
      Reshape(dfl + ".view", box_cls[0], {batch, 4, kRegMax, a}, {batch, 4, kRegMax, a});
  Attributes perm;
  perm.Set("perm", std::vector<int64_t>{0, 2, 1, 3});
  t = Add1(dfl + ".transpose", "Transpose", {t}, {batch, kRegMax, 4, a}, std::move(perm));
  Attributes axis1;
  axis1.Set("axis", int64_t{1});
  t = Add1(dfl + ".softmax", "Softmax", {t}, {batch, kRegMax, 4, a}, std::move(axis1));
  std::vector<float> bins(kRegMax);
  for (int64_t k = 0; k < kRegMax; ++k) bins[k] = static_cast<float>(k);
  graph_.AddInitializer(dfl + ".weight", Tensor::FromFloats({1, kRegMax, 1, 1}, bins));
  Attributes conv_attrs;
  conv_attrs.Set("dilations", std::vector<int64_t>{1, 1});
  conv_attrs.Set("group", int64_t{1});
  conv_attrs.Set("kernel_shape", std::vector<int64_t>{1, 1});
  conv_attrs.Set("pads", std::vector<int64_t>{0, 0, 0, 0});
  conv_attrs.Set("strides", std::vector<int64_t>{1, 1});
  t = Add1(dfl, "Conv", {t, dfl + ".weight"}, {batch, 1, 4, a}, std::move(conv_attrs));
  const std::string dist = Reshape(dfl + ".view_out", t, {batch, 4, a}, {batch, 4, a});

  // Anchor centres in grid units and per-anchor strides: levels in stride order, rows y-major.
  std::vector<float> anchors(2 * a);
  std::vector<float> strides(a);
  int64_t index = 0;
  for (size_t i = 0; i < features.size(); ++i) {
    const Shape& s = ShapeOf(features[i]);
    for (int64_t y = 0; y < s[2]; ++y) {
      for (int64_t x = 0; x < s[3]; ++x, ++index) {
        anchors[index] = static_cast<float>(x) + 0.5f;
        anchors[a + index] = static_cast<float>(y) + 0.5f;
        strides[index] = static_cast<float>(kStrides[i]);
      }
    }
  }
  graph_.AddInitializer(d + ".anchors", Tensor::FromFloats({1, 2, a}, anchors));
  graph_.AddInitializer(d + ".strides", Tensor::FromFloats({1, a}, strides));
  graph_.AddInitializer(d + ".two", Tensor::ScalarFloat(2.0f));

  // dist2bbox (xywh), then scale by the stride.
  const Shape half = {batch, 2, a};
  const std::string lt = Slice(d + ".lt", dist, 1, 0, 2);
  const std::string rb = Slice(d + ".rb", dist, 1, 2, 4);
  const std::string x1y1 = Add1(d + ".x1y1", "Sub", {d + ".anchors", lt}, half);
  const std::string x2y2 = Add1(d + ".x2y2", "Add", {d + ".anchors", rb}, half);
  const std::string sum = Add1(d + ".xy_sum", "Add", {x1y1, x2y2}, half);
  const std::string c_xy = Add1(d + ".c_xy", "Div", {sum, d + ".two"}, half);
  const std::string wh = Add1(d + ".wh", "Sub", {x2y2, x1y1}, half);
  const std::string dbox_cat = Concat(d + ".dbox_cat", {c_xy, wh}, 1);
  const std::string dbox = Add1(d + ".dbox", "Mul", {dbox_cat, d + ".strides"}, ShapeOf(dbox_cat));
  const std::string scores = Add1(d + ".cls_sigmoid", "Sigmoid", {box_cls[1]}, ShapeOf(box_cls[1]));

  Attributes cat_attrs;
  cat_attrs.Set("axis", int64_t{1});
  graph_.SetValue(Value{"output0", DType::kFloat32, {batch, 4 + nc, a}});
  graph_.AddNode(Node{d + ".output", "Concat", {dbox, scores}, {"output0"}, std::move(cat_attrs)});
  graph_.AddOutput("output0");
}

absl::StatusOr<Graph> YoloV8Builder::Build() {
  const std::string model_name = BuiltinModelName(config_);
  graph_.set_name(model_name);
  graph_.AddInput(
      Value{"images", DType::kFloat32, {config_.batch, 3, config_.imgsz, config_.imgsz}});

  // Layer outputs by index (YOLOV8.md's layer table); concats and Detect read earlier ones.
  std::vector<std::string> y;
  auto layer = [](int i) { return absl::StrCat("model.", i); };
  y.push_back(ConvSiLU(layer(0), "images", Channels(64), 3, 2));
  y.push_back(ConvSiLU(layer(1), y[0], Channels(128), 3, 2));
  y.push_back(C2f(layer(2), y[1], Channels(128), Repeats(3), true));
  y.push_back(ConvSiLU(layer(3), y[2], Channels(256), 3, 2));
  y.push_back(C2f(layer(4), y[3], Channels(256), Repeats(6), true));
  y.push_back(ConvSiLU(layer(5), y[4], Channels(512), 3, 2));
  y.push_back(C2f(layer(6), y[5], Channels(512), Repeats(6), true));
  y.push_back(ConvSiLU(layer(7), y[6], Channels(1024), 3, 2));
  y.push_back(C2f(layer(8), y[7], Channels(1024), Repeats(3), true));
  y.push_back(SPPF(layer(9), y[8], Channels(1024)));
  y.push_back(Upsample(layer(10), y[9]));
  y.push_back(Concat(layer(11), {y[10], y[6]}, 1));
  y.push_back(C2f(layer(12), y[11], Channels(512), Repeats(3), false));
  y.push_back(Upsample(layer(13), y[12]));
  y.push_back(Concat(layer(14), {y[13], y[4]}, 1));
  y.push_back(C2f(layer(15), y[14], Channels(256), Repeats(3), false));
  y.push_back(ConvSiLU(layer(16), y[15], Channels(256), 3, 2));
  y.push_back(Concat(layer(17), {y[16], y[12]}, 1));
  y.push_back(C2f(layer(18), y[17], Channels(512), Repeats(3), false));
  y.push_back(ConvSiLU(layer(19), y[18], Channels(512), 3, 2));
  y.push_back(Concat(layer(20), {y[19], y[9]}, 1));
  y.push_back(C2f(layer(21), y[20], Channels(1024), Repeats(3), false));
  Detect({y[15], y[18], y[21]});

  auto& meta = graph_.mutable_metadata();
  meta["description"] = absl::StrCat("yolopipe built-in ", model_name, ", seed ", config_.seed);
  meta["author"] = "yolopipe";
  meta["stride"] = absl::StrCat(kStrides[2]);
  meta["task"] = "detect";
  meta["batch"] = absl::StrCat(config_.batch);
  meta["imgsz"] = absl::StrCat("[", config_.imgsz, ", ", config_.imgsz, "]");
  meta["names"] = NamesLiteral(config_.num_classes);

  // A builder bug (a name clash, a dangling input) must not reach the caller as a valid graph.
  absl::Status valid = graph_.Validate();
  if (!valid.ok()) {
    return absl::InternalError(
        absl::StrCat("built-in ", model_name, " is malformed: ", valid.message()));
  }
  return std::move(graph_);
}

}  // namespace

absl::Status ValidateYoloV8Config(const YoloV8Config& config) {
  if (FindScale(config.scale) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("YOLOv8 scale '",
                                                   absl::CHexEscape(std::string(1, config.scale)),
                                                   "' is unknown; expected n, s, m, l or x"));
  }
  if (config.num_classes < 1 || config.num_classes > kMaxBuiltinClasses) {
    return absl::InvalidArgumentError(absl::StrCat("YOLOv8 num_classes ", config.num_classes,
                                                   " is out of range [1, ", kMaxBuiltinClasses,
                                                   "]"));
  }
  if (config.imgsz < 32 || config.imgsz > kMaxBuiltinImgsz || config.imgsz % 32 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("YOLOv8 imgsz ", config.imgsz, " must be a positive multiple of 32 (the ",
                     "largest stride) and at most ", kMaxBuiltinImgsz));
  }
  if (config.batch < 1 || config.batch > kMaxBuiltinBatch) {
    return absl::InvalidArgumentError(absl::StrCat("YOLOv8 batch ", config.batch,
                                                   " is out of range [1, ", kMaxBuiltinBatch, "]"));
  }
  return absl::OkStatus();
}

std::string BuiltinModelName(const YoloV8Config& config) {
  return absl::StrCat("yolov8", std::string(1, config.scale));
}

absl::StatusOr<YoloV8Config> ParseBuiltinModelName(const std::string& name) {
  const std::string prefix = "yolov8";
  const bool looks_builtin =
      name.size() <= prefix.size() + 1 && name.compare(0, prefix.size(), prefix) == 0;
  if (!looks_builtin) {
    return absl::NotFoundError(
        absl::StrCat("'", name,
                     "' is not a built-in model; built-ins are yolov8n, yolov8s, yolov8m, yolov8l "
                     "and yolov8x"));
  }
  if (name.size() == prefix.size() || FindScale(name.back()) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", name,
                     "' names no YOLOv8 scale; expected yolov8n, yolov8s, yolov8m, yolov8l or "
                     "yolov8x"));
  }
  YoloV8Config config;
  config.scale = name.back();
  return config;
}

bool IsBuiltinModelName(const std::string& name) { return ParseBuiltinModelName(name).ok(); }

absl::StatusOr<Graph> BuildYoloV8(const YoloV8Config& config) {
  YP_RETURN_IF_ERROR(ValidateYoloV8Config(config));
  YoloV8Builder builder(config, *FindScale(config.scale));
  return builder.Build();
}

}  // namespace yolopipe
