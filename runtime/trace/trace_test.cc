#include "runtime/trace/trace.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace yolopipe {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A strict little JSON parser (RFC 8259 grammar), so the tests check that the writer's output is
// valid JSON and read back the values it holds.
struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;

  const Json* Find(const std::string& key) const {
    for (const auto& [k, v] : object) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(const std::string& text) : text_(text) {}

  // Parses the whole text; false (with error()) when it is not exactly one JSON value.
  bool Parse(Json* out) {
    SkipSpace();
    if (!Value(out, 0)) return false;
    SkipSpace();
    if (pos_ != text_.size()) return Fail("trailing characters");
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  bool Fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at offset " + std::to_string(pos_);
    return false;
  }
  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Literal(const char* word) {
    const std::string w(word);
    if (text_.compare(pos_, w.size(), w) != 0) return Fail("bad literal");
    pos_ += w.size();
    return true;
  }
  bool Value(Json* out, int depth) {
    if (depth > 64) return Fail("too deep");
    if (pos_ >= text_.size()) return Fail("unexpected end");
    const char c = text_[pos_];
    if (c == '{') return Object(out, depth);
    if (c == '[') return Array(out, depth);
    if (c == '"') {
      out->type = Json::Type::kString;
      return String(&out->string);
    }
    if (c == 't') {
      out->type = Json::Type::kBool;
      out->boolean = true;
      return Literal("true");
    }
    if (c == 'f') {
      out->type = Json::Type::kBool;
      return Literal("false");
    }
    if (c == 'n') {
      out->type = Json::Type::kNull;
      return Literal("null");
    }
    return Number(out);
  }
  bool Number(Json* out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t s = pos_;
      while (pos_ < text_.size() && isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      return pos_ > s;
    };
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '0') {
      ++pos_;
    } else if (!digits()) {
      return Fail("bad number");
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      ++pos_;
      if (!digits()) return Fail("bad fraction");
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!digits()) return Fail("bad exponent");
    }
    out->type = Json::Type::kNumber;
    out->number = std::stod(text_.substr(start, pos_ - start));
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool String(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= text_.size()) return Fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c < 0x20) return Fail("raw control character in string");
      if (c != '\\') {
        *out += static_cast<char>(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= text_.size()) return Fail("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
          *out += '"';
          break;
        case '\\':
          *out += '\\';
          break;
        case '/':
          *out += '/';
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > text_.size()) return Fail("short \\u escape");
          uint32_t cp = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = text_[pos_++];
            cp <<= 4;
            if (h >= '0' && h <= '9')
              cp |= h - '0';
            else if (h >= 'a' && h <= 'f')
              cp |= h - 'a' + 10;
            else if (h >= 'A' && h <= 'F')
              cp |= h - 'A' + 10;
            else
              return Fail("bad hex digit");
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Fail("bad escape");
      }
    }
  }
  bool Array(Json* out, int depth) {
    out->type = Json::Type::kArray;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      out->array.emplace_back();
      if (!Value(&out->array.back(), depth + 1)) return false;
      SkipSpace();
      if (pos_ >= text_.size()) return Fail("unterminated array");
      if (text_[pos_] == ']') {
        ++pos_;
        return true;
      }
      if (text_[pos_] != ',') return Fail("expected ',' in array");
      ++pos_;
    }
  }
  bool Object(Json* out, int depth) {
    out->type = Json::Type::kObject;
    ++pos_;
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Fail("expected key");
      std::string key;
      if (!String(&key)) return false;
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != ':') return Fail("expected ':'");
      ++pos_;
      SkipSpace();
      Json value;
      if (!Value(&value, depth + 1)) return false;
      out->object.emplace_back(std::move(key), std::move(value));
      SkipSpace();
      if (pos_ >= text_.size()) return Fail("unterminated object");
      if (text_[pos_] == '}') {
        ++pos_;
        return true;
      }
      if (text_[pos_] != ',') return Fail("expected ',' in object");
      ++pos_;
    }
  }

  const std::string& text_;
  size_t pos_ = 0;
  std::string error_;
};

Json ParseOrDie(const std::string& text) {
  Json json;
  JsonParser parser(text);
  EXPECT_TRUE(parser.Parse(&json)) << parser.error() << "\n" << text;
  return json;
}

// The "traceEvents" entries with the given "ph".
std::vector<const Json*> EventsWithPhase(const Json& doc, const std::string& ph) {
  std::vector<const Json*> out;
  const Json* events = doc.Find("traceEvents");
  if (events == nullptr) return out;
  for (const Json& e : events->array) {
    const Json* phase = e.Find("ph");
    if (phase != nullptr && phase->string == ph) out.push_back(&e);
  }
  return out;
}

