#include "runtime/detect/image.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "stb/stb_image.h"
#include "stb/stb_image_write.h"

namespace yolopipe {

absl::StatusOr<Image> DecodeImage(const std::string& bytes, const std::string& name) {
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": empty file"));
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": file of ", bytes.size(), " bytes is too large to decode"));
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  int w = 0, h = 0, comp = 0;
  // stbi_info reads only the header, so oversized images are refused before any allocation.
  if (!stbi_info_from_memory(data, len, &w, &h, &comp)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a decodable JPEG, PNG or BMP image (", stbi_failure_reason(),
                     ")"));
  }
  if (w <= 0 || h <= 0 || w > kMaxImageSide || h > kMaxImageSide ||
      static_cast<int64_t>(w) * h > kMaxImagePixels) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": image of ", w, "x", h, " pixels is too large (at most ", kMaxImageSide,
        " pixels a side and ", kMaxImagePixels, " pixels in all)"));
  }
  int dw = 0, dh = 0, dc = 0;
  stbi_uc* pixels = stbi_load_from_memory(data, len, &dw, &dh, &dc, 3);
  if (pixels == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": cannot decode ", w, "x", h, " image (", stbi_failure_reason(), ")"));
  }
  Image image;
  image.width = dw;
  image.height = dh;
  image.pixels.assign(pixels, pixels + static_cast<size_t>(dw) * dh * 3);
  stbi_image_free(pixels);
  return image;
}

absl::StatusOr<Image> DecodeImageFile(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read: ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  return DecodeImage(bytes, path);
}

absl::Status WritePng(const std::string& path, const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot write an empty or malformed ",
                                                   image.width, "x", image.height, " image"));
  }
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  if (!stbi_write_png(tmp.c_str(), image.width, image.height, 3, image.pixels.data(),
                      image.width * 3)) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat(path, ": cannot write PNG (temporary file ", tmp, ")"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::InternalError(
        absl::StrCat(path, ": cannot rename ", tmp, " into place: ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace yolopipe
