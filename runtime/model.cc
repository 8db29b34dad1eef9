#include "runtime/model.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "graph/onnx_import.h"
#include "graph/yolov8/yolov8.h"

namespace yolopipe {

absl::StatusOr<Model> LoadModel(const std::string& model, const BuiltinModelOptions& options) {
  Model out;
  out.source = model;
  if (model.empty()) return absl::InvalidArgumentError("--model is required");
  if (IsBuiltinModelName(model)) {
    YP_ASSIGN_OR_RETURN(YoloV8Config config, ParseBuiltinModelName(model));
    config.num_classes = options.num_classes;
    config.seed = options.seed;
    config.imgsz = options.imgsz;
    YP_ASSIGN_OR_RETURN(out.graph, BuildYoloV8(config));
    out.builtin = true;
  } else if (absl::StartsWith(model, "yolov") && !absl::StrContains(model, "/") &&
             !absl::StrContains(model, ".")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown built-in model '", model, "' (built-in: yolov8n, yolov8s, yolov8m, yolov8l, "
        "yolov8x; anything else is read as an .onnx file path)"));
  } else {
    YP_ASSIGN_OR_RETURN(out.graph, ImportOnnxFile(model));
  }
  YP_ASSIGN_OR_RETURN(out.metadata, ReadModelMetadata(out.graph));
  return out;
}

absl::StatusOr<Shape> InputShapeFor(const Model& model, int64_t batch, int64_t imgsz) {
  if (batch < 1 || batch > 4096) {
    return absl::InvalidArgumentError(absl::StrCat("--batch must be 1..4096, got ", batch));
  }
  Shape declared = model.metadata.declared_input_shape;
  if (declared.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat("model input has rank ", declared.size(),
                                                   ", expected (batch, 3, height, width)"));
  }
  Shape shape = declared;
  shape[0] = batch;
  if (imgsz > 0) {
    if (imgsz % 32 != 0 || imgsz > 8192) {
      return absl::InvalidArgumentError(
          absl::StrCat("--imgsz must be a multiple of 32 up to 8192, got ", imgsz));
    }
    shape[2] = shape[3] = imgsz;
  } else {
    for (int i : {2, 3}) {
      if (shape[i] < 0) shape[i] = 640;
    }
  }
  if (shape[1] < 0) shape[1] = 3;
  return shape;
}

Tensor SyntheticInput(const Shape& shape, uint64_t seed) {
  Tensor t(DType::kFloat32, shape);
  float* p = t.data<float>();
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x243F6A8885A308D3ull;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = static_cast<float>(z >> 40) / static_cast<float>(1 << 24);
  }
  return t;
}

}  // namespace yolopipe
