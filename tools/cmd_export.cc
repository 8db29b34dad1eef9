// yolopipe export: write a model as a standard ONNX file.
#include <iostream>

#include "graph/onnx_export.h"
#include "tools/cli_common.h"

namespace yolopipe::cli {

int ExportCommand(const std::vector<std::string>& args) {
  FlagSet flags("export", "Write a model (built-in or ONNX) as a standard ONNX file (opset 17).");
  AddModelFlags(flags);
  flags.AddString("o", "", "output .onnx path (same as --output)");
  flags.AddString("output", "", "output .onnx path");
  if (int rc = ParseOrExit(flags, args); rc >= 0) return rc;
  std::string path = flags.IsSet("o") ? flags.GetString("o") : flags.GetString("output");
  if (path.empty()) {
    std::cerr << "error: -o FILE.onnx is required\n\n" << flags.Usage();
    return kExitUsage;
  }
  auto model = LoadModelFromFlags(flags);
  if (!model.ok()) return ReportError(model.status());
  if (absl::Status s = ExportOnnxFile(model->graph, path); !s.ok()) return ReportError(s);
  std::cout << "wrote " << path << " (" << model->graph.nodes().size() << " nodes, "
            << WithThousands(model->graph.ParameterCount()) << " parameters)\n";
  return kExitOk;
}

}  // namespace yolopipe::cli
