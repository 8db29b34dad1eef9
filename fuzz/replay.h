// Collecting fuzz inputs from files and directories (the replay main and the regression tests).
#ifndef YOLOPIPE_FUZZ_REPLAY_H_
#define YOLOPIPE_FUZZ_REPLAY_H_

#include <string>
#include <vector>

namespace yolopipe::fuzz {

// The regular files named by `paths`: a file as is, a directory recursively, sorted by path.
// Names starting with '.' (e.g. .gitkeep placeholders of empty folders) are skipped. A path
// that does not exist is skipped with a message on stderr.
std::vector<std::string> CollectInputs(const std::vector<std::string>& paths);

// The whole file; false when it cannot be read.
bool ReadInput(const std::string& path, std::string* bytes);

}  // namespace yolopipe::fuzz

#endif  // YOLOPIPE_FUZZ_REPLAY_H_
