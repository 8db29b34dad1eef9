// Loading a model by name: an ONNX file path or a built-in YOLOv8 ("yolov8n" ... "yolov8x").
#ifndef YOLOPIPE_RUNTIME_MODEL_H_
#define YOLOPIPE_RUNTIME_MODEL_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "graph/model_metadata.h"

namespace yolopipe {

// Options for built-in models; ignored for ONNX files.
struct BuiltinModelOptions {
  int64_t num_classes = 80;
  uint64_t seed = 0;
  int64_t imgsz = 640;
};

struct Model {
  std::string source;  // the --model argument
  bool builtin = false;
  Graph graph;  // as imported or built (fused, not bound to an input shape)
  ModelMetadata metadata;
};

// `model` is a built-in name or a path to an .onnx file. Errors name the file and what is wrong.
absl::StatusOr<Model> LoadModel(const std::string& model, const BuiltinModelOptions& options = {});

// The input shape to use for a batch of `batch` images of `imgsz` pixels (imgsz <= 0: the model's
// declared size, or 640 when the model's size is symbolic).
absl::StatusOr<Shape> InputShapeFor(const Model& model, int64_t batch, int64_t imgsz);

// Deterministic pseudo-random image batch in [0, 1) (portable generator; same on every machine).
Tensor SyntheticInput(const Shape& shape, uint64_t seed);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_MODEL_H_
