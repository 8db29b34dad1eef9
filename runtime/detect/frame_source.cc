// Frame folders, and the choice between a folder and a video (no FFmpeg here: see video.cc and
// video_unavailable.cc).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/detect/video.h"

namespace yolopipe {
namespace {

namespace fs = std::filesystem;

bool IsImageExtension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// FrameFolderReader

absl::StatusOr<std::unique_ptr<FrameFolderReader>> FrameFolderReader::Open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": not a directory"));
  }
  std::unique_ptr<FrameFolderReader> reader(new FrameFolderReader());
  reader->dir_ = dir;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec) && IsImageExtension(it->path())) {
      reader->files_.push_back(it->path().string());
    }
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": cannot list directory: ", ec.message()));
  }
  if (reader->files_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": holds no image file (.jpg .jpeg .png .bmp)"));
  }
  std::sort(reader->files_.begin(), reader->files_.end());
  return reader;
}

absl::StatusOr<std::optional<Image>> FrameFolderReader::Next() {
  if (next_ >= files_.size()) return std::optional<Image>();
  auto image = DecodeImageFile(files_[next_]);
  if (!image.ok()) {
    next_ = files_.size();
    return image.status();  // DecodeImageFile's message starts with the file name
  }
  ++next_;
  return std::optional<Image>(std::move(*image));
}

absl::StatusOr<std::unique_ptr<FrameSource>> OpenFrameSource(const std::string& path,
                                                             const CaptureOptions& capture) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    auto folder = FrameFolderReader::Open(path);
    if (!folder.ok()) return folder.status();
    return std::unique_ptr<FrameSource>(std::move(*folder));
  }
  auto video = VideoReader::Open(path, capture);
  if (!video.ok()) return video.status();
  return std::unique_ptr<FrameSource>(std::move(*video));
}

}  // namespace yolopipe
