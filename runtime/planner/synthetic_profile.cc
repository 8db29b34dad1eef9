#include "runtime/planner/synthetic_profile.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "graph/prepare.h"
#include "graph/yolov8/stats.h"
#include "graph/yolov8/yolov8.h"

namespace yolopipe {
namespace {

absl::StatusOr<uint64_t> ValueBytes(const Graph& graph, const std::string& name) {
  const Value* v = graph.FindValue(name);
  if (v == nullptr || !IsFullyKnown(v->shape)) {
    return absl::FailedPreconditionError(
        absl::StrCat("synthetic profile: value '", name, "' has no concrete shape"));
  }
  return static_cast<uint64_t>(NumElements(v->shape)) * DTypeSize(v->dtype);
}

}  // namespace

absl::StatusOr<proto::Profile> SyntheticProfileFromGraph(const Graph& graph,
                                                         const SyntheticProfileOptions& options) {
  if (options.microbatch_sizes.empty()) {
    return absl::InvalidArgumentError("synthetic profile: no micro-batch sizes");
  }
  proto::Profile profile;
  profile.set_model(options.model);
  profile.set_model_fingerprint(options.fingerprint.empty()
                                    ? absl::StrCat("synthetic:", options.model)
                                    : options.fingerprint);
  profile.mutable_device()->set_kind(options.device_kind);
  profile.mutable_device()->set_name(options.device_kind + ":0");
  profile.mutable_device()->set_description("synthetic roofline device");
  for (int m : options.microbatch_sizes) profile.add_microbatch_sizes(m);
  profile.set_repeats(1);
  profile.set_created_by("synthetic_profile (test helper)");
  if (graph.inputs().size() != 1) {
    return absl::InvalidArgumentError("synthetic profile: the graph must have one input");
  }
  profile.set_input_tensor(graph.inputs()[0]);
  const Value* input = graph.FindValue(graph.inputs()[0]);
  if (input != nullptr) {
    for (int64_t d : input->shape) profile.add_input_shape(d);
    if (profile.input_shape_size() > 0) profile.set_input_shape(0, options.microbatch_sizes[0]);
  }
  for (const std::string& out : graph.outputs()) profile.add_output_tensors(out);

  const std::set<std::string> outputs(graph.outputs().begin(), graph.outputs().end());
  std::map<std::string, proto::TensorProfile*> tensors;
  auto tensor = [&](const std::string& name) -> absl::StatusOr<proto::TensorProfile*> {
    auto it = tensors.find(name);
    if (it != tensors.end()) return it->second;
    YP_ASSIGN_OR_RETURN(uint64_t bytes, ValueBytes(graph, name));
    proto::TensorProfile* t = profile.add_tensors();
    t->set_name(name);
    t->set_bytes_per_image(bytes);
    t->set_graph_output(outputs.count(name) > 0);
    tensors[name] = t;
    return t;
  };
  for (const std::string& in : graph.inputs()) {
    YP_RETURN_IF_ERROR(tensor(in).status());
  }

  double total_ms = 0;
  for (size_t i = 0; i < graph.nodes().size(); ++i) {
    const Node& node = graph.nodes()[i];
    proto::NodeProfile* np = profile.add_nodes();
    np->set_name(node.name);
    np->set_op(node.op_type);
    np->set_index(static_cast<int>(i));
    uint64_t in_bytes = 0, out_bytes = 0, weight_bytes = 0;
    std::set<std::string> seen;
    for (const std::string& in : node.inputs) {
      if (in.empty() || !seen.insert(in).second) continue;
      if (graph.IsInitializer(in)) {
        YP_ASSIGN_OR_RETURN(uint64_t bytes, ValueBytes(graph, in));
        weight_bytes += bytes;
        continue;
      }
      YP_ASSIGN_OR_RETURN(proto::TensorProfile * t, tensor(in));
      t->add_consumers(node.name);
      np->add_inputs(in);
      in_bytes += t->bytes_per_image();
    }
    for (const std::string& out : node.outputs) {
      if (out.empty()) continue;
      YP_ASSIGN_OR_RETURN(proto::TensorProfile * t, tensor(out));
      t->set_producer(node.name);
      np->add_outputs(out);
      out_bytes += t->bytes_per_image();
    }
    double flops = 0;
    if (node.op_type == "Conv") {
      YP_ASSIGN_OR_RETURN(int64_t macs, ConvNodeMacs(graph, node));
      flops = 2.0 * static_cast<double>(macs);
    }
    np->set_weight_bytes(weight_bytes);
    np->set_flops(flops);
    for (int m : options.microbatch_sizes) {
      const double per_image_ms =
          flops > 0 ? flops / (options.conv_gflops * 1e6)
                    : static_cast<double>(in_bytes + out_bytes) / (options.memory_gbps * 1e6);
      const double ms = options.node_overhead_ms + m * per_image_ms;
      proto::NodeTiming* timing = np->add_timings();
      timing->set_microbatch(m);
      timing->set_min_ms(ms);
      timing->set_median_ms(ms);
      timing->set_output_bytes(out_bytes * static_cast<uint64_t>(m));
      timing->set_workspace_bytes(
          flops > 0 ? static_cast<uint64_t>(options.workspace_fraction * out_bytes * m) : 0);
    }
    const proto::NodeTiming& first = np->timings(0);
    np->set_time_ms(first.median_ms());
    np->set_output_bytes(first.output_bytes());
    np->set_workspace_bytes(first.workspace_bytes());
    np->set_flops(flops * options.microbatch_sizes[0]);
    total_ms += first.median_ms();
  }
  profile.set_total_ms(total_ms);
  return profile;
}

absl::StatusOr<proto::Profile> SyntheticYoloV8Profile(char scale, int64_t imgsz,
                                                      SyntheticProfileOptions options) {
  YoloV8Config config;
  config.scale = scale;
  config.imgsz = imgsz;
  YP_ASSIGN_OR_RETURN(Graph graph, BuildYoloV8(config));
  YP_ASSIGN_OR_RETURN(Graph prepared, PrepareForExecution(graph, Shape{1, 3, imgsz, imgsz}));
  options.model = BuiltinModelName(config);
  return SyntheticProfileFromGraph(prepared, options);
}

}  // namespace yolopipe
