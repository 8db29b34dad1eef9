#include "graph/model_metadata.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace yolopipe {
namespace {

// A cursor over a Python literal. Every method leaves the cursor unchanged on failure only where
// noted; callers give up on the whole literal at the first failure.
class LiteralParser {
 public:
  explicit LiteralParser(absl::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ >= text_.size();
  }
  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Peek(char c) {
    SkipSpace();
    return pos_ < text_.size() && text_[pos_] == c;
  }

  // A non-negative decimal integer (at most 18 digits).
  bool ParseIndex(int64_t* value) {
    SkipSpace();
    size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    const size_t digits = pos_ - start;
    if (digits == 0 || digits > 18) return false;
    return absl::SimpleAtoi(text_.substr(start, digits), value);
  }

  // A quoted string with Python escapes; appends UTF-8.
  bool ParseString(std::string* out) {
    SkipSpace();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) return false;
    const char quote = text_[pos_++];
    out->clear();
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == quote) return true;
      if (c == '\n') return false;  // unterminated on this line
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) return false;
      const char e = text_[pos_++];
      switch (e) {
        case '\\':
          out->push_back('\\');
          break;
        case '\'':
          out->push_back('\'');
          break;
        case '"':
          out->push_back('"');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 'a':
          out->push_back('\a');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'v':
          out->push_back('\v');
          break;
        case '\n':
          break;  // line continuation
        case 'x':
          if (!AppendHexCodePoint(2, out)) return false;
          break;
        case 'u':
          if (!AppendHexCodePoint(4, out)) return false;
          break;
        case 'U':
          if (!AppendHexCodePoint(8, out)) return false;
          break;
        default:
          if (e >= '0' && e <= '7') {
            uint32_t v = e - '0';
            for (int k = 0;
                 k < 2 && pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '7'; ++k) {
              v = v * 8 + (text_[pos_++] - '0');
            }
            AppendUtf8(v, out);
          } else {
            // Python keeps unknown escapes verbatim.
            out->push_back('\\');
            out->push_back(e);
          }
      }
    }
    return false;
  }

 private:
  bool AppendHexCodePoint(int digits, std::string* out) {
    if (pos_ + digits > text_.size()) return false;
    uint32_t v = 0;
    for (int k = 0; k < digits; ++k) {
      const char h = text_[pos_++];
      int d;
      if (h >= '0' && h <= '9') {
        d = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        d = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        d = h - 'A' + 10;
      } else {
        return false;
      }
      v = v * 16 + d;
    }
    if (v > 0x10FFFF) return false;
    AppendUtf8(v, out);
    return true;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

std::optional<std::vector<std::string>> ParseNameList(LiteralParser& p) {
  std::vector<std::string> names;
  while (!p.Consume(']')) {
    std::string name;
    if (!p.ParseString(&name)) return std::nullopt;
    names.push_back(std::move(name));
    if (!p.Consume(',') && !p.Peek(']')) return std::nullopt;
  }
  if (!p.AtEnd()) return std::nullopt;
  return names;
}

std::optional<std::vector<std::string>> ParseNameDict(LiteralParser& p) {
  std::map<int64_t, std::string> by_id;
  while (!p.Consume('}')) {
    int64_t id;
    if (p.Peek('\'') || p.Peek('"')) {
      std::string key;
      if (!p.ParseString(&key) || key.empty() || key.size() > 18) return std::nullopt;
      for (char c : key) {
        if (c < '0' || c > '9') return std::nullopt;
      }
      if (!absl::SimpleAtoi(key, &id)) return std::nullopt;
    } else if (!p.ParseIndex(&id)) {
      return std::nullopt;
    }
    if (!p.Consume(':')) return std::nullopt;
    std::string name;
    if (!p.ParseString(&name)) return std::nullopt;
    if (!by_id.emplace(id, std::move(name)).second) return std::nullopt;  // duplicate key
    if (!p.Consume(',') && !p.Peek('}')) return std::nullopt;
  }
  if (!p.AtEnd()) return std::nullopt;
  std::vector<std::string> names;
  names.reserve(by_id.size());
  for (auto& [id, name] : by_id) {
    if (id != static_cast<int64_t>(names.size())) return std::nullopt;  // keys not 0..n-1
    names.push_back(std::move(name));
  }
  return names;
}

std::optional<int64_t> ParseIntegral(absl::string_view s) {
  s = absl::StripAsciiWhitespace(s);
  int64_t v;
  if (absl::SimpleAtoi(s, &v)) return v;
  double d;
  if (absl::SimpleAtod(s, &d) && std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
    return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

std::optional<Shape> ParseDeclaredShape(const std::string& text) {
  Shape shape;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::optional<int64_t> d = ParseIntegral(part);
    if (!d.has_value() || *d < kUnknownDim) return std::nullopt;
    shape.push_back(*d);
  }
  return shape;
}

}  // namespace

std::optional<std::vector<std::string>> ParseClassNames(const std::string& literal) {
  LiteralParser p(literal);
  if (p.Consume('{')) return ParseNameDict(p);
  if (p.Consume('[')) return ParseNameList(p);
  return std::nullopt;
}

std::optional<std::vector<int64_t>> ParseIntList(const std::string& literal) {
  absl::string_view s = absl::StripAsciiWhitespace(literal);
  if (s.empty()) return std::nullopt;
  const bool bracketed =
      (s.front() == '[' && s.back() == ']') || (s.front() == '(' && s.back() == ')');
  if (bracketed) {
    s = absl::StripAsciiWhitespace(s.substr(1, s.size() - 2));
    if (!s.empty() && s.back() == ',') s.remove_suffix(1);  // Python's one-tuple "(32,)"
  }
  std::vector<int64_t> values;
  if (s.empty()) return bracketed ? std::optional<std::vector<int64_t>>(values) : std::nullopt;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    std::optional<int64_t> v = ParseIntegral(part);
    if (!v.has_value()) return std::nullopt;
    values.push_back(*v);
  }
  if (!bracketed && values.size() != 1) return std::nullopt;
  return values;
}

