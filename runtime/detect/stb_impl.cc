// The one translation unit that compiles stb_image (stb_image_write: stb_write_impl.cc; header-only
// libraries from libstb-dev). Only the formats yolopipe accepts are compiled in, so anything else is
// rejected by stb as an unknown image type.
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STB_IMAGE_IMPLEMENTATION
#include "stb/stb_image.h"
