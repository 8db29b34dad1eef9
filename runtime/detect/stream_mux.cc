#include "runtime/detect/stream_mux.h"

namespace yolopipe {

absl::StatusOr<BackpressurePolicy> ParseBackpressurePolicy(const std::string& text) {
  if (text == "block") return BackpressurePolicy::kBlock;
  if (text == "drop" || text == "drop-oldest") return BackpressurePolicy::kDropOldest;
  return absl::InvalidArgumentError(
      absl::StrCat("policy must be block or drop, got '", text, "'"));
}

const char* BackpressurePolicyName(BackpressurePolicy policy) {
  return policy == BackpressurePolicy::kBlock ? "block" : "drop";
}

}  // namespace yolopipe
