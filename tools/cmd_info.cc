// yolopipe info: layers, output shapes, parameters, FLOPs.
#include <iostream>
#include <map>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "graph/prepare.h"
#include "graph/yolov8/stats.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {

int InfoCommand(const std::vector<std::string>& args) {
  FlagSet flags("info", "Describe a model: inputs, outputs, layers, parameters, FLOPs.");
  AddModelFlags(flags);
  flags.AddInt("batch", 1, "batch size the shapes and FLOPs are computed for");
  flags.AddBool("layers", true, "print the per-layer table");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;

  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());
  auto shape = InputShapeFor(*model, flags.GetInt("batch"), flags.GetInt("imgsz"));
  if (!shape.ok()) return ReportError(shape.status());
  auto prepared = PrepareForExecution(model->graph, *shape);
  if (!prepared.ok()) return ReportError(prepared.status());
  auto macs = ConvMacs(*prepared);
  if (!macs.ok()) return ReportError(macs.status());

  const ModelMetadata& meta = model->metadata;
  std::cout << "model:      " << model->source << (model->builtin ? " (built-in)" : "") << "\n";
  for (const std::string& in : model->graph.inputs()) {
    const Value* v = model->graph.FindValue(in);
    std::cout << "input:      " << in << " " << DTypeName(v->dtype) << ShapeToString(v->shape)
              << " declared, bound to " << ShapeToString(*shape) << "\n";
  }
  for (const std::string& out : prepared->outputs()) {
    const Value* v = prepared->FindValue(out);
    std::cout << "output:     " << out << " " << DTypeName(v->dtype) << ShapeToString(v->shape)
              << "\n";
  }
  std::cout << "classes:    " << meta.class_names.size();
  if (!meta.class_names.empty()) {
    std::vector<std::string> first(meta.class_names.begin(),
                                   meta.class_names.begin() +
                                       std::min<size_t>(5, meta.class_names.size()));
    std::cout << " (" << absl::StrJoin(first, ", ")
              << (meta.class_names.size() > 5 ? ", ..." : "") << ")";
  }
  std::cout << "\n";
  if (!meta.strides.empty()) std::cout << "strides:    " << absl::StrJoin(meta.strides, ", ") << "\n";
  std::map<std::string, int> op_counts;
  for (const Node& n : prepared->nodes()) ++op_counts[n.op_type];
  std::vector<std::string> ops;
  for (const auto& [op, count] : op_counts) ops.push_back(absl::StrCat(op, " ", count));
  std::cout << "nodes:      " << model->graph.nodes().size() << " loaded, "
            << prepared->nodes().size() << " after folding and fusion (" << absl::StrJoin(ops, ", ")
            << ")\n";
  std::cout << "parameters: " << WithThousands(prepared->ParameterCount()) << "\n";
  std::cout << absl::StrFormat("FLOPs:      %.2f GFLOPs at %s (2 x conv MACs)\n",
                               2.0 * static_cast<double>(*macs) / 1e9, ShapeToString(*shape));

  if (flags.GetBool("layers")) {
    std::cout << absl::StrFormat("\n%-4s %-28s %-14s %-22s %12s %10s\n", "#", "layer", "op",
                                 "output", "params", "MFLOPs");
    int index = 0;
    for (const Node& node : prepared->nodes()) {
      const Value* out = prepared->FindValue(node.outputs.empty() ? "" : node.outputs[0]);
      int64_t params = 0;
      double mflops = 0.0;
      if (node.op_type == "Conv") {
        for (size_t i = 1; i < node.inputs.size() && i < 3; ++i) {
          if (const Tensor* t = prepared->FindInitializer(node.inputs[i])) {
            params += t->num_elements();
          }
        }
        if (const Tensor* w = prepared->FindInitializer(node.inputs[1]); w && out) {
          double per_output = static_cast<double>(NumElements(w->shape())) / w->shape()[0];
          mflops = 2.0 * static_cast<double>(NumElements(out->shape)) * per_output / 1e6;
        }
      }
      std::string op = node.op_type;
      if (node.op_type == "Conv") {
        auto act = node.attrs.GetString("activation", "");
        if (act.ok() && !act->empty() && *act != "none") op += "+" + *act;
        if (node.inputs.size() > 3 && !node.inputs[3].empty()) op += "+add";
      }
      std::cout << absl::StrFormat("%-4d %-28s %-14s %-22s %12s %10.1f\n", index++, node.name, op,
                                   out ? ShapeToString(out->shape) : "?",
                                   params ? WithThousands(params) : "", mflops);
    }
  }
  return kExitOk;
}

}  // namespace yolopipe::cli
