// Scheduling core of `yolopipe stream`: frames of N sources interleaved into micro-batches, and
// results handed back per source in frame order. Knows nothing about video or models, so it is
// tested with plain payloads.
#ifndef YOLOPIPE_RUNTIME_DETECT_STREAM_MUX_H_
#define YOLOPIPE_RUNTIME_DETECT_STREAM_MUX_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace yolopipe {

// What a source does when its queue is full.
enum class BackpressurePolicy {
  kBlock,       // the source waits for room: nothing is ever dropped
  kDropOldest,  // the oldest queued frame of that source is dropped (and counted)
};

// "block" or "drop" (also "drop-oldest"); InvalidArgument otherwise.
absl::StatusOr<BackpressurePolicy> ParseBackpressurePolicy(const std::string& text);
const char* BackpressurePolicyName(BackpressurePolicy policy);

// Which source a frame came from and its index in that source (0-based, counting dropped frames,
// so index i is always the source's i-th frame).
struct FrameTag {
  int source = 0;
  int64_t frame = 0;
  bool operator==(const FrameTag& o) const { return source == o.source && frame == o.frame; }
};

template <typename Frame>
struct TaggedFrame {
  FrameTag tag;
  Frame frame;
};

// Bounded per-source queues feeding one consumer. Thread-safe: any number of producer threads
// (typically one per source) call Push/CloseSource while one or more consumers call NextBatch.
template <typename Frame>
class StreamMultiplexer {
 public:
  // num_sources >= 1, queue_capacity >= 1 (frames per source waiting to be batched).
  StreamMultiplexer(int num_sources, int queue_capacity, BackpressurePolicy policy)
      : capacity_(queue_capacity < 1 ? 1 : queue_capacity),
        policy_(policy),
        sources_(num_sources < 1 ? 1 : num_sources) {}

  // Queues the next frame of `source` and returns its frame index. kBlock: waits while the
  // source's queue is full. kDropOldest: never waits; a full queue loses its oldest frame.
  // Errors: OutOfRange for a bad source; FailedPrecondition after CloseSource(source);
  // Cancelled after Cancel (also wakes a blocked Push).
  absl::StatusOr<int64_t> Push(int source, Frame frame) {
    std::unique_lock<std::mutex> lock(mu_);
    if (source < 0 || source >= static_cast<int>(sources_.size())) {
      return absl::OutOfRangeError(
          absl::StrCat("source ", source, " out of range [0, ", sources_.size(), ")"));
    }
    Source& s = sources_[source];
    if (s.closed) {
      return absl::FailedPreconditionError(absl::StrCat("source ", source, " is closed"));
    }
    if (policy_ == BackpressurePolicy::kBlock) {
      room_.wait(lock, [&] { return cancelled_ || static_cast<int>(s.queue.size()) < capacity_; });
    } else if (static_cast<int>(s.queue.size()) >= capacity_) {
      s.queue.pop_front();
      ++s.dropped;
    }
    if (cancelled_) return absl::CancelledError("stream multiplexer cancelled");
    const int64_t index = s.next_index++;
    s.queue.push_back(TaggedFrame<Frame>{FrameTag{source, index}, std::move(frame)});
    ready_.notify_all();
    return index;
  }

  // The source has no more frames. Idempotent; a bad source is ignored.
  void CloseSource(int source) {
    std::lock_guard<std::mutex> lock(mu_);
    if (source < 0 || source >= static_cast<int>(sources_.size())) return;
    sources_[source].closed = true;
    ready_.notify_all();
  }

