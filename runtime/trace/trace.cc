#include "runtime/trace/trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/file_io.h"

namespace yolopipe {
namespace {

double SanitizeTime(double us) { return std::isfinite(us) && us > 0.0 ? us : 0.0; }

// Microseconds with nanosecond resolution; the format's own unit.
std::string FormatMicros(double us) { return absl::StrFormat("%.3f", us); }

std::string FormatArgValue(const std::variant<int64_t, double, std::string>& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&value)) {
    // JSON has no Infinity or NaN.
    return std::isfinite(*d) ? absl::StrFormat("%.12g", *d) : std::string("null");
  }
  return JsonQuote(std::get<std::string>(value));
}

std::string FormatArgs(const std::vector<TraceArg>& args) {
  std::string out = "{";
  for (size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ",";
    absl::StrAppend(&out, JsonQuote(args[i].key), ":", FormatArgValue(args[i].value));
  }
  out += "}";
  return out;
}

std::string MetadataEvent(const char* what, int pid, int tid, const std::string& args) {
  return absl::StrCat("{\"name\":\"", what, "\",\"ph\":\"M\",\"pid\":", pid, ",\"tid\":", tid,
                      ",\"args\":", args, "}");
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not one.
size_t Utf8SequenceLength(const std::string& text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

const char* TraceLaneName(TraceLane lane) {
  switch (lane) {
    case TraceLane::kCompute:
      return "compute";
    case TraceLane::kSend:
      return "send";
    case TraceLane::kRecv:
      return "recv";
  }
  return "unknown";
}

std::string JsonQuote(const std::string& text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            out += absl::StrFormat("\\u%04x", c);
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(text, i, length);
      i += length;
    }
  }
  out += '"';
  return out;
}

void TraceWriter::Add(TraceEvent event) {
  event.ts_us = SanitizeTime(event.ts_us);
  event.dur_us = SanitizeTime(event.dur_us);
  std::lock_guard<std::mutex> lock(mu_);
  events_.push_back(std::move(event));
}

void TraceWriter::Add(std::string name, std::string category, int pid, TraceLane lane, double ts_us,
                      double dur_us, std::vector<TraceArg> args) {
  TraceEvent event;
  event.name = std::move(name);
  event.category = std::move(category);
  event.pid = pid;
  event.tid = static_cast<int>(lane);
  event.ts_us = ts_us;
  event.dur_us = dur_us;
  event.args = std::move(args);
  Add(std::move(event));
}

void TraceWriter::SetProcessName(int pid, std::string name, int sort_index) {
  std::lock_guard<std::mutex> lock(mu_);
  processes_[pid] = Meta{std::move(name), sort_index};
}

void TraceWriter::SetThreadName(int pid, int tid, std::string name, int sort_index) {
  std::lock_guard<std::mutex> lock(mu_);
  threads_[{pid, tid}] = Meta{std::move(name), sort_index};
}

void TraceWriter::AddDeviceTrack(int pid, std::string name) {
  SetProcessName(pid, std::move(name), pid);
  for (TraceLane lane : {TraceLane::kCompute, TraceLane::kSend, TraceLane::kRecv}) {
    SetThreadName(pid, static_cast<int>(lane), TraceLaneName(lane), static_cast<int>(lane));
  }
}

size_t TraceWriter::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_.size();
}

std::vector<TraceEvent> TraceWriter::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::string TraceWriter::ToJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> items;
  items.reserve(2 * processes_.size() + 2 * threads_.size() + events_.size());
  for (const auto& [pid, meta] : processes_) {
    items.push_back(MetadataEvent("process_name", pid, 0,
                                  absl::StrCat("{\"name\":", JsonQuote(meta.name), "}")));
    items.push_back(MetadataEvent("process_sort_index", pid, 0,
                                  absl::StrCat("{\"sort_index\":", meta.sort_index, "}")));
  }
  for (const auto& [key, meta] : threads_) {
    items.push_back(MetadataEvent("thread_name", key.first, key.second,
                                  absl::StrCat("{\"name\":", JsonQuote(meta.name), "}")));
    items.push_back(MetadataEvent("thread_sort_index", key.first, key.second,
                                  absl::StrCat("{\"sort_index\":", meta.sort_index, "}")));
  }
  std::vector<size_t> order(events_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const TraceEvent& x = events_[a];
    const TraceEvent& y = events_[b];
    if (x.ts_us != y.ts_us) return x.ts_us < y.ts_us;
    if (x.pid != y.pid) return x.pid < y.pid;
    return x.tid < y.tid;
  });
  for (size_t index : order) {
    const TraceEvent& e = events_[index];
    items.push_back(absl::StrCat(
        "{\"name\":", JsonQuote(e.name), ",\"cat\":", JsonQuote(e.category),
        ",\"ph\":\"X\",\"pid\":", e.pid, ",\"tid\":", e.tid, ",\"ts\":", FormatMicros(e.ts_us),
        ",\"dur\":", FormatMicros(e.dur_us), ",\"args\":", FormatArgs(e.args), "}"));
  }
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppend(&out, i > 0 ? ",\n" : "\n", items[i]);
  }
  out += "\n]}\n";
  return out;
}

absl::Status TraceWriter::WriteFile(const std::string& path) const {
  return WriteFileAtomically(path, ToJson());
}

}  // namespace yolopipe
