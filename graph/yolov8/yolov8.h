// The built-in YOLOv8 detect model: builds the Graph a default (static) Ultralytics ONNX export of
// a BN-fused yolov8{n,s,m,l,x} has, with deterministic seeded weights (see shared/YOLOV8.md).
//
// Graph layout (every Value has a concrete dtype and shape):
//   input  `images`  float32 (batch, 3, imgsz, imgsz)
//   output `output0` float32 (batch, 4 + num_classes, A), A = (imgsz/8)^2 + (imgsz/16)^2 +
//          (imgsz/32)^2; rows cx, cy, w, h (input pixels) then the class scores.
//   Conv module  model.I...    Conv (weights `<name>.weight`, bias `<name>.bias`) -> Sigmoid
//                              `<name>.sigmoid` -> Mul `<name>.silu` (SiLU)
//   C2f          `model.I.cv1`, Split `model.I.split` (outputs `.0`, `.1`), Bottlenecks
//                `model.I.m.J.cv1/.cv2` (+ Add `model.I.m.J.add` with a shortcut), Concat
//                `model.I.cat`, `model.I.cv2`
//   SPPF         `model.9.cv1`, MaxPool `model.9.m.0/1/2` (k5 s1 p2), Concat `model.9.cat`,
//                `model.9.cv2`
//   Upsample     Resize `model.10` / `model.13` (nearest, asymmetric, floor, scales 1,1,2,2)
//   Concat       `model.11`, `model.14`, `model.17`, `model.20`
//   Detect       `model.22.cv2.L.{0,1,2}` (box), `model.22.cv3.L.{0,1,2}` (class; `.2` are plain
//                convs), Concat `model.22.cat.L`, Reshape `model.22.view.L`, Concat `model.22.cat`,
//                Split `model.22.split`, DFL (`model.22.dfl.view`, `.transpose`, `.softmax`, Conv
//                `model.22.dfl`, `.view_out`), dist2bbox (`model.22.lt`, `.rb`, `.x1y1`, `.x2y2`,
//                `.xy_sum`, `.c_xy`, `.wh`, `.dbox_cat`, `.dbox`), `model.22.cls_sigmoid`,
//                Concat `model.22.output` -> `output0`.
// A node's single output Value has the node's name; nodes come in topological order, layer by
// layer. Constants (split sizes, reshape shapes, Resize scales, Slice bounds, anchors (1, 2, A),
// strides (1, A)) are int64/float32 initializers named after their node.
//
// Weights: one splitmix64 stream seeded with `seed`, consumed conv by conv in node order (weight
// then bias), turned into uniform floats with integer arithmetic only, so every platform builds
// bitwise the same model. The variance rule keeps activations O(1) (see kWeightGain in yolov8.cc);
// tools/torch_reference.py uses the same rule with torch's generator.
#ifndef YOLOPIPE_GRAPH_YOLOV8_YOLOV8_H_
#define YOLOPIPE_GRAPH_YOLOV8_YOLOV8_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "graph/ir.h"

namespace yolopipe {

struct YoloV8Config {
  char scale = 'n';          // n, s, m, l, x
  int64_t num_classes = 80;  // 1 .. kMaxBuiltinClasses
  uint64_t seed = 0;         // deterministic weights
  int64_t imgsz = 640;       // input H = W: a multiple of 32, at most kMaxBuiltinImgsz
  int64_t batch = 1;         // declared batch of the input, 1 .. kMaxBuiltinBatch
};

// Limits that keep a built-in model's constants and shape arithmetic within sane memory and int64
// range (the defaults are far below them).
inline constexpr int64_t kMaxBuiltinClasses = 100000;
inline constexpr int64_t kMaxBuiltinImgsz = 8192;
inline constexpr int64_t kMaxBuiltinBatch = 65536;

// "yolov8n" .. "yolov8x" -> the default config of that scale. "yolov8" followed by an unknown
// scale letter (e.g. "yolov8q") or nothing gives InvalidArgument; any other name (a file path,
// "yolov8n.onnx") gives NotFound, so callers can fall back to treating it as a file.
absl::StatusOr<YoloV8Config> ParseBuiltinModelName(const std::string& name);
bool IsBuiltinModelName(const std::string& name);
// "yolov8n" for scale 'n'.
std::string BuiltinModelName(const YoloV8Config& config);

// OK, or InvalidArgument naming the bad field and its value.
absl::Status ValidateYoloV8Config(const YoloV8Config& config);

// Builds the graph (see the file comment). Fails only for an invalid config. Building yolov8x
// generates 68M weights (~270 MB) and takes well under a second.
absl::StatusOr<Graph> BuildYoloV8(const YoloV8Config& config);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_YOLOV8_YOLOV8_H_
