#include "runtime/npy.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file_io.h"
#include "base/status_macros.h"

namespace yolopipe {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kMaxHeaderLen = 1 << 20;
constexpr int kMaxRank = 8;

absl::Status NpyError(const std::string& source, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": invalid .npy file: ", what));
}

// Finds the value text of 'key' in a header dict like
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 640, 640), }
absl::StatusOr<std::string> DictValue(const std::string& header, const std::string& key,
                                      const std::string& source) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t pos = std::string::npos;
  for (const std::string& q : quoted) {
    pos = header.find(q);
    if (pos != std::string::npos) {
      pos += q.size();
      break;
    }
  }
  if (pos == std::string::npos) return NpyError(source, absl::StrCat("header has no '", key, "'"));
  size_t colon = header.find(':', pos);
  if (colon == std::string::npos) return NpyError(source, absl::StrCat("no ':' after '", key, "'"));
  size_t start = colon + 1;
  while (start < header.size() && header[start] == ' ') ++start;
  if (start >= header.size()) return NpyError(source, absl::StrCat("no value for '", key, "'"));
  size_t end;
  if (header[start] == '(') {
    end = header.find(')', start);
    if (end == std::string::npos) return NpyError(source, "unterminated shape tuple");
    ++end;
  } else if (header[start] == '\'' || header[start] == '"') {
    end = header.find(header[start], start + 1);
    if (end == std::string::npos) return NpyError(source, "unterminated string in header");
    ++end;
  } else {
    end = header.find_first_of(",}", start);
    if (end == std::string::npos) return NpyError(source, "malformed header dict");
  }
  return std::string(absl::StripAsciiWhitespace(header.substr(start, end - start)));
}

absl::StatusOr<DType> ParseDescr(std::string descr, const std::string& source) {
  if (descr.size() < 2) return NpyError(source, "malformed descr");
  descr = descr.substr(1, descr.size() - 2);  // strip quotes
  if (descr == "<f4") return DType::kFloat32;
  if (descr == "<f8") return DType::kFloat64;
  if (descr == "<i8") return DType::kInt64;
  if (descr == "<i4") return DType::kInt32;
  if (descr == "|u1" || descr == "<u1") return DType::kUInt8;
  if (descr == "|b1") return DType::kBool;
  return NpyError(source, absl::StrCat("unsupported dtype '", descr,
                                       "' (expected little-endian float32 '<f4', float64, int64, "
                                       "int32, uint8 or bool)"));
}

