// ParallelFor: splits [0, count) into one contiguous chunk per OpenMP thread; ParallelMemcpy on
// top of it. Header-only; users must compile with -fopenmp (every ops/cpu library does).
#ifndef YOLOPIPE_OPS_CPU_PARALLEL_H_
#define YOLOPIPE_OPS_CPU_PARALLEL_H_

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace yolopipe::ops {

// Calls body(begin, end) on disjoint chunks covering [0, count), using at most `num_threads`
// threads and at least `min_chunk` items per thread (small loops stay on the calling thread,
// where a parallel region would cost more than it saves).
template <typename Body>
void ParallelFor(int num_threads, int64_t count, int64_t min_chunk, Body&& body) {
  if (count <= 0) return;
  const int64_t by_size = count / std::max<int64_t>(min_chunk, 1);
  int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, by_size)));
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer cannot see libgomp's (uninstrumented) barriers and would report every
  // parallel region as a race: under TSAN the kernels run on the calling thread, and TSAN checks
  // the runtime's own threads (stages, transfers, streams).
  threads = 1;
#endif
  if (threads <= 1) {
    body(int64_t{0}, count);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nt = omp_get_num_threads();
    const int64_t begin = count * t / nt;
    const int64_t end = count * (t + 1) / nt;
    if (begin < end) body(begin, end);
  }
}

// Copies `bytes` bytes from `src` to `dst` (which must not overlap) on up to `num_threads`
// threads, in chunks of whole 64-byte lines of at least 64 KiB.
inline void ParallelMemcpy(int num_threads, void* dst, const void* src, size_t bytes) {
  constexpr size_t kLine = 64;
  const int64_t lines = static_cast<int64_t>((bytes + kLine - 1) / kLine);
  ParallelFor(num_threads, lines, (64 << 10) / kLine, [&](int64_t begin, int64_t end) {
    const size_t first = static_cast<size_t>(begin) * kLine;
    const size_t last = std::min(bytes, static_cast<size_t>(end) * kLine);
    std::memcpy(static_cast<char*>(dst) + first, static_cast<const char*>(src) + first,
                last - first);
  });
}

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_PARALLEL_H_
