// main() for fuzz targets outside the fuzz config (no libFuzzer): runs every file named on the
// command line (directories recursively) through LLVMFuzzerTestOneInput, like libFuzzer does
// when given files, so a crashing input reproduces with a plain gcc build:
//   bazel run //fuzz:fuzz_npy -- /path/to/crash-...
// Arguments starting with '-' (libFuzzer flags) are ignored.
#include <iostream>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "fuzz/replay.h"

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] != '-') paths.push_back(argv[i]);
  }
  if (paths.empty()) {
    std::cerr << "usage: " << argv[0] << " FILE_OR_DIR...\n"
              << "(built without --config=fuzz: replays inputs, does not fuzz)\n";
    return 2;
  }
  int count = 0;
  for (const std::string& file : yolopipe::fuzz::CollectInputs(paths)) {
    std::string bytes;
    if (!yolopipe::fuzz::ReadInput(file, &bytes)) {
      std::cerr << "error: cannot read '" << file << "'\n";
      return 1;
    }
    std::cerr << "replaying " << file << " (" << bytes.size() << " bytes)\n";
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++count;
  }
  std::cerr << "replayed " << count << " inputs without a crash\n";
  return 0;
}