absl::StatusOr<Shape> ParseShapeTuple(const std::string& text, const std::string& source) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') {
    return NpyError(source, absl::StrCat("malformed shape '", text, "'"));
  }
  Shape shape;
  for (absl::string_view part : absl::StrSplit(text.substr(1, text.size() - 2), ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int64_t d;
    if (!absl::SimpleAtoi(part, &d) || d < 0) {
      return NpyError(source, absl::StrCat("bad dimension '", part, "' in shape ", text));
    }
    shape.push_back(d);
  }
  if (static_cast<int>(shape.size()) > kMaxRank) {
    return NpyError(source, absl::StrCat("rank ", shape.size(), " exceeds ", kMaxRank));
  }
  return shape;
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(const std::string& bytes, const std::string& source) {
  if (bytes.size() < kMagicLen + 4 || std::memcmp(bytes.data(), kMagic, kMagicLen) != 0) {
    return NpyError(source, "missing \\x93NUMPY magic (not a .npy file or truncated)");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return NpyError(source, "truncated header length");
    for (int i = 0; i < 4; ++i) {
      header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    }
    header_start = 12;
  } else {
    return NpyError(source, absl::StrCat("unsupported format version ", major));
  }
  if (header_len > kMaxHeaderLen) {
    return NpyError(source, absl::StrCat("header length ", header_len, " is implausible"));
  }
  if (bytes.size() < header_start + header_len) {
    return NpyError(source, absl::StrCat("truncated header (", header_len, " bytes declared, ",
                                         bytes.size() - header_start, " present)"));
  }
  const std::string header = bytes.substr(header_start, header_len);
  if (header.find('{') == std::string::npos || header.find('}') == std::string::npos) {
    return NpyError(source, "header is not a dict");
  }
  YP_ASSIGN_OR_RETURN(std::string descr, DictValue(header, "descr", source));
  YP_ASSIGN_OR_RETURN(DType dtype, ParseDescr(descr, source));
  YP_ASSIGN_OR_RETURN(std::string fortran, DictValue(header, "fortran_order", source));
  if (fortran == "True") {
    return NpyError(source, "Fortran-order arrays are not supported (save with C order)");
  }
  if (fortran != "False") return NpyError(source, absl::StrCat("bad fortran_order '", fortran, "'"));
  YP_ASSIGN_OR_RETURN(std::string shape_text, DictValue(header, "shape", source));
  YP_ASSIGN_OR_RETURN(Shape shape, ParseShapeTuple(shape_text, source));

  // Overflow-safe size computation.
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d != 0 && elements > kMaxNpyBytes / static_cast<uint64_t>(d)) {
      return NpyError(source, absl::StrCat("shape ", ShapeToString(shape), " is too large"));
    }
    elements *= static_cast<uint64_t>(d);
  }
  const uint64_t data_bytes = elements * DTypeSize(dtype);
  if (data_bytes > kMaxNpyBytes) {
    return NpyError(source, absl::StrCat("array of ", data_bytes, " bytes exceeds the limit of ",
                                         kMaxNpyBytes, " bytes"));
  }
  const size_t data_start = header_start + header_len;
  const uint64_t present = bytes.size() - data_start;
  if (present != data_bytes) {
    return NpyError(source, absl::StrCat("shape ", ShapeToString(shape), " of ", DTypeName(dtype),
                                         " needs ", data_bytes, " data bytes at offset ",
                                         data_start, ", file has ", present));
  }
  Tensor tensor(dtype, shape);
  if (data_bytes > 0) std::memcpy(tensor.raw_data(), bytes.data() + data_start, data_bytes);
  return tensor;
}

absl::StatusOr<Tensor> ReadNpyFile(const std::string& path) {
  YP_ASSIGN_OR_RETURN(std::string bytes,
                      ReadFileToString(path, kMaxNpyBytes + kMaxHeaderLen + 16));
  return ParseNpy(bytes, path);
}

absl::StatusOr<std::string> SerializeNpy(const Tensor& tensor) {
  std::string descr;
  switch (tensor.dtype()) {
    case DType::kFloat32: descr = "<f4"; break;
    case DType::kFloat64: descr = "<f8"; break;
    case DType::kInt64: descr = "<i8"; break;
    case DType::kInt32: descr = "<i4"; break;
    case DType::kUInt8: descr = "|u1"; break;
    case DType::kBool: descr = "|b1"; break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("cannot write ", DTypeName(tensor.dtype()), " to .npy"));
  }
  YP_ASSIGN_OR_RETURN(Tensor plain, tensor.ToLayout(Layout::kPlain));
  std::string shape = "(";
  for (size_t i = 0; i < plain.shape().size(); ++i) {
    absl::StrAppend(&shape, plain.shape()[i], plain.shape().size() == 1 ? "," : "",
                    i + 1 < plain.shape().size() ? ", " : "");
  }
  shape += ")";
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  // Pad so that magic + version + length + header + '\n' is a multiple of 64.
  const size_t unpadded = kMagicLen + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) return absl::InvalidArgumentError("npy header too long");
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  out += header;
  out.append(static_cast<const char*>(plain.raw_data()), plain.bytes());
  return out;
}

absl::Status WriteNpyFile(const std::string& path, const Tensor& tensor) {
  YP_ASSIGN_OR_RETURN(std::string bytes, SerializeNpy(tensor));
  return WriteFileAtomically(path, bytes);
}

}  // namespace yolopipe
