#include "runtime/detect/image.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/file_io.h"
#include "stb/stb_image.h"
#include "stb/stb_image_write.h"

namespace yolopipe {
namespace {

// stb_image 2.27 (Debian 12's libstb-dev) trusts the code counts of a JPEG DHT (Huffman table)
// segment: a table declaring more than 256 codes makes it write past its 257-entry size list and
// 256-entry value list (found by //fuzz:fuzz_image; upstream 2.28 added the check). The files are
// refused here, before stb parses them.
constexpr size_t kMaxHuffmanCodes = 256;

// stb's get8 reads 0 past the end.
int ByteAt(const std::string& bytes, size_t pos) {
  return pos < bytes.size() ? static_cast<unsigned char>(bytes[pos]) : 0;
}

// The offset just past a JPEG's SOI marker, read as stb reads markers (0xFF, any number of 0xFF
// fill bytes, then 0xD8); 0 when `bytes` does not start like a JPEG.
size_t JpegDataStart(const std::string& bytes) {
  if (ByteAt(bytes, 0) != 0xFF) return 0;
  size_t pos = 1;
  while (pos < bytes.size() && ByteAt(bytes, pos) == 0xFF) ++pos;
  return ByteAt(bytes, pos) == 0xD8 ? pos + 1 : 0;
}

// stb decodes whatever a header declares and reads missing JPEG and BMP data as zeros, so a
// file of a few hundred bytes can demand the work and memory of a 100-megapixel image (found by
// //fuzz:fuzz_image: a 244-byte progressive JPEG took over 10 s). A real file cannot be smaller
// than the least its format spends per pixel:
//   JPEG: one Huffman-coded bit per 8x8 block (baseline spends at least two; stb does no
//         arithmetic coding);
//   BMP:  one bit per pixel (stb reads only uncompressed BMPs);
//   PNG:  the filtered rows (one filter byte per row plus the packed samples of the declared
//         bit depth and colour type), deflated at most 1032:1 (deflate's limit). stb would
//         allocate the whole row buffer before inflating.
// Returns the smallest plausible file size for a w x h image, or 0 when the format is not one
// of these (stb then refuses it anyway).
uint64_t SmallestPlausibleSize(const std::string& bytes, int64_t w, int64_t h, std::string* kind) {
  if (JpegDataStart(bytes) != 0) {
    *kind = "JPEG";
    return ((w + 7) / 8) * ((h + 7) / 8) / 8;
  }
  if (bytes.size() >= 2 && bytes[0] == 'B' && bytes[1] == 'M') {
    *kind = "BMP";
    return w * h / 8;
  }
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) == 0 && bytes.size() >= 26) {
    *kind = "PNG";
    const int64_t depth = ByteAt(bytes, 24);
    const int color_type = ByteAt(bytes, 25);
    const int64_t channels = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
    const int64_t row_bytes = 1 + (w * channels * std::max<int64_t>(depth, 1) + 7) / 8;
    return static_cast<uint64_t>(h * row_bytes / 1032);
  }
  return 0;
}

// stb 2.27 copies a zero-length IDAT chunk that comes before any data with memcpy(NULL, p, 0),
// undefined behaviour that lets the compiler drop its later "no IDAT" null check (found by
// //fuzz:fuzz_image). An empty IDAT carries nothing, so it is removed before stb sees the file.
// Returns `bytes` itself when there is nothing to remove (the common case: no copy).
const std::string& WithoutEmptyPngData(const std::string& bytes, std::string* storage) {
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) != 0) return bytes;
  size_t pos = 8;
  size_t copied = 0;  // bytes[0, copied) is already in *storage
  bool removed = false;
  // stb acts on a chunk once it has read its length and type; the CRC may be missing.
  while (pos + 8 <= bytes.size()) {
    const uint64_t length = static_cast<uint64_t>(ByteAt(bytes, pos)) << 24 |
                            ByteAt(bytes, pos + 1) << 16 | ByteAt(bytes, pos + 2) << 8 |
                            ByteAt(bytes, pos + 3);
    if (length == 0 && bytes.compare(pos + 4, 4, "IDAT") == 0) {
      storage->append(bytes, copied, pos - copied);
      copied = std::min(pos + 12, bytes.size());  // length, type, CRC
      removed = true;
    }
    if (pos + 12 + length > bytes.size()) break;  // stb stops here too ("outofdata")
    pos += 12 + length;
  }
  if (!removed) return bytes;
  if (copied < bytes.size()) storage->append(bytes, copied, std::string::npos);
  return *storage;
}

