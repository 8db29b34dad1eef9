// ParallelFor: splits [0, count) into one contiguous chunk per OpenMP thread. Header-only; users
// must compile with -fopenmp (every ops/cpu library does).
#ifndef YOLOPIPE_OPS_CPU_PARALLEL_H_
#define YOLOPIPE_OPS_CPU_PARALLEL_H_

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace yolopipe::ops {

// Calls body(begin, end) on disjoint chunks covering [0, count), using at most `num_threads`
// threads and at least `min_chunk` items per thread (small loops stay on the calling thread,
// where a parallel region would cost more than it saves).
template <typename Body>
void ParallelFor(int num_threads, int64_t count, int64_t min_chunk, Body&& body) {
  if (count <= 0) return;
  const int64_t by_size = count / std::max<int64_t>(min_chunk, 1);
  const int threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, by_size)));
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

}  // namespace yolopipe::ops

#endif  // YOLOPIPE_OPS_CPU_PARALLEL_H_