absl::StatusOr<ModelMetadata> ReadModelMetadata(const Graph& graph) {
  if (graph.inputs().size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model metadata: the graph must have exactly one input, it has ", graph.inputs().size()));
  }
  ModelMetadata meta;
  const std::map<std::string, std::string>& props = graph.metadata();
  auto get = [&](const char* key) -> const std::string* {
    auto it = props.find(key);
    return it == props.end() ? nullptr : &it->second;
  };
  if (const std::string* names = get("names")) {
    meta.class_names = ParseClassNames(*names).value_or(std::vector<std::string>{});
  }
  if (const std::string* stride = get("stride")) {
    meta.strides = ParseIntList(*stride).value_or(std::vector<int64_t>{});
  }
  if (const std::string* task = get("task")) meta.task = *task;
  if (const std::string* imgsz = get("imgsz")) {
    meta.imgsz = ParseIntList(*imgsz).value_or(std::vector<int64_t>{});
  }
  if (const std::string* batch = get("batch")) {
    meta.batch = ParseIntegral(*batch).value_or(0);
  }

  std::optional<Shape> declared;
  if (const std::string* text = get(kMetadataDeclaredInputShape)) {
    declared = ParseDeclaredShape(*text);
  }
  if (!declared.has_value()) {
    const Value* input = graph.FindValue(graph.inputs()[0]);
    declared = input != nullptr ? input->shape : Shape{};
  }
  meta.declared_input_shape = *declared;
  const Shape& d = meta.declared_input_shape;
  meta.dynamic_batch = !d.empty() && d[0] < 0;
  meta.dynamic_hw = (d.size() > 2 && d[2] < 0) || (d.size() > 3 && d[3] < 0);
  return meta;
}

}  // namespace yolopipe
