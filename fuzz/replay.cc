#include "fuzz/replay.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <system_error>

namespace yolopipe::fuzz {

std::vector<std::string> CollectInputs(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end;
           it.increment(ec)) {
        if (it->path().filename().string().rfind('.', 0) == 0) continue;
        if (it->is_regular_file(ec)) files.push_back(it->path().string());
      }
    } else if (fs::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      std::cerr << "replay: skipping '" << path << "' (not a file or directory)\n";
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool ReadInput(const std::string& path, std::string* bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace yolopipe::fuzz
