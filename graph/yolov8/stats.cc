#include "graph/yolov8/stats.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/dtype.h"
#include "base/status_macros.h"

namespace yolopipe {
namespace {

absl::StatusOr<const Shape*> KnownShape(const Graph& graph, const Node& node,
                                        const std::string& value, const char* role) {
  const Value* v = graph.FindValue(value);
  if (v == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("Conv '", node.name, "': ", role, " '", value, "' has no recorded shape"));
  }
  if (v->shape.empty() || !IsFullyKnown(v->shape)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Conv '", node.name, "': ", role, " '", value, "' has shape ", ShapeToString(v->shape),
        "; MACs need concrete shapes (bind the input shape)"));
  }
  return &v->shape;
}

absl::StatusOr<int64_t> CheckedMul(int64_t a, int64_t b, const Node& node) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) {
    return absl::OutOfRangeError(absl::StrCat("Conv '", node.name, "': MAC count overflows int64"));
  }
  return r;
}

}  // namespace

absl::StatusOr<int64_t> ConvNodeMacs(const Graph& graph, const Node& node) {
  if (node.op_type != "Conv") {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", node.name, "' is a ", node.op_type, ", not a Conv"));
  }
  if (node.inputs.size() < 2 || node.outputs.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Conv '", node.name, "' needs an input, a weight and an output"));
  }
  YP_ASSIGN_OR_RETURN(const Shape* out, KnownShape(graph, node, node.outputs[0], "output"));
  YP_ASSIGN_OR_RETURN(const Shape* w, KnownShape(graph, node, node.inputs[1], "weight"));
  if (w->size() < 3 || out->size() != w->size() || (*out)[1] != (*w)[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Conv '", node.name, "': output shape ", ShapeToString(*out),
        " does not match weight shape ", ShapeToString(*w), " (Cout, Cin/group, kernel...)"));
  }
  // N * Cout * spatial outputs, times the weights each output reads (Cin/group * kernel).
  int64_t macs = 1;
  for (int64_t d : *out) {
    YP_ASSIGN_OR_RETURN(macs, CheckedMul(macs, d, node));
  }
  for (size_t i = 1; i < w->size(); ++i) {
    YP_ASSIGN_OR_RETURN(macs, CheckedMul(macs, (*w)[i], node));
  }
  return macs;
}

absl::StatusOr<int64_t> ConvMacs(const Graph& graph) {
  int64_t total = 0;
  for (const Node& node : graph.nodes()) {
    if (node.op_type != "Conv") continue;
    YP_ASSIGN_OR_RETURN(const int64_t macs, ConvNodeMacs(graph, node));
    if (__builtin_add_overflow(total, macs, &total)) {
      return absl::OutOfRangeError("total Conv MAC count overflows int64");
    }
  }
  return total;
}

absl::StatusOr<int64_t> ConvFlops(const Graph& graph) {
  YP_ASSIGN_OR_RETURN(const int64_t macs, ConvMacs(graph));
  if (macs > std::numeric_limits<int64_t>::max() / 2)
    return absl::OutOfRangeError("Conv FLOP count overflows int64");
  return 2 * macs;
}

}  // namespace yolopipe
