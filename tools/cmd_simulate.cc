// yolopipe simulate: placeholder until the implementation lands.
#include <iostream>

#include "tools/cli_common.h"

namespace yolopipe::cli {

int SimulateCommand(const std::vector<std::string>& args) {
  (void)args;
  std::cerr << "error: 'yolopipe simulate' is not available yet\n";
  return kExitError;
}

}  // namespace yolopipe::cli
