#include "runtime/artifact_io.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/file_io.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace yolopipe {
namespace {

// Collects text-format parse errors with their position.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (first_.empty()) first_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                                              message);
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace

absl::StatusOr<ArtifactFormat> ArtifactFormatForPath(const std::string& path) {
  if (absl::EndsWith(path, ".pbtxt") || absl::EndsWith(path, ".txtpb") ||
      absl::EndsWith(path, ".textproto")) {
    return ArtifactFormat::kText;
  }
  if (absl::EndsWith(path, ".pb") || absl::EndsWith(path, ".bin")) return ArtifactFormat::kBinary;
  if (absl::EndsWith(path, ".json")) return ArtifactFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "'", path, "': unknown artifact extension (use .pbtxt, .pb or .json)"));
}

absl::Status ParseArtifact(const std::string& bytes, ArtifactFormat format,
                           const std::string& source, google::protobuf::Message* message) {
  const std::string type = message->GetDescriptor()->name();
  switch (format) {
    case ArtifactFormat::kText: {
      google::protobuf::TextFormat::Parser parser;
      ErrorCollector errors;
      parser.RecordErrorsTo(&errors);
      if (!parser.ParseFromString(bytes, message)) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": not a valid ", type, " in text format: ", errors.first()));
      }
      return absl::OkStatus();
    }
    case ArtifactFormat::kBinary:
      if (!message->ParseFromString(bytes)) {
        return absl::InvalidArgumentError(absl::StrCat(
            source, ": not a valid binary ", type, " (", bytes.size(), " bytes; truncated or "
            "another kind of file?)"));
      }
      return absl::OkStatus();
    case ArtifactFormat::kJson: {
      google::protobuf::util::JsonParseOptions options;
      options.ignore_unknown_fields = false;
      auto status = google::protobuf::util::JsonStringToMessage(bytes, message, options);
      if (!status.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": not a valid ", type,
                                                       " in JSON: ", status.message().as_string()));
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown artifact format");
}

absl::StatusOr<std::string> SerializeArtifact(const google::protobuf::Message& message,
                                              ArtifactFormat format) {
  std::string out;
  switch (format) {
    case ArtifactFormat::kText:
      if (!google::protobuf::TextFormat::PrintToString(message, &out)) {
        return absl::InternalError("text serialisation failed");
      }
      return out;
    case ArtifactFormat::kBinary:
      if (!message.SerializeToString(&out)) return absl::InternalError("serialisation failed");
      return out;
    case ArtifactFormat::kJson: {
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      options.add_whitespace = true;
      options.always_print_primitive_fields = true;
      auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
      if (!status.ok()) {
        return absl::InternalError(
            absl::StrCat("JSON serialisation failed: ", status.message().as_string()));
      }
      return out;
    }
  }
  return absl::InternalError("unknown artifact format");
}

absl::Status ReadArtifact(const std::string& path, google::protobuf::Message* message) {
  auto format = ArtifactFormatForPath(path);
  if (!format.ok()) return format.status();
  absl::StatusOr<std::string> bytes = ReadFileToString(path, kMaxArtifactBytes);
  if (!bytes.ok()) return bytes.status();
  return ParseArtifact(*bytes, *format, path, message);
}

absl::Status WriteArtifact(const std::string& path, const google::protobuf::Message& message) {
  auto format = ArtifactFormatForPath(path);
  if (!format.ok()) return format.status();
  auto bytes = SerializeArtifact(message, *format);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

}  // namespace yolopipe
