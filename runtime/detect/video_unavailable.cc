// VideoReader and VideoWriter for builds without FFmpeg (--define=video=off: the GPU bundle,
// which must stay small enough to carry to the GPU machine). Every video, URL or device fails with
// a message that says so; frame folders (frame_source.cc) still work.
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/detect/video.h"

namespace yolopipe {
namespace {

absl::Status Unavailable(const std::string& path) {
  return absl::UnimplementedError(absl::StrCat(
      path, ": this yolopipe was built without video support (--define=video=off); frame "
            "folders still work"));
}

}  // namespace

struct VideoReader::Impl {};
VideoReader::~VideoReader() = default;

std::string VideoReader::DeviceOf(const std::string& /*path*/) { return ""; }

absl::StatusOr<std::unique_ptr<VideoReader>> VideoReader::Open(const std::string& path,
                                                               const CaptureOptions& /*capture*/) {
  return Unavailable(path);
}

absl::StatusOr<std::optional<Image>> VideoReader::Next() { return Unavailable(path_); }

struct VideoWriter::Impl {};
VideoWriter::~VideoWriter() = default;

absl::StatusOr<std::unique_ptr<VideoWriter>> VideoWriter::Open(const std::string& path,
                                                               int /*width*/, int /*height*/,
                                                               double /*fps*/) {
  return Unavailable(path);
}

absl::Status VideoWriter::Write(const Image& /*frame*/) { return Unavailable(path_); }

absl::Status VideoWriter::Close() { return absl::OkStatus(); }

}  // namespace yolopipe
