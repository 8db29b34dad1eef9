// Static memory plan: places buffers with known sizes and lifetimes in one arena, reusing memory
// of buffers whose lifetimes do not overlap.
#ifndef YOLOPIPE_RUNTIME_MEMORY_PLAN_H_
#define YOLOPIPE_RUNTIME_MEMORY_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace yolopipe {

// One buffer to place: `bytes` long, live from step `first_step` to `last_step` inclusive (step =
// index in the execution order; the producer's step to the last consumer's step).
struct BufferRequest {
  size_t bytes = 0;
  int first_step = 0;
  int last_step = 0;
};

struct MemoryPlan {
  std::vector<size_t> offsets;  // one per request, 64-byte aligned
  size_t arena_bytes = 0;       // peak: the arena size needed
  size_t total_bytes = 0;       // sum of all requests (what no reuse would need)
};

// Greedy by size (largest first), each buffer at the lowest aligned offset that does not overlap a
// placed buffer whose lifetime intersects its own. Deterministic. Pure function.
MemoryPlan PlanMemory(const std::vector<BufferRequest>& requests);

// True when no two buffers with intersecting lifetimes overlap in memory, and all fit the arena.
bool IsValidPlan(const std::vector<BufferRequest>& requests, const MemoryPlan& plan);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_MEMORY_PLAN_H_
