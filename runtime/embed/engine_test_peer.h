// Test access to Engine: creates an engine whose pipeline stages call a fault hook before each
// micro-batch (PipelineOptions::fault_injector), so tests can fail a stage mid-stream. Not part of
// the public API (runtime/embed/yolopipe.h); only tests include this header.
#ifndef YOLOPIPE_RUNTIME_EMBED_ENGINE_TEST_PEER_H_
#define YOLOPIPE_RUNTIME_EMBED_ENGINE_TEST_PEER_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/embed/yolopipe.h"

namespace yolopipe {

struct EngineTestPeer {
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      const EngineOptions& options,
      std::function<absl::Status(int replica, int stage, int64_t microbatch)> fault_injector);
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_EMBED_ENGINE_TEST_PEER_H_
