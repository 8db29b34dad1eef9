// HandoffQueue: a bounded blocking FIFO that hands items between the threads of a pipeline stage
// (receiver -> compute -> sender), with an abort that wakes every waiter. Uses std::mutex and
// std::condition_variable so ThreadSanitizer sees the synchronisation.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_HANDOFF_QUEUE_H_
#define YOLOPIPE_RUNTIME_PIPELINE_HANDOFF_QUEUE_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

namespace yolopipe {

// Thread-safe: any number of producers and consumers.
template <typename T>
class HandoffQueue {
 public:
  // `capacity` >= 1 items; Push blocks while the queue holds that many.
  explicit HandoffQueue(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}
  HandoffQueue(const HandoffQueue&) = delete;
  HandoffQueue& operator=(const HandoffQueue&) = delete;

  // Blocks while full. Returns false (dropping `item`) once aborted.
  bool Push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return aborted_ || items_.size() < capacity_; });
    if (aborted_) return false;
    items_.push_back(std::move(item));
    lock.unlock();
    cv_.notify_all();
    return true;
  }

  // Blocks while empty. Returns nullopt once aborted (items still queued are dropped).
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return aborted_ || !items_.empty(); });
    if (aborted_) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    lock.unlock();
    cv_.notify_all();
    return item;
  }

  // Wakes every blocked Push/Pop; later calls fail immediately. Idempotent.
  void Abort() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted_ = true;
    }
    cv_.notify_all();
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;  // guarded by mu_
  bool aborted_ = false;  // guarded by mu_
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_HANDOFF_QUEUE_H_
