// Reading and writing protobuf artifacts (Profile, Plan) as text format (.pbtxt), binary (.pb)
// or JSON (.json, protobuf's JSON mapping with proto field names preserved), chosen by the file
// extension. Writes are atomic (temporary file, then rename).
#ifndef YOLOPIPE_RUNTIME_ARTIFACT_IO_H_
#define YOLOPIPE_RUNTIME_ARTIFACT_IO_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace yolopipe {

enum class ArtifactFormat { kText, kBinary, kJson };

// By extension: .pbtxt/.txtpb/.textproto -> text, .pb/.bin -> binary, .json -> JSON.
absl::StatusOr<ArtifactFormat> ArtifactFormatForPath(const std::string& path);

// Largest artifact file read (bytes).
inline constexpr size_t kMaxArtifactBytes = size_t{256} << 20;

absl::Status ParseArtifact(const std::string& bytes, ArtifactFormat format,
                           const std::string& source, google::protobuf::Message* message);
absl::StatusOr<std::string> SerializeArtifact(const google::protobuf::Message& message,
                                              ArtifactFormat format);

// Errors name the file and say what is wrong (unknown extension, unreadable, malformed with the
// parser's line/column, wrong message type for a binary file that does not parse).
absl::Status ReadArtifact(const std::string& path, google::protobuf::Message* message);
absl::Status WriteArtifact(const std::string& path, const google::protobuf::Message& message);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_ARTIFACT_IO_H_