// stb 2.27 grows its IDAT buffer to a chunk's declared length before reading the chunk, so an
// 80-byte PNG declaring a 1 GiB IDAT chunk made it allocate 2 GiB (found by //fuzz:fuzz_image).
// Refuses an IDAT chunk (before IEND, where stb stops reading) that declares more bytes than the
// file holds after its header: stb would fail on it anyway, only after the allocation.
absl::Status CheckPngChunkLengths(const std::string& bytes, const std::string& name) {
  if (bytes.compare(0, 8, "\x89PNG\r\n\x1a\n", 8) != 0) return absl::OkStatus();
  size_t pos = 8;
  while (pos + 8 <= bytes.size()) {
    const uint64_t length = static_cast<uint64_t>(ByteAt(bytes, pos)) << 24 |
                            ByteAt(bytes, pos + 1) << 16 | ByteAt(bytes, pos + 2) << 8 |
                            ByteAt(bytes, pos + 3);
    const uint64_t available = bytes.size() - pos - 8;
    if (bytes.compare(pos + 4, 4, "IEND") == 0) break;
    if (bytes.compare(pos + 4, 4, "IDAT") == 0 && length > available) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": truncated or corrupt PNG: the IDAT chunk at byte offset ", pos, " declares ",
          length, " bytes, the file has ", available, " after its header"));
    }
    if (length > available) break;  // stb fails here without allocating
    pos += 12 + length;
  }
  return absl::OkStatus();
}

// Huffman tables defined so far, [class: 0 DC, 1 AC][id 0..3].
using DefinedTables = bool[2][4];

// Checks the DHT segment whose marker (FF C4) is at `pos` the way stb reads it: a 16-bit length
// L, then tables of 1 + 16 + n bytes while L > 0, n being the sum of the 16 code counts. Records
// each table it reads in `defined` (when not null).
absl::Status CheckHuffmanSegment(const std::string& bytes, size_t pos, const std::string& name,
                                 DefinedTables* defined) {
  long remaining = (ByteAt(bytes, pos + 2) << 8 | ByteAt(bytes, pos + 3)) - 2;
  size_t table = pos + 4;
  while (remaining > 0 && table < bytes.size()) {
    const int table_class = ByteAt(bytes, table) >> 4, id = ByteAt(bytes, table) & 15;
    size_t codes = 0;
    for (int i = 0; i < 16; ++i) codes += ByteAt(bytes, table + 1 + i);
    if (codes > kMaxHuffmanCodes) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": corrupt JPEG: Huffman table at byte offset ", table, " declares ", codes,
          " codes (at most ", kMaxHuffmanCodes, ")"));
    }
    if (defined != nullptr && table_class <= 1 && id <= 3) (*defined)[table_class][id] = true;
    remaining -= static_cast<long>(17 + codes);
    table += 17 + codes;
  }
  return absl::OkStatus();
}

// stb 2.27 decodes a scan with whatever its Huffman tables hold, and a table no DHT defined holds
// uninitialised memory: symbol ids far out of its 256-entry arrays (found by //fuzz:fuzz_image).
// Checks that every table the scan whose SOS marker is at `pos` reads was defined: baseline
// scans read each component's DC and AC table; progressive DC scans (Ss = 0) read the DC table
// in their first pass (Ah = 0) only; progressive AC scans read the AC table.
absl::Status CheckScanTables(const std::string& bytes, size_t pos, bool progressive,
                             const DefinedTables& defined, const std::string& name) {
  const int components = ByteAt(bytes, pos + 4);
  const size_t spectral = pos + 5 + 2 * static_cast<size_t>(components);
  const int ss = ByteAt(bytes, spectral), ah = ByteAt(bytes, spectral + 2) >> 4;
  const bool uses_dc = !progressive || (ss == 0 && ah == 0);
  const bool uses_ac = !progressive || ss > 0;
  for (int c = 0; c < components; ++c) {
    const int tables = ByteAt(bytes, pos + 6 + 2 * static_cast<size_t>(c));
    const int dc = tables >> 4, ac = tables & 15;
    if (dc > 3 || ac > 3) continue;  // stb refuses these itself
    if ((uses_dc && !defined[0][dc]) || (uses_ac && !defined[1][ac])) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": corrupt JPEG: the scan at byte offset ", pos, " uses Huffman table ",
          uses_dc && !defined[0][dc] ? "DC " : "AC ", uses_dc && !defined[0][dc] ? dc : ac,
          ", which no DHT segment before it defines"));
    }
  }
  return absl::OkStatus();
}

