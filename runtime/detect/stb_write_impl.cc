// The one compilation of stb_image_write (PNG output; the tests also write JPEG and BMP inputs).
// Its own target because its JPEG bit writer left-shifts negative values, which is undefined in
// C++ but what every compiler here does as intended: that one UBSan check is off for this file
// only (BUILD), so the sanitizer runs keep checking everything else, stb's decoders included.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb/stb_image_write.h"