TEST(JsonParserTest, RejectsInvalidJson) {
  // The parser must be able to fail, or the tests below prove nothing.
  for (const std::string bad :
       {"{", "{\"a\":1,}", "[1 2]", "\"a\nb\"", "{\"a\":nan}", "{\"a\":\"\\x\"}", "[01]", "{} x"}) {
    Json json;
    JsonParser parser(bad);
    EXPECT_FALSE(parser.Parse(&json)) << bad;
  }
}

TEST(TraceWriterTest, EmptyTraceIsValidJson) {
  TraceWriter trace;
  const Json doc = ParseOrDie(trace.ToJson());
  ASSERT_EQ(doc.type, Json::Type::kObject);
  const Json* events = doc.Find("traceEvents");
  ASSERT_NE(events, nullptr);
  EXPECT_EQ(events->type, Json::Type::kArray);
  EXPECT_TRUE(events->array.empty());
  EXPECT_EQ(trace.size(), 0u);
}

TEST(TraceWriterTest, CompleteEventsCarryTheirFields) {
  TraceWriter trace;
  trace.Add("mb 3", "compute", 2, TraceLane::kCompute, 1500.25, 250.5,
            {{"microbatch", 3}, {"ms", 0.2505}, {"peer", "stage 1"}, {"bytes", int64_t{1} << 40}});
  const Json doc = ParseOrDie(trace.ToJson());
  const auto complete = EventsWithPhase(doc, "X");
  ASSERT_EQ(complete.size(), 1u);
  const Json& e = *complete[0];
  EXPECT_EQ(e.Find("name")->string, "mb 3");
  EXPECT_EQ(e.Find("cat")->string, "compute");
  EXPECT_EQ(e.Find("pid")->number, 2);
  EXPECT_EQ(e.Find("tid")->number, static_cast<int>(TraceLane::kCompute));
  EXPECT_DOUBLE_EQ(e.Find("ts")->number, 1500.25);
  EXPECT_DOUBLE_EQ(e.Find("dur")->number, 250.5);
  const Json* args = e.Find("args");
  ASSERT_NE(args, nullptr);
  EXPECT_EQ(args->Find("microbatch")->number, 3);
  EXPECT_DOUBLE_EQ(args->Find("ms")->number, 0.2505);
  EXPECT_EQ(args->Find("peer")->string, "stage 1");
  EXPECT_EQ(args->Find("bytes")->number, 1099511627776.0);
}

TEST(TraceWriterTest, DeviceTrackNamesProcessAndLanes) {
  TraceWriter trace;
  trace.AddDeviceTrack(0, "stage 0 (cuda:0)");
  trace.AddDeviceTrack(1, "stage 1 (cuda:1)");
  const Json doc = ParseOrDie(trace.ToJson());
  std::map<int, std::string> processes;
  std::map<std::pair<int, int>, std::string> threads;
  for (const Json* m : EventsWithPhase(doc, "M")) {
    const std::string what = m->Find("name")->string;
    const int pid = static_cast<int>(m->Find("pid")->number);
    const int tid = static_cast<int>(m->Find("tid")->number);
    if (what == "process_name") processes[pid] = m->Find("args")->Find("name")->string;
    if (what == "thread_name") threads[{pid, tid}] = m->Find("args")->Find("name")->string;
  }
  EXPECT_EQ(processes[0], "stage 0 (cuda:0)");
  EXPECT_EQ(processes[1], "stage 1 (cuda:1)");
  for (int pid : {0, 1}) {
    EXPECT_EQ((threads[{pid, 1}]), "compute");
    EXPECT_EQ((threads[{pid, 2}]), "send");
    EXPECT_EQ((threads[{pid, 3}]), "recv");
  }
  EXPECT_EQ(threads.size(), 6u);
}

TEST(TraceWriterTest, RenamingAProcessReplacesItsName) {
  TraceWriter trace;
  trace.SetProcessName(4, "old", 0);
  trace.SetProcessName(4, "new", 0);
  const std::string json = trace.ToJson();
  EXPECT_THAT(json, HasSubstr("\"new\""));
  EXPECT_THAT(json, Not(HasSubstr("\"old\"")));
}

TEST(TraceWriterTest, StringsAreEscaped) {
  const std::string nasty = std::string("q\"b\\s/n\nt\tr\rc\x01") + "\x1f" + "\xc3\xa9";
  TraceWriter trace;
  trace.AddDeviceTrack(0, nasty);
  trace.Add(nasty, nasty, 0, TraceLane::kSend, 0.0, 1.0, {{nasty, nasty}});
  const std::string json = trace.ToJson();
  const Json doc = ParseOrDie(json);
  const auto complete = EventsWithPhase(doc, "X");
  ASSERT_EQ(complete.size(), 1u);
  EXPECT_EQ(complete[0]->Find("name")->string, nasty);
  EXPECT_EQ(complete[0]->Find("cat")->string, nasty);
  EXPECT_EQ(complete[0]->Find("args")->Find(nasty)->string, nasty);
  EXPECT_THAT(json, HasSubstr("\\u0001"));
  EXPECT_THAT(json, HasSubstr("\\u001f"));
}

