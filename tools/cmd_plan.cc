// yolopipe plan: placeholder until the implementation lands.
#include <iostream>

#include "tools/cli_common.h"

namespace yolopipe::cli {

int PlanCommand(const std::vector<std::string>& args) {
  (void)args;
  std::cerr << "error: 'yolopipe plan' is not available yet\n";
  return kExitError;
}

}  // namespace yolopipe::cli