// Walks the markers as stb does: a byte that is not 0xFF where a marker is expected is skipped,
// fill bytes (FF FF) too, segments by their length; after a scan header, the entropy-coded data
// up to the next marker (0xFF followed by anything but 0x00, a restart marker or more 0xFF),
// which is where stb's decoder resumes too (it stops on a corrupt file otherwise). Checks every
// DHT segment (CheckHuffmanSegment) and every scan (CheckScanTables). As a further guard, every
// FF C4 at any offset after the first scan is checked for too many codes: in a valid file 0xFF in
// entropy-coded data is followed by 0x00 or a real marker, so this refuses nothing valid.
absl::Status CheckJpegHuffmanTables(const std::string& bytes, const std::string& name) {
  size_t pos = JpegDataStart(bytes);
  if (pos == 0) return absl::OkStatus();  // not a JPEG
  DefinedTables defined = {};
  bool progressive = false;
  size_t first_scan = std::string::npos;
  while (pos + 1 < bytes.size()) {
    if (ByteAt(bytes, pos) != 0xFF) {
      ++pos;
      continue;
    }
    size_t m = pos + 1;
    while (m < bytes.size() && ByteAt(bytes, m) == 0xFF) ++m;
    if (m >= bytes.size()) break;
    const int marker = ByteAt(bytes, m);
    if (marker == 0xD9) break;  // EOI
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {
      pos = m + 1;  // no length follows
      continue;
    }
    const size_t segment_end =
        m + 1 + static_cast<size_t>(ByteAt(bytes, m + 1) << 8 | ByteAt(bytes, m + 2));
    if (marker == 0xC4) {
      if (absl::Status s = CheckHuffmanSegment(bytes, m - 1, name, &defined); !s.ok()) return s;
    } else if (marker >= 0xC0 && marker <= 0xC2) {
      progressive = marker == 0xC2;
    } else if (marker == 0xDA) {
      if (absl::Status s = CheckScanTables(bytes, m - 1, progressive, defined, name); !s.ok()) {
        return s;
      }
      if (first_scan == std::string::npos) first_scan = m - 1;
      // Entropy-coded data: skip to the next marker.
      pos = segment_end;
      while (pos + 1 < bytes.size()) {
        if (ByteAt(bytes, pos) != 0xFF) {
          ++pos;
          continue;
        }
        size_t next = pos + 1;
        while (next < bytes.size() && ByteAt(bytes, next) == 0xFF) ++next;
        const int after = ByteAt(bytes, next);
        if (next < bytes.size() && (after == 0x00 || (after >= 0xD0 && after <= 0xD7))) {
          pos = next + 1;
          continue;
        }
        break;  // a marker (or the end)
      }
      continue;
    }
    pos = segment_end;
  }
  if (first_scan == std::string::npos) return absl::OkStatus();
  for (size_t i = first_scan; i + 1 < bytes.size(); ++i) {
    if (ByteAt(bytes, i) == 0xFF && ByteAt(bytes, i + 1) == 0xC4) {
      if (absl::Status s = CheckHuffmanSegment(bytes, i, name, nullptr); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Image> DecodeImage(const std::string& file_bytes, const std::string& name) {
  std::string storage;
  const std::string& bytes = WithoutEmptyPngData(file_bytes, &storage);
  if (bytes.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ": empty file"));
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": file of ", bytes.size(), " bytes is too large to decode"));
  }
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  // Before stbi_info: it parses the Huffman tables that precede the frame header.
  if (absl::Status s = CheckJpegHuffmanTables(bytes, name); !s.ok()) return s;
  if (absl::Status s = CheckPngChunkLengths(bytes, name); !s.ok()) return s;
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
  std::string kind;
  const uint64_t smallest = SmallestPlausibleSize(bytes, w, h, &kind);
  if (bytes.size() < smallest) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": truncated or corrupt ", kind, ": a ", w, "x", h, " image needs at least ",
        smallest, " bytes, the file has ", bytes.size()));
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
  // No JPEG, PNG or BMP of an accepted size needs more bytes than its raw pixels plus headers.
  absl::StatusOr<std::string> bytes = ReadFileToString(path, kMaxImagePixels * 4 + (1 << 20));
  if (!bytes.ok()) return bytes.status();
  return DecodeImage(*bytes, path);
}

absl::Status WritePng(const std::string& path, const Image& image) {
  if (image.width <= 0 || image.height <= 0 ||
      image.pixels.size() != static_cast<size_t>(image.width) * image.height * 3) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot write an empty or malformed ",
                                                   image.width, "x", image.height, " image"));
  }
  // Encoded in memory, then written atomically (base/file_io.h): a full disk or an interrupt
  // never leaves a truncated PNG under the real name.
  std::string png;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                                static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &png, image.width, image.height, 3, image.pixels.data(),
                              image.width * 3)) {
    return absl::InternalError(absl::StrCat(path, ": PNG encoding failed"));
  }
  return WriteFileAtomically(path, png);
}

}  // namespace yolopipe
