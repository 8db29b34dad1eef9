// The pipeline's device path (PipelineOptions::nccl): what a stage needs from its executor and from
// the transport when the tensors between stages stay in device memory. In production these are a
// CudaExecutor and an NCCL fabric (adapters in pipeline.cc); tests substitute host emulations
// (runtime/pipeline/testing/emulated_device_path.h) through
// PipelineOptions::device_path_for_testing, so the pipeline's protocol runs on machines without a
// GPU.
#ifndef YOLOPIPE_RUNTIME_PIPELINE_DEVICE_PATH_H_
#define YOLOPIPE_RUNTIME_PIPELINE_DEVICE_PATH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/tensor.h"
#include "graph/ir.h"
#include "runtime/cuda/nccl_communicator.h"

namespace yolopipe {

// A stage executor whose graph inputs and outputs live in `io_sets()` sets of "device" buffers:
// float32, plain (NCHW) layout, the shapes of the stage graph's inputs and outputs, in graph order.
// Semantics as CudaExecutor's io_sets / input_buffer / output_buffer / RunSet.
class DeviceStageRunner {
 public:
  virtual ~DeviceStageRunner() = default;
  virtual int io_sets() const = 0;
  virtual void* input_buffer(int set, int i) const = 0;
  virtual void* output_buffer(int set, int i) const = 0;
  virtual absl::StatusOr<std::vector<Tensor>> RunSet(int set, absl::Span<const Tensor> host_inputs,
                                                     const std::vector<bool>& download) = 0;
  // Bytes the runner holds (weights, arena, workspace, every I/O set, staging buffers).
  virtual int64_t held_bytes() const = 0;
};

// One rank of a DeviceLinkFabric. Semantics as NcclCommunicator's SendDeviceGroup /
// RecvDeviceGroup: one group per call, every transfer of a group in flight at once, a rank's
// groups executed one after another in the order they were issued (a later group, send or
// receive, starts only when the earlier one has completed), the call returning once its group
// completed, failed or was aborted.
class DeviceLink {
 public:
  virtual ~DeviceLink() = default;
  virtual absl::Status SendDeviceGroup(const std::vector<DevicePeerTransfer>& sends,
                                       MicroBatchId microbatch, absl::Duration timeout) = 0;
  virtual absl::Status RecvDeviceGroup(const std::vector<DevicePeerTransfer>& receives,
                                       MicroBatchId microbatch, absl::Duration timeout) = 0;
  virtual int64_t bytes_received() const = 0;
  // OK while usable; otherwise why it was aborted.
  virtual absl::Status abort_status() const = 0;
};

// Ranks 0..size()-1, of which this process holds some (endpoint() is nullptr for the others).
class DeviceLinkFabric {
 public:
  virtual ~DeviceLinkFabric() = default;
  virtual int size() const = 0;
  virtual DeviceLink* endpoint(int rank) = 0;
  // Aborts this process's endpoints: blocked and later calls return an error with `reason`.
  virtual void Abort(const absl::Status& reason) = 0;
};

// PipelineOptions::device_path_for_testing: replaces the CUDA executors and the NCCL fabric, and
// lets the device path run on CPU devices.
struct DevicePathForTesting {
  // Stage executor for a prepared stage graph, with `io_sets` sets.
  std::function<absl::StatusOr<std::unique_ptr<DeviceStageRunner>>(const Graph& stage_graph,
                                                                   int io_sets)>
      make_runner;
  // A fabric of `size` ranks, all in this process (rank = replica * K + stage).
  std::function<absl::StatusOr<std::unique_ptr<DeviceLinkFabric>>(int size)> make_fabric;
};

}  // namespace yolopipe

#endif  // YOLOPIPE_RUNTIME_PIPELINE_DEVICE_PATH_H_