  // Ends everything: blocked and later Push fail, NextBatch returns empty.
  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    ready_.notify_all();
    room_.notify_all();
  }

  // Up to `max_frames` (>= 1) queued frames, round-robin over the sources (one frame per source
  // per round, resuming after the source served last), each source's frames in their order.
  // Waits until at least one frame is queued; does not wait to fill the batch (latency first).
  // Empty once every source is closed and drained, or after Cancel.
  std::vector<TaggedFrame<Frame>> NextBatch(int max_frames) {
    std::unique_lock<std::mutex> lock(mu_);
    ready_.wait(lock, [&] { return cancelled_ || AnyQueued() || AllClosed(); });
    std::vector<TaggedFrame<Frame>> batch;
    if (cancelled_) return batch;
    const int n = static_cast<int>(sources_.size());
    while (static_cast<int>(batch.size()) < max_frames && AnyQueued()) {
      for (int k = 0; k < n && static_cast<int>(batch.size()) < max_frames; ++k) {
        const int i = (cursor_ + k) % n;
        if (sources_[i].queue.empty()) continue;
        batch.push_back(std::move(sources_[i].queue.front()));
        sources_[i].queue.pop_front();
        last_served_ = i;
      }
      cursor_ = (last_served_ + 1) % n;
    }
    if (!batch.empty()) room_.notify_all();
    return batch;
  }

  int64_t dropped(int source) const {
    std::lock_guard<std::mutex> lock(mu_);
    return source >= 0 && source < static_cast<int>(sources_.size()) ? sources_[source].dropped
                                                                      : 0;
  }
  // Frames Push accepted for `source` (dropped ones included).
  int64_t pushed(int source) const {
    std::lock_guard<std::mutex> lock(mu_);
    return source >= 0 && source < static_cast<int>(sources_.size())
               ? sources_[source].next_index
               : 0;
  }
  int num_sources() const { return static_cast<int>(sources_.size()); }

 private:
  struct Source {
    std::deque<TaggedFrame<Frame>> queue;
    int64_t next_index = 0;
    int64_t dropped = 0;
    bool closed = false;
  };
  bool AnyQueued() const {
    for (const Source& s : sources_) {
      if (!s.queue.empty()) return true;
    }
    return false;
  }
  bool AllClosed() const {
    for (const Source& s : sources_) {
      if (!s.closed) return false;
    }
    return true;
  }

  const int capacity_;
  const BackpressurePolicy policy_;
  mutable std::mutex mu_;
  std::condition_variable ready_;  // a frame was queued, a source closed, or cancelled
  std::condition_variable room_;   // a queue shrank, or cancelled
  std::vector<Source> sources_;
  int cursor_ = 0;
  int last_served_ = 0;
  bool cancelled_ = false;
};

// Puts results back in frame order per source. Expect() is called for each frame as it is
// dispatched (per source in increasing frame order, as NextBatch hands them out); Deliver() may
// then come in any order; TakeReady() returns the longest in-order run of delivered results.
// Frames never dispatched (dropped) are simply absent. Thread-safe.
template <typename Result>
class StreamDemultiplexer {
 public:
  explicit StreamDemultiplexer(int num_sources) : sources_(num_sources < 1 ? 1 : num_sources) {}

  // InvalidArgument for a bad source or a frame index not above the source's last expected one.
  absl::Status Expect(const FrameTag& tag) {
    std::lock_guard<std::mutex> lock(mu_);
    if (tag.source < 0 || tag.source >= static_cast<int>(sources_.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("source ", tag.source, " out of range [0, ", sources_.size(), ")"));
    }
    Source& s = sources_[tag.source];
    if (!s.expected.empty() || s.any_expected) {
      if (tag.frame <= s.last_expected) {
        return absl::InvalidArgumentError(
            absl::StrCat("source ", tag.source, ": frame ", tag.frame,
                         " expected after frame ", s.last_expected));
      }
    }
    s.any_expected = true;
    s.last_expected = tag.frame;
    s.expected.push_back(tag.frame);
    return absl::OkStatus();
  }

  // InvalidArgument for a frame not expected or delivered twice.
  absl::Status Deliver(const FrameTag& tag, Result result) {
    std::lock_guard<std::mutex> lock(mu_);
    if (tag.source < 0 || tag.source >= static_cast<int>(sources_.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("source ", tag.source, " out of range [0, ", sources_.size(), ")"));
    }
    Source& s = sources_[tag.source];
    bool pending = false;
    for (int64_t f : s.expected) pending = pending || f == tag.frame;
    if (!pending || s.delivered.count(tag.frame) > 0) {
      return absl::InvalidArgumentError(absl::StrCat("source ", tag.source, ": frame ", tag.frame,
                                                     " was not expected or came twice"));
    }
    s.delivered.emplace(tag.frame, std::move(result));
    return absl::OkStatus();
  }

  // (frame index, result) pairs of `source` ready in frame order; removes them.
  std::vector<std::pair<int64_t, Result>> TakeReady(int source) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<int64_t, Result>> out;
    if (source < 0 || source >= static_cast<int>(sources_.size())) return out;
    Source& s = sources_[source];
    while (!s.expected.empty()) {
      auto it = s.delivered.find(s.expected.front());
      if (it == s.delivered.end()) break;
      out.emplace_back(it->first, std::move(it->second));
      s.delivered.erase(it);
      s.expected.pop_front();
    }
    return out;
  }

  // Frames expected but not yet taken, over all sources.
  int64_t outstanding() const {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = 0;
    for (const Source& s : sources_) n += static_cast<int64_t>(s.expected.size());
    return n;
  }

 private:
  struct Source {
    std::deque<int64_t> expected;
    std::map<int64_t, Result> delivered;
    int64_t last_expected = 0;
    bool any_expected = false;
  };
  mutable std::mutex mu_;
  std::vector<Source> sources_;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_DETECT_STREAM_MUX_H_
