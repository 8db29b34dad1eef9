// Model metadata: what an Ultralytics export records in ONNX metadata_props (class names, strides,
// task, image size, batch), read from a Graph's metadata map, plus the declared input shape.
#ifndef YOLOPIPE_GRAPH_MODEL_METADATA_H_
#define YOLOPIPE_GRAPH_MODEL_METADATA_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "graph/ir.h"

namespace yolopipe {

// Graph metadata keys the importer adds next to the file's metadata_props. Keys starting with
// "yolopipe." describe the import, not the model, and are not exported.
inline constexpr char kMetadataInternalPrefix[] = "yolopipe.";
// The input shape as declared in the file, comma separated, -1 for a symbolic dimension.
inline constexpr char kMetadataDeclaredInputShape[] = "yolopipe.input_shape_declared";
// The default-domain opset of the imported file.
inline constexpr char kMetadataOnnxOpset[] = "yolopipe.onnx_opset";

struct ModelMetadata {
  // From "names"; index = class id. Empty when absent or malformed.
  std::vector<std::string> class_names;
  // From "stride": "32" -> {32}; "[8, 16, 32]" -> {8, 16, 32}. Empty when absent or malformed.
  std::vector<int64_t> strides;
  // From "task" ("detect"); empty when absent.
  std::string task;
  // The input shape as the model file declares it (kUnknownDim for symbolic dimensions): the
  // importer's "yolopipe.input_shape_declared" entry when present, else the graph input's shape.
  Shape declared_input_shape;
  bool dynamic_batch = false;  // declared dimension 0 is symbolic
  bool dynamic_hw = false;     // declared dimension 2 or 3 is symbolic
  // From "imgsz": "[640, 640]" -> {640, 640}, "640" -> {640}. Empty when absent or malformed.
  std::vector<int64_t> imgsz;
  // From "batch"; 0 when absent or malformed.
  int64_t batch = 0;
};

// Reads metadata. Malformed entries are ignored (their fields stay empty); only a graph without
// exactly one input is an error.
absl::StatusOr<ModelMetadata> ReadModelMetadata(const Graph& graph);

// Parses class names from a Python literal: a dict with integer keys (Ultralytics writes
// `{0: 'person', 1: 'bicycle'}`; quoted digit keys as in JSON are accepted too) or a list of
// strings. Strings may use ' or " with Python escapes (\\ \' \" \n \t \r \xhh \uhhhh
// \Uhhhhhhhh, octal). Keys must be exactly 0..n-1 in any order. nullopt when malformed.
std::optional<std::vector<std::string>> ParseClassNames(const std::string& literal);

// Parses "32", "[8, 16, 32]" or "(8, 16, 32)" (integral floats such as "32.0" allowed).
// nullopt when malformed.
std::optional<std::vector<int64_t>> ParseIntList(const std::string& literal);

}  // namespace yolopipe

#endif  // YOLOPIPE_GRAPH_MODEL_METADATA_H_
