// Fuzz target: the ONNX importer (graph/onnx_import.h) and the preparation every imported model
// goes through before it runs: model metadata (ReadModelMetadata) and PrepareForExecution (input
// shape binding, constant folding, fusion, validation) at a small input shape. No kernel runs on
// the input: that would be far too slow per fuzz input (and is not parsing).
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/dtype.h"
#include "base/status_macros.h"
#include "fuzz/fuzz_target.h"
#include "google/protobuf/stubs/logging.h"
#include "graph/ir.h"
#include "graph/model_metadata.h"
#include "graph/onnx_import.h"
#include "graph/prepare.h"

namespace yolopipe::fuzz {
namespace {

// Symbolic height/width are bound to this; fixed ones are used as declared up to kMaxSide
// (larger ones would make constant folding of input-shaped subgraphs slow, not more thorough).
constexpr int64_t kSymbolicSide = 32;
constexpr int64_t kMaxSide = 128;
constexpr int64_t kMaxChannels = 64;

}  // namespace

absl::Status FuzzOne(const std::string& bytes) {
  // protobuf logs malformed string fields to stderr: noise and slower fuzzing.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  YP_ASSIGN_OR_RETURN(Graph graph, ImportOnnxBytes(bytes, "fuzz.onnx"));
  YP_ASSIGN_OR_RETURN(ModelMetadata metadata, ReadModelMetadata(graph));
  Shape shape = metadata.declared_input_shape;
  if (shape.size() != 4) {
    return absl::InvalidArgumentError(absl::StrCat("input rank ", shape.size()));
  }
  shape[0] = 1;
  if (shape[1] == kUnknownDim) shape[1] = 3;
  for (int axis : {2, 3}) {
    if (shape[axis] == kUnknownDim) shape[axis] = kSymbolicSide;
  }
  if (shape[1] > kMaxChannels || shape[2] > kMaxSide || shape[3] > kMaxSide) {
    return absl::OkStatus();  // imported; too large to prepare per fuzz input
  }
  YP_RETURN_IF_ERROR(PrepareForExecution(graph, shape).status());
  return absl::OkStatus();
}

}  // namespace yolopipe::fuzz