TEST(JsonQuoteTest, EscapesExactly) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("a\"b"), "\"a\\\"b\"");
  EXPECT_EQ(JsonQuote("a\\b"), "\"a\\\\b\"");
  EXPECT_EQ(JsonQuote("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
  EXPECT_EQ(JsonQuote(std::string("\0", 1)), "\"\\u0000\"");
  EXPECT_EQ(JsonQuote("\xe2\x82\xac"),
            "\"\xe2\x82\xac\"");  // the euro sign passes through
}

TEST(JsonQuoteTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(JsonQuote("a\xff"
                      "b"),
            "\"a\\ufffdb\"");
  EXPECT_EQ(JsonQuote("\xc3"), "\"\\ufffd\"");             // truncated sequence
  EXPECT_EQ(JsonQuote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");  // overlong '/'
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"),
            "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate
  const Json doc = ParseOrDie("[" + JsonQuote("x\xfe") + "]");
  EXPECT_EQ(doc.array[0].string, "x\xef\xbf\xbd");
}

TEST(TraceWriterTest, NonFiniteNumbersStayValidJson) {
  TraceWriter trace;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  trace.Add("a", "compute", 0, TraceLane::kCompute, nan, -5.0, {{"x", inf}, {"y", nan}});
  const Json doc = ParseOrDie(trace.ToJson());
  const auto complete = EventsWithPhase(doc, "X");
  ASSERT_EQ(complete.size(), 1u);
  EXPECT_EQ(complete[0]->Find("ts")->number, 0.0);
  EXPECT_EQ(complete[0]->Find("dur")->number, 0.0);
  EXPECT_EQ(complete[0]->Find("args")->Find("x")->type, Json::Type::kNull);
  EXPECT_EQ(complete[0]->Find("args")->Find("y")->type, Json::Type::kNull);
}

TEST(TraceWriterTest, EventsAreWrittenInTimeOrder) {
  TraceWriter trace;
  trace.Add("late", "compute", 0, TraceLane::kCompute, 30.0, 1.0);
  trace.Add("early", "compute", 1, TraceLane::kCompute, 10.0, 1.0);
  trace.Add("middle-b", "send", 1, TraceLane::kSend, 20.0, 1.0);
  trace.Add("middle-a", "compute", 0, TraceLane::kCompute, 20.0, 1.0);
  const Json doc = ParseOrDie(trace.ToJson());
  const auto complete = EventsWithPhase(doc, "X");
  ASSERT_EQ(complete.size(), 4u);
  EXPECT_EQ(complete[0]->Find("name")->string, "early");
  EXPECT_EQ(complete[1]->Find("name")->string,
            "middle-a");  // same ts: lower pid first
  EXPECT_EQ(complete[2]->Find("name")->string, "middle-b");
  EXPECT_EQ(complete[3]->Find("name")->string, "late");
  // events() keeps insertion order.
  EXPECT_EQ(trace.events()[0].name, "late");
}

TEST(TraceWriterTest, ConcurrentAddsAreAllKept) {
  TraceWriter trace;
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&trace, t] {
      trace.AddDeviceTrack(t, "device " + std::to_string(t));
      for (int i = 0; i < kPerThread; ++i) {
        trace.Add("mb " + std::to_string(i), "compute", t, TraceLane::kCompute, i * 10.0, 5.0,
                  {{"microbatch", i}});
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(trace.size(), static_cast<size_t>(kThreads * kPerThread));
  const Json doc = ParseOrDie(trace.ToJson());
  const auto complete = EventsWithPhase(doc, "X");
  ASSERT_EQ(complete.size(), static_cast<size_t>(kThreads * kPerThread));
  std::vector<int> per_pid(kThreads, 0);
  for (const Json* e : complete) ++per_pid[static_cast<int>(e->Find("pid")->number)];
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_pid[t], kPerThread) << "pid " << t;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(TraceWriterTest, WriteFileWritesTheJsonAtomically) {
  TraceWriter trace;
  trace.AddDeviceTrack(0, "stage 0");
  trace.Add("mb 0", "compute", 0, TraceLane::kCompute, 0.0, 100.0, {{"microbatch", 0}});
  const std::string path = ::testing::TempDir() + "/trace_test.json";
  ASSERT_TRUE(trace.WriteFile(path).ok());
  EXPECT_EQ(ReadAll(path), trace.ToJson());
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  EXPECT_FALSE(std::ifstream(tmp).good()) << "temporary file left behind";
}

TEST(TraceWriterTest, WriteFileToMissingDirectoryFailsNamingThePath) {
  TraceWriter trace;
  const std::string path = ::testing::TempDir() + "/no/such/dir/trace.json";
  const absl::Status status = trace.WriteFile(path);
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(path));
}

}  // namespace
}  // namespace yolopipe
