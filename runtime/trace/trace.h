// Chrome trace-event output (the JSON format read by Perfetto and chrome://tracing).
//
// A trace shows one process track per device (pipeline stage) with three lanes: compute, send and
// receive. The simulator writes predicted schedules with it; the executor records measured ones
// through the same class, so both open side by side in the same viewer.
//
// Units: timestamps and durations are microseconds, as the format wants.
#ifndef YOLOPIPE_RUNTIME_TRACE_TRACE_H_
#define YOLOPIPE_RUNTIME_TRACE_TRACE_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"

namespace yolopipe {

// The lanes (trace "threads") of a device track. The values are the tids written to the trace, and
// also the order in which viewers stack the lanes.
enum class TraceLane : int { kCompute = 1, kSend = 2, kRecv = 3 };

// "compute", "send", "recv".
const char* TraceLaneName(TraceLane lane);

// One argument shown with an event ("args" in the JSON).
struct TraceArg {
  TraceArg(std::string key, int value) : key(std::move(key)), value(int64_t{value}) {}
  TraceArg(std::string key, int64_t value) : key(std::move(key)), value(value) {}
  TraceArg(std::string key, double value) : key(std::move(key)), value(value) {}
  TraceArg(std::string key, std::string value) : key(std::move(key)), value(std::move(value)) {}
  TraceArg(std::string key, const char* value) : key(std::move(key)), value(std::string(value)) {}

  std::string key;
  std::variant<int64_t, double, std::string> value;
};

// A complete event ("ph": "X"): something that ran on one lane from ts_us for dur_us.
struct TraceEvent {
  std::string name;      // e.g. "mb 3"
  std::string category;  // e.g. "compute"
  int pid = 0;           // the device / stage track
  int tid = 0;           // the lane within it (see TraceLane)
  double ts_us = 0.0;
  double dur_us = 0.0;
  std::vector<TraceArg> args;
};

// Collects events and writes them as one JSON document:
//   {"displayTimeUnit": "ms", "traceEvents": [metadata events..., complete events...]}
// Complete events are written sorted by (ts, pid, tid), insertion order breaking ties, so the
// output does not depend on which thread recorded first.
//
// Thread-safe: every method may be called from any thread.
class TraceWriter {
 public:
  TraceWriter() = default;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Records a complete event. A non-finite or negative timestamp is written as 0 and a non-finite
  // or negative duration as 0, so the output is always valid JSON.
  void Add(TraceEvent event);
  void Add(std::string name, std::string category, int pid, TraceLane lane, double ts_us,
           double dur_us, std::vector<TraceArg> args = {});

  // Metadata: the name shown for a process (track) or thread (lane), and the position of the track
  // / lane among its siblings. Setting a name again replaces it.
  void SetProcessName(int pid, std::string name, int sort_index);
  void SetThreadName(int pid, int tid, std::string name, int sort_index);

  // Names process `pid` (e.g. "stage 1 (cuda:1)") and its compute, send and recv lanes.
  void AddDeviceTrack(int pid, std::string name);

  // Number of complete events recorded so far.
  size_t size() const;
  // A copy of the complete events, in insertion order.
  std::vector<TraceEvent> events() const;

  std::string ToJson() const;

  // Writes ToJson() to `path` atomically (temporary file in the same directory, then rename).
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Meta {
    std::string name;
    int sort_index = 0;
  };

  mutable std::mutex mu_;
  std::vector<TraceEvent> events_;  // guarded by mu_
  std::map<int, Meta> processes_;  // guarded by mu_
  std::map<std::pair<int, int>, Meta> threads_;  // guarded by mu_
};

// `text` as a JSON string literal, quotes included: escapes '"', '\\' and control characters, and
// replaces bytes that are not valid UTF-8 with U+FFFD so the document stays valid.
std::string JsonQuote(const std::string& text);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_TRACE_TRACE_H_
