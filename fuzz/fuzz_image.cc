// Fuzz target: the JPEG/PNG/BMP decoders (stb_image behind runtime/detect/image.h).
#include "absl/status/status.h"
#include "base/status_macros.h"
#include "fuzz/fuzz_target.h"
#include "runtime/detect/image.h"

namespace yolopipe::fuzz {

absl::Status FuzzOne(const std::string& bytes) {
  YP_ASSIGN_OR_RETURN(Image image, DecodeImage(bytes, "fuzz-image"));
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    __builtin_trap();  // the decoder's contract: an RGB image of the size it reports
  }
  return absl::OkStatus();
}

}  // namespace yolopipe::fuzz
