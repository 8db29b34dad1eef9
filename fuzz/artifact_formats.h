// Shared by the Profile and Plan fuzz targets: parses the same bytes in every artifact format
// (.pbtxt, .pb, .json), since a user may hand any file to any reader.
#ifndef YOLOPIPE_FUZZ_ARTIFACT_FORMATS_H_
#define YOLOPIPE_FUZZ_ARTIFACT_FORMATS_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/stubs/logging.h"
#include "runtime/artifact_io.h"

namespace yolopipe::fuzz {

// For each format in turn: a fresh message of type M parsed from `bytes` (ParseArtifact) and,
// when that succeeds, `check` applied to it. OK when at least one format parsed and passed
// `check`; otherwise the last error.
template <typename M>
absl::Status ParseInEveryFormat(const std::string& bytes,
                                const std::function<absl::Status(const M&)>& check) {
  // protobuf logs every malformed string field to stderr: millions of lines, and slower fuzzing.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  absl::Status result = absl::InvalidArgumentError("no format accepted the input");
  bool accepted = false;
  for (ArtifactFormat format :
       {ArtifactFormat::kText, ArtifactFormat::kBinary, ArtifactFormat::kJson}) {
    M message;
    absl::Status status = ParseArtifact(bytes, format, "fuzz-artifact", &message);
    if (status.ok()) status = check(message);
    if (status.ok()) {
      accepted = true;
    } else if (!accepted) {
      result = status;
    }
  }
  return accepted ? absl::OkStatus() : result;
}

}  // namespace yolopipe::fuzz

#endif  // YOLOPIPE_FUZZ_ARTIFACT_FORMATS_H_
