// A realistic Profile of a prepared graph without running anything: test and benchmark inputs, and
// `yolopipe profile --estimate roofline` (planning for hardware that is not at hand; such a
// profile is an estimate and says so in its device description). Node times come from a simple roofline (convolution FLOPs at a sustained rate, other
// ops' bytes at a memory bandwidth, plus a fixed per-node overhead per micro-batch, which makes
// larger micro-batches cheaper per image, as real kernels are); bytes come from value shapes.
#ifndef YOLOPIPE_RUNTIME_PLANNER_SYNTHETIC_PROFILE_H_
#define YOLOPIPE_RUNTIME_PLANNER_SYNTHETIC_PROFILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/ir.h"
#include "runtime/proto/profile.pb.h"

namespace yolopipe {

struct SyntheticProfileOptions {
  std::string model = "synthetic";  // Profile.model
  std::string fingerprint = "";     // Profile.model_fingerprint; "" -> "synthetic:<model>"
  std::vector<int> microbatch_sizes = {1, 2, 4, 8};
  double conv_gflops = 200.0;       // sustained convolution rate (GFLOP/s)
  double memory_gbps = 20.0;        // data-movement ops: (bytes read + written) / this
  double node_overhead_ms = 0.02;   // per node and micro-batch, whatever its size
  double workspace_fraction = 0.0;  // workspace bytes = this x output bytes (convolutions)
  std::string device_kind = "cpu";  // DeviceDescription.kind
};

// `graph` must be prepared (graph/prepare.h) at batch 1: every value has a concrete shape whose
// first dimension is the batch. Nodes keep the graph's order.
absl::StatusOr<proto::Profile> SyntheticProfileFromGraph(const Graph& graph,
                                                         const SyntheticProfileOptions& options);

// Builds the built-in yolov8<scale> at imgsz x imgsz, prepares it at batch 1 and profiles it as
// above (options.model is replaced by "yolov8<scale>").
absl::StatusOr<proto::Profile> SyntheticYoloV8Profile(char scale, int64_t imgsz,
                                                      SyntheticProfileOptions options);

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PLANNER_SYNTHETIC_PROFILE_H_
